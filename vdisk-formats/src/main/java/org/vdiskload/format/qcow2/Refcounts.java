package org.vdiskload.format.qcow2;

import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.Checked;
import org.vdiskload.io.ImageFile;
import org.vdiskload.io.LruCache;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * The refcount table and its refcount blocks, for writing: reads and updates the reference count of
 * host clusters (write-through, a few bytes at a time) and allocates free ones. Callers hold the
 * layer's metadata lock; nothing here is used by the lock-free read path.
 */
final class Refcounts {
    static final long TABLE_OFFSET_MASK = 0xfffffffffffffe00L;

    private final ImageFile file;
    private final int clusterBits;
    private final int order;
    /** log2 of the refcount entries in one block. */
    private final int blockBits;
    private final LruCache<byte[]> blocks;
    private volatile long tableOffset;
    private volatile long[] table;
    /** No cluster below this one is free. */
    private long freeHint;
    /** The refcount blocks' offsets (the table's non-zero entries), for the overlap check. */
    private final ClusterSet blockOffsets = new ClusterSet();
    /** Checks every write here against the other metadata (set by the writer). */
    private MetadataGuard guard = MetadataGuard.NONE;

    private Refcounts(ImageFile file, Qcow2Header h, long tableOffset, long[] table) {
        this.file = file;
        this.clusterBits = h.clusterBits();
        this.order = h.refcountOrder();
        this.blockBits = clusterBits + 3 - order;
        this.blocks = new LruCache<>(Math.max(4, LruCache.entriesFor(8L << 20, 1L << clusterBits)));
        this.tableOffset = tableOffset;
        this.table = table;
        blockOffsets.replaceWith(java.util.Arrays.stream(table).map(e -> e & TABLE_OFFSET_MASK).toArray());
    }

    void useGuard(MetadataGuard g) {
        guard = g;
    }

    /** The first refcount block in {@code [from, to)}, or -1. */
    long firstBlockIn(long from, long to) {
        return blockOffsets.firstIn(from, to);
    }

    static Refcounts load(ImageFile file, Qcow2Header h) throws IOException {
        long[] table = new long[(int) (h.refcountTableClusters() * h.clusterSize() / 8)];
        file.readStruct(h.refcountTableOffset(), (long) table.length * 8, ByteOrder.BIG_ENDIAN, "refcount table")
                .asLongBuffer().get(table);
        return new Refcounts(file, h, h.refcountTableOffset(), table);
    }

    long clusterSize() { return 1L << clusterBits; }
    long tableOffset() { return tableOffset; }
    int tableClusters() { return (int) ((long) table.length * 8 >>> clusterBits); }
    long maxRefcount() { return order == 6 ? Long.MAX_VALUE : (1L << (1 << order)) - 1; }
    int blockBits() { return blockBits; }
    int tableEntries() { return table.length; }

    /** The block pointed to by table entry {@code t}, 0 if none; validated. */
    long blockOffset(int t) throws ImageException, IOException {
        long entry = table[t];
        long offset = entry & TABLE_OFFSET_MASK;
        long at = tableOffset + (long) t * 8;
        if ((entry & ~TABLE_OFFSET_MASK) != 0) {
            throw ImageException.corrupt(file.path(), at, "refcount table entry " + t, "reserved bits are set (0x" + Long.toHexString(entry) + ")");
        }
        if (offset == 0) return 0;
        Checked.requireAligned(file, at, "refcount table entry " + t, offset, clusterSize());
        Checked.requireInFile(file, offset, clusterSize(), "refcount block " + t);
        return offset;
    }

    private byte[] block(long offset) throws IOException {
        return blocks.get(offset, o -> file.readStruct(o, clusterSize(), ByteOrder.BIG_ENDIAN, "refcount block").array());
    }

    /** The refcount of host cluster {@code index}. */
    long get(long index) throws IOException {
        long t = index >>> blockBits;
        if (t >= table.length) return 0;
        long offset = blockOffset((int) t);
        if (offset == 0) return 0;
        return decode(block(offset), (int) (index & ((1L << blockBits) - 1)), order);
    }

