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
 * @param payload the bytes that followed the header (WRITE), or null
 */
record Request(int flags, int type, long cookie, long offset, long length, ByteBuffer payload) {

    Command command() {
        return Command.of(type);
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
