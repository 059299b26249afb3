package org.vdiskload.nbd;

import java.lang.reflect.Field;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;

/**
 * The request buffers of one connection — WRITE payloads read off the socket, the data of READ replies — within
 * a budget of {@code budget} bytes: the buffers in use and those kept for reuse never hold more together. A
 * request waits ({@link #take}) while the buffers in use leave no room for its own; so a client pipelining large
 * requests, or not reading its replies, holds at most the budget, and its reading pauses until buffers come back.
 *
 * <p>Buffers are direct (the socket fills them and the file takes them without a copy) and reused: a buffer
 * given back is kept, by size class (powers of two from {@link #SMALLEST}, capped at the budget), for the next
 * request of its class. Making room for a buffer of another class frees kept ones at once, as does closing the
 * connection; a direct buffer left to the garbage collector is freed too late under load (a busy server then ran
 * out of direct memory with most of it already unused).
 */
final class ConnectionBuffers {
    /** The smallest size class: small requests share one size, so their buffers are reused among each other. */
    static final int SMALLEST = 64 << 10;

    /** sun.misc.Unsafe (module jdk.unsupported), whose invokeCleaner frees a direct buffer now: as Netty and Lucene do. */
    private static final sun.misc.Unsafe UNSAFE = unsafe();

    private final int budget;
    /** Kept buffers by capacity. */
    private final TreeMap<Integer, ArrayDeque<ByteBuffer>> kept = new TreeMap<>();
    /** Capacity of the buffers handed out and not given back yet. */
    private long inUse;
    /** Capacity of the kept buffers. */
    private long keptBytes;
    /** Buffers allocated so far (a reused one is not counted again). */
    private long allocations;
    private boolean closed;

    ConnectionBuffers(int budget) {
        if (budget <= 0) throw new IllegalArgumentException("buffer budget " + budget);
        this.budget = budget;
    }

    private static sun.misc.Unsafe unsafe() {
        try {
            Field f = sun.misc.Unsafe.class.getDeclaredField("theUnsafe");
            f.setAccessible(true);
            return (sun.misc.Unsafe) f.get(null);
        } catch (ReflectiveOperationException | RuntimeException e) {
            return null; // the garbage collector frees them, later
        }
    }

    /** The size class of a request of {@code length} bytes (at most the budget). */
    int capacityFor(int length) {
        int c = length <= SMALLEST ? SMALLEST : Integer.highestOneBit(length - 1) << 1;
        return c <= 0 || c > budget ? budget : c; // <= 0: past 2^30, the shift overflowed
    }

    /**
     * A buffer of {@code length} bytes (at most the budget), cleared and limited to it; waits while the buffers in
     * use leave no room for it. Give it back with {@link #give} once nothing uses it any more.
     */
    ByteBuffer take(int length) {
        if (length < 0 || length > budget) throw new IllegalArgumentException("buffer of " + length + " bytes, budget " + budget);
        int capacity = capacityFor(length);
        List<ByteBuffer> freed = new ArrayList<>();
        ByteBuffer b;
        synchronized (this) {
            boolean interrupted = false;
            while (inUse + capacity > budget) {
                try {
                    wait();
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
            if (interrupted) Thread.currentThread().interrupt();
            inUse += capacity;
            b = pollKept(capacity);
            while (b == null && inUse + keptBytes > budget) freed.add(pollKept(kept.lastKey()));
            if (b == null) allocations++;
        }
        freed.forEach(ConnectionBuffers::free);
        if (b == null) b = ByteBuffer.allocateDirect(capacity);
        return b.clear().limit(length);
    }

    private ByteBuffer pollKept(int capacity) {
        ArrayDeque<ByteBuffer> d = kept.get(capacity);
        if (d == null) return null;
        ByteBuffer b = d.poll();
        if (d.isEmpty()) kept.remove(capacity);
        keptBytes -= capacity;
        return b;
    }

    /** Takes back {@code b} from {@link #take}: kept for the next request, or freed once the connection is closed. */
    void give(ByteBuffer b) {
        synchronized (this) {
            inUse -= b.capacity();
            notifyAll();
            if (!closed) {
                kept.computeIfAbsent(b.capacity(), c -> new ArrayDeque<>()).push(b);
                keptBytes += b.capacity();
                return;
            }
        }
        free(b);
    }

    /** Frees the kept buffers; those still in use are freed as they come back. */
    void close() {
        List<ByteBuffer> freed = new ArrayList<>();
        synchronized (this) {
            closed = true;
            while (!kept.isEmpty()) freed.add(pollKept(kept.lastKey()));
        }
        freed.forEach(ConnectionBuffers::free);
    }

    /** How many buffers were allocated (not reused) so far. */
    synchronized long allocations() {
        return allocations;
    }

    /** Capacity held now: buffers in use and kept. Never more than the budget. */
    synchronized long held() {
        return inUse + keptBytes;
    }

    private static void free(ByteBuffer b) {
        if (UNSAFE != null) UNSAFE.invokeCleaner(b);
    }
}
