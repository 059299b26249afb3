package org.vdiskload.nbd;

import java.nio.ByteBuffer;

/**
 * One reusable direct buffer per worker thread, grown to the largest request it served (at most the
 * maximum payload). Direct, so the socket sends it without another copy; it goes away with the
 * worker thread when the connection ends.
 */
final class Buffers {
    private static final int INITIAL = 256 << 10;
    private static final ThreadLocal<ByteBuffer> BUFFER = new ThreadLocal<>();

    private Buffers() {}

    /** This thread's buffer, cleared and limited to {@code length} bytes. */
    static ByteBuffer get(int length) {
        ByteBuffer b = BUFFER.get();
        if (b == null || b.capacity() < length) {
            b = ByteBuffer.allocateDirect(Math.max(length, INITIAL));
            BUFFER.set(b);
        }
        return b.clear().limit(length);
    }
}
