package org.vdiskload.sys;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.error.ImageException;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Failures as the JDK, the library and the C library make them, and the errno each one stands for. */
class ErrnoTest {
    @TempDir
    Path dir;

    /** What FileChannel throws when the file system is full: /dev/full refuses every write with ENOSPC. */
    private static IOException diskFull() throws IOException {
        try (FileChannel ch = FileChannel.open(Path.of("/dev/full"), StandardOpenOption.WRITE)) {
            return assertThrows(IOException.class, () -> ch.write(ByteBuffer.allocate(4096)));
        }
    }

    @Test
    void aSystemCallsFailureByItsErrnoAlsoAsACause() {
        assertEquals(Errno.EBUSY, Errno.of(new SysCallException("NBD_SET_SOCK /dev/nbd0", Errno.EBUSY)));
        assertEquals(Errno.ENOENT, Errno.of(new IOException("while opening", new SysCallException("open x", Errno.ENOENT))));
    }

    @Test
    void theJdksFailuresByTypeOrByTheirStrerrorText() throws Exception {
        assertEquals(Errno.ENOSPC, Errno.of(diskFull()));
        assertEquals(Errno.ENOENT, Errno.of(assertThrows(IOException.class, () -> Files.newByteChannel(dir.resolve("missing")))));
        Path file = Files.writeString(dir.resolve("f"), "x");
        assertEquals(Errno.ENOTDIR, Errno.of(assertThrows(IOException.class, () -> Files.newByteChannel(file.resolve("below")))),
                "a FileSystemException by its reason");
        assertEquals(Errno.EEXIST, Errno.of(assertThrows(IOException.class, () -> Files.createFile(file))));
    }

    @Test
    void onlyTheWholeTextIsAnErrnoNotWordsInAMessage() throws Exception {
        String text = diskFull().getMessage();
        assertEquals(Errno.ENOSPC, Errno.ofMessage(text));
        assertEquals(0, Errno.ofMessage("disk.raw: " + text));
        assertEquals(Errno.EIO, Errno.of(new IOException("disk.raw: " + text)));
        for (int e : new int[] {Errno.EPERM, Errno.EIO, Errno.EINVAL, Errno.EROFS, Errno.EDQUOT, Errno.EFBIG, Errno.ESHUTDOWN}) {
            assertEquals(e, Errno.ofMessage(Libc.strerror(e)), "strerror(" + e + ") maps back");
        }
    }

    @Test
    void imageFailuresByTheirKind() throws Exception {
        Path p = Path.of("d.qcow2");
        assertEquals(Errno.EINVAL, Errno.of(ImageException.invalid(p, "range outside the disk")));
        assertEquals(Errno.EIO, Errno.of(ImageException.corrupt(p, 65536, "L2 entry", "points past the end of the file")));
        assertEquals(Errno.EOPNOTSUPP, Errno.of(ImageException.unsupported(p, "encrypted")));
        assertEquals(Errno.EROFS, Errno.of(ImageException.readOnly(p, "partition 2: its source is compressed")));
        assertEquals(Errno.ENOSPC, Errno.of(new ImageException(ImageException.Kind.IO, p, 0, null, "cannot write", diskFull())),
                "an operating-system failure by its cause");
        assertEquals(Errno.EIO, Errno.of(new ImageException(ImageException.Kind.IO, p, 0, null, "short read")));
    }

    @Test
    void whatNoOneCanNameIsEio() {
        assertEquals(Errno.EIO, Errno.of(new IllegalStateException("a bug")));
        assertEquals(Errno.EIO, Errno.of(new IOException((String) null)));
        assertEquals(Errno.ENOMEM, Errno.of(new OutOfMemoryError()));
    }
}
