package org.vdiskload.sys;

import com.sun.jna.Native;
import com.sun.jna.Pointer;

import java.io.IOException;

/**
 * Every C library call vdiskload makes, and their constants (x86_64 and arm64 Linux share these
 * values), bound by JNA's direct mapping: plain native methods, where an interface proxy costs
 * microseconds of reflection per call (a FUSE server makes one read and one write per request, a raw
 * image's reads ask lseek twice) and tens of milliseconds of proxy generation at the first use of a
 * one-shot command. Bound at the first use of this class: JNA costs start-up time most commands do
 * not need. Where it cannot be bound, {@link #available()} is false and every call throws
 * UnsatisfiedLinkError; callers that can do without ask first, the others {@link #require()} it.
 *
 * <p>A failed call returns -1 and leaves its errno for {@link #errno()} (JNA saves it right after the
 * call, before anything else can change it); {@link #failure} turns it into the exception that
 * carries it.
 */
public final class Libc {
    public static final int O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_EXCL = 0200, O_NONBLOCK = 04000, O_CLOEXEC = 02000000;
    public static final int AF_UNIX = 1, AF_NETLINK = 16, SOCK_STREAM = 1, SOCK_RAW = 3, SOCK_CLOEXEC = O_CLOEXEC;
    public static final int SOL_SOCKET = 1, SO_RCVTIMEO = 20;
    public static final long MS_NOSUID = 2, MS_NODEV = 4;
    public static final int MNT_DETACH = 2;
    public static final short POLLIN = 1;
    public static final int SEEK_DATA = 3, SEEK_HOLE = 4;
    public static final int FALLOC_FL_KEEP_SIZE = 0x01, FALLOC_FL_PUNCH_HOLE = 0x02;
    public static final int F_OFD_GETLK = 36, F_OFD_SETLK = 37;
    /** prctl: whether allocations recurse into I/O for this process (Linux 5.6). */
    public static final int PR_SET_IO_FLUSHER = 57, PR_GET_IO_FLUSHER = 58;
    public static final int MCL_CURRENT = 1, MCL_FUTURE = 2, MCL_ONFAULT = 4;
    /** BLKFLSBUF: write back and drop a block device's buffer cache. */
    public static final long BLKFLSBUF = 0x1261;

    /** Why binding failed, or null once bound. */
    private static final Throwable UNBOUND = bind();

    private Libc() {}

    private static Throwable bind() {
        try {
            Native.register(Libc.class, CLibrary.instance());
            return null;
        } catch (UnsatisfiedLinkError | RuntimeException e) {
            return e;
        }
    }

    /** Whether the calls are bound (JNA and the C library could be loaded). */
    public static boolean available() {
        return UNBOUND == null;
    }

    /** Throws unless the calls are bound. */
    public static void require() throws IOException {
        if (UNBOUND != null) throw new IOException("cannot load the C library through JNA: " + UNBOUND.getMessage());
    }

    /** The errno of the last failed call on this thread. */
    public static int errno() {
        return Native.getLastError();
    }

    /** The exception for the last failed call on this thread, {@code call} naming it ("open /dev/fuse"). */
    public static SysCallException failure(String call) {
        return new SysCallException(call, errno());
    }

    public static native int open(String path, int flags);

    public static native int close(int fd);

    public static native long read(int fd, Pointer buf, long count);

    public static native long write(int fd, Pointer buf, long count);

    public static native long lseek(int fd, long offset, int whence);

    public static native int fallocate(int fd, int mode, long offset, long length);

    public static native int fsync(int fd);

    /** fcntl with a pointer argument (struct flock for the F_OFD_ locks). */
    public static native int fcntl(int fd, int cmd, Pointer arg);

    /** ioctl with an integer argument. */
    public static native int ioctl(int fd, long request, long arg);

    public static native int poll(Pointer fds, long nfds, int timeoutMillis);

    public static native int eventfd(int initval, int flags);

    public static native int mount(String source, String target, String fstype, long flags, String data);

    public static native int umount2(String target, int flags);

    public static native int socket(int domain, int type, int protocol);

    public static native int connect(int fd, byte[] address, int length);

    public static native int setsockopt(int fd, int level, int option, byte[] value, int length);

    public static native long send(int fd, byte[] buf, long length, int flags);

    public static native long recv(int fd, byte[] buf, long length, int flags);

    public static native String strerror(int errno);

    public static native int prctl(int option, long arg2, long arg3, long arg4, long arg5);

    /** Locks the process's memory in RAM (MCL_*), so that it is never swapped out. */
    public static native int mlockall(int flags);
}
