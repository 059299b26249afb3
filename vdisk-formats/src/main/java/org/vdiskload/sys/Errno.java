package org.vdiskload.sys;

/** Linux errno values (asm-generic: the same on x86_64 and arm64). */
public final class Errno {
    public static final int EPERM = 1, ENOENT = 2, EINTR = 4, EIO = 5, ENXIO = 6, EBADF = 9, EAGAIN = 11, ENOMEM = 12,
            EACCES = 13, EBUSY = 16, EEXIST = 17, ENODEV = 19, ENOTDIR = 20, EISDIR = 21, EINVAL = 22, EFBIG = 27,
            ENOSPC = 28, EROFS = 30, ENOSYS = 38, EPROTO = 71, EOVERFLOW = 75, EOPNOTSUPP = 95, ESHUTDOWN = 108,
            EDQUOT = 122;

    private Errno() {}

    /** "No space left on device (errno 28)"; just "errno 28" where the C library is not available. */
    public static String describe(int errno) {
        return Libc.available() ? Libc.strerror(errno) + " (errno " + errno + ")" : "errno " + errno;
    }
}
