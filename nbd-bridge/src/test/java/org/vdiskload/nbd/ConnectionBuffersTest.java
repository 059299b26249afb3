package org.vdiskload.nbd;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** One connection's buffers: reused from request to request, never more than the budget reserved, nor made and kept. */
class ConnectionBuffersTest {
    static final int BUDGET = 1 << 20;

    @Test
    void buffersAreReusedFromRequestToRequest() {
        ConnectionBuffers buffers = new ConnectionBuffers(BUDGET);
        ByteBuffer first;
        try (ConnectionBuffers.Lease l = buffers.reserve(BUDGET)) {
            first = l.buffer();
            assertEquals(BUDGET, first.remaining());
            assertTrue(first.isDirect());
            assertSame(first, l.buffer(), "one buffer per lease");
        }
        for (int i = 0; i < 1000; i++) {
            try (ConnectionBuffers.Lease l = buffers.reserve(BUDGET - i)) {
                ByteBuffer b = l.buffer();
                assertSame(first, b, "the kept buffer of the class");
                assertEquals(0, b.position());
                assertEquals(BUDGET - i, b.limit());
            }
        }
        assertEquals(1, buffers.allocations());
    }

    @Test
    void sizeClassesArePowersOfTwoFromTheSmallestUpToTheBudget() {
        ConnectionBuffers buffers = new ConnectionBuffers(3 << 20); // not a power of two, as an export may advertise
        assertEquals(ConnectionBuffers.SMALLEST, buffers.capacityFor(0));
        assertEquals(ConnectionBuffers.SMALLEST, buffers.capacityFor(4096));
        assertEquals(ConnectionBuffers.SMALLEST, buffers.capacityFor(ConnectionBuffers.SMALLEST));
        assertEquals(2 * ConnectionBuffers.SMALLEST, buffers.capacityFor(ConnectionBuffers.SMALLEST + 1));
        assertEquals(2 << 20, buffers.capacityFor(2 << 20));
        assertEquals(3 << 20, buffers.capacityFor((2 << 20) + 1), "capped at the budget");
        assertEquals(512, new ConnectionBuffers(512).capacityFor(100), "a budget below the smallest class");
        assertEquals(Integer.MAX_VALUE, new ConnectionBuffers(Integer.MAX_VALUE).capacityFor((1 << 30) + 1), "no overflow");
        assertThrows(IllegalArgumentException.class, () -> buffers.reserve((3 << 20) + 1));
    }

    @Test
    void mixedRequestsNeverHoldMoreThanTheBudget() {
        ConnectionBuffers buffers = new ConnectionBuffers(BUDGET);
        run(buffers, new Random(7), BUDGET, BUDGET); // any size, the budget all in use: classes evict each other
    }

    @Test
    void requestsWithRoomToSpareReuseTheirBuffers() {
        ConnectionBuffers buffers = new ConnectionBuffers(BUDGET);
        run(buffers, new Random(8), BUDGET / 8, BUDGET / 2);
        assertTrue(buffers.allocations() <= 16, buffers.allocations() + " allocations for 10000 requests");
    }

    /**
     * 10000 requests of random lengths up to {@code maxLength}, at most {@code inUse} bytes reserved, given back
     * at random; some never make their buffer (as a READ of nothing).
     */
    private static void run(ConnectionBuffers buffers, Random random, int maxLength, int inUse) {
        record Out(ConnectionBuffers.Lease lease, int capacity) {}
        List<Out> out = new ArrayList<>();
        long reserved = 0;
        for (int i = 0; i < 10_000; i++) {
            int length = random.nextInt(4) == 0 ? random.nextInt(maxLength + 1) : random.nextInt(ConnectionBuffers.SMALLEST);
            int capacity = buffers.capacityFor(length);
            // give some back, and enough that this one need not wait
            while (!out.isEmpty() && (reserved + capacity > inUse || random.nextInt(3) == 0)) {
                Out o = out.remove(random.nextInt(out.size()));
                reserved -= o.capacity;
                o.lease.close();
            }
            ConnectionBuffers.Lease l = buffers.reserve(length);
            reserved += capacity;
            if (random.nextInt(8) != 0) l.buffer();
            out.add(new Out(l, capacity));
            assertTrue(buffers.held() <= BUDGET, "held " + buffers.held());
        }
    }

    @Test
    void aRequestWaitsWhileTheLeasesOutLeaveNoRoom() {
        assertTimeoutPreemptively(Duration.ofSeconds(20), () -> {
            ConnectionBuffers buffers = new ConnectionBuffers(BUDGET);
            ConnectionBuffers.Lease a = buffers.reserve(BUDGET / 2);
            a.buffer();
            ConnectionBuffers.Lease b = buffers.reserve(BUDGET / 2); // room, no buffer yet: still counts
            CompletableFuture<ConnectionBuffers.Lease> third = CompletableFuture.supplyAsync(() -> buffers.reserve(4096));
            assertThrows(TimeoutException.class, () -> third.get(300, TimeUnit.MILLISECONDS));
            assertFalse(third.isDone());
            a.close();
            ConnectionBuffers.Lease c = third.get();
            assertEquals(4096, c.buffer().remaining());
            assertEquals(BUDGET / 2 + ConnectionBuffers.SMALLEST, buffers.held(), "the kept half stays while it fits");
            b.buffer();
            assertEquals(BUDGET / 2 + ConnectionBuffers.SMALLEST, buffers.held(), "b reuses it");
            b.close();
            c.close();
            c.close(); // once only
            assertEquals(BUDGET / 2 + ConnectionBuffers.SMALLEST, buffers.held(), "both kept");
            ConnectionBuffers.Lease whole = buffers.reserve(BUDGET);
            whole.buffer();
            assertEquals(BUDGET, buffers.held(), "kept ones of other classes freed to make room");
            whole.close();
        });
    }

    @Test
    void closingFreesKeptBuffersAndThoseStillOutAsTheyComeBack() {
        ConnectionBuffers buffers = new ConnectionBuffers(BUDGET);
        ConnectionBuffers.Lease kept = buffers.reserve(4096);
        kept.buffer();
        ConnectionBuffers.Lease out = buffers.reserve(4096);
        out.buffer();
        kept.close();
        buffers.close();
        assertEquals(ConnectionBuffers.SMALLEST, buffers.held());
        out.close();
        assertEquals(0, buffers.held());
    }
}
