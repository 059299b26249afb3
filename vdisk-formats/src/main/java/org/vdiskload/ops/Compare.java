package org.vdiskload.ops;

import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Extent;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.OptionalLong;

/**
 * Compares two disks' content as qemu-img compare does: where the sizes differ, the longer disk's
 * tail must read as zeros for the two to count as identical.
 */
public final class Compare {
    private static final int CHUNK = 1 << 20;

    /** The outcome: identical, or the first differing byte. */
    public record Result(boolean sizesDiffer, OptionalLong firstDifference) {
        public boolean identical() {
            return firstDifference.isEmpty();
        }
    }

    private Compare() {}

    public static Result compare(DiskImage a, DiskImage b, Progress progress) throws IOException {
        long common = Math.min(a.size(), b.size());
        long total = Math.max(a.size(), b.size());
        ByteBuffer bufA = ByteBuffer.allocateDirect(CHUNK);
        ByteBuffer bufB = ByteBuffer.allocateDirect(CHUNK);
        for (long pos = 0; pos < common; ) {
            int n = (int) Math.min(CHUNK, common - pos);
            if (!(allZero(a, pos, n) && allZero(b, pos, n))) {
                bufA.clear().limit(n);
                bufB.clear().limit(n);
                a.read(bufA, pos);
                b.read(bufB, pos);
                int m = bufA.flip().mismatch(bufB.flip());
                if (m >= 0) return new Result(a.size() != b.size(), OptionalLong.of(pos + m));
            }
            pos += n;
            progress.update((double) pos / total);
        }
        DiskImage longer = a.size() > b.size() ? a : b;
        OptionalLong tail = firstNonZero(longer, common, total, bufA);
        progress.update(1.0);
        return new Result(a.size() != b.size(), tail);
    }

    private static boolean allZero(DiskImage d, long pos, long len) throws IOException {
        for (Extent e : d.map(pos, len)) if (e.kind() != Extent.Kind.ZERO) return false;
        return true;
    }

    private static OptionalLong firstNonZero(DiskImage d, long from, long to, ByteBuffer buf) throws IOException {
        for (long pos = from; pos < to; ) {
            int n = (int) Math.min(CHUNK, to - pos);
            if (!allZero(d, pos, n)) {
                buf.clear().limit(n);
                d.read(buf, pos);
                buf.flip();
                for (int i = 0; i < n; i++) if (buf.get(i) != 0) return OptionalLong.of(pos + i);
            }
            pos += n;
        }
        return OptionalLong.empty();
    }
}
