package org.vdiskload.nbd;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;

/**
 * Sends replies on one connection. Workers answer out of order, so each reply message (header and
 * payload) is written whole under a lock, with gathering writes: data buffers go to the socket as they
 * are, never copied behind the header, and file ranges go straight from the file
 * ({@link ClientChannel#transferFrom}). Which header shape is used follows the session: simple,
 * structured (NBD_OPT_STRUCTURED_REPLY) or extended (NBD_OPT_EXTENDED_HEADERS).
 *
 * <p>A message cut short (the socket broke, or a file range failed to read while it was being sent)
 * leaves the stream unframed: the connection is closed, nothing more can be said on it.
 */
final class ReplyWriter {
    private static final ByteBuffer ZEROS = ByteBuffer.allocateDirect(64 << 10).asReadOnlyBuffer();

    private final ClientChannel ch;
    private final Session session;
    private final Consumer<String> log;
    private final ReentrantLock lock = new ReentrantLock();

    ReplyWriter(ClientChannel ch, Session session, Consumer<String> log) {
        this.ch = ch;
        this.session = session;
        this.log = log;
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
        send(simpleHeader(r, error), data == null ? List.of() : List.of(new PayloadPart.Bytes(data)));
    }

    /** A simple reply to a successful READ whose data is {@code parts}, in order. */
    void simpleRead(Request r, List<PayloadPart> parts) throws IOException {
        send(simpleHeader(r, 0), parts);
    }

    /** One structured or extended reply chunk whose payload is {@code parts}, in order. */
    void chunk(Request r, int flags, int type, ByteBuffer... parts) throws IOException {
        List<PayloadPart> payload = new ArrayList<>(parts.length);
        for (ByteBuffer p : parts) payload.add(new PayloadPart.Bytes(p));
        chunk(r, flags, type, payload);
    }

    /** One structured or extended reply chunk whose payload is {@code parts}, in order. */
    void chunk(Request r, int flags, int type, List<PayloadPart> parts) throws IOException {
        long length = 0;
        for (PayloadPart p : parts) length += p.length();
        ByteBuffer head;
        if (session.extendedHeaders) {
            head = ByteBuffer.allocate(32).putInt(Nbd.EXTENDED_REPLY_MAGIC).putShort((short) flags).putShort((short) type)
                    .putLong(r.cookie()).putLong(r.offset()).putLong(length);
        } else {
            head = ByteBuffer.allocate(20).putInt(Nbd.STRUCTURED_REPLY_MAGIC).putShort((short) flags).putShort((short) type)
                    .putLong(r.cookie()).putInt((int) length);
        }
        send(head.flip(), parts);
    }

    private static ByteBuffer simpleHeader(Request r, int error) {
        return ByteBuffer.allocate(16).putInt(Nbd.SIMPLE_REPLY_MAGIC).putInt(error).putLong(r.cookie()).flip();
    }

    /** {@code head} then {@code parts}: runs of buffers in one gathering write each, file ranges sent from the file. */
    private void send(ByteBuffer head, List<PayloadPart> parts) throws IOException {
        lock.lock();
        try {
            List<ByteBuffer> pending = new ArrayList<>(parts.size() + 1);
            pending.add(head);
            for (PayloadPart p : parts) {
                if (p instanceof PayloadPart.Bytes b) {
                    pending.add(b.buffer());
                } else if (p instanceof PayloadPart.FileRange f) {
                    write(pending);
                    pending.clear();
                    sendFile(f);
                }
            }
            write(pending);
        } catch (IOException | RuntimeException e) {
            closeQuietly();
            throw e;
        } finally {
            lock.unlock();
        }
    }

    private void write(List<ByteBuffer> bufs) throws IOException {
        if (!bufs.isEmpty()) Wire.writeFully(ch, bufs.toArray(new ByteBuffer[0]));
    }

    /** The range from its file; past the file's end, zeros (the file may end inside the last cluster). */
    private void sendFile(PayloadPart.FileRange f) throws IOException {
        FileChannel file = f.file().channel();
        long pos = f.position();
        long left = f.length();
        try {
            while (left > 0) {
                long n = ch.transferFrom(file, pos, left);
                if (n == 0) {
                    if (pos < file.size()) throw new IOException("sending from the file made no progress at offset " + pos);
                    sendZeros(left);
                    return;
                }
                pos += n;
                left -= n;
            }
        } catch (IOException e) {
            if (ch.isOpen()) log.accept("sending " + f.file() + " at offset " + pos + " failed: " + e.getMessage() + "; closing the connection");
            throw e;
        }
    }

    private void sendZeros(long n) throws IOException {
        for (long left = n; left > 0; ) {
            ByteBuffer z = ZEROS.duplicate().limit((int) Math.min(left, ZEROS.capacity()));
            left -= z.remaining();
            Wire.writeFully(ch, z);
        }
    }

    private void closeQuietly() {
        try {
            ch.close();
        } catch (IOException ignored) {
            // already broken
        }
    }
}