    static long decode(byte[] b, int i, int order) {
        int bits = 1 << order;
        if (bits < 8) {
            int perByte = 8 / bits;
            return (b[i / perByte] >>> ((i % perByte) * bits)) & ((1 << bits) - 1);
        }
        int bytes = bits / 8;
        long v = 0;
        for (int k = 0; k < bytes; k++) v = v << 8 | (b[i * bytes + k] & 0xff);
        return v;
    }

    static void encode(byte[] b, int i, int order, long value) {
        int bits = 1 << order;
        if (bits < 8) {
            int perByte = 8 / bits;
            int shift = (i % perByte) * bits;
            int mask = ((1 << bits) - 1) << shift;
            b[i / perByte] = (byte) ((b[i / perByte] & ~mask) | ((int) value << shift & mask));
            return;
        }
        int bytes = bits / 8;
        for (int k = bytes - 1; k >= 0; k--, value >>>= 8) b[i * bytes + k] = (byte) value;
    }

    /** The byte range of a block holding entries {@code [from, to)}. */
    private int byteOf(int entry) {
        return (int) (((long) entry << order) >>> 3);
    }

    /**
     * Adds {@code delta} to the refcounts of clusters {@code [index, index+count)}, whose blocks exist
     * (they are allocated, or being freed). One write per block.
     */
    void add(long index, long count, long delta) throws IOException {
        long end = index + count;
        while (index < end) {
            long t = index >>> blockBits;
            long blockEnd = Math.min(end, (t + 1) << blockBits);
            long offset = t < table.length ? blockOffset((int) t) : 0;
            if (offset == 0) {
                throw ImageException.corrupt(file.path(), tableOffset + t * 8, "refcount table entry " + t,
                        "cluster " + index + " has no refcount block but is in use");
            }
            byte[] b = block(offset);
            int from = (int) (index & ((1L << blockBits) - 1));
            int to = from + (int) (blockEnd - index);
            for (int i = from; i < to; i++) {
                long v = decode(b, i, order);
                long nv = v + delta;
                if (nv < 0 || nv > maxRefcount() || (delta > 0 && nv < v)) {
                    throw ImageException.corrupt(file.path(), offset, "refcount block",
                            "refcount of cluster " + ((t << blockBits) + i) + " would become " + (delta < 0 ? "negative" : "too large"));
                }
                encode(b, i, order, nv);
            }
            int lo = byteOf(from), hi = Math.max(lo + 1, byteOf(to - 1) + Math.max(1, (1 << order) / 8));
            guard.check(offset + lo, hi - lo, MetadataOverlap.Structure.REFCOUNT_BLOCK, "refcount block update");
            file.writeFully(ByteBuffer.wrap(b, lo, hi - lo), offset + lo);
            if (delta < 0) freeHint = Math.min(freeHint, index);
            index = blockEnd;
        }
    }

    /** Sets the refcount of one cluster (repairs). The cluster's block must exist unless {@code value} is 0. */
    void set(long index, long value) throws IOException {
        long v = get(index);
        if (v != value) add(index, 1, value - v);
    }

    /** Allocates {@code count} contiguous free clusters (refcount 1) and returns the first one's index. */
    long allocate(long count) throws IOException {
        while (true) {
            long start = findFree(count);
            long missing = missingBlock(start, count);
            if (missing < 0) {
                // Free by their refcounts, the clusters must hold no metadata either: checked before they are counted.
                guard.check(start << clusterBits, count << clusterBits, null, "newly allocated cluster");
                add(start, count, 1);
                return start;
            }
            createBlock(missing);
        }
    }

    private long findFree(long count) throws IOException {
        long start = freeHint, firstFree = -1;
        long i = start;
        while (i - start < count) {
            long t = i >>> blockBits;
            if (t >= table.length || table[(int) t] == 0) {
                // A missing block: everything it covers is free.
                if (firstFree < 0) firstFree = i;
                i = (t + 1) << blockBits;
                continue;
            }
            if (get(i) != 0) start = i + 1;
            else if (firstFree < 0) firstFree = i;
            i++;
        }
        freeHint = firstFree >= 0 && firstFree < start ? firstFree : start + count;
        return start;
    }

