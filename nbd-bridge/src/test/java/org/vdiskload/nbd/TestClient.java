package org.vdiskload.nbd;

import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import java.io.Closeable;
import java.io.IOException;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A bare NBD client for tests: every protocol step by hand, so tests can also misbehave on purpose. */
final class TestClient implements Closeable {
    final SocketChannel ch;
    /** What the client reads and writes: the socket, or TLS over it after {@link #startTls}. */
    ClientChannel io;
    boolean structured;
    boolean extended;

    record OptReply(int option, int type, ByteBuffer data) {
        String text() {
            return StandardCharsets.UTF_8.decode(data.duplicate()).toString();
        }
    }

    record ExportInfo(long size, int flags, int minBlock, int maxPayload) {}

    /** One reply message: simple (type -1, error set) or a structured/extended chunk. */
    record Reply(int flags, int type, long cookie, long offset, int error, ByteBuffer payload) {
        boolean done() {
            return type == -1 || (flags & Nbd.REPLY_FLAG_DONE) != 0;
        }
    }

    TestClient(Path socket) throws IOException {
        this(SocketChannel.open(UnixDomainSocketAddress.of(socket)));
    }

    TestClient(SocketChannel ch) {
        this.ch = ch;
        this.io = ClientChannel.plain(ch);
    }

    /** NBD_OPT_STARTTLS, then the TLS handshake as a client of {@code tls}; true if the server acknowledged. */
    boolean startTls(SSLContext tls, String... protocols) throws IOException {
        List<OptReply> r = option(Nbd.OPT_STARTTLS, null);
        if (r.get(0).type() != Nbd.REP_ACK) return false;
        SSLEngine engine = tls.createSSLEngine("localhost", 0);
        engine.setUseClientMode(true);
        if (protocols.length > 0) engine.setEnabledProtocols(protocols);
        TlsChannel t = TlsChannel.handshake(ch, engine);
        io = t;
        tlsSession = t.describe();
        return true;
    }

    /** The TLS protocol and cipher suite, once {@link #startTls} succeeded. */
    String tlsSession;

    // ---- raw I/O

    void write(ByteBuffer b) throws IOException {
        while (b.hasRemaining()) io.write(b);
    }

    void write(byte[] b) throws IOException {
        write(ByteBuffer.wrap(b));
    }

    ByteBuffer read(int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        Wire.readFully(io, b);
        return b.flip();
    }

    /** True if the server closed the connection (EOF), reading and discarding anything before it. */
    boolean closedByServer() throws IOException {
        ByteBuffer b = ByteBuffer.allocate(4096);
        try {
            while (true) {
                b.clear();
                if (io.read(b) < 0) return true;
            }
        } catch (IOException e) {
            return true; // reset by the server
        }
    }

    // ---- handshake

    void greet(int clientFlags) throws IOException {
        ByteBuffer hello = read(18);
        assertEquals(Nbd.NBDMAGIC, hello.getLong());
        assertEquals(Nbd.IHAVEOPT, hello.getLong());
        assertEquals(Nbd.FLAG_FIXED_NEWSTYLE | Nbd.FLAG_NO_ZEROES, hello.getShort());
        write(ByteBuffer.allocate(4).putInt(clientFlags).flip());
    }

    void sendOption(int option, ByteBuffer data) throws IOException {
        int len = data == null ? 0 : data.remaining();
        write(ByteBuffer.allocate(16).putLong(Nbd.IHAVEOPT).putInt(option).putInt(len).flip());
        if (data != null) write(data);
    }

    OptReply readOptReply() throws IOException {
        ByteBuffer h = read(20);
        assertEquals(Nbd.OPTION_REPLY_MAGIC, h.getLong());
        int option = h.getInt();
        int type = h.getInt();
        int len = h.getInt();
        return new OptReply(option, type, read(len));
    }

    /** Sends an option and reads replies up to the final one (ACK or an error). */
    List<OptReply> option(int option, ByteBuffer data) throws IOException {
        sendOption(option, data);
        List<OptReply> out = new ArrayList<>();
        while (true) {
            OptReply r = readOptReply();
            assertEquals(option, r.option());
            out.add(r);
            if (r.type() == Nbd.REP_ACK || r.type() < 0) return out;
        }
    }

    static ByteBuffer nameAndInfos(String name, int... infos) {
        byte[] n = name.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(4 + n.length + 2 + 2 * infos.length).putInt(n.length).put(n).putShort((short) infos.length);
        for (int i : infos) b.putShort((short) i);
        return b.flip();
    }

    static ByteBuffer nameAndQueries(String name, String... queries) {
        byte[] n = name.getBytes(StandardCharsets.UTF_8);
        int len = 4 + n.length + 4;
        for (String q : queries) len += 4 + q.getBytes(StandardCharsets.UTF_8).length;
        ByteBuffer b = ByteBuffer.allocate(len).putInt(n.length).put(n).putInt(queries.length);
        for (String q : queries) {
            byte[] qb = q.getBytes(StandardCharsets.UTF_8);
            b.putInt(qb.length).put(qb);
        }
        return b.flip();
    }

