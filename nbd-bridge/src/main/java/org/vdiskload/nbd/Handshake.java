package org.vdiskload.nbd;

import javax.net.ssl.SSLException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Fixed-newstyle option haggling with one client: from the greeting to NBD_OPT_GO or
 * NBD_OPT_EXPORT_NAME. Malformed options get NBD_REP_ERR_INVALID, unknown ones NBD_REP_ERR_UNSUP;
 * only what cannot be answered (bad magic, oversize option, unknown export on EXPORT_NAME) drops
 * the client, as a {@link ProtocolException}.
 *
 * <p>With {@link TlsCredentials} the server is "TLS only" (proto.md, TLS support): before
 * NBD_OPT_STARTTLS every option but STARTTLS and ABORT is answered NBD_REP_ERR_TLS_REQD (and
 * EXPORT_NAME, which has no error reply, drops the client); after the TLS handshake, haggling goes on
 * inside TLS from a clean slate. Without credentials STARTTLS is refused with NBD_REP_ERR_POLICY.
 */
final class Handshake {
    /** Longest option payload accepted; the longest sensible one (SET_META_CONTEXT) is far smaller. */
    static final int MAX_OPTION_LENGTH = 65536;
    /** Options per connection before the client is taken for a loop and dropped. */
    static final int MAX_OPTIONS = 4096;
    /** The id of base:allocation, the one metadata context. */
    static final int BASE_ALLOCATION_ID = 1;

    private final SocketChannel socket;
    private final Exports exports;
    private final boolean multiConn;
    private final TlsCredentials tls;
    private final Consumer<String> log;
    private final Session session = new Session();
    /** The socket, or TLS over it after STARTTLS. */
    private ClientChannel ch;

    /** @param tls the server's TLS identity, or null for a server without TLS */
    Handshake(SocketChannel socket, Exports exports, boolean multiConn, TlsCredentials tls, Consumer<String> log) {
        this.socket = socket;
        this.ch = ClientChannel.plain(socket);
        this.exports = exports;
        this.multiConn = multiConn;
        this.tls = tls;
        this.log = log;
    }

    /** The channel transmission goes on: TLS when it was negotiated. */
    ClientChannel channel() {
        return ch;
    }

    /** Runs the negotiation; returns the session ready for transmission, or null if the client aborted. */
    Session run() throws IOException {
        ByteBuffer hello = ByteBuffer.allocate(18)
                .putLong(Nbd.NBDMAGIC).putLong(Nbd.IHAVEOPT).putShort((short) (Nbd.FLAG_FIXED_NEWSTYLE | Nbd.FLAG_NO_ZEROES));
        write(hello.flip());
        int clientFlags = Wire.read(ch, 4).getInt();
        if ((clientFlags & ~(Nbd.FLAG_C_FIXED_NEWSTYLE | Nbd.FLAG_C_NO_ZEROES)) != 0) {
            throw new ProtocolException("unknown client flags 0x" + Integer.toHexString(clientFlags));
        }
        boolean fixed = (clientFlags & Nbd.FLAG_C_FIXED_NEWSTYLE) != 0;
        session.noZeroes = (clientFlags & Nbd.FLAG_C_NO_ZEROES) != 0;
        for (int count = 0; ; count++) {
            if (count >= MAX_OPTIONS) throw new ProtocolException("more than " + MAX_OPTIONS + " options");
            ByteBuffer head = Wire.read(ch, 16);
            long magic = head.getLong();
            if (magic != Nbd.IHAVEOPT) throw new ProtocolException("bad option magic 0x" + Long.toHexString(magic));
            int option = head.getInt();
            long length = Integer.toUnsignedLong(head.getInt());
            if (length > MAX_OPTION_LENGTH) {
                throw new ProtocolException(Nbd.optionName(option) + " with " + length + " bytes of data (at most " + MAX_OPTION_LENGTH + ")");
            }
            ByteBuffer data = Wire.read(ch, (int) length);
            if (!fixed && option != Nbd.OPT_EXPORT_NAME) {
                throw new ProtocolException(Nbd.optionName(option) + " from a client without fixed newstyle");
            }
            if (tls != null && !(ch instanceof TlsChannel) && option != Nbd.OPT_STARTTLS && option != Nbd.OPT_ABORT) {
                if (option == Nbd.OPT_EXPORT_NAME) throw new ProtocolException("EXPORT_NAME before STARTTLS on a server that requires TLS");
                error(option, Nbd.REP_ERR_TLS_REQD, "this server requires TLS: send STARTTLS first");
                continue;
            }
            Boolean done = handle(option, data);
            if (done != null) return done ? session : null;
        }
    }

