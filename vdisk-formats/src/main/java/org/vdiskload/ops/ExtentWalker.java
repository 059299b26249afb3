package org.vdiskload.ops;

import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Extent;

import java.io.IOException;

/**
 * Walks a disk's extent map in bounded windows, so a huge fragmented disk never needs one huge list,
 * and joins extents across window edges so the caller sees each run once.
 */
public final class ExtentWalker {
    /** Maps at most this many bytes per call. */
    static final long WINDOW = 1L << 30;

    @FunctionalInterface
    public interface Visitor {
        void visit(Extent e) throws IOException;
    }

    private ExtentWalker() {}

    public static void walk(DiskImage image, long from, long to, Visitor v) throws IOException {
        Extent pending = null;
        for (long pos = from; pos < to; ) {
            long len = Math.min(WINDOW, to - pos);
            for (Extent e : image.map(pos, len)) {
                if (pending == null) {
                    pending = e;
                } else if (pending.joins(e)) {
                    pending = pending.joinedWith(e);
                } else {
                    v.visit(pending);
                    pending = e;
                }
            }
            pos += len;
        }
        if (pending != null) v.visit(pending);
    }
}
