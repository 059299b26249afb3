package org.vdiskload.nbd;

import java.lang.reflect.Field;
import java.nio.ByteBuffer;

/**
 * Direct buffers for replies. Each worker thread keeps one, grown to the largest reply it sent up to
 * {@link #KEPT} (direct, so the socket sends it without another copy; it goes away with the thread when the
 * connection ends). A larger reply gets a buffer of its own, dropped once sent: a thread keeping a 32 MiB
 * buffer for the connection's life would multiply a connection's memory by its workers, beyond the budget
 * {@link Transmission} keeps for the buffers in use. Such a buffer is freed once sent ({@link #release}) rather than
 * left to the garbage collector, which under load frees direct memory too late: a busy server then ran out of its
 * direct memory limit with most of it already unused.
 */
final class Buffers {
    private static final int INITIAL = 256 << 10;
    static final int KEPT = 1 << 20;
    private static final ThreadLocal<ByteBuffer> BUFFER = new ThreadLocal<>();

    /** sun.misc.Unsafe (module jdk.unsupported), whose invokeCleaner frees a direct buffer now: as Netty and Lucene do. */
    private static final sun.misc.Unsafe UNSAFE = unsafe();

    private Buffers() {}

    private static sun.misc.Unsafe unsafe() {
        try {
            Field f = sun.misc.Unsafe.class.getDeclaredField("theUnsafe");
            f.setAccessible(true);
            return (sun.misc.Unsafe) f.get(null);
        } catch (ReflectiveOperationException | RuntimeException e) {
            return null; // the garbage collector frees them, later
        }
    }

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

    /** Frees {@code b} if {@link #get} made it for one reply only (larger than {@link #KEPT}); nothing may use it after. */
    static void release(ByteBuffer b) {
        if (b.capacity() > KEPT && UNSAFE != null) UNSAFE.invokeCleaner(b);
    }
}
