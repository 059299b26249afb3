package org.vdiskload.attach.nbd;

import org.vdiskload.sys.Libc;

import java.io.Closeable;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Connected Unix stream socket pairs whose one end is a raw descriptor (for the kernel) and the other
 * a Java {@link SocketChannel} (for the NBD server). Plain Java cannot wrap a descriptor from
 * socketpair(2) in a channel, so the pairs are made through a listening socket: Java listens on a
 * private path, the descriptors connect to it with libc, Java accepts, and the path is removed at
 * once. The server then runs on Java's own NIO channel, as for every other client, with no native call
 * per request (doing read/write on the descriptor through JNA would cost a call and a copy for each).
 * The socket lives in a root-only directory for the few milliseconds it exists.
 */
final class KernelSockets implements Closeable {
    private static final int SUN_PATH = 108;

    private final List<Integer> fds;
    private final List<SocketChannel> channels;

    private KernelSockets(List<Integer> fds, List<SocketChannel> channels) {
        this.fds = fds;
        this.channels = channels;
    }

    /** {@code n} pairs, listening at {@code socket} meanwhile (its directory must be private). */
    static KernelSockets create(int n, Path socket) throws IOException {
        Libc.require();
        byte[] path = socket.toString().getBytes(StandardCharsets.UTF_8);
        if (path.length >= SUN_PATH) throw new IOException(socket + ": path too long for a Unix socket");
        byte[] address = new byte[2 + SUN_PATH];
        address[0] = (byte) Libc.AF_UNIX; // sa_family_t, little-endian on every Linux vdiskload runs on
        System.arraycopy(path, 0, address, 2, path.length);
        Files.deleteIfExists(socket);
        List<Integer> fds = new ArrayList<>();
        List<SocketChannel> channels = new ArrayList<>();
        KernelSockets made = new KernelSockets(fds, channels);
        try (ServerSocketChannel listener = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            listener.bind(UnixDomainSocketAddress.of(socket), n);
            for (int i = 0; i < n; i++) {
                int fd = Libc.socket(Libc.AF_UNIX, Libc.SOCK_STREAM | Libc.SOCK_CLOEXEC, 0);
                if (fd < 0) throw Libc.failure("socket");
                fds.add(fd);
                // A Unix stream connect completes once queued on the listener: accepting follows.
                if (Libc.connect(fd, address, address.length) != 0) throw Libc.failure("connect " + socket);
                channels.add(listener.accept());
            }
            return made;
        } catch (IOException | RuntimeException e) {
            made.close();
            throw e;
        } finally {
            Files.deleteIfExists(socket);
        }
    }

    /** The kernel's ends. */
    List<Integer> fds() {
        return fds;
    }

    /** The server's ends, in the same order. */
    List<SocketChannel> channels() {
        return channels;
    }

    /** Closes this process's copies of the kernel's ends (the kernel holds its own references once connected). */
    void closeKernelEnds() {
        for (int fd : fds) Libc.close(fd);
        fds.clear();
    }

    /** Closes every end still open here. */
    @Override
    public void close() {
        closeKernelEnds();
        for (SocketChannel c : channels) {
            try {
                c.close();
            } catch (IOException ignored) {
                // closing anyway
            }
        }
    }
}
