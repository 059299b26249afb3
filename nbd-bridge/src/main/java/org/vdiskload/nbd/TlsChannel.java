package org.vdiskload.nbd;

import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult;
import javax.net.ssl.SSLException;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.SocketChannel;
import java.util.concurrent.locks.ReentrantLock;

/**
 * TLS over a blocking socket with the JDK's {@link SSLEngine}. An engine rather than an SSLSocket
 * because the server's sockets are {@link SocketChannel}s, Unix-domain ones included, which have no
 * {@link java.net.Socket} for an SSLSocket to sit on.
 *
 * <p>One thread reads (unwrap) while workers write (wrap, under {@link #writeLock}); SSLEngine allows
 * wrap and unwrap at the same time. A post-handshake message the reader meets that needs an answer
 * (a TLS 1.3 KeyUpdate) is answered under the write lock. Renegotiation is refused.
 * Closing does not send close_notify: the NBD protocol has already ended the session (DISC or ABORT),
 * and a blocking write to a client that no longer reads could hang the closing thread.
 */
final class TlsChannel implements ClientChannel {
    /** TLS records gathered before one socket write: a 256 KiB reply goes out in one or two writes. */
    private static final int RECORDS_PER_WRITE = 16;
    private static final ByteBuffer EMPTY = ByteBuffer.allocate(0);

    private final SocketChannel socket;
    private final SSLEngine engine;
    private final ReentrantLock writeLock = new ReentrantLock();
    /** Records read from the socket and not yet unwrapped; kept in read mode. */
    private ByteBuffer netIn;
    /** Plaintext unwrapped and not yet read; kept in read mode. */
    private ByteBuffer appIn;
    /** Records wrapped and not yet written; only touched under the write lock. */
    private ByteBuffer netOut;

    private TlsChannel(SocketChannel socket, SSLEngine engine) {
        this.socket = socket;
        this.engine = engine;
        int packet = engine.getSession().getPacketBufferSize();
        this.netIn = ByteBuffer.allocate(4 * packet).flip();
        this.appIn = ByteBuffer.allocate(engine.getSession().getApplicationBufferSize()).flip();
        this.netOut = ByteBuffer.allocate(RECORDS_PER_WRITE * packet);
    }

    /**
     * Runs the TLS handshake on {@code socket} as {@code engine}'s side. A failure is an
     * {@link SSLException} (after a best-effort alert to the peer) or an {@link EOFException}.
     */
    static TlsChannel handshake(SocketChannel socket, SSLEngine engine) throws IOException {
        TlsChannel c = new TlsChannel(socket, engine);
        try {
            engine.beginHandshake();
            while (true) {
                switch (engine.getHandshakeStatus()) {
                    case NEED_TASK -> c.runTasks();
                    case NEED_WRAP -> c.wrapAndSend(new ByteBuffer[] {EMPTY}, 0, 1);
                    case NEED_UNWRAP, NEED_UNWRAP_AGAIN -> {
                        if (!c.unwrapOnce()) throw new EOFException("client closed the connection during the TLS handshake");
                    }
                    case FINISHED, NOT_HANDSHAKING -> {
                        return c;
                    }
                }
            }
        } catch (SSLException e) {
            c.sendAlert();
            throw e;
        }
    }

    /** The protocol and cipher suite agreed on, for the log. */
    String describe() {
        return engine.getSession().getProtocol() + ", " + engine.getSession().getCipherSuite();
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
        while (!appIn.hasRemaining()) {
            if (!unwrapOnce()) return -1;
            followHandshake();
        }
        int n = Math.min(dst.remaining(), appIn.remaining());
        dst.put(appIn.slice(appIn.position(), n));
        appIn.position(appIn.position() + n);
        return n;
    }

    @Override
    public int write(ByteBuffer src) throws IOException {
        return (int) write(new ByteBuffer[] {src}, 0, 1);
    }

    @Override
    public long write(ByteBuffer[] srcs) throws IOException {
        return write(srcs, 0, srcs.length);
    }

    /** Wraps and sends all of {@code srcs}. */
    @Override
    public long write(ByteBuffer[] srcs, int offset, int length) throws IOException {
        writeLock.lock();
        try {
            return wrapAndSend(srcs, offset, length);
        } finally {
            writeLock.unlock();
        }
    }

    @Override
    public boolean isOpen() {
        return socket.isOpen();
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }

