package org.vdiskload.testing.fuzz;

import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Extent;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * What the kernel module will rely on, checked on whatever image opened: the extent map covers each asked range
 * exactly, in order; every DATA extent points into one of the chain's files, at an offset a file can have; and
 * the disk read through the library equals the disk assembled from the map (DATA from the file at its offset,
 * ZERO as zeros, NEEDS_LIBRARY through the library). A map of a window agrees with the map of a larger range
 * around it.
 *
 * <p>A DATA extent may reach past the end of its file: a format may end the file inside an allocated cluster or
 * block (qemu-img makes such VDI files, a flat VMDK extent may be shorter than its descriptor says), and
 * qemu-img map calls those bytes data too. They read as zeros — through the library (ImageFile.readPadded) as
 * through the kernel module, which reads past the end of a file as zeros — and the comparison covers them.
 *
 * <p>Bounded, so one execution stays cheap whatever virtual size an input claims: the map is checked over the
 * first {@link #MAP_SPAN} bytes and the last {@link #TAIL_SPAN}; bytes are compared in the first
 * {@link #HEAD_WINDOW}, the last {@link #TAIL_WINDOW} and at the start of the first few allocated extents
 * after the head. Disks up to {@link #HEAD_WINDOW} are compared whole.
 */
public final class DiskInvariants {
    static final long MAP_SPAN = 4L << 20;
    static final long TAIL_SPAN = 256L << 10;
    static final int HEAD_WINDOW = 64 << 10;
    static final int TAIL_WINDOW = 16 << 10;
    static final int EXTENT_WINDOW = 16 << 10;
    static final int EXTENT_WINDOWS = 3;

    private DiskInvariants() {}

    public static void check(DiskImage disk) throws IOException {
        long size = disk.size();
        if (size < 0) throw new Finding("negative virtual size " + size);
        if (size == 0) return;
        Set<ImageFile> files = new HashSet<>();
        List<ImageLayer> layers = disk.layers();
        for (ImageLayer l : layers) files.addAll(l.files());

        long mapEnd = Math.min(size, MAP_SPAN);
        List<Extent> head = map(disk, 0, mapEnd);
        validate(head, 0, mapEnd, layers.size(), files);
        if (size > mapEnd) {
            long tailStart = Math.max(mapEnd, size - TAIL_SPAN);
            validate(map(disk, tailStart, size - tailStart), tailStart, size - tailStart, layers.size(), files);
        }

        compare(disk, 0, (int) Math.min(size, HEAD_WINDOW), head, layers.size(), files);
        if (size > HEAD_WINDOW) {
            long from = Math.max(HEAD_WINDOW, size - TAIL_WINDOW);
            compare(disk, from, (int) (size - from), from < mapEnd ? head : null, layers.size(), files);
        }
        int windows = 0;
        for (Extent e : head) {
            if (windows == EXTENT_WINDOWS) break;
            if (e.start() < HEAD_WINDOW || e.kind() == Extent.Kind.ZERO) continue;
            compare(disk, e.start(), (int) Math.min(e.length(), EXTENT_WINDOW), head, layers.size(), files);
            windows++;
        }
    }

    /** The map of {@code [pos, pos+length)} covers it exactly, in order, and points only inside the chain's files. */
    static void validate(List<Extent> map, long pos, long length, int depths, Set<ImageFile> files) throws IOException {
        if (map.isEmpty()) throw new Finding("empty map for " + pos + "+" + length);
        long at = pos;
        for (Extent e : map) {
            if (e.start() != at) throw new Finding("map of " + pos + "+" + length + ": extent " + e + " does not start at " + at);
            if (e.length() <= 0) throw new Finding("empty extent " + e);
            if (e.depth() < 0 || e.depth() >= depths) throw new Finding("extent " + e + " names depth " + e.depth() + " of a chain of " + depths);
            if (e.inPlace()) throw new Finding("extent " + e + " is writable in place in an image opened read-only");
            if (e.kind() == Extent.Kind.DATA) {
                if (!files.contains(e.file())) throw new Finding("DATA extent " + e + " in a file not of the chain");
                if (e.fileOffset() < 0 || e.fileOffset() > Long.MAX_VALUE - e.length()) {
                    throw new Finding("DATA extent " + e + " at an offset no file can have");
                }
            }
            at = e.end();
        }
        if (at != pos + length) throw new Finding("map of " + pos + "+" + length + " ends at " + at);
    }

    /**
     * Reads {@code [pos, pos+length)} through the library and assembles it from its map; they must agree, and
     * the window's map must agree with {@code outer} (a map of a range holding it), where given.
     */
    static void compare(DiskImage disk, long pos, int length, List<Extent> outer, int depths, Set<ImageFile> files) throws IOException {
        if (length <= 0) return;
        ByteBuffer read = ByteBuffer.allocate(length);
        read(disk, read, pos);
        List<Extent> map = map(disk, pos, length);
        validate(map, pos, length, depths, files);
        if (outer != null) agree(map, outer);
        ByteBuffer assembled = ByteBuffer.allocate(length);
        for (Extent e : map) {
            ByteBuffer part = assembled.slice((int) (e.start() - pos), (int) e.length());
            switch (e.kind()) {
                case DATA -> e.file().readPadded(part, e.fileOffset());
                case ZERO -> { } // the buffer is zeros already
                case NEEDS_LIBRARY -> read(disk, part, e.start());
            }
        }
        int diff = read.flip().mismatch(assembled.clear());
        if (diff >= 0) {
            Extent at = null;
            for (Extent e : map) if (e.start() <= pos + diff && pos + diff < e.end()) at = e;
            throw new Finding("the disk read at " + (pos + diff) + " differs from its map: 0x"
                    + Integer.toHexString(read.get(diff) & 0xff) + " read, 0x" + Integer.toHexString(assembled.get(diff) & 0xff)
                    + " from " + at);
        }
    }

    private static List<Extent> map(DiskImage disk, long pos, long length) throws IOException {
        return AllocationBudget.within(AllocationBudget.forRead(length), "mapping " + pos + "+" + length, () -> disk.map(pos, length));
    }

    private static void read(DiskImage disk, ByteBuffer dst, long pos) throws IOException {
        int n = dst.remaining();
        AllocationBudget.within(AllocationBudget.forRead(n), "reading " + pos + "+" + n, () -> {
            disk.read(dst, pos);
            return null;
        });
    }

    /** Each extent of {@code inner} says what the extents of {@code outer} say about the same bytes. */
    static void agree(List<Extent> inner, List<Extent> outer) {
        int j = 0;
        for (Extent e : inner) {
            long at = e.start();
            while (at < e.end()) {
                while (j < outer.size() && outer.get(j).end() <= at) j++;
                if (j == outer.size()) return; // past the outer range
                Extent o = outer.get(j);
                if (o.start() > at) throw new Finding("outer map has a gap at " + at);
                boolean same = o.kind() == e.kind() && o.depth() == e.depth() && o.allocated() == e.allocated()
                        && (e.kind() != Extent.Kind.DATA
                            || o.file() == e.file() && o.fileOffset() + (at - o.start()) == e.fileOffset() + (at - e.start()));
                if (!same) throw new Finding("the map of a window says " + e + " where the larger map says " + o);
                at = Math.min(e.end(), o.end());
            }
        }
    }
}
