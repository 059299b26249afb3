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

/** One connection's buffers: reused from request to request, never more than the budget in use and kept together. */
class ConnectionBuffersTest {
    static final int BUDGET = 1 << 20;

    @Test
    void buffersAreReusedFromRequestToRequest() {
        ConnectionBuffers buffers = new ConnectionBuffers(BUDGET);
        ByteBuffer first = buffers.take(BUDGET);
        assertEquals(BUDGET, first.remaining());
        assertTrue(first.isDirect());
        buffers.give(first);
        for (int i = 0; i < 1000; i++) {
            ByteBuffer b = buffers.take(BUDGET - i);
            assertSame(first, b, "the kept buffer of the class");
            assertEquals(0, b.position());
            assertEquals(BUDGET - i, b.limit());
            buffers.give(b);
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
        assertThrows(IllegalArgumentException.class, () -> buffers.take((3 << 20) + 1));
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

    /** 10000 requests of random lengths up to {@code maxLength}, given back at random, at most {@code inUse} bytes in use. */
    private static void run(ConnectionBuffers buffers, Random random, int maxLength, int inUse) {
        List<ByteBuffer> out = new ArrayList<>();
        for (int i = 0; i < 10_000; i++) {
            int length = random.nextInt(4) == 0 ? random.nextInt(maxLength + 1) : random.nextInt(ConnectionBuffers.SMALLEST);
            // give some back, and enough that this one need not wait
            while (!out.isEmpty() && (held(out) + buffers.capacityFor(length) > inUse || random.nextInt(3) == 0)) {
                buffers.give(out.remove(random.nextInt(out.size())));
            }
            out.add(buffers.take(length));
            assertTrue(buffers.held() <= BUDGET, "held " + buffers.held());
        }
    }

    private static long held(List<ByteBuffer> out) {
        return out.stream().mapToLong(ByteBuffer::capacity).sum();
    }

    @Test
    void aRequestWaitsWhileTheBuffersInUseLeaveNoRoom() {
        assertTimeoutPreemptively(Duration.ofSeconds(20), () -> {
            ConnectionBuffers buffers = new ConnectionBuffers(BUDGET);
            ByteBuffer a = buffers.take(BUDGET / 2);
            ByteBuffer b = buffers.take(BUDGET / 2);
            CompletableFuture<ByteBuffer> third = CompletableFuture.supplyAsync(() -> buffers.take(4096));
            assertThrows(TimeoutException.class, () -> third.get(300, TimeUnit.MILLISECONDS));
            assertFalse(third.isDone());
            buffers.give(a);
            ByteBuffer c = third.get();
            assertEquals(4096, c.remaining());
            assertEquals(BUDGET / 2 + ConnectionBuffers.SMALLEST, buffers.held(), "the kept half freed to make room for the new class");
            buffers.give(b);
            buffers.give(c);
        });
    }

    @Test
    void closingFreesKeptBuffersAndThoseStillInUseAsTheyComeBack() {
        ConnectionBuffers buffers = new ConnectionBuffers(BUDGET);
        ByteBuffer kept = buffers.take(4096);
        ByteBuffer inUse = buffers.take(4096);
        buffers.give(kept);
        buffers.close();
        assertEquals(ConnectionBuffers.SMALLEST, buffers.held());
        buffers.give(inUse);
        assertEquals(0, buffers.held());
    }
}
