package org.vdiskload.ops;

import org.vdiskload.image.CompressedUnit;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Extent;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.Bytes;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * convert -c: every unit (cluster, grain) of the source that holds data, compressed into a new image.
 * Compressing is nearly all the work, so units are compressed on a few threads at once, while this
 * thread reads the next ones and writes the finished ones in disk order: the image is laid out as a
 * one-thread copy lays it out (a stream-optimized VMDK stays a stream, grains in order).
 */
final class CompressedCopy {
    private static final int THREADS = Math.max(1, Math.min(4, Runtime.getRuntime().availableProcessors()));
    /** Units read and handed out ahead of the one being written: enough to keep every thread busy. */
    private static final int AHEAD = 2 * THREADS;

    private CompressedCopy() {}

    static void copy(DiskImage source, DiskImage out, Progress progress) throws IOException {
        ImageLayer layer = out.layers().get(0);
        int unit = layer.compressionUnit();
        if (unit <= 0) {
            throw ImageException.unsupported(out.path(), "compression is not supported for " + layer.formatName() + " images");
        }
        long size = source.size();
        ExecutorService pool = Executors.newFixedThreadPool(THREADS, r -> {
            Thread t = new Thread(r, "vdiskload-compress");
            t.setDaemon(true);
            return t;
        });
        ArrayDeque<Future<CompressedUnit>> ahead = new ArrayDeque<>();
        try {
            for (long pos = 0; pos < size; pos += unit) {
                int n = (int) Math.min(unit, size - pos);
                if (allZero(source.map(pos, n))) continue;
                ByteBuffer buf = ByteBuffer.allocate(n);
                source.read(buf, pos);
                if (Bytes.isZero(buf.flip())) continue;
                long at = pos;
                ahead.add(pool.submit(() -> layer.compress(buf, at)));
                if (ahead.size() >= AHEAD) write(layer, Futures.await(ahead.poll()), unit, size, progress);
            }
            while (!ahead.isEmpty()) write(layer, Futures.await(ahead.poll()), unit, size, progress);
        } finally {
            // Compressing touches no file: what is still queued after a failure can just be dropped.
            pool.shutdownNow();
        }
    }

    private static void write(ImageLayer layer, CompressedUnit c, int unit, long size, Progress progress) throws IOException {
        layer.writeCompressed(c);
        progress.update((double) Math.min(size, c.pos() + unit) / size);
    }

    private static boolean allZero(List<Extent> extents) {
        for (Extent e : extents) if (e.kind() != Extent.Kind.ZERO) return false;
        return true;
    }
}
