package org.vdiskload.nbd;

/** What one client and the server agreed on during option haggling; fixed once transmission starts. */
final class Session {
    /** NBD_OPT_STRUCTURED_REPLY was acknowledged. */
    boolean structuredReplies;
    /** NBD_OPT_EXTENDED_HEADERS was acknowledged: 32-byte requests and replies, no simple replies. */
    boolean extendedHeaders;
    /** The client asked for no 124 zero bytes after NBD_OPT_EXPORT_NAME. */
    boolean noZeroes;
    /** The export the last NBD_OPT_SET_META_CONTEXT selected base:allocation for, or null. */
    Export allocationContextFor;
    /** The export in use, once transmission starts. */
    Export export;

    /** Whether replies may be chunks (structured or extended): needed for BLOCK_STATUS, DF and holes. */
    boolean chunkedReplies() {
        return structuredReplies || extendedHeaders;
    }

    /** Whether BLOCK_STATUS may be used: base:allocation was selected for the export now in use. */
    boolean blockStatusNegotiated() {
        return export != null && allocationContextFor == export;
    }

    /**
     * The transmission flags for {@code e} as this session has negotiated so far: each one true.
     * A writable export takes FUA, TRIM, WRITE_ZEROES and FAST_ZERO (answered ENOTSUP where zeroing
     * would write data, see {@link ZeroHandler}); a read-only one says so.
     *
     * <p>CAN_MULTI_CONN promises that a FLUSH (or FUA) on one connection covers the writes already
     * acknowledged on every other one. That holds here for writable exports as for read-only ones:
     * all connections to an export share the one {@link org.vdiskload.image.DiskImage}, a write is
     * acknowledged only once the image has it (no per-connection buffer), and the image's flush makes
     * every completed write durable, whoever sent it. {@code multiConn} is false only when the server
     * serves one client at a time (--shared 1), as qemu-nbd.
     */
    int transmissionFlags(Export e, boolean multiConn) {
        int flags = Nbd.FLAG_HAS_FLAGS | Nbd.FLAG_SEND_FLUSH | Nbd.FLAG_SEND_CACHE;
        if (e.writable()) {
            flags |= Nbd.FLAG_SEND_FUA | Nbd.FLAG_SEND_TRIM | Nbd.FLAG_SEND_WRITE_ZEROES | Nbd.FLAG_SEND_FAST_ZERO;
        } else {
            flags |= Nbd.FLAG_READ_ONLY;
        }
        if (chunkedReplies()) flags |= Nbd.FLAG_SEND_DF;
        if (multiConn) flags |= Nbd.FLAG_CAN_MULTI_CONN;
        return flags;
    }
}
