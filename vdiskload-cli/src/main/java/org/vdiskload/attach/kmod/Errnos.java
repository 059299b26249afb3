package org.vdiskload.attach.kmod;

import org.vdiskload.image.error.ImageException;

import java.nio.file.AccessDeniedException;
import java.nio.file.ReadOnlyFileSystemException;

/** The errno an upcall answers with for a failure of the library. */
final class Errnos {
    static final int EIO = 5, EACCES = 13, EINVAL = 22, ENOSPC = 28, EROFS = 30, EOPNOTSUPP = 95;

    private Errnos() {}

    static int of(Throwable e) {
        if (e instanceof ReadOnlyFileSystemException) return EROFS;
        if (e instanceof AccessDeniedException) return EACCES;
        if (e instanceof ImageException ie && ie.kind() == ImageException.Kind.UNSUPPORTED) return EOPNOTSUPP;
        String m = e.getMessage();
        if (m != null && m.contains("No space left on device")) return ENOSPC;
        return EIO;
    }
}