    /**
     * Unwraps one record (reading from the socket as needed) into {@link #appIn}, which must be
     * empty. Returns false at the end of the stream: the socket's EOF or the peer's close_notify.
     */
    private boolean unwrapOnce() throws IOException {
        while (true) {
            appIn.clear();
            SSLEngineResult r;
            try {
                r = engine.unwrap(netIn, appIn);
            } finally {
                appIn.flip();
            }
            switch (r.getStatus()) {
                case OK -> {
                    return true;
                }
                case CLOSED -> {
                    return false;
                }
                case BUFFER_OVERFLOW -> appIn = ByteBuffer.allocate(engine.getSession().getApplicationBufferSize()).flip();
                case BUFFER_UNDERFLOW -> {
                    if (!fill()) return false;
                }
            }
        }
    }

    /** Reads more of the socket into {@link #netIn}; false at EOF. */
    private boolean fill() throws IOException {
        int packet = engine.getSession().getPacketBufferSize();
        if (netIn.capacity() < packet) netIn = ByteBuffer.allocate(packet).put(netIn).flip();
        netIn.compact();
        try {
            return socket.read(netIn) >= 0;
        } finally {
            netIn.flip();
        }
    }

    /** After an unwrap on the read side during transmission: what a post-handshake message needs. */
    private void followHandshake() throws IOException {
        switch (engine.getHandshakeStatus()) {
            case NEED_TASK -> runTasks();
            case NEED_WRAP -> write(new ByteBuffer[] {EMPTY}, 0, 1);
            case NEED_UNWRAP, NEED_UNWRAP_AGAIN -> throw new SSLException("TLS renegotiation is not supported");
            default -> { }
        }
    }

    /**
     * Wraps {@code srcs} (all of it; at least one record even when empty, for handshake messages),
     * gathering up to {@link #RECORDS_PER_WRITE} records per socket write.
     */
    private long wrapAndSend(ByteBuffer[] srcs, int offset, int length) throws IOException {
        long total = 0;
        boolean first = true;
        netOut.clear();
        while (first || remaining(srcs, offset, length)) {
            first = false;
            if (netOut.remaining() < engine.getSession().getPacketBufferSize()) {
                send();
                if (netOut.capacity() < engine.getSession().getPacketBufferSize()) {
                    netOut = ByteBuffer.allocate(RECORDS_PER_WRITE * engine.getSession().getPacketBufferSize());
                }
            }
            SSLEngineResult r = engine.wrap(srcs, offset, length, netOut);
            if (r.getStatus() == SSLEngineResult.Status.CLOSED) throw new ClosedChannelException();
            if (r.getStatus() == SSLEngineResult.Status.BUFFER_OVERFLOW) {
                send();
                first = true;
                continue;
            }
            total += r.bytesConsumed();
            switch (r.getHandshakeStatus()) {
                case NEED_TASK -> runTasks();
                case NEED_WRAP -> first = true; // another handshake record to produce
                case NEED_UNWRAP, NEED_UNWRAP_AGAIN -> {
                    if (r.bytesConsumed() == 0 && remaining(srcs, offset, length)) {
                        throw new SSLException("TLS renegotiation is not supported");
                    }
                }
                default -> { }
            }
        }
        send();
        return total;
    }

    private static boolean remaining(ByteBuffer[] srcs, int offset, int length) {
        for (int i = offset; i < offset + length; i++) {
            if (srcs[i].hasRemaining()) return true;
        }
        return false;
    }

    /** Writes out {@link #netOut} and clears it. */
    private void send() throws IOException {
        netOut.flip();
        while (netOut.hasRemaining()) socket.write(netOut);
        netOut.clear();
    }

    private void runTasks() {
        Runnable task;
        while ((task = engine.getDelegatedTask()) != null) task.run();
    }

    /** After a failed handshake: the alert the engine has for the peer, if the socket takes it. */
    private void sendAlert() {
        engine.closeOutbound();
        try {
            netOut.clear();
            while (!engine.isOutboundDone()) {
                SSLEngineResult r = engine.wrap(EMPTY, netOut);
                if (r.getStatus() != SSLEngineResult.Status.OK || r.bytesProduced() == 0) break;
            }
            send();
        } catch (IOException ignored) {
            // the client is gone or broken: nothing to tell it
        }
    }
}
