package org.vdiskload.io;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BytesTest {
    private static final int SIZE = 200_000; // several of the 64 KiB comparison chunks

    @Test
    void rangeOfZerosIsZeroWhereverItStartsAndEnds() {
        ByteBuffer b = ByteBuffer.allocateDirect(SIZE);
        for (int[] r : new int[][] {{0, SIZE}, {0, 0}, {3, 5}, {7, 15}, {65_535, 65_537}, {1, SIZE - 1}}) {
            assertTrue(Bytes.isZero(b, r[0], r[1]), r[0] + ".." + r[1]);
        }
    }

    @Test
    void oneNonZeroByteAnywhereInTheRangeCounts() {
        ByteBuffer b = ByteBuffer.allocateDirect(SIZE);
        for (int at : new int[] {0, 7, 8, 4095, 65_536, SIZE - 1}) {
            b.put(at, (byte) 1);
            assertFalse(Bytes.isZero(b, 0, SIZE), "byte " + at);
            assertFalse(Bytes.isZero(b, at, at + 1), "byte " + at + " alone");
            assertTrue(Bytes.isZero(b, at + 1, SIZE), "after byte " + at);
            assertTrue(Bytes.isZero(b, 0, at), "before byte " + at);
            b.put(at, (byte) 0);
        }
    }

    @Test
    void rangeIgnoresPositionAndLimitAndMovesNothing() {
        ByteBuffer b = ByteBuffer.allocate(64);
        b.put(40, (byte) 9).position(50).limit(60);
        assertFalse(Bytes.isZero(b, 32, 48));
        assertTrue(Bytes.isZero(b, 0, 40));
        assertTrue(Bytes.isZero(b)); // position..limit: 50..60
        assertEquals(50, b.position());
        assertEquals(60, b.limit());
    }
}
