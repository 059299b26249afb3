package org.vdiskload.nbd;

import java.lang.reflect.Field;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;

/**
 * The request buffers of one connection — WRITE payloads read off the socket, the data of READ replies — within
 * a budget of {@code budget} bytes. A request first takes its room from the budget ({@link #reserve}, on the
 * reading thread, before any byte of its payload is read), waiting while the requests in flight leave none; so a
 * client pipelining large requests, or not reading its replies, holds at most the budget, and its reading pauses
 * until requests finish. The buffer itself is made when the request is carried out ({@link Lease#buffer}): a READ
 * queued behind others holds room but no memory, and a buffer never has to wait, so requests waiting for workers
 * can never hold up the workers. Buffers out and buffers kept together never exceed the budget either.
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
    /** Room taken by the leases not closed yet (their size classes). */
    private long reserved;
    /** Capacity of the buffers out (made for a lease not closed yet): at most {@link #reserved}. */
    private long out;
    /** Capacity of the kept buffers. */
    private long keptBytes;
    /** Buffers allocated so far (a reused one is not counted again). */
    private long allocations;
    private boolean closed;

    /** One request's room in the budget, and its buffer once asked for. Used by one thread at a time. */
    final class Lease implements AutoCloseable {
        private final int length;
        private final int capacity;
        private ByteBuffer buffer;
        private boolean closed;

        private Lease(int length, int capacity) {
            this.length = length;
            this.capacity = capacity;
        }

        /** The buffer: {@code length} bytes, cleared and limited to them when first asked for (it never waits). */
        ByteBuffer buffer() {
            if (buffer == null) buffer = bufferFor(capacity).clear().limit(length);
            return buffer;
        }

        /** Gives the room and the buffer back; nothing may use the buffer after. */
        @Override
        public void close() {
            if (closed) return;
            closed = true;
            giveBack(capacity, buffer);
        }
    }

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

    /** Room for a buffer of {@code length} bytes (at most the budget); waits while the leases out leave none. */
    Lease reserve(int length) {
        if (length < 0 || length > budget) throw new IllegalArgumentException("buffer of " + length + " bytes, budget " + budget);
        int capacity = capacityFor(length);
        synchronized (this) {
            boolean interrupted = false;
            while (reserved + capacity > budget) {
                try {
                    wait();
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
            if (interrupted) Thread.currentThread().interrupt();
            reserved += capacity;
        }
        return new Lease(length, capacity);
    }

    /** A buffer of {@code capacity} for a lease: a kept one, or a new one once kept ones make room for it. */
    private ByteBuffer bufferFor(int capacity) {
        List<ByteBuffer> freed = new ArrayList<>();
        ByteBuffer b;
        synchronized (this) {
            out += capacity;
            b = pollKept(capacity);
            while (b == null && out + keptBytes > budget) freed.add(pollKept(kept.lastKey()));
            if (b == null) allocations++;
        }
        freed.forEach(ConnectionBuffers::free);
        return b != null ? b : ByteBuffer.allocateDirect(capacity);
    }

    private ByteBuffer pollKept(int capacity) {
        ArrayDeque<ByteBuffer> d = kept.get(capacity);
        if (d == null) return null;
        ByteBuffer b = d.poll();
        if (d.isEmpty()) kept.remove(capacity);
        keptBytes -= capacity;
        return b;
    }

    /** A lease's room, and its buffer if it made one: kept for the next request, or freed once the connection is closed. */
    private void giveBack(int capacity, ByteBuffer b) {
        synchronized (this) {
            reserved -= capacity;
            notifyAll();
            if (b == null) return;
            out -= capacity;
            if (!closed) {
                kept.computeIfAbsent(capacity, c -> new ArrayDeque<>()).push(b);
                keptBytes += capacity;
                return;
            }
        }
        free(b);
    }

    /** Frees the kept buffers; those still out are freed as they come back. */
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

    /** Bytes of buffers that exist now: out and kept. Never more than the budget. */
    synchronized long held() {
        return out + keptBytes;
    }

    private static void free(ByteBuffer b) {
        if (UNSAFE != null) UNSAFE.invokeCleaner(b);
    }
}