    private long missingBlock(long start, long count) throws IOException {
        for (long t = start >>> blockBits; t <= (start + count - 1) >>> blockBits; t++) {
            if (t >= table.length || blockOffset((int) t) == 0) return t;
        }
        return -1;
    }

    /**
     * A new block for table entry {@code t}, placed at the first cluster it covers and counting itself:
     * nothing it covers is in use, as it had no block. Written before the table entry points to it.
     */
    private void createBlock(long t) throws IOException {
        if (t >= table.length) {
            grow(t + 1);
            return; // the new structure may already cover t; allocate() looks again
        }
        long first = Math.max(1, t << blockBits);
        long offset = first << clusterBits;
        byte[] b = new byte[(int) clusterSize()];
        encode(b, (int) (first & ((1L << blockBits) - 1)), order, 1);
        guard.check(offset, clusterSize(), null, "new refcount block");
        file.writeFully(ByteBuffer.wrap(b), offset);
        blocks.invalidate(offset);
        file.force(false); // on the disk before the table entry points to it
        writeTableEntry((int) t, offset);
    }

    private void writeTableEntry(int t, long offset) throws IOException {
        ByteBuffer e = ByteBuffer.allocate(8).putLong(0, offset);
        guard.check(tableOffset + (long) t * 8, 8, MetadataOverlap.Structure.REFCOUNT_TABLE, "refcount table entry");
        file.writeFully(e, tableOffset + (long) t * 8);
        table[t] = offset;
        blockOffsets.add(offset);
    }

    /** Every stored refcount of clusters {@code [0, end)}, and beyond where any is non-zero. */
    long[] readAll(long end) throws IOException {
        long last = end;
        for (int t = 0; t < table.length; t++) {
            if (blockOffset(t) != 0) last = Math.max(last, (long) (t + 1) << blockBits);
        }
        long[] counts = new long[Math.toIntExact(last)];
        for (int t = 0; t < table.length; t++) {
            long offset = blockOffset(t);
            if (offset == 0) continue;
            byte[] b = block(offset);
            long base = (long) t << blockBits;
            for (int i = 0; i < 1 << blockBits && base + i < counts.length; i++) counts[(int) (base + i)] = decode(b, i, order);
        }
        int n = counts.length;
        while (n > end && counts[n - 1] == 0) n--;
        return n == counts.length ? counts : java.util.Arrays.copyOf(counts, n);
    }

    /** The clusters of the refcount structure itself: the table and the blocks. */
    List<HostRange> structure() throws IOException {
        List<HostRange> out = new ArrayList<>();
        out.add(new HostRange(tableOffset, (long) table.length * 8));
        for (int t = 0; t < table.length; t++) {
            long offset = blockOffset(t);
            if (offset != 0) out.add(new HostRange(offset, clusterSize()));
        }
        return out;
    }

    /** Grows the table to at least {@code entries} by writing a new refcount structure past the end. */
    private void grow(long entries) throws IOException {
        long fileClusters = (file.size() + clusterSize() - 1) >>> clusterBits;
        long[] counts = readAll(fileClusters);
        for (HostRange part : structure()) {
            for (long c = part.offset() >>> clusterBits; c < (part.end() + clusterSize() - 1) >>> clusterBits; c++) counts[(int) c]--;
        }
        replaceWith(counts, Math.max(entries, (long) table.length * 3 / 2));
    }

