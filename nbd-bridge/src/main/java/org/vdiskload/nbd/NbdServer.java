package org.vdiskload.nbd;

import java.io.Closeable;
import java.io.IOException;
import java.net.SocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;

/**
 * An NBD server (fixed newstyle) offering one or more exports on a Unix socket or a TCP address.
 * Each client is served on a thread of its own, from a pool: {@link Options#shared} bounds how many are
 * served at once (later ones wait in the listen queue, as with qemu-nbd), and the pool's threads serve client
 * after client, so thousands of connections opened and dropped do not become thousands of threads. Without {@link Options#persistent} the
 * server stops when its last client leaves. {@link #close()} stops accepting, lets requests in
 * flight finish, and removes the Unix socket.
 *
 * <p>Memory is bounded: a connection holds at most {@link Transmission#bufferBound} bytes of buffers (32 MiB and
 * 64 KiB with the default block sizes) and 5 threads (its own and 4 workers), and at most {@link Options#shared}
 * connections — never more than {@link #MAX_CLIENTS} — are served at once.
 */
public final class NbdServer implements Closeable {

    /**
     * The most clients served at once, whatever {@link Options#shared} says (0 means this many): with the default
     * block sizes, at most 4 GiB of buffers for clients that all pipeline maximum payloads and read no reply.
     */
    public static final int MAX_CLIENTS = 128;

    /**
     * @param shared           clients served at once, 1 to {@link #MAX_CLIENTS}; 0 = {@link #MAX_CLIENTS}. With 1,
     *                         the server does not advertise multi-connection (as qemu-nbd)
     * @param persistent       keep serving after the last client leaves
     * @param handshakeTimeout a client that has not finished negotiating by then is dropped
     * @param log              receives one line per event worth knowing (connections, refusals, errors)
     * @param tls              the server's TLS identity: clients must negotiate TLS (NBD_OPT_STARTTLS)
     *                         before anything else; null = no TLS
     */
    public record Options(int shared, boolean persistent, Duration handshakeTimeout, Consumer<String> log, TlsCredentials tls) {
        public Options {
            if (shared < 0 || shared > MAX_CLIENTS) throw new IllegalArgumentException("shared must be 0 to " + MAX_CLIENTS);
        }

        public static Options defaults() {
            return new Options(16, true, Duration.ofSeconds(10), line -> System.err.println("vdiskload serve: " + line), null);
        }

        public Options withShared(int n) { return new Options(n, persistent, handshakeTimeout, log, tls); }
        public Options withPersistent(boolean p) { return new Options(shared, p, handshakeTimeout, log, tls); }
        public Options withHandshakeTimeout(Duration d) { return new Options(shared, persistent, d, log, tls); }
        public Options withLog(Consumer<String> l) { return new Options(shared, persistent, handshakeTimeout, l, tls); }
        public Options withTls(TlsCredentials t) { return new Options(shared, persistent, handshakeTimeout, log, t); }
    }

    private static final long GRACE_MILLIS = 5000;

    private final ServerSocketChannel listener;
    private final SocketAddress address;
    private final Exports exports;
    private final Options options;
    /** A permit per client served at once. */
    private final Semaphore slots;
    private final ScheduledExecutorService timer;
    /** The connections being served, with the thread serving each (null until it starts). */
    private final Map<Connection, Optional<Thread>> connections = new ConcurrentHashMap<>();
    private final ExecutorService clients;
    private final AtomicInteger ids = new AtomicInteger();
    private final AtomicBoolean closed = new AtomicBoolean();
    private final CountDownLatch done = new CountDownLatch(1);
    private final Thread acceptor;

