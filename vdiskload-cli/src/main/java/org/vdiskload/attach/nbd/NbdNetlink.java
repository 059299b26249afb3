package org.vdiskload.attach.nbd;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;

/**
 * The kernel nbd driver's generic-netlink interface (family "nbd", include/uapi/linux/nbd-netlink.h):
 * CONNECT hands the driver connected sockets and the export's geometry and flags (no NBD handshake:
 * the driver starts in the transmission phase) and answers with the device index it picked;
 * DISCONNECT sends NBD_CMD_DISC on each socket, shuts them down and waits for the driver's receive
 * threads to end; RECONFIGURE puts new sockets in the place of dead ones on a connected device.
 * Unlike the NBD_SET_SOCK ioctls, nothing keeps a process blocked in the kernel.
 */
final class NbdNetlink implements NbdControl {
    private static final int VERSION = 1;
    private static final int CMD_CONNECT = 1;
    private static final int CMD_DISCONNECT = 2;
    private static final int CMD_RECONFIGURE = 3;
    private static final int ATTR_INDEX = 1;
    private static final int ATTR_SIZE_BYTES = 2;
    private static final int ATTR_BLOCK_SIZE_BYTES = 3;
    private static final int ATTR_TIMEOUT = 4;
    private static final int ATTR_SERVER_FLAGS = 5;
    private static final int ATTR_SOCKETS = 7;
    private static final int ATTR_DEAD_CONN_TIMEOUT = 8;
    private static final int ATTR_BACKEND_IDENTIFIER = 10;
    private static final int SOCK_ITEM = 1;
    private static final int SOCK_FD = 1;


    /** Whether the running kernel has the nbd driver's netlink family (the module loaded). */
    static boolean available() {
        try (GenericNetlink nl = GenericNetlink.open()) {
            return nl.family("nbd") >= 0;
        } catch (IOException e) {
            return false;
        }
    }

    @Override
    public boolean multipleConnections() {
        return true;
    }

    /** Connects a device the driver picks (a free one, or a new one); returns its index N (/dev/nbdN). */
    @Override
    public int connect(Connect c) throws IOException {
        GenericNetlink.Attributes socks = new GenericNetlink.Attributes();
        for (int fd : c.fds()) socks.nested(SOCK_ITEM, new GenericNetlink.Attributes().u32(SOCK_FD, fd));
        GenericNetlink.Attributes a = new GenericNetlink.Attributes()
                .u64(ATTR_SIZE_BYTES, c.size())
                .u64(ATTR_BLOCK_SIZE_BYTES, c.blockSize())
                .u64(ATTR_SERVER_FLAGS, c.serverFlags())
                .u64(ATTR_TIMEOUT, c.timeout())
                .u64(ATTR_DEAD_CONN_TIMEOUT, c.deadConnTimeout())
                .string(ATTR_BACKEND_IDENTIFIER, c.backend())
                .nested(ATTR_SOCKETS, socks);
        try (GenericNetlink nl = GenericNetlink.open()) {
            Map<Integer, ByteBuffer> reply = nl.request(family(nl), CMD_CONNECT, VERSION, a, "nbd netlink CONNECT");
            ByteBuffer index = reply.get(ATTR_INDEX);
            if (index == null || index.remaining() < 4) throw new IOException("nbd netlink CONNECT: the reply names no device");
            return index.getInt();
        }
    }

    /**
     * Hands /dev/nbd{@code index} new sockets in the place of its dead connections. The driver (6.1:
     * nbd_genl_reconfigure, nbd_reconnect_socket) insists on the device's own backend identifier, fills
     * dead slots in order, and drops — silently, answering success — the sockets beyond the dead slots;
     * each one it takes gets a receive thread and wakes the I/O that waits for a live connection.
     */
    @Override
    public void reconnect(int index, String backend, List<Integer> fds) throws IOException {
        GenericNetlink.Attributes socks = new GenericNetlink.Attributes();
        for (int fd : fds) socks.nested(SOCK_ITEM, new GenericNetlink.Attributes().u32(SOCK_FD, fd));
        GenericNetlink.Attributes a = new GenericNetlink.Attributes()
                .u32(ATTR_INDEX, index)
                .string(ATTR_BACKEND_IDENTIFIER, backend)
                .nested(ATTR_SOCKETS, socks);
        try (GenericNetlink nl = GenericNetlink.open()) {
            nl.request(family(nl), CMD_RECONFIGURE, VERSION, a, "nbd netlink RECONFIGURE of /dev/nbd" + index);
        }
    }

    /** A device this interface connected carries its backend identifier for as long as it is connected. */
    @Override
    public boolean holds(int index, String backend) throws IOException {
        return NbdDevices.backend(index).equals(backend);
    }

    @Override
    public void disconnect(int index) throws IOException {
        try (GenericNetlink nl = GenericNetlink.open()) {
            nl.request(family(nl), CMD_DISCONNECT, VERSION, new GenericNetlink.Attributes().u32(ATTR_INDEX, index),
                    "nbd netlink DISCONNECT of /dev/nbd" + index);
        }
    }

    private static int family(GenericNetlink nl) throws IOException {
        int id = nl.family("nbd");
        if (id < 0) throw new IOException("the kernel has no nbd driver loaded (modprobe nbd)");
        return id;
    }
}
