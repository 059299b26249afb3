package org.vdiskload.serving;

import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Extent;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.Bytes;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * A writable view of a read-only image whose changes are thrown away ({@code serve --snapshot}):
 * written 64 KiB blocks are copied on write into a temporary file, zeroed whole blocks are only
 * remembered, and everything else is read from the image. The temporary file is unlinked as soon
 * as it is open, so nothing of it outlives the process, however it ends.
 *
 * <p>Not a temporary qcow2 overlay, though the library writes qcow2: a qcow2 file names its backing
 * image by path and format only, which cannot say "this internal snapshot" ({@code serve -l}), "with
 * this --backing-format", or hold a disk whose size is not a multiple of 512 bytes, all of which this
 * takes as an open {@link DiskImage}; and the overlay needs none of qcow2's crash safety (metadata
 * written through at each new cluster), as it dies with the process. Reads run concurrently; changes
 * take the lock alone.
 */
public final class SnapshotOverlay implements DiskImage, FastZeroing {
    static final int BLOCK = 64 << 10;
    /** A block zeroed whole: reads as zeros, holds no slot. */
    private static final long ZEROED = -1;

    private final DiskImage base;
    private final ImageFile store;
    /** Block index -> offset of its copy in {@link #store}, or {@link #ZEROED}. Absent: read from the base. */
    private final Map<Long, Long> blocks = new HashMap<>();
    private final ArrayDeque<Long> freeSlots = new ArrayDeque<>();
    private long storeEnd;
    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();

    private SnapshotOverlay(DiskImage base, ImageFile store) {
        this.base = base;
        this.store = store;
    }

    /** An overlay over {@code base} (which it then owns and closes) keeping its blocks in a file in {@code tempDir}. */
    public static SnapshotOverlay over(DiskImage base, Path tempDir) throws IOException {
        Path file = Files.createTempFile(tempDir, "vdiskload-snapshot-", ".tmp");
        try {
            return new SnapshotOverlay(base, ImageFile.open(file, true));
        } finally {
            Files.delete(file);
        }
    }

    @Override
    public Path path() {
        return base.path();
    }

    @Override
    public String formatName() {
        return base.formatName();
    }

    @Override
    public long size() {
        return base.size();
    }

    /** The base image's layers: the overlay is no image file of its own. */
    @Override
    public List<ImageLayer> layers() {
        return base.layers();
    }

    @Override
    public boolean isWritable() {
        return true;
    }

    private void checkRange(long pos, long length) throws ImageException {
        if (pos < 0 || length < 0 || pos > size() || length > size() - pos) {
            throw ImageException.invalid(path(), "range " + pos + "+" + length + " is outside the disk (" + size() + " bytes)");
        }
    }

    /** Bytes of block {@code b} (the last block of the disk may be short). */
    private int blockLength(long b) {
        return (int) Math.min(BLOCK, size() - b * BLOCK);
    }

    @Override
    public void read(ByteBuffer dst, long pos) throws IOException {
        checkRange(pos, dst.remaining());
        lock.readLock().lock();
        try {
            while (dst.hasRemaining()) {
                long b = pos / BLOCK;
                Long slot = blocks.get(b);
                long n = Math.min(dst.remaining(), (b + 1) * BLOCK - pos);
                if (slot == null) {
                    while (pos + n < pos + dst.remaining() && !blocks.containsKey((pos + n) / BLOCK)) {
                        n = Math.min(dst.remaining(), n + BLOCK);
                    }
                }
                ByteBuffer part = dst.slice(dst.position(), (int) n);
                if (slot == null) base.read(part, pos);
                else if (slot == ZEROED) Bytes.fillZero(part);
                else store.readPadded(part, slot + pos - b * BLOCK);
                dst.position(dst.position() + (int) n);
                pos += n;
            }
        } finally {
            lock.readLock().unlock();
        }
    }

