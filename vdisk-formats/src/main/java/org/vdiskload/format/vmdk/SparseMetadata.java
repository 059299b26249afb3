package org.vdiskload.format.vmdk;

import org.vdiskload.io.Bytes;

import java.util.Arrays;

/**
 * Where a sparse extent's metadata lies in its file: the header with its embedded descriptor, the grain
 * directory and its redundant copy, and every grain table (both copies). A grain lying on any of them is
 * neither served as data by the map nor written (a damaged or hostile grain table could otherwise turn a
 * guest write into the destruction of the tables). Grain tables only ever get added, past the end of the
 * file, while a writer allocates; everything else is fixed.
 */
final class SparseMetadata {
    private final long headerBytes;
    private final long gdOffset, rgdOffset, directoryBytes;
    private final long tableBytes;
    /**
     * The sectors where grain tables start, sorted as unsigned numbers (each stored with its sign bit flipped,
     * so that signed order is unsigned order): no more memory than the directory itself. Replaced whole when a
     * table is added.
     */
    private volatile int[] tables;

    SparseMetadata(SparseGeometry g, int[] directory, int[] redundant) {
        this.headerBytes = g.headerBytes();
        this.gdOffset = g.gdOffset();
        this.rgdOffset = redundant == null ? 0 : g.rgdOffset();
        this.directoryBytes = g.gdEntries() * 4L;
        this.tableBytes = g.gtEntries() * 4L;
        int n = 0;
        int[] starts = new int[directory.length + (redundant == null ? 0 : redundant.length)];
        for (int e : directory) if (e != 0) starts[n++] = e ^ Integer.MIN_VALUE;
        if (redundant != null) for (int e : redundant) if (e != 0) starts[n++] = e ^ Integer.MIN_VALUE;
        int[] sorted = Arrays.copyOf(starts, n);
        Arrays.sort(sorted);
        this.tables = sorted;
    }

    /** A grain table was added at {@code offset} (a sector boundary past every other structure). */
    void tableAdded(long offset) {
        int[] t = tables;
        int[] grown = Arrays.copyOf(t, t.length + 1);
        grown[t.length] = (int) (offset / 512) ^ Integer.MIN_VALUE;
        Arrays.sort(grown);
        tables = grown;
    }

    /** What {@code [offset, offset+length)} overlaps of the metadata, or null. */
    String overlap(long offset, long length) {
        long end = offset + length;
        String fixed = fixedOverlap(offset, end);
        if (fixed != null) return fixed;
        int[] t = tables;
        // Only a table starting after offset - tableBytes can reach into the range: the first of them decides.
        int i = firstReaching(t, offset);
        if (i < t.length) {
            long start = start(t[i]);
            if (start < end && start + tableBytes > offset) return "the grain table at " + start;
        }
        return null;
    }

    /**
     * What the grain table starting at {@code offset} overlaps besides itself, or null: the header, a directory,
     * another table, or the same table named by a second directory entry. Writing the table back would change that.
     */
    String tableOverlap(long offset) {
        long end = offset + tableBytes;
        String fixed = fixedOverlap(offset, end);
        if (fixed != null) return fixed;
        int[] t = tables;
        boolean self = false;
        for (int i = firstReaching(t, offset); i < t.length && start(t[i]) < end; i++) {
            long start = start(t[i]);
            if (start == offset && !self) {
                self = true;
            } else {
                return "the grain table at " + start + (start == offset ? " (named by two grain directory entries)" : "");
            }
        }
        return null;
    }

    private String fixedOverlap(long offset, long end) {
        if (offset < headerBytes) return "the header and descriptor (0.." + headerBytes + ")";
        if (overlaps(offset, end, gdOffset, directoryBytes)) return "the grain directory at " + gdOffset;
        if (rgdOffset != 0 && overlaps(offset, end, rgdOffset, directoryBytes)) return "the redundant grain directory at " + rgdOffset;
        return null;
    }

    /** The index in {@code t} of the first table starting after {@code offset - tableBytes} (or t.length). */
    private int firstReaching(int[] t, long offset) {
        long firstSector = Math.max(0, (offset - tableBytes) / 512 + 1);
        if (firstSector > 0xffffffffL) return t.length;
        int key = (int) firstSector ^ Integer.MIN_VALUE;
        int low = 0, high = t.length; // the first of equal starts, where Arrays.binarySearch may give any
        while (low < high) {
            int mid = (low + high) >>> 1;
            if (t[mid] < key) low = mid + 1;
            else high = mid;
        }
        return low;
    }

    private static long start(int flipped) {
        return Bytes.u32(flipped ^ Integer.MIN_VALUE) * 512;
    }

    private static boolean overlaps(long from, long to, long start, long length) {
        return length > 0 && start < to && start + length > from;
    }
}
