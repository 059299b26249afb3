package org.vdiskload.ops;

import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Extent;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.Bytes;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Writes a disk's content to a raw file, sparsely: zero extents, and data blocks that turn out to be
 * all zeros, stay holes. DATA extents are read straight from their file; the rest through the library.
 */
public final class RawExport {
    /** Copy unit: large enough for sequential speed, small enough to keep memory flat. */
    private static final int CHUNK = 2 << 20;
    /** Granularity of the zero check that keeps the output sparse (qemu-img's -S default). */
    private static final int ZERO_GRAIN = 4096;

    private RawExport() {}

    /**
     * Writes {@code image} to {@code target}, replacing it. The target must not be a file of the
     * image's chain; on failure the target is removed.
     */
    public static void export(DiskImage image, Path target, Progress progress) throws IOException {
        Targets.requireNotInChain(image, target);
        long size = image.size();
        boolean done = false;
        try (RandomAccessFile out = new RandomAccessFile(target.toFile(), "rw")) {
            out.setLength(0);
            out.setLength(size);
            FileChannel ch = out.getChannel();
            ByteBuffer buf = ByteBuffer.allocateDirect(CHUNK);
            ExtentWalker.walk(image, 0, size, e -> {
                if (e.kind() != Extent.Kind.ZERO) copy(image, e, buf, ch);
                progress.update((double) e.end() / size);
            });
            ch.force(false);
            done = true;
        } catch (java.io.FileNotFoundException e) {
            throw ImageException.invalid(target, "cannot create: " + e.getMessage());
        } finally {
            if (!done) Files.deleteIfExists(target);
        }
        progress.update(1.0);
    }

    private static void copy(DiskImage image, Extent e, ByteBuffer buf, FileChannel out) throws IOException {
        for (long off = 0; off < e.length(); ) {
            int n = (int) Math.min(CHUNK, e.length() - off);
            buf.clear().limit(n);
            if (e.kind() == Extent.Kind.DATA) e.file().readPadded(buf, e.fileOffset() + off);
            else image.read(buf, e.start() + off);
            writeNonZero(buf.flip(), out, e.start() + off);
            off += n;
        }
    }

    /** Writes {@code buf} at {@code pos}, skipping zero grains so they stay holes. */
    private static void writeNonZero(ByteBuffer buf, FileChannel out, long pos) throws IOException {
        int len = buf.limit();
        int runStart = -1;
        for (int g = 0; g < len; g += ZERO_GRAIN) {
            int gEnd = Math.min(len, g + ZERO_GRAIN);
            boolean zero = Bytes.isZero(buf.duplicate().limit(gEnd).position(g));
            if (!zero && runStart < 0) runStart = g;
            if (zero && runStart >= 0) {
                write(buf, runStart, g, out, pos);
                runStart = -1;
            }
        }
        if (runStart >= 0) write(buf, runStart, len, out, pos);
    }

    private static void write(ByteBuffer buf, int from, int to, FileChannel out, long pos) throws IOException {
        ByteBuffer part = buf.duplicate().limit(to).position(from);
        long p = pos + from;
        while (part.hasRemaining()) p += out.write(part, p);
    }
}
