package org.vdiskload.nbd;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Sends replies on one connection. Workers answer out of order, so each reply message (header and
 * payload) is written whole under a lock, with one gathering write: the data buffer goes to the
 * socket as it is, never copied behind the header. Which header shape is used follows the session:
 * simple, structured (NBD_OPT_STRUCTURED_REPLY) or extended (NBD_OPT_EXTENDED_HEADERS).
 */
final class ReplyWriter {
    private final ClientChannel ch;
    private final Session session;
    private final ReentrantLock lock = new ReentrantLock();

    ReplyWriter(ClientChannel ch, Session session) {
        this.ch = ch;
        this.session = session;
    }

    /** Success without payload. */
    void done(Request r) throws IOException {
        if (session.extendedHeaders || (session.structuredReplies && r.command() == Command.READ)) {
            chunk(r, Nbd.REPLY_FLAG_DONE, Nbd.REPLY_TYPE_NONE);
        } else {
            simple(r, 0, null);
        }
    }

    /** Failure: an error chunk with the message where chunks were negotiated, else a simple reply. */
    void error(Request r, int error, String message) throws IOException {
        if (!session.chunkedReplies()) {
            simple(r, error, null);
            return;
        }
        byte[] m = Wire.utf8(message);
        int n = Math.min(m.length, Nbd.MAX_STRING);
        ByteBuffer payload = ByteBuffer.allocate(6 + n).putInt(error).putShort((short) n).put(m, 0, n).flip();
        chunk(r, Nbd.REPLY_FLAG_DONE, Nbd.REPLY_TYPE_ERROR, payload);
    }

    /** A simple reply, with {@code data} following the header when given (a successful READ). */
    void simple(Request r, int error, ByteBuffer data) throws IOException {
        ByteBuffer head = ByteBuffer.allocate(16).putInt(Nbd.SIMPLE_REPLY_MAGIC).putInt(error).putLong(r.cookie()).flip();
        send(data == null ? new ByteBuffer[] {head} : new ByteBuffer[] {head, data});
    }

    /** One structured or extended reply chunk whose payload is {@code parts}, in order. */
    void chunk(Request r, int flags, int type, ByteBuffer... parts) throws IOException {
        long length = 0;
        for (ByteBuffer p : parts) length += p.remaining();
        ByteBuffer head;
        if (session.extendedHeaders) {
            head = ByteBuffer.allocate(32).putInt(Nbd.EXTENDED_REPLY_MAGIC).putShort((short) flags).putShort((short) type)
                    .putLong(r.cookie()).putLong(r.offset()).putLong(length);
        } else {
            head = ByteBuffer.allocate(20).putInt(Nbd.STRUCTURED_REPLY_MAGIC).putShort((short) flags).putShort((short) type)
                    .putLong(r.cookie()).putInt((int) length);
        }
        ByteBuffer[] all = new ByteBuffer[parts.length + 1];
        all[0] = head.flip();
        System.arraycopy(parts, 0, all, 1, parts.length);
        send(all);
    }

    private void send(ByteBuffer[] bufs) throws IOException {
        lock.lock();
        try {
            Wire.writeFully(ch, bufs);
        } finally {
            lock.unlock();
        }
    }
}