    /** INFO or GO: the export's size, flags and block sizes from the replies, or null on an error reply. */
    ExportInfo info(int option, String name) throws IOException {
        List<OptReply> replies = option(option, nameAndInfos(name, Nbd.INFO_BLOCK_SIZE));
        OptReply last = replies.get(replies.size() - 1);
        if (last.type() != Nbd.REP_ACK) return null;
        long size = -1;
        int flags = -1, min = -1, max = -1;
        for (OptReply r : replies) {
            if (r.type() != Nbd.REP_INFO) continue;
            ByteBuffer d = r.data().duplicate();
            int type = d.getShort();
            if (type == Nbd.INFO_EXPORT) {
                size = d.getLong();
                flags = Short.toUnsignedInt(d.getShort());
            } else if (type == Nbd.INFO_BLOCK_SIZE) {
                min = d.getInt();
                d.getInt();
                max = d.getInt();
            }
        }
        return new ExportInfo(size, flags, min, max);
    }

    /** The usual negotiation: fixed newstyle, then the chosen extensions, then GO. */
    ExportInfo open(String name, boolean structuredReplies, boolean extendedHeaders, boolean allocation) throws IOException {
        greet(Nbd.FLAG_C_FIXED_NEWSTYLE | Nbd.FLAG_C_NO_ZEROES);
        if (extendedHeaders) {
            assertEquals(Nbd.REP_ACK, option(Nbd.OPT_EXTENDED_HEADERS, null).get(0).type());
            extended = true;
        } else if (structuredReplies) {
            assertEquals(Nbd.REP_ACK, option(Nbd.OPT_STRUCTURED_REPLY, null).get(0).type());
            structured = true;
        }
        if (allocation) {
            List<OptReply> r = option(Nbd.OPT_SET_META_CONTEXT, nameAndQueries(name, Nbd.BASE_ALLOCATION));
            assertEquals(2, r.size(), "one context then ACK");
            assertEquals(Nbd.REP_META_CONTEXT, r.get(0).type());
        }
        ExportInfo info = info(Nbd.OPT_GO, name);
        assertTrue(info != null, "GO " + name + " succeeds");
        return info;
    }

    // ---- transmission

    void request(int flags, int type, long cookie, long offset, long length) throws IOException {
        request(flags, type, cookie, offset, length, null);
    }

    void request(int flags, int type, long cookie, long offset, long length, byte[] payload) throws IOException {
        ByteBuffer b;
        if (extended) {
            b = ByteBuffer.allocate(32).putInt(Nbd.EXTENDED_REQUEST_MAGIC).putShort((short) flags).putShort((short) type)
                    .putLong(cookie).putLong(offset).putLong(length);
        } else {
            b = ByteBuffer.allocate(28).putInt(Nbd.REQUEST_MAGIC).putShort((short) flags).putShort((short) type)
                    .putLong(cookie).putLong(offset).putInt((int) length);
        }
        write(b.flip());
        if (payload != null) write(payload);
    }

    Reply readReply() throws IOException {
        int magic = read(4).getInt();
        if (magic == Nbd.SIMPLE_REPLY_MAGIC) {
            ByteBuffer h = read(12);
            int error = h.getInt();
            return new Reply(0, -1, h.getLong(), -1, error, null);
        }
        ByteBuffer h;
        long offset = -1;
        long len;
        int flags, type;
        long cookie;
        if (magic == Nbd.STRUCTURED_REPLY_MAGIC) {
            h = read(16);
            flags = h.getShort();
            type = Short.toUnsignedInt(h.getShort());
            cookie = h.getLong();
            len = Integer.toUnsignedLong(h.getInt());
        } else if (magic == Nbd.EXTENDED_REPLY_MAGIC) {
            h = read(28);
            flags = h.getShort();
            type = Short.toUnsignedInt(h.getShort());
            cookie = h.getLong();
            offset = h.getLong();
            len = h.getLong();
        } else {
            throw new IOException("bad reply magic 0x" + Integer.toHexString(magic));
        }
        ByteBuffer payload = read((int) len);
        int error = type == Nbd.REPLY_TYPE_ERROR ? payload.getInt(0) : 0;
        return new Reply(flags, type, cookie, offset, error, payload);
    }

    /** Every chunk of one reply (for requests answered in order). */
    List<Reply> replies() throws IOException {
        List<Reply> out = new ArrayList<>();
        Reply r;
        do {
            r = readReply();
            out.add(r);
        } while (!r.done());
        return out;
    }

    /** Sends one request (with its payload, if any) and reads its whole reply; returns the error, 0 for success. */
    int command(int flags, Command c, long offset, long length, byte[] payload) throws IOException {
        if (extended && payload != null) flags |= Nbd.CMD_FLAG_PAYLOAD_LEN;
        request(flags, c.code, 0x600d, offset, length, payload);
        int error = 0;
        for (Reply r : replies()) {
            assertEquals(0x600d, r.cookie());
            if (r.error() != 0) error = r.error();
        }
        return error;
    }

    /** A READ's bytes, assembled from whatever reply shape the session uses; fails on an error. */
    byte[] read(long offset, int length, int flags) throws IOException {
        request(flags, Command.READ.code, 77, offset, length);
        byte[] out = new byte[length];
        if (!structured && !extended) {
            Reply r = readReply();
            assertEquals(0, r.error(), "READ error");
            read(length).get(out);
            return out;
        }
        for (Reply r : replies()) {
            assertEquals(0, r.error(), "READ error");
            if (r.type() == Nbd.REPLY_TYPE_OFFSET_DATA) {
                long at = r.payload().getLong();
                r.payload().get(out, (int) (at - offset), r.payload().remaining());
            }
        }
        return out;
    }

    @Override
    public void close() throws IOException {
        ch.close();
    }
}
