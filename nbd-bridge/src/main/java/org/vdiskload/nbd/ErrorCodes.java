package org.vdiskload.nbd;

import java.io.IOException;

/**
 * The NBD error a failed command answers with. The spec's list is short: a host that cannot hold
 * more data (ENOSPC, and as the spec asks, EDQUOT and EFBIG) is NBD_ENOSPC, so a client can tell a
 * full disk from a broken one; anything else that fails while carrying out a valid request is EIO.
 * (Malformed requests never get this far: {@link RequestValidator} answers them.)
 */
final class ErrorCodes {
    /** The messages the JDK gives an IOException for ENOSPC, EDQUOT and EFBIG (strerror's text). */
    private static final String[] NO_SPACE = {"No space left on device", "Disk quota exceeded", "File too large"};

    private ErrorCodes() {}

    static int of(Throwable failure) {
        for (Throwable t = failure; t != null; t = t.getCause()) {
            if (t instanceof IOException && t.getMessage() != null) {
                for (String text : NO_SPACE) {
                    if (t.getMessage().contains(text)) return Nbd.ENOSPC;
                }
            }
        }
        return Nbd.EIO;
    }
}
