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

    /**
     * True when every remaining byte of {@code b} is zero; the position is not moved. Compares against
     * a zero buffer with {@link ByteBuffer#mismatch}, which the JDK vectorizes: several times faster
     * than a loop over longs, and this check runs over every byte convert copies.
     */
    public static boolean isZero(ByteBuffer b) {
        return isZero(b, b.position(), b.limit());
    }

    /**
     * True when bytes {@code [from, to)} of {@code b} are all zero, regardless of its position and limit.
     * A range holding data usually shows it in its first eight bytes, which settles it without the
     * views and the call into the comparison: convert asks this of every 4 KiB it copies.
     */
    public static boolean isZero(ByteBuffer b, int from, int to) {
        if (to - from >= Long.BYTES && b.getLong(from) != 0) return false;
        for (int i = from; i < to; ) {
            int n = Math.min(to - i, ZEROS.capacity());
            if (b.slice(i, n).mismatch(ZEROS.slice(0, n)) >= 0) return false;
            i += n;
        }
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