    @Override
    public List<Extent> map(long pos, long length) throws IOException {
        checkRange(pos, length);
        List<Extent> out = new ArrayList<>();
        lock.readLock().lock();
        try {
            long end = pos + length;
            while (pos < end) {
                long b = pos / BLOCK;
                Long slot = blocks.get(b);
                long n = Math.min(end, (b + 1) * BLOCK) - pos;
                if (slot == null) {
                    while (pos + n < end && !blocks.containsKey((pos + n) / BLOCK)) n = Math.min(end - pos, n + BLOCK);
                    // The base, one level down; never in place: writes go here, not to the base.
                    for (Extent e : base.map(pos, n)) {
                        add(out, new Extent(e.start(), e.length(), e.kind(), e.depth() + 1, e.allocated(), e.file(), e.fileOffset(), false));
                    }
                } else if (slot == ZEROED) {
                    add(out, Extent.zero(pos, n, 0, true));
                } else {
                    add(out, Extent.data(pos, n, 0, store, slot + pos - b * BLOCK));
                }
                pos += n;
            }
            return out;
        } finally {
            lock.readLock().unlock();
        }
    }

    private static void add(List<Extent> out, Extent e) {
        int last = out.size() - 1;
        if (last >= 0 && out.get(last).joins(e)) out.set(last, out.get(last).joinedWith(e));
        else out.add(e);
    }

    @Override
    public void write(ByteBuffer src, long pos) throws IOException {
        checkRange(pos, src.remaining());
        change(pos, src.remaining(), src);
    }

    @Override
    public void writeZeroes(long pos, long length, boolean mayUnmap) throws IOException {
        checkRange(pos, length);
        change(pos, length, null);
    }

    /** Writes {@code src} (or zeros, when null) over {@code [pos, pos+length)}, block by block. */
    private void change(long pos, long length, ByteBuffer src) throws IOException {
        lock.writeLock().lock();
        try {
            long end = pos + length;
            while (pos < end) {
                long b = pos / BLOCK;
                long start = b * BLOCK;
                int n = (int) (Math.min(end, start + BLOCK) - pos);
                boolean whole = pos == start && n == blockLength(b);
                if (src == null && whole) {
                    Long old = blocks.put(b, ZEROED);
                    if (old != null && old != ZEROED) freeSlots.add(old);
                } else {
                    long slot = slotFor(b, whole);
                    ByteBuffer part;
                    if (src != null) {
                        part = src.slice(src.position(), n);
                        src.position(src.position() + n);
                    } else {
                        part = ByteBuffer.allocate(n);
                    }
                    store.writeFully(part, slot + pos - start);
                }
                pos += n;
            }
        } finally {
            lock.writeLock().unlock();
        }
    }

    /** The slot of block {@code b}, copying the block into a new one first unless the caller overwrites it whole. */
    private long slotFor(long b, boolean whole) throws IOException {
        Long slot = blocks.get(b);
        if (slot != null && slot != ZEROED) return slot;
        long fresh = freeSlots.isEmpty() ? storeEnd : freeSlots.poll();
        if (fresh == storeEnd) storeEnd += BLOCK;
        if (!whole) {
            ByteBuffer copy = ByteBuffer.allocate(blockLength(b));
            if (slot == null) base.read(copy, b * BLOCK);
            store.writeFully(copy.clear(), fresh);
        }
        blocks.put(b, fresh);
        return fresh;
    }

    /** Zeroing writes no data exactly when it covers whole blocks (a partial block needs its copy). */
    @Override
    public boolean zeroesFast(long pos, long length, boolean mayUnmap) {
        long end = pos + length;
        return pos % BLOCK == 0 && (end % BLOCK == 0 || end == size());
    }

    /** Nothing to make durable: the overlay is thrown away at exit, however the process ends. */
    @Override
    public void flush() {
    }

    @Override
    public void close() throws IOException {
        try {
            store.close();
        } finally {
            base.close();
        }
    }
}