    /**
     * Writes a complete new refcount structure holding {@code counts} (which must not count the current
     * structure) past every cluster in use, then points the header at it: the switch is one header write,
     * so a crash before it leaves the old structure, after it the new one.
     */
    void replaceWith(long[] counts, long minEntries) throws IOException {
        long fileClusters = (file.size() + clusterSize() - 1) >>> clusterBits;
        Layout l = Layout.plan(file.path(), counts, fileClusters, minEntries, clusterBits, order);
        guard.check(l.tableOffset(), (l.endCluster() << clusterBits) - l.tableOffset(), null, "new refcount structure");
        long[] newTable = l.write(file, counts);
        file.force(false);
        ByteBuffer hdr = ByteBuffer.allocate(12).putLong(0, l.tableOffset()).putInt(8, l.tableClusters());
        file.writeFully(hdr, Qcow2Header.REFCOUNT_TABLE_OFFSET_FIELD);
        file.force(false);
        tableOffset = l.tableOffset();
        table = newTable;
        blockOffsets.replaceWith(newTable);
        blocks.clear();
        freeHint = 0;
    }

    /**
     * Where a fresh refcount structure goes: the table at the first cluster past {@code counts} and
     * {@code minStart}, the blocks right after it, enough of both to cover everything in use plus themselves.
     */
    record Layout(long tableOffset, int tableClusters, long firstBlock, List<Long> blockIndexes, int clusterBits, int order) {

        static Layout plan(java.nio.file.Path path, long[] counts, long minStart, long minEntries, int clusterBits, int order)
                throws ImageException {
            int blockBits = clusterBits + 3 - order;
            long inUse = counts.length;
            while (inUse > 0 && counts[(int) inUse - 1] == 0) inUse--;
            // Past the end of the file too: the old structure must survive until the header points to the new one.
            long start = Math.max(Math.max(inUse, minStart), 1);
            List<Long> used = new ArrayList<>();
            for (long t = 0; t << blockBits < inUse; t++) {
                for (long i = t << blockBits; i < Math.min(inUse, (t + 1) << blockBits); i++) {
                    if (counts[(int) i] != 0) { used.add(t); break; }
                }
            }
            long tableClusters = 1;
            List<Long> blocks = used;
            while (true) {
                long end = start + tableClusters + blocks.size();
                List<Long> need = new ArrayList<>(used);
                for (long t = start >>> blockBits; t <= (end - 1) >>> blockBits; t++) if (!need.contains(t)) need.add(t);
                long entries = Math.max(minEntries, need.get(need.size() - 1) + 1);
                long tc = Math.max(tableClusters, (entries * 8 + (1L << clusterBits) - 1) >>> clusterBits);
                if (tc * (1L << clusterBits) > Qcow2Header.MAX_REFTABLE_BYTES) {
                    throw ImageException.unsupported(path, "the refcount table would exceed qemu's limit of 8 MiB");
                }
                if (tc == tableClusters && need.size() == blocks.size()) { blocks = need; break; }
                tableClusters = tc;
                blocks = need;
            }
            return new Layout(start << clusterBits, (int) tableClusters, start + tableClusters, List.copyOf(blocks), clusterBits, order);
        }

        long endCluster() { return firstBlock + blockIndexes.size(); }

        /** Writes the blocks, then the table; returns the table. */
        long[] write(ImageFile file, long[] counts) throws IOException {
            int blockBits = clusterBits + 3 - order;
            long cs = 1L << clusterBits;
            long[] table = new long[(int) (tableClusters * cs / 8)];
            long firstNew = tableOffset >>> clusterBits;
            for (int k = 0; k < blockIndexes.size(); k++) {
                long t = blockIndexes.get(k);
                byte[] b = new byte[(int) cs];
                for (int i = 0; i < 1 << blockBits; i++) {
                    long c = (t << blockBits) + i;
                    long v = c < counts.length && c < firstNew ? counts[(int) c] : (c >= firstNew && c < endCluster() ? 1 : 0);
                    if (v != 0) encode(b, i, order, v);
                }
                long offset = (firstBlock + k) << clusterBits;
                file.writeFully(ByteBuffer.wrap(b), offset);
                table[(int) t] = offset;
            }
            ByteBuffer tb = ByteBuffer.allocate(table.length * 8);
            tb.asLongBuffer().put(table);
            file.writeFully(tb, tableOffset);
            return table;
        }
    }
}