    /** Handles one option: true = transmission starts, false = the client aborted, null = go on. */
    private Boolean handle(int option, ByteBuffer data) throws IOException {
        switch (option) {
            case Nbd.OPT_EXPORT_NAME -> {
                exportName(data);
                return true;
            }
            case Nbd.OPT_ABORT -> {
                try {
                    reply(option, Nbd.REP_ACK, null);
                } catch (IOException clientGone) {
                    // Clients may close without waiting for this reply; the spec asks servers to accept that.
                }
                return false;
            }
            case Nbd.OPT_LIST -> list(data);
            case Nbd.OPT_STARTTLS -> startTls(data);
            case Nbd.OPT_INFO, Nbd.OPT_GO -> {
                return info(option, data);
            }
            case Nbd.OPT_STRUCTURED_REPLY -> {
                if (data.hasRemaining()) invalid(option, "STRUCTURED_REPLY takes no data");
                else if (session.extendedHeaders) error(option, Nbd.REP_ERR_EXT_HEADER_REQD, "extended headers are already in use");
                else {
                    session.structuredReplies = true;
                    reply(option, Nbd.REP_ACK, null);
                }
            }
            case Nbd.OPT_EXTENDED_HEADERS -> {
                if (data.hasRemaining()) invalid(option, "EXTENDED_HEADERS takes no data");
                else {
                    session.extendedHeaders = true;
                    reply(option, Nbd.REP_ACK, null);
                }
            }
            case Nbd.OPT_LIST_META_CONTEXT, Nbd.OPT_SET_META_CONTEXT -> metaContext(option, data);
            default -> error(option, Nbd.REP_ERR_UNSUP, "unsupported option " + Integer.toUnsignedString(option));
        }
        return null;
    }

    private void startTls(ByteBuffer data) throws IOException {
        if (data.hasRemaining()) invalid(Nbd.OPT_STARTTLS, "STARTTLS takes no data");
        else if (tls == null) error(Nbd.OPT_STARTTLS, Nbd.REP_ERR_POLICY, "TLS is not available on this server");
        else if (ch instanceof TlsChannel) invalid(Nbd.OPT_STARTTLS, "TLS is already in use");
        else {
            reply(Nbd.OPT_STARTTLS, Nbd.REP_ACK, null);
            TlsChannel t;
            try {
                t = TlsChannel.handshake(socket, tls.newEngine());
            } catch (SSLException e) {
                throw new ProtocolException("TLS handshake failed: " + e.getMessage());
            }
            ch = t;
            log.accept("TLS established (" + t.describe() + ")");
        }
    }

    private void exportName(ByteBuffer data) throws IOException {
        if (session.extendedHeaders) throw new ProtocolException("EXPORT_NAME after EXTENDED_HEADERS");
        String name = Wire.string(data, data.remaining());
        Export e = name == null ? null : exports.find(name);
        if (e == null) throw new ProtocolException("EXPORT_NAME for unknown export '" + name + "'");
        ByteBuffer b = ByteBuffer.allocate(session.noZeroes ? 10 : 134);
        b.putLong(e.size()).putShort((short) session.transmissionFlags(e, multiConn));
        write(b.position(b.capacity()).flip());
        session.export = e;
    }

    private void list(ByteBuffer data) throws IOException {
        if (data.hasRemaining()) {
            invalid(Nbd.OPT_LIST, "LIST takes no data");
            return;
        }
        for (Export e : exports.all()) {
            byte[] name = Wire.utf8(e.name());
            byte[] description = Wire.utf8(e.description());
            reply(Nbd.OPT_LIST, Nbd.REP_SERVER, ByteBuffer.allocate(4 + name.length + description.length)
                    .putInt(name.length).put(name).put(description).flip());
        }
        reply(Nbd.OPT_LIST, Nbd.REP_ACK, null);
    }

