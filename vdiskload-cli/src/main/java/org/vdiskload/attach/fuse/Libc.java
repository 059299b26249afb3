package org.vdiskload.attach.fuse;

import com.sun.jna.Native;
import com.sun.jna.Pointer;
import org.vdiskload.io.CLibrary;

/**
 * The system calls a FUSE server needs, direct-mapped through JNA (cheaper per call than an interface
 * mapping, which matters at one read and one write per request). After a failed call,
 * {@link Native#getLastError()} holds errno.
 */
final class Libc {
    private Libc() {}

    static {
        Native.register(Libc.class, CLibrary.instance());
    }

    static final int O_RDWR = 02, O_NONBLOCK = 04000, O_CLOEXEC = 02000000;
    static final long MS_NOSUID = 2, MS_NODEV = 4;
    static final int MNT_DETACH = 2;
    static final short POLLIN = 1;

    static native int open(String path, int flags);

    static native int close(int fd);

    static native long read(int fd, Pointer buf, long count);

    static native long write(int fd, Pointer buf, long count);

    static native int poll(Pointer fds, long nfds, int timeoutMillis);

    static native int eventfd(int initval, int flags);

    static native int mount(String source, String target, String fstype, long flags, String data);

    static native int umount2(String target, int flags);

    static int errno() {
        return Native.getLastError();
    }
}
