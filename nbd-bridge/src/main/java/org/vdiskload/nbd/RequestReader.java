package org.vdiskload.nbd;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Reads transmission requests off one connection through a buffer: one read call takes in every request
 * the client has pipelined so far (instead of one call per header), and {@link #buffered()} tells whether
 * the next one has arrived already. Checks the magic, and drops the connection for a payload longer than both
 * the export's maximum and {@link #SPEC_PAYLOAD} (the spec lets a server hang up on a payload it deems a denial of
 * service, though not on one of up to 2^25 bytes); everything else is the {@link RequestValidator}'s, which
 * refuses a shorter payload past the export's maximum with EINVAL: it is then passed over in pieces of this
 * reader's buffer ({@link #skip}), never held whole.
 */
final class RequestReader {
    static final int BUFFER = 64 << 10;
    /** The payload length the spec says a server should not take for a denial of service: 2^25 (32 MiB). */
    static final long SPEC_PAYLOAD = 1L << 25;

    private final ClientChannel ch;
    private final Session session;
    /** A payload longer than this (the larger of the export's maximum and 2^25) drops the connection. */
    private final long dropPast;
    /** Received, not yet parsed: [position, limit). Direct, so the socket fills it without a copy. */
    private final ByteBuffer in = ByteBuffer.allocateDirect(BUFFER).flip();
    /** Set while this reader waits for the client with no whole request at hand. */
    private volatile boolean waiting;

    RequestReader(ClientChannel ch, Session session) {
        this.ch = ch;
        this.session = session;
        this.dropPast = Math.max(session.export.sizes().maxPayload(), SPEC_PAYLOAD);
    }

    /** Whether bytes of a further request have been received already (the client is pipelining). */
    boolean buffered() {
        return in.hasRemaining();
    }

    /** Whether this reader is waiting for the client: every request received so far has been read. */
    boolean waiting() {
        return waiting;
    }

    /**
     * The next request's header. A payload that follows it (a WRITE's) is not read yet: the request is checked
     * first, then its payload read with {@link #payload} or, for a request refused, passed over with
     * {@link #skip}, so a refused request costs no buffer of the size it claims.
     */
    Request next() throws IOException {
        fill(session.extendedHeaders ? 32 : 28);
        int magic = in.getInt();
        int expected = session.extendedHeaders ? Nbd.EXTENDED_REQUEST_MAGIC : Nbd.REQUEST_MAGIC;
        if (magic != expected) throw new ProtocolException("bad request magic 0x" + Integer.toHexString(magic));
        int flags = Short.toUnsignedInt(in.getShort());
        int type = Short.toUnsignedInt(in.getShort());
        long cookie = in.getLong();
        long offset = in.getLong();
        long length = session.extendedHeaders ? in.getLong() : Integer.toUnsignedLong(in.getInt());
        Request r = new Request(flags, type, cookie, offset, length, null);
        if (payloadFollows(r) && Long.compareUnsigned(length, dropPast) > 0) {
            throw new ProtocolException("request payload of " + Long.toUnsignedString(length) + " bytes exceeds the maximum "
                    + dropPast);
        }
        return r;
    }

    /** Whether a payload of {@code r.length()} bytes follows the header of {@code r} (no more than the maximum). */
    boolean payloadFollows(Request r) {
        return session.extendedHeaders ? r.has(Nbd.CMD_FLAG_PAYLOAD_LEN) : r.type() == Command.WRITE.code;
    }

    /**
     * Reads the payload of {@code r} into its buffer (which has room for exactly that): what the request buffer
     * holds of it, then the rest straight from the socket (the file takes it from there without another copy).
     */
    void payload(Request r) throws IOException {
        ByteBuffer p = r.lease().buffer();
        int held = Math.min(p.remaining(), in.remaining());
        p.put(in.slice(in.position(), held));
        in.position(in.position() + held);
        Wire.readFully(ch, p);
        p.flip();
    }

    /** Passes over the payload of refused request {@code r}. */
    void skip(Request r) throws IOException {
        long left = r.length();
        while (left > 0) {
            fill((int) Math.min(left, BUFFER));
            int n = (int) Math.min(left, in.remaining());
            in.position(in.position() + n);
            left -= n;
        }
    }

    /** Makes at least {@code n} (at most the buffer's size) bytes available. */
    private void fill(int n) throws IOException {
        if (in.remaining() >= n) return;
        in.compact();
        waiting = true;
        try {
            while (in.position() < n) {
                if (ch.read(in) < 0) throw new EOFException("client closed the connection");
            }
        } finally {
            waiting = false;
            in.flip();
        }
    }
}
