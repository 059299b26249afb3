package org.vdiskload.nbd;

/**
 * One transmission-phase request as read off the wire.
 *
 * @param flags   command flags
 * @param type    command type (see {@link Command#of}; unknown types are kept for the error reply)
 * @param cookie  the client's handle, echoed in every reply
 * @param offset  unsigned 64-bit offset
 * @param length  effect length (unsigned; 32-bit in compact requests, 64-bit with extended headers),
 *                or for a request with a payload, the payload's length
 * @param lease   its room in the connection's buffers ({@link ConnectionBuffers}): for a WRITE, whose buffer holds
 *                the payload as read; for a READ, whose buffer takes the data of the reply. Null for other commands
 *                and before it is taken
 */
record Request(int flags, int type, long cookie, long offset, long length, ConnectionBuffers.Lease lease) {

    Command command() {
        return Command.of(type);
    }

    /** This request with its room in the connection's buffers. */
    Request withLease(ConnectionBuffers.Lease l) {
        return new Request(flags, type, cookie, offset, length, l);
    }

    boolean has(int flag) {
        return (flags & flag) != 0;
    }

    /** The request as a log line shows it: command, offset, length and flags. */
    String describe() {
        Command c = command();
        return (c == null ? "command " + type : c.name()) + " offset=" + Long.toUnsignedString(offset)
                + " length=" + Long.toUnsignedString(length) + (flags == 0 ? "" : " flags=0x" + Integer.toHexString(flags));
    }
}
