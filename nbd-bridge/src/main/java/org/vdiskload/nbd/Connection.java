package org.vdiskload.nbd;

import java.io.EOFException;
import java.io.IOException;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Consumer;

/**
 * One client, from greeting to close, on its own thread. Whatever the client does (garbage, a
 * vanished socket, a stalled handshake) ends here with a log line and the socket closed; the rest
 * of the server is not affected.
 */
final class Connection implements Runnable {
    private static final long STOP_WAIT_NANOS = TimeUnit.MILLISECONDS.toNanos(500);
    private static final long STOP_POLL_NANOS = TimeUnit.MICROSECONDS.toNanos(100);

    private final String name;
    private final SocketChannel ch;
    private final Exports exports;
    private final boolean multiConn;
    private final TlsCredentials tls;
    private final Duration handshakeTimeout;
    private final ScheduledExecutorService timer;
    private final Consumer<String> log;
    private volatile boolean negotiating = true;
    private volatile Transmission transmission;

    Connection(int id, SocketChannel ch, Exports exports, boolean multiConn, TlsCredentials tls, Duration handshakeTimeout,
               ScheduledExecutorService timer, Consumer<String> serverLog) {
        this.name = "client#" + id;
        this.ch = ch;
        this.exports = exports;
        this.multiConn = multiConn;
        this.tls = tls;
        this.handshakeTimeout = handshakeTimeout;
        this.timer = timer;
        this.log = m -> serverLog.accept(name + ": " + m);
    }

    String name() {
        return name;
    }

    @Override
    public void run() {
        ScheduledFuture<?> deadline;
        try {
            deadline = timer.schedule(this::handshakeTimedOut, handshakeTimeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (RejectedExecutionException serverClosing) {
            kill();
            return;
        }
        try {
            Handshake handshake = new Handshake(ch, exports, multiConn, tls, log);
            Session session = handshake.run();
            negotiating = false;
            deadline.cancel(false);
            if (session == null) {
                log.accept("ended the negotiation");
                return;
            }
            log.accept("using export '" + session.export.name() + "'"
                    + (session.extendedHeaders ? " (extended headers)" : session.structuredReplies ? " (structured replies)" : ""));
            transmission = new Transmission(handshake.channel(), session, log);
            transmission.run(name);
        } catch (ProtocolException e) {
            log.accept("dropped: " + e.getMessage());
        } catch (EOFException | ClosedChannelException e) {
            log.accept(negotiating ? "disconnected during negotiation" : "disconnected");
        } catch (IOException e) {
            log.accept("connection failed: " + e.getMessage());
        } catch (RuntimeException e) {
            log.accept("internal error: " + e);
        } finally {
            deadline.cancel(false);
            kill();
        }
    }

    private void handshakeTimedOut() {
        if (!negotiating) return;
        log.accept("no complete negotiation within " + handshakeTimeout.toSeconds() + " s");
        kill();
    }

    /**
     * Stops reading requests: those in flight are still answered, then the connection closes. A request
     * the client sent before counts as in flight: once the input is shut, the channel reads nothing more,
     * so this first waits (briefly) until the reading thread has taken in everything received and waits
     * for more, as it does at once unless it is answering a read itself.
     */
    void stop() {
        long deadline = System.nanoTime() + STOP_WAIT_NANOS;
        Transmission t = transmission;
        while (t != null && !t.caughtUp() && ch.isOpen() && System.nanoTime() < deadline) {
            LockSupport.parkNanos(STOP_POLL_NANOS);
        }
        try {
            ch.shutdownInput();
        } catch (IOException e) {
            kill();
        }
    }

    /** Closes the socket at once. */
    void kill() {
        try {
            ch.close();
        } catch (IOException ignored) {
            // nothing left to do
        }
    }
}
