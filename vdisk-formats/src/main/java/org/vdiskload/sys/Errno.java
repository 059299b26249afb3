package org.vdiskload.sys;

import java.io.IOException;
import java.nio.channels.NonWritableChannelException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import java.nio.file.ReadOnlyFileSystemException;
import java.util.HashMap;
import java.util.Map;

/**
 * Linux errno values (asm-generic: the same on x86_64 and arm64), and the one mapping from a failure
 * to the errno a server answers with — FUSE replies, NBD's error codes (through this number), the
 * kernel module's replies — so that a full host file system is ENOSPC for whoever writes, a write the
 * image refuses is EROFS, and only what is truly unknown is EIO.
 */
public final class Errno {
    public static final int EPERM = 1, ENOENT = 2, EINTR = 4, EIO = 5, ENXIO = 6, EBADF = 9, EAGAIN = 11, ENOMEM = 12,
            EACCES = 13, EBUSY = 16, EEXIST = 17, ENODEV = 19, ENOTDIR = 20, EISDIR = 21, EINVAL = 22, EFBIG = 27,
            ENOSPC = 28, EROFS = 30, ENOSYS = 38, EPROTO = 71, EOVERFLOW = 75, EOPNOTSUPP = 95, ESHUTDOWN = 108,
            EDQUOT = 122;
    /** The highest errno Linux defines (EHWPOISON). */
    private static final int MAX = 133;

    private Errno() {}

    /**
     * The errno {@code failure} stands for: the first one its cause chain knows, else EIO (a failure no
     * one can name, a bug included, is an I/O error to whoever asked).
     * <ul>
     * <li>one that carries it ({@link CarriesErrno}: a {@link SysCallException}; an ImageException by its
     *     kind, or for an operating-system failure by its cause);</li>
     * <li>the java.nio.file exceptions by their type (AccessDenied: EACCES, NoSuchFile: ENOENT...), or
     *     by their reason;</li>
     * <li>any other IOException by its message. The JDK gives a failed read or write (FileChannel,
     *     sockets) no errno, only {@code strerror(errno)} as its whole message: {@link #ofMessage}
     *     inverts exactly that, in the process's own locale, rather than searching for English words.</li>
     * </ul>
     */
    public static int of(Throwable failure) {
        for (Throwable t = failure; t != null; t = t.getCause()) {
            int errno = direct(t);
            if (errno > 0) return errno;
        }
        return EIO;
    }

    private static int direct(Throwable t) {
        if (t instanceof CarriesErrno c) return c.errno();
        if (t instanceof AccessDeniedException) return EACCES;
        if (t instanceof NoSuchFileException) return ENOENT;
        if (t instanceof FileAlreadyExistsException) return EEXIST;
        if (t instanceof FileSystemException f) return ofMessage(f.getReason());
        if (t instanceof IOException) return ofMessage(t.getMessage());
        if (t instanceof ReadOnlyFileSystemException) return EROFS;
        if (t instanceof NonWritableChannelException) return EBADF; // as write(2) on a descriptor opened read-only
        if (t instanceof OutOfMemoryError) return ENOMEM;
        return 0;
    }

    /** The errno whose {@code strerror} text {@code message} is exactly, or 0 (also where the C library is not available). */
    public static int ofMessage(String message) {
        if (message == null) return 0;
        Integer errno = Texts.BY_TEXT.get(message);
        return errno == null ? 0 : errno;
    }

    /** "No space left on device (errno 28)"; just "errno 28" where the C library is not available. */
    public static String describe(int errno) {
        return Libc.available() ? Libc.strerror(errno) + " (errno " + errno + ")" : "errno " + errno;
    }

    /** The C library's text of every errno, built at the first use. */
    private static final class Texts {
        static final Map<String, Integer> BY_TEXT = build();

        private static Map<String, Integer> build() {
            Map<String, Integer> m = new HashMap<>();
            if (!Libc.available()) return m;
            for (int e = 1; e <= MAX; e++) {
                String text = Libc.strerror(e);
                if (text != null) m.putIfAbsent(text, e);
            }
            return m;
        }
    }
}
