package org.vdiskload.nbd;

/**
 * The one place a transmission request is checked before any handler sees it: a known command,
 * only the flags documented for it and negotiated, writes on a writable export, length limits,
 * alignment to the minimum block size, and a range inside the export. Errors follow the spec:
 * EINVAL for anything malformed, EPERM for a change to a read-only export, ENOSPC for a write or
 * write-zeroes past the end (EINVAL for a read or trim there), EOVERFLOW for a read longer than the
 * maximum payload, EINVAL for a write longer than it (whose payload is then passed over, never held).
 */
final class RequestValidator {

    /** Why a request is refused: the NBD error and a message for the log and the client. */
    record Rejection(int error, String message) {}

    private final Export export;
    private final Session session;

    RequestValidator(Export export, Session session) {
        this.export = export;
        this.session = session;
    }

    /** The flags {@code c} may carry on this connection. */
    int allowedFlags(Command c) {
        int advertised = session.transmissionFlags(export, false);
        int allowed = c.documentedFlags;
        if ((advertised & Nbd.FLAG_SEND_FUA) == 0) allowed &= ~Nbd.CMD_FLAG_FUA;
        if ((advertised & Nbd.FLAG_SEND_DF) == 0) allowed &= ~Nbd.CMD_FLAG_DF;
        if ((advertised & Nbd.FLAG_SEND_FAST_ZERO) == 0) allowed &= ~Nbd.CMD_FLAG_FAST_ZERO;
        if (!session.extendedHeaders) allowed &= ~Nbd.CMD_FLAG_PAYLOAD_LEN;
        return allowed;
    }

    /** Null if {@code r} may be handled; otherwise why not. */
    Rejection check(Request r) {
        Command c = r.command();
        if (c == null) return new Rejection(Nbd.EINVAL, "unknown command " + r.type());
        int extra = r.flags() & ~allowedFlags(c);
        if (extra != 0) return new Rejection(Nbd.EINVAL, "flags 0x" + Integer.toHexString(extra) + " are not allowed for " + c.name());
        if (session.extendedHeaders && (c == Command.WRITE) != r.has(Nbd.CMD_FLAG_PAYLOAD_LEN)) {
            return new Rejection(Nbd.EINVAL, c == Command.WRITE ? "WRITE without PAYLOAD_LEN" : "PAYLOAD_LEN is not allowed for " + c.name());
        }
        if (c.writes && !export.writable()) return new Rejection(Nbd.EPERM, "export '" + export.name() + "' is read-only");
        switch (c) {
            case FLUSH, DISC -> {
                if (r.offset() != 0 || r.length() != 0) return new Rejection(Nbd.EINVAL, c.name() + " must have offset and length 0");
                return null;
            }
            case BLOCK_STATUS -> {
                if (!session.blockStatusNegotiated()) return new Rejection(Nbd.EINVAL, "no metadata context was negotiated for this export");
                if (r.length() == 0) return new Rejection(Nbd.EINVAL, "BLOCK_STATUS of length 0");
            }
            case READ -> {
                if (Long.compareUnsigned(r.length(), export.sizes().maxPayload()) > 0) {
                    return new Rejection(Nbd.EOVERFLOW, "READ longer than the maximum payload " + export.sizes().maxPayload());
                }
            }
            case WRITE -> {
                if (Long.compareUnsigned(r.length(), export.sizes().maxPayload()) > 0) {
                    return new Rejection(Nbd.EINVAL, "WRITE payload longer than the maximum " + export.sizes().maxPayload());
                }
            }
            default -> { }
        }
        int min = export.sizes().minimum();
        if (Long.remainderUnsigned(r.offset(), min) != 0 || Long.remainderUnsigned(r.length(), min) != 0) {
            return new Rejection(Nbd.EINVAL, "offset or length not a multiple of the minimum block size " + min);
        }
        long size = export.size();
        if (Long.compareUnsigned(r.offset(), size) > 0 || Long.compareUnsigned(r.length(), size - r.offset()) > 0) {
            boolean grows = c == Command.WRITE || c == Command.WRITE_ZEROES;
            return new Rejection(grows ? Nbd.ENOSPC : Nbd.EINVAL, "range ends past the end of the export (" + size + " bytes)");
        }
        return null;
    }
}
