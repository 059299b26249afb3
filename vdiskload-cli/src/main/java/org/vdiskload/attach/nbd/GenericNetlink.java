package org.vdiskload.attach.nbd;

import org.vdiskload.sys.Errno;
import org.vdiskload.sys.Libc;
import org.vdiskload.sys.SysCallException;

import java.io.ByteArrayOutputStream;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

/**
 * A generic-netlink socket to the kernel (NETLINK_GENERIC): one request at a time, each acknowledged.
 * Messages are built and parsed here by hand, in the host's byte order: a netlink header (length,
 * type, flags, sequence, port), a genetlink header (command, version), then attributes (length, type,
 * value padded to 4 bytes).
 */
final class GenericNetlink implements Closeable {
    private static final int NETLINK_GENERIC = 16;
    private static final int NLMSG_ERROR = 2;
    private static final int NLM_F_REQUEST = 1;
    private static final int NLM_F_ACK = 4;
    private static final int GENL_ID_CTRL = 0x10;
    private static final int CTRL_CMD_GETFAMILY = 3;
    private static final int CTRL_ATTR_FAMILY_ID = 1;
    private static final int CTRL_ATTR_FAMILY_NAME = 2;
    static final int NLA_F_NESTED = 1 << 15;
    /** No answer from the kernel in this long is an error, not a hang. */
    private static final int RECEIVE_TIMEOUT_SECONDS = 30;

    private final int fd;
    private int sequence;

    private GenericNetlink(int fd) {
        this.fd = fd;
    }

    static GenericNetlink open() throws IOException {
        Libc.require();
        int fd = Libc.socket(Libc.AF_NETLINK, Libc.SOCK_RAW | Libc.SOCK_CLOEXEC, NETLINK_GENERIC);
        if (fd < 0) throw Libc.failure("netlink socket");
        ByteBuffer tv = ByteBuffer.allocate(16).order(ByteOrder.nativeOrder()).putLong(RECEIVE_TIMEOUT_SECONDS).putLong(0);
        if (Libc.setsockopt(fd, Libc.SOL_SOCKET, Libc.SO_RCVTIMEO, tv.array(), 16) != 0) {
            IOException e = Libc.failure("netlink SO_RCVTIMEO");
            Libc.close(fd);
            throw e;
        }
        return new GenericNetlink(fd);
    }

    /** The id of the family {@code name}, or -1 if the kernel has none by that name (its module not loaded). */
    int family(String name) throws IOException {
        Attributes a = new Attributes().string(CTRL_ATTR_FAMILY_NAME, name);
        try {
            Map<Integer, ByteBuffer> reply = request(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, a, "resolving the netlink family " + name);
            ByteBuffer id = reply.get(CTRL_ATTR_FAMILY_ID);
            if (id == null || id.remaining() < 2) throw new IOException("netlink: no id in the reply for family " + name);
            return Short.toUnsignedInt(id.getShort());
        } catch (KernelError e) {
            if (e.errno() == Errno.ENOENT) return -1;
            throw e;
        }
    }

    /** An error the kernel answered a request with (negative errno in NLMSG_ERROR). */
    static final class KernelError extends SysCallException {
        KernelError(String request, int errno) {
            super(request, errno);
        }
    }

    /**
     * Sends command {@code cmd} of {@code family} with {@code attrs}, waits for the kernel's acknowledgement,
     * and returns the attributes of its reply message (empty if it sent none but the ack).
     */
    Map<Integer, ByteBuffer> request(int family, int cmd, int version, Attributes attrs, String what) throws IOException {
        byte[] body = attrs.bytes();
        int seq = ++sequence;
        ByteBuffer m = ByteBuffer.allocate(20 + body.length).order(ByteOrder.nativeOrder());
        m.putInt(20 + body.length).putShort((short) family).putShort((short) (NLM_F_REQUEST | NLM_F_ACK)).putInt(seq).putInt(0);
        m.put((byte) cmd).put((byte) version).putShort((short) 0).put(body);
        if (Libc.send(fd, m.array(), m.capacity(), 0) != m.capacity()) throw Libc.failure(what + ": netlink send");

        Map<Integer, ByteBuffer> reply = new HashMap<>();
        while (true) {
            byte[] buf = new byte[65536]; // a fresh one each time: the reply's attributes are slices of the last
            long n = Libc.recv(fd, buf, buf.length, 0);
            if (n < 0) throw Libc.failure(what + ": netlink receive");
            ByteBuffer in = ByteBuffer.wrap(buf, 0, (int) n).order(ByteOrder.nativeOrder());
            while (in.remaining() >= 16) {
                int start = in.position();
                int len = in.getInt();
                int type = Short.toUnsignedInt(in.getShort());
                in.getShort(); // flags
                int s = in.getInt();
                in.getInt(); // port
                if (len < 16 || len > in.limit() - start) throw new IOException(what + ": malformed netlink message");
                int end = start + len;
                if (s == seq) {
                    if (type == NLMSG_ERROR) {
                        int error = -in.getInt();
                        if (error == 0) return reply;
                        throw new KernelError(what, error);
                    }
                    if (type == family && len >= 20) {
                        in.position(start + 20);
                        reply.putAll(parse(in.slice(in.position(), end - in.position()).order(ByteOrder.nativeOrder())));
                    }
                }
                in.position(Math.min(in.limit(), (end + 3) & ~3));
            }
        }
    }

    /** The attributes in {@code b}, by type (flags masked off); each value a slice in host byte order. */
    static Map<Integer, ByteBuffer> parse(ByteBuffer b) throws IOException {
        Map<Integer, ByteBuffer> out = new HashMap<>();
        while (b.remaining() >= 4) {
            int start = b.position();
            int len = Short.toUnsignedInt(b.getShort());
            int type = Short.toUnsignedInt(b.getShort()) & 0x3fff;
            if (len < 4 || len > b.limit() - start) throw new IOException("malformed netlink attribute");
            out.put(type, b.slice(start + 4, len - 4).order(ByteOrder.nativeOrder()));
            b.position(Math.min(b.limit(), start + ((len + 3) & ~3)));
        }
        return out;
    }

    @Override
    public void close() {
        Libc.close(fd);
    }

    /** Netlink attributes being written, in host byte order. */
    static final class Attributes {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();

        Attributes u32(int type, int value) {
            return put(type, ByteBuffer.allocate(4).order(ByteOrder.nativeOrder()).putInt(value).array());
        }

        Attributes u64(int type, long value) {
            return put(type, ByteBuffer.allocate(8).order(ByteOrder.nativeOrder()).putLong(value).array());
        }

        Attributes string(int type, String value) {
            byte[] s = value.getBytes(StandardCharsets.UTF_8);
            byte[] z = new byte[s.length + 1];
            System.arraycopy(s, 0, z, 0, s.length);
            return put(type, z);
        }

        Attributes nested(int type, Attributes inner) {
            return put(type | NLA_F_NESTED, inner.bytes());
        }

        Attributes put(int type, byte[] value) {
            int len = 4 + value.length;
            ByteBuffer h = ByteBuffer.allocate(4).order(ByteOrder.nativeOrder()).putShort((short) len).putShort((short) type);
            out.writeBytes(h.array());
            out.writeBytes(value);
            for (int i = len; i % 4 != 0; i++) out.write(0);
            return this;
        }

        byte[] bytes() {
            return out.toByteArray();
        }
    }
}
