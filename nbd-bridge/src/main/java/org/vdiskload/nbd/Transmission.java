package org.vdiskload.nbd;

import java.io.IOException;
import java.util.EnumMap;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;

/**
 * The transmission phase of one connection. This thread reads requests, validates each one
 * ({@link RequestValidator}) and hands it to a small worker pool, so pipelined requests are answered
 * out of order as they complete; at most {@link #MAX_IN_FLIGHT} wait at once, then reading pauses.
 * A lone small read (nothing else in flight, no further request received yet: a client waiting for each
 * reply) is answered on this thread instead: handing it to a worker and back would cost two thread
 * wake-ups, more than such a read itself.
 * NBD_CMD_DISC or the end of the input stops reading; requests in flight still get their replies.
 *
 * <p>Memory is bounded per connection: a request's buffer — a WRITE's payload, a READ's reply — takes its room in
 * the connection's {@link ConnectionBuffers}, whose budget is one maximum payload ({@link BlockSizes#maxPayload},
 * 32 MiB by default), before any byte of it is read, and gives it back, with the buffer (kept for the next
 * request), once the reply is sent; while the budget is spent, reading waits, and so does a client pipelining
 * large requests or not reading its replies. A request refused before it runs (a WRITE past the maximum payload
 * among them) has its payload passed over in pieces of the request buffer, never held. So a connection holds at
 * most {@link #bufferBound} bytes of buffers, whatever its client does.
 *
 * <p>Commands are a table of handlers. The write commands are in it for every export: on a read-only
 * one the validator refuses them with EPERM before any handler runs. A handler that fails answers
 * with the error {@link ErrorCodes} picks (ENOSPC for a full host file system, EPERM for a write the
 * image refuses, EIO for what no one can name...).
 */
final class Transmission {
    static final int WORKERS = 4;
    static final int MAX_IN_FLIGHT = 64;
    /** The largest read answered on the reading thread (see above). */
    static final long INLINE_READ_MAX = 256 << 10;

    private final ClientChannel ch;
    private final Session session;
    private final Export export;
    private final ReplyWriter out;
    private final RequestValidator validator;
    private final Map<Command, CommandHandler> handlers = new EnumMap<>(Command.class);
    private final Consumer<String> log;
    private final RequestReader requests;
    private final Semaphore inFlight = new Semaphore(MAX_IN_FLIGHT);
    /** The connection's request and reply buffers (see above). */
    private final ConnectionBuffers buffers;
    private volatile boolean stoppedReading;

    /**
     * The most bytes of buffers a connection to an export of {@code sizes} holds in transmission: its buffers'
     * budget (one maximum payload) and the request buffer; over TLS, add the channel's record buffers (some 20
     * records of 16 KiB). Everything else a request allocates is small and short-lived (headers, a block-status
     * reply of at most {@link BlockStatusHandler#MAX_DESCRIPTORS} descriptors).
     */
    static long bufferBound(BlockSizes sizes) {
        return (long) sizes.maxPayload() + RequestReader.BUFFER;
    }

    Transmission(ClientChannel ch, Session session, Consumer<String> log) {
        this.ch = ch;
        this.session = session;
        this.export = session.export;
        this.out = new ReplyWriter(ch, session, log);
        this.validator = new RequestValidator(export, session);
        this.log = log;
        this.requests = new RequestReader(ch, session);
        this.buffers = new ConnectionBuffers(export.sizes().maxPayload());
        handlers.put(Command.READ, new ReadHandler(export, session, ch.sendsFiles() && !export.writable()));
        handlers.put(Command.BLOCK_STATUS, new BlockStatusHandler(export, session));
        handlers.put(Command.WRITE, new WriteHandler(export));
        handlers.put(Command.WRITE_ZEROES, new ZeroHandler(export));
        handlers.put(Command.TRIM, (r, o) -> {
            export.image().discard(r.offset(), r.length());
            WriteHandler.finish(export.image(), r, o);
        });
        // The image's flush covers every completed write, from any connection (see CAN_MULTI_CONN in Session).
        handlers.put(Command.FLUSH, (r, o) -> {
            if (export.writable()) export.image().flush();
            o.done(r);
        });
        // A hint: mapping the range warms the metadata caches the reads will use.
        handlers.put(Command.CACHE, (r, o) -> {
            for (long pos = r.offset(), end = pos + r.length(); pos < end; pos += BlockStatusHandler.WINDOW) {
                export.image().map(pos, Math.min(BlockStatusHandler.WINDOW, end - pos));
            }
            o.done(r);
        });
    }