    private NbdServer(ServerSocketChannel listener, List<Export> exports, Options options) throws IOException {
        this.listener = listener;
        this.address = listener.getLocalAddress();
        this.exports = new Exports(exports);
        this.options = options;
        this.slots = new Semaphore(options.shared == 0 ? MAX_CLIENTS : options.shared);
        this.timer = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "nbd-timer");
            t.setDaemon(true);
            return t;
        });
        ThreadFactory named = r -> {
            Thread t = new Thread(r, "nbd-client");
            t.setDaemon(true);
            return t;
        };
        this.clients = options.shared == 0 ? Executors.newCachedThreadPool(named) : Executors.newFixedThreadPool(options.shared, named);
        this.acceptor = new Thread(this::acceptLoop, "nbd-accept");
        this.acceptor.setDaemon(true);
    }

    /** Binds {@code address} (a {@link UnixDomainSocketAddress} or an InetSocketAddress) and starts serving. */
    public static NbdServer start(List<Export> exports, SocketAddress address, Options options) throws IOException {
        ServerSocketChannel listener;
        if (address instanceof UnixDomainSocketAddress unix) {
            removeStaleSocket(unix);
            listener = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        } else {
            listener = ServerSocketChannel.open();
        }
        try {
            listener.bind(address, 64);
            NbdServer server = new NbdServer(listener, exports, options);
            server.acceptor.start();
            return server;
        } catch (IOException | RuntimeException e) {
            listener.close();
            throw e;
        }
    }

    /**
     * The transmission flags a client connected with {@link #serveConnected} must be given (it hears no
     * handshake): simple replies only; CAN_MULTI_CONN when {@code multiConn}, safe for any export (see
     * {@link Session#transmissionFlags}).
     */
    public static int connectedFlags(Export export, boolean multiConn) {
        return new Session().transmissionFlags(export, multiConn);
    }

    /**
     * Serves {@code export} on an already-connected {@code socket} in the transmission phase at once, with
     * no handshake: for a client told the export's size and {@link #connectedFlags} some other way, as the
     * Linux kernel's nbd driver is (over netlink), which then speaks simple replies with 32-bit lengths.
     * Blocks until the client disconnects (NBD_CMD_DISC or the end of the stream) or the socket breaks;
     * requests in flight are answered first. Closes the socket on return; every failure ends in a
     * {@code log} line, not an exception.
     */
    public static void serveConnected(Export export, SocketChannel socket, String name, Consumer<String> log) {
        Consumer<String> named = m -> log.accept(name + ": " + m);
        Session session = new Session();
        session.export = export;
        try (socket) {
            new Transmission(ClientChannel.plain(socket), session, named).run(name);
        } catch (ProtocolException e) {
            named.accept("dropped: " + e.getMessage());
        } catch (java.io.EOFException | java.nio.channels.ClosedChannelException e) {
            named.accept("disconnected");
        } catch (IOException e) {
            named.accept("connection failed: " + e.getMessage());
        } catch (RuntimeException e) {
            named.accept("internal error: " + e);
        }
    }

    /** A socket file left by a server that is gone is replaced; one in use, or any other file, is an error. */
    private static void removeStaleSocket(UnixDomainSocketAddress unix) throws IOException {
        Path path = unix.getPath();
        if (!Files.exists(path, LinkOption.NOFOLLOW_LINKS)) return;
        int mode = (Integer) Files.getAttribute(path, "unix:mode", LinkOption.NOFOLLOW_LINKS);
        if ((mode & 0170000) != 0140000) throw new IOException(path + ": exists and is not a socket");
        try (SocketChannel probe = SocketChannel.open(unix)) {
            throw new IOException(path + ": another server is listening on this socket");
        } catch (IOException e) {
            if (e.getMessage() != null && e.getMessage().startsWith(path.toString())) throw e;
        }
        Files.delete(path);
    }

    /** The bound address (for TCP port 0, the port chosen). */
    public SocketAddress address() {
        return address;
    }

    /** Waits until the server has stopped. */
    public void await() throws InterruptedException {
        done.await();
    }

    public boolean await(Duration timeout) throws InterruptedException {
        return done.await(timeout.toMillis(), TimeUnit.MILLISECONDS);
    }

    private void acceptLoop() {
        while (!closed.get()) {
            try {
                slots.acquire();
            } catch (InterruptedException e) {
                return;
            }
            SocketChannel ch;
            try {
                ch = listener.accept();
            } catch (IOException e) {
                slots.release();
                if (!closed.get()) {
                    options.log.accept("accept failed: " + e.getMessage());
                    close();
                }
                return;
            }
            Connection c = new Connection(ids.incrementAndGet(), ch, exports, options.shared != 1, options.tls,
                    options.handshakeTimeout, timer, options.log);
            connections.put(c, Optional.empty());
            try {
                clients.execute(() -> serve(c));
            } catch (RejectedExecutionException closing) {
                connections.remove(c);
                c.kill();
                slots.release();
                return;
            }
        }
    }

    private void serve(Connection c) {
        Thread self = Thread.currentThread();
        self.setName("nbd-" + c.name());
        connections.replace(c, Optional.of(self));
        options.log.accept(c.name() + ": connected");
        try {
            c.run();
        } finally {
            connections.remove(c);
            self.setName("nbd-client");
            slots.release();
            options.log.accept(c.name() + ": closed");
            if (!options.persistent && connections.isEmpty()) close();
        }
    }

    /** Stops the server: no new clients; requests in flight are answered (up to 5 s), then every socket is closed. */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) return;
        try {
            listener.close();
        } catch (IOException ignored) {
            // closing anyway
        }
        acceptor.interrupt();
        connections.keySet().forEach(Connection::stop);
        long deadline = System.currentTimeMillis() + GRACE_MILLIS;
        for (Map.Entry<Connection, Optional<Thread>> e : connections.entrySet()) {
            Thread t = e.getValue().orElse(null);
            if (t == Thread.currentThread()) continue;
            try {
                if (t != null) t.join(Math.max(1, deadline - System.currentTimeMillis()));
            } catch (InterruptedException ie) {
                Thread.currentThread().interrupt();
                break;
            }
            e.getKey().kill();
        }
        connections.keySet().forEach(Connection::kill);
        clients.shutdown(); // what is queued finds its socket closed and ends at once
        timer.shutdownNow();
        if (address instanceof UnixDomainSocketAddress unix) {
            try {
                Files.deleteIfExists(unix.getPath());
            } catch (IOException e) {
                options.log.accept("cannot remove " + unix.getPath() + ": " + e.getMessage());
            }
        }
        done.countDown();
    }
}
