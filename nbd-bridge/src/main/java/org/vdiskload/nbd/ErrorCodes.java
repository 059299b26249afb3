package org.vdiskload.nbd;

import org.vdiskload.sys.Errno;

/**
 * The NBD error a failed command answers with: the failure's errno ({@link Errno#of}, the mapping FUSE
 * and the kernel module answer with too) in NBD's short list, as qemu's nbd/server.c puts it
 * (system_errno_to_nbd_errno): EPERM and EROFS are NBD_EPERM (EACCES too); a host that cannot hold more
 * data — ENOSPC, and as the spec asks EDQUOT and EFBIG — is NBD_ENOSPC, so a client can tell a full disk
 * from a broken one; EIO, ENOMEM, EINVAL, EOVERFLOW, ENOTSUP and ESHUTDOWN are themselves; anything else
 * is EIO (qemu says EINVAL, but a request that passed {@link RequestValidator} is not at fault).
 */
final class ErrorCodes {
    private ErrorCodes() {}

    static int of(Throwable failure) {
        return ofErrno(Errno.of(failure));
    }

    static int ofErrno(int errno) {
        return switch (errno) {
            case Errno.EPERM, Errno.EACCES, Errno.EROFS -> Nbd.EPERM;
            case Errno.ENOSPC, Errno.EDQUOT, Errno.EFBIG -> Nbd.ENOSPC;
            case Errno.ENOMEM -> Nbd.ENOMEM;
            case Errno.EINVAL -> Nbd.EINVAL;
            case Errno.EOVERFLOW -> Nbd.EOVERFLOW;
            case Errno.EOPNOTSUPP -> Nbd.ENOTSUP;
            case Errno.ESHUTDOWN -> Nbd.ESHUTDOWN;
            default -> Nbd.EIO;
        };
    }
}