    void run(String name) throws IOException {
        AtomicInteger thread = new AtomicInteger();
        ExecutorService workers = Executors.newFixedThreadPool(WORKERS, task -> {
            Thread t = new Thread(task, name + "-worker-" + thread.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
        try {
            while (true) {
                Request r = requests.next();
                if (r.type() == Command.DISC.code) {
                    log.accept("disconnect requested");
                    return;
                }
                RequestValidator.Rejection no = validator.check(r);
                CommandHandler h = no == null ? handlers.get(r.command()) : null;
                if (no == null && h == null) no = new RequestValidator.Rejection(Nbd.EINVAL, r.command() + " is not supported");
                if (no != null) {
                    if (requests.payloadFollows(r)) requests.skip(r);
                    log.accept("rejected " + r.describe() + ": " + no.message() + " (" + Nbd.errorName(no.error()) + ")");
                    out.error(r, no.error(), no.message());
                    continue;
                }
                Request request = needsBuffer(r) ? r.withLease(buffers.reserve((int) r.length())) : r;
                if (requests.payloadFollows(request)) {
                    try {
                        requests.payload(request);
                    } catch (IOException | RuntimeException e) {
                        request.lease().close();
                        throw e;
                    }
                }
                if (servesInline(request)) {
                    run(h, request);
                    continue;
                }
                inFlight.acquireUninterruptibly();
                workers.execute(() -> {
                    try {
                        run(h, request);
                    } finally {
                        inFlight.release();
                    }
                });
            }
        } finally {
            stoppedReading = true;
            workers.shutdown();
            try {
                if (!workers.awaitTermination(60, TimeUnit.SECONDS)) workers.shutdownNow();
            } catch (InterruptedException e) {
                workers.shutdownNow();
                Thread.currentThread().interrupt();
            }
            buffers.close();
        }
    }

    /**
     * Whether validated {@code r} takes room in the buffers: for its payload (a WRITE), or for the data of its reply
     * (a READ of more than nothing), taken here before it is queued, so that a worker never waits for room. The
     * validator bounds both by the maximum payload, the buffers' budget.
     */
    private boolean needsBuffer(Request r) {
        return requests.payloadFollows(r) || (r.type() == Command.READ.code && r.length() > 0);
    }

    /** Handles {@code r}, then gives its room and buffer back. */
    private void run(CommandHandler h, Request r) {
        try {
            handle(h, r);
        } finally {
            if (r.lease() != null) r.lease().close();
        }
    }

    private void handle(CommandHandler h, Request r) {
        try {
            h.handle(r, out);
        } catch (IOException | RuntimeException e) {
            if (!ch.isOpen()) return;
            String message = e instanceof IOException && e.getMessage() != null ? e.getMessage() : e.toString();
            int error = ErrorCodes.of(e);
            log.accept(r.describe() + " failed: " + message + " (" + Nbd.errorName(error) + ")");
            try {
                out.error(r, error, message);
            } catch (IOException sendFailed) {
                closeQuietly(); // the connection is broken: stop the reader too
            }
        }
    }

    /** Whether the reading thread has taken in every request received so far: it waits for more, or reads no more. */
    boolean caughtUp() {
        return stoppedReading || requests.waiting();
    }

    /** Whether {@code r} is a lone small read, best answered on this thread. */
    private boolean servesInline(Request r) {
        return r.type() == Command.READ.code && r.length() <= INLINE_READ_MAX && !requests.buffered()
                && inFlight.availablePermits() == MAX_IN_FLIGHT;
    }

    private void closeQuietly() {
        try {
            ch.close();
        } catch (IOException ignored) {
            // already broken
        }
    }
}
