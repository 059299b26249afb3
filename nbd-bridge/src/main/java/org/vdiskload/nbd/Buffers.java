package org.vdiskload.nbd;

import java.nio.ByteBuffer;

/**
 * Direct buffers for replies. Each worker thread keeps one, grown to the largest reply it sent up to
 * {@link #KEPT} (direct, so the socket sends it without another copy; it goes away with the thread when the
 * connection ends). A larger reply gets a buffer of its own, dropped once sent: a thread keeping a 32 MiB
 * buffer for the connection's life would multiply a connection's memory by its workers, beyond the budget
 * {@link Transmission} keeps for the buffers in use.
 */
final class Buffers {
    private static final int INITIAL = 256 << 10;
    static final int KEPT = 1 << 20;
    private static final ThreadLocal<ByteBuffer> BUFFER = new ThreadLocal<>();

    private Buffers() {}

    /** A buffer of {@code length} bytes (cleared, limited to it): this thread's, or for a large one a new one. */
    static ByteBuffer get(int length) {
        if (length > KEPT) return ByteBuffer.allocateDirect(length);
        ByteBuffer b = BUFFER.get();
        if (b == null || b.capacity() < length) {
            b = ByteBuffer.allocateDirect(Math.max(length, INITIAL));
            BUFFER.set(b);
        }
        return b.clear().limit(length);
    }
}
