package org.vdiskload.nbd;

import java.nio.ByteBuffer;

/**
 * One transmission-phase request as read off the wire.
 *
 * @param flags   command flags
 * @param type    command type (see {@link Command#of}; unknown types are kept for the error reply)
 * @param cookie  the client's handle, echoed in every reply
 * @param offset  unsigned 64-bit offset
 * @param length  effect length (unsigned; 32-bit in compact requests, 64-bit with extended headers),
 *                or for a request with a payload, the payload's length
 * @param buffer  a buffer of the connection's ({@link ConnectionBuffers}): for a WRITE its payload as read, for a READ
 *                room for the data of its reply; null for other commands and before it is taken
 */
record Request(int flags, int type, long cookie, long offset, long length, ByteBuffer buffer) {

    Command command() {
        return Command.of(type);
    }

    /** This request with {@code b} as its buffer. */
    Request withBuffer(ByteBuffer b) {
        return new Request(flags, type, cookie, offset, length, b);
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
