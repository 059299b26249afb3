package org.vdiskload.io;

import java.nio.ByteBuffer;

/** Small helpers on buffers. */
public final class Bytes {
    private static final ByteBuffer ZEROS = ByteBuffer.allocateDirect(1 << 16);

    private Bytes() {}

    /** Fills the remainder of {@code dst} with zeros and advances its position to its limit. */
    public static void fillZero(ByteBuffer dst) {
        while (dst.hasRemaining()) {
            int n = Math.min(dst.remaining(), ZEROS.capacity());
            dst.put(ZEROS.duplicate().limit(n));
        }
    }

    /** True when every remaining byte of {@code b} is zero; the position is not moved. */
    public static boolean isZero(ByteBuffer b) {
        int i = b.position();
        int end = b.limit();
        for (; i + 8 <= end; i += 8) if (b.getLong(i) != 0) return false;
        for (; i < end; i++) if (b.get(i) != 0) return false;
        return true;
    }

    /** A view of the next {@code len} bytes of {@code b}, which is advanced past them. */
    public static ByteBuffer take(ByteBuffer b, int len) {
        ByteBuffer s = b.slice(b.position(), len).order(b.order());
        b.position(b.position() + len);
        return s;
    }

    public static long u32(int v) {
        return Integer.toUnsignedLong(v);
    }
}