    private Boolean info(int option, ByteBuffer data) throws IOException {
        String name = nameField(data);
        if (name == null || data.remaining() < 2) {
            invalid(option, "malformed export name");
            return null;
        }
        int count = Short.toUnsignedInt(data.getShort());
        if (data.remaining() != 2 * count) {
            invalid(option, "information request count " + count + " does not match the option length");
            return null;
        }
        Set<Integer> wanted = new LinkedHashSet<>();
        for (int i = 0; i < count; i++) wanted.add(Short.toUnsignedInt(data.getShort()));
        Export e = exports.find(name);
        if (e == null) {
            error(option, Nbd.REP_ERR_UNKNOWN, "no export named '" + name + "'");
            return null;
        }
        reply(option, Nbd.REP_INFO, ByteBuffer.allocate(12).putShort((short) Nbd.INFO_EXPORT)
                .putLong(e.size()).putShort((short) session.transmissionFlags(e, multiConn)).flip());
        if (wanted.contains(Nbd.INFO_NAME)) infoString(option, Nbd.INFO_NAME, e.name());
        if (wanted.contains(Nbd.INFO_DESCRIPTION)) infoString(option, Nbd.INFO_DESCRIPTION, e.description());
        // Sent whether asked or not, as qemu does: clients ignore what they did not ask for.
        BlockSizes s = e.sizes();
        reply(option, Nbd.REP_INFO, ByteBuffer.allocate(14).putShort((short) Nbd.INFO_BLOCK_SIZE)
                .putInt(s.minimum()).putInt(s.preferred()).putInt(s.maxPayload()).flip());
        reply(option, Nbd.REP_ACK, null);
        if (option != Nbd.OPT_GO) return null;
        session.export = e;
        return true;
    }

    private void infoString(int option, int type, String value) throws IOException {
        byte[] b = Wire.utf8(value);
        reply(option, Nbd.REP_INFO, ByteBuffer.allocate(2 + b.length).putShort((short) type).put(b).flip());
    }

    private void metaContext(int option, ByteBuffer data) throws IOException {
        boolean set = option == Nbd.OPT_SET_META_CONTEXT;
        if (set) session.allocationContextFor = null; // a SET replaces the selection, even when it fails
        if (!session.chunkedReplies()) {
            invalid(option, "negotiate structured replies or extended headers first");
            return;
        }
        String name = nameField(data);
        List<String> queries = name == null ? null : queries(data);
        if (queries == null) {
            invalid(option, "malformed export name or query list");
            return;
        }
        Export e = exports.find(name);
        if (e == null) {
            error(option, Nbd.REP_ERR_UNKNOWN, "no export named '" + name + "'");
            return;
        }
        boolean allocation = false;
        for (String q : queries) {
            if (q.indexOf(':') < 0) {
                invalid(option, "query '" + q + "' has no namespace");
                return;
            }
            // "base:" is a wildcard only when listing; unknown namespaces and leaves are ignored.
            allocation |= q.equals(Nbd.BASE_ALLOCATION) || (!set && q.equals("base:"));
        }
        if (queries.isEmpty() && !set) allocation = true;
        if (allocation) {
            byte[] ctx = Wire.utf8(Nbd.BASE_ALLOCATION);
            reply(option, Nbd.REP_META_CONTEXT, ByteBuffer.allocate(4 + ctx.length)
                    .putInt(set ? BASE_ALLOCATION_ID : 0).put(ctx).flip());
            if (set) session.allocationContextFor = e;
        }
        reply(option, Nbd.REP_ACK, null);
    }

    /** Reads a 32-bit length and that many bytes of string; null if it does not fit or is not a valid string. */
    private static String nameField(ByteBuffer data) {
        if (data.remaining() < 4) return null;
        long len = Integer.toUnsignedLong(data.getInt());
        if (len > data.remaining() || len > Nbd.MAX_STRING) return null;
        return Wire.string(data, (int) len);
    }

    private static List<String> queries(ByteBuffer data) {
        if (data.remaining() < 4) return null;
        long count = Integer.toUnsignedLong(data.getInt());
        if (count > data.remaining() / 4) return null;
        List<String> out = new ArrayList<>();
        for (long i = 0; i < count; i++) {
            String q = nameField(data);
            if (q == null) return null;
            out.add(q);
        }
        return data.hasRemaining() ? null : out;
    }

    private void invalid(int option, String message) throws IOException {
        error(option, Nbd.REP_ERR_INVALID, message);
    }

    private void error(int option, int type, String message) throws IOException {
        log.accept(Nbd.optionName(option) + " refused: " + message);
        byte[] m = Wire.utf8(message);
        reply(option, type, ByteBuffer.wrap(m));
    }

    private void reply(int option, int type, ByteBuffer data) throws IOException {
        int len = data == null ? 0 : data.remaining();
        ByteBuffer head = ByteBuffer.allocate(20).putLong(Nbd.OPTION_REPLY_MAGIC).putInt(option).putInt(type).putInt(len).flip();
        if (data == null) write(head);
        else write(head, data);
    }

    private void write(ByteBuffer... bufs) throws IOException {
        Wire.writeFully(ch, bufs);
    }
}
