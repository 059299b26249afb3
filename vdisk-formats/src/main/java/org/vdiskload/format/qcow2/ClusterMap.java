package org.vdiskload.format.qcow2;

import org.vdiskload.image.LayerRun;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.Checked;
import org.vdiskload.io.DirtyTables;
import org.vdiskload.io.ImageFile;
import org.vdiskload.io.LruCache;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/**
 * Guest offset to host cluster: one L1 table (the active one or a snapshot's) and the L2 tables it
 * points to, cached in a bounded LRU. Every L1 and L2 entry is validated when it is used.
 * The writer changes L1 entries through {@link #setL1}, in the file first, then in memory. L2 entries
 * it changes with {@link #setL2} in memory only (as qemu's L2 cache does): such a table stays pinned
 * in {@link DirtyTables} until the writer's commit ({@link org.vdiskload.io.WriteBack}) has written
 * them, after the data and refcounts those entries point to are on the disk. One flush then orders
 * many allocations.
 */
final class ClusterMap {
    static final long L1_OFFSET_MASK = 0x00fffffffffffe00L;
    static final long L1_RESERVED = 0x7f000000000001ffL;
    /** The L1 entry's copied flag: the L2 table is this image's alone. */
    static final long L1_COPIED = 1L << 63;

    /** One decoded (sub)cluster: its kind and, for DATA, the host offset of the queried guest byte. */
    record Unit(L2Entry.Kind kind, long hostOffset, boolean copied) {
        static final Unit UNALLOCATED = new Unit(L2Entry.Kind.UNALLOCATED, -1, false);
    }

    /** A compressed cluster's descriptor: where its data starts and how many bytes may belong to it. */
    record Compressed(long hostOffset, int length) {}

    private final ImageFile file;
    private final Qcow2Header h;
    private volatile long l1Offset;
    private volatile long[] l1;
    /** L2 tables by file offset: cached, or pinned with changes not yet written. */
    private final DirtyTables<long[]> l2Tables;
    private volatile long fileSize;
    /** Whether DATA runs in clusters with the copied flag may be written in place (set by the writer). */
    private volatile boolean inPlace;
    /** The clusters the L1 table points to (its L2 tables), for the overlap check. */
    private final ClusterSet l2Clusters = new ClusterSet();
    /** Where the metadata lies: data there maps as ENCODED, served by the library. Null until set. */
    private volatile MetadataOverlap overlap;
    private final long clusterMask;
    private final long unitSize;

    private ClusterMap(ImageFile file, Qcow2Header h, long l1Offset, long[] l1, long cacheBytes) throws IOException {
        this.file = file;
        this.h = h;
        this.l1Offset = l1Offset;
        this.l1 = l1;
        this.l2Tables = new DirtyTables<>(LruCache.entriesFor(cacheBytes, h.clusterSize()), DirtyTables.BIG_ENDIAN_LONGS);
        this.fileSize = file.size();
        this.clusterMask = h.clusterSize() - 1;
        this.unitSize = h.extendedL2() ? h.clusterSize() / L2Entry.SUBCLUSTERS : h.clusterSize();
        l2Clusters.replaceWith(java.util.Arrays.stream(l1).map(e -> e & L1_OFFSET_MASK).toArray());
    }

    /** Loads the L1 table at {@code offset} ({@code entries} long, already checked to lie in the file). */
    static ClusterMap load(ImageFile file, Qcow2Header h, long offset, int entries, long cacheBytes) throws IOException {
        long[] l1 = new long[entries];
        if (entries > 0) file.readStruct(offset, (long) entries * 8, ByteOrder.BIG_ENDIAN, "L1 table").asLongBuffer().get(l1);
        return new ClusterMap(file, h, offset, l1, cacheBytes);
    }

    /** The run starting at {@code pos}: (sub)clusters of one kind with contiguous host offsets, within one L2 table. */
    LayerRun map(long pos, long maxLength) throws IOException {
        long perL1 = h.bytesPerL1Entry();
        long tableEnd = (pos / perL1 + 1) * perL1;
        long limit = Math.min(pos + maxLength, tableEnd);
        long[] l2 = l2Table(pos / perL1);
        if (l2 == null) return LayerRun.unallocated(limit - pos);
        Unit first = unit(l2, pos);
        long cur = Math.min((pos / unitSize + 1) * unitSize, limit);
        while (cur < limit) {
            Unit u = unit(l2, cur);
            if (u.kind() != first.kind() || u.copied() != first.copied()) break;
            if (u.kind() == L2Entry.Kind.DATA && u.hostOffset() != first.hostOffset() + (cur - pos)) break;
            cur = Math.min(cur + unitSize, limit);
        }
        long n = cur - pos;
        MetadataOverlap o = overlap;
        if (first.kind() == L2Entry.Kind.DATA && o != null) {
            MetadataOverlap.Hit hit = o.find(first.hostOffset(), n, null);
            if (hit != null) {
                // Never a DATA run over metadata: the data before it, or the cluster itself as the library's to serve.
                long before = hit.clusterOffset() - first.hostOffset();
                if (before <= 0) return LayerRun.encoded(Math.min(n, (pos | clusterMask) + 1 - pos));
                n = before;
            }
        }
        return switch (first.kind()) {
            case UNALLOCATED -> LayerRun.unallocated(n);
            case ZERO -> LayerRun.zero(n);
            case DATA -> inPlace && first.copied() ? LayerRun.dataInPlace(n, file, first.hostOffset())
                    : LayerRun.data(n, file, first.hostOffset());
            case COMPRESSED -> LayerRun.encoded(n);
        };
    }

    /**
     * The host offset of guest byte {@code pos} in a plain data cluster that maps as ENCODED because it lies
     * on metadata ({@link #map}), or -1 where {@code pos} is not in one.
     */
    long dataOverMetadata(long pos) throws IOException {
        long[] l2 = l2Table(pos / h.bytesPerL1Entry());
        if (l2 == null) return -1;
        Unit u = unit(l2, pos);
        return u.kind() == L2Entry.Kind.DATA ? u.hostOffset() : -1;
    }

    /** Data lying on metadata maps as ENCODED from now on. */
    void useOverlapCheck(MetadataOverlap o) {
        overlap = o;
    }

    /** The first of the L2 tables the L1 table points to in {@code [from, to)}, or -1. */
    long firstL2TableIn(long from, long to) {
        return l2Clusters.firstIn(from, to);
    }

    /** The compressed cluster holding {@code pos}, or null if that cluster is not compressed. */
    Compressed compressed(long pos) throws IOException {
        long[] l2 = l2Table(pos / h.bytesPerL1Entry());
        if (l2 == null) return null;
        L2Entry entry = L2Entry.of(l2, l2Index(pos), stride());
        return entry.isCompressed() ? compressed(entry, entryOffset(pos)) : null;
    }

    int stride() {
        return h.extendedL2() ? 2 : 1;
    }

    int l2Index(long pos) {
        return (int) ((pos >>> h.clusterBits()) & ((1L << h.l2Bits()) - 1));
    }

    /** File offset of the L2 entry for {@code pos}, for error messages. */
    private long entryOffset(long pos) {
        long l2Offset = l1[(int) (pos / h.bytesPerL1Entry())] & L1_OFFSET_MASK;
        return l2Offset + (long) l2Index(pos) * h.l2EntryBytes();
    }

    /** The L2 table for L1 index {@code index}, or null where none is allocated. */
    long[] l2Table(long index) throws IOException {
        if (index >= l1.length) return null;
        long entry = l1[(int) index];
        long at = l1Offset + index * 8;
        if ((entry & L1_RESERVED) != 0) {
            throw ImageException.corrupt(file.path(), at, "L1 entry " + index, "reserved bits are set (0x" + Long.toHexString(entry) + ")");
        }
        long offset = entry & L1_OFFSET_MASK;
        if (offset == 0) return null;
        // Checked only where it may fail: the field names cost a string concatenation per map call.
        if ((offset & clusterMask) != 0) Checked.requireAligned(file, at, "L1 entry " + index + " (L2 table offset)", offset, h.clusterSize());
        if (!file.reaches(offset + h.clusterSize())) Checked.requireInFile(file, offset, h.clusterSize(), "L2 table of L1 entry " + index);
        return l2At(offset);
    }

    private long[] readL2(long offset) throws IOException {
        ByteBuffer b = file.readStruct(offset, h.clusterSize(), ByteOrder.BIG_ENDIAN, "L2 table");
        long[] table = new long[(int) (h.clusterSize() / 8)];
        b.asLongBuffer().get(table);
        return table;
    }

    /** Decodes and validates the (sub)cluster holding {@code pos}. */
    private Unit unit(long[] l2, long pos) throws IOException {
        long at = entryOffset(pos);
        L2Entry entry = validated(L2Entry.of(l2, l2Index(pos), stride()), at);
        int unit = (int) ((pos & clusterMask) / unitSize);
        L2Entry.Kind kind = entry.kind(unit, h.extendedL2());
        if (kind != L2Entry.Kind.DATA) return kind == L2Entry.Kind.UNALLOCATED ? Unit.UNALLOCATED : new Unit(kind, -1, false);
        if (entry.hostCluster() >= fileSize) {
            throw ImageException.corrupt(file.path(), at, "L2 entry", "data cluster at " + entry.hostCluster()
                    + " is past the end of the file (" + fileSize + " bytes)");
        }
        return new Unit(kind, entry.hostCluster() + (pos & clusterMask), entry.isCopied());
    }

    /**
     * {@code entry}, read at {@code at}, if it may be used: no reserved bit set (the zero flag is reserved in
     * version 2 and with extended entries), a cluster-aligned host offset, a compressed cluster's data past the
     * header and starting in the file, and a subcluster bitmap that agrees with the descriptor. Otherwise the
     * image is corrupt. The map and the writer both read entries through here.
     */
    L2Entry validated(L2Entry entry, long at) throws ImageException {
        long d = entry.descriptor();
        if (entry.isCompressed()) {
            if (h.extendedL2() && entry.bitmap() != 0) {
                throw ImageException.corrupt(file.path(), at + 8, "L2 bitmap", "a compressed cluster has a non-zero subcluster bitmap");
            }
            compressed(entry, at);
            return entry;
        }
        long reserved = L2Entry.RESERVED | (h.version() == 2 || h.extendedL2() ? L2Entry.ZERO : 0);
        if ((d & reserved) != 0) {
            throw ImageException.corrupt(file.path(), at, "L2 entry", "reserved bits are set (0x" + Long.toHexString(d) + ")");
        }
        long offset = entry.hostCluster();
        if ((offset & clusterMask) != 0) {
            throw ImageException.corrupt(file.path(), at, "L2 entry", "cluster offset 0x" + Long.toHexString(offset)
                    + " is not aligned to the cluster size " + h.clusterSize());
        }
        if (h.extendedL2()) {
            if (offset == 0 && entry.allocatedSubclusters() != 0) {
                throw ImageException.corrupt(file.path(), at + 8, "L2 bitmap", "an unallocated cluster has subclusters marked allocated");
            }
            if ((entry.allocatedSubclusters() & entry.zeroSubclusters()) != 0) {
                throw ImageException.corrupt(file.path(), at + 8, "L2 bitmap", "subclusters are marked both allocated and zero");
            }
        }
        return entry;
    }

    /** A compressed entry's data: where it starts and how many bytes may belong to it (validated). */
    Compressed compressed(L2Entry entry, long at) throws ImageException {
        if (entry.isCopied()) {
            throw ImageException.corrupt(file.path(), at, "L2 entry", "a compressed cluster has the copied flag set");
        }
        long offset = entry.compressedOffset(h.clusterBits());
        long sectors = entry.compressedSectors(h.clusterBits());
        if (offset < h.clusterSize()) {
            throw ImageException.corrupt(file.path(), at, "L2 entry", "compressed data overlaps the header (offset " + offset + ")");
        }
        if (offset >= fileSize) {
            throw ImageException.corrupt(file.path(), at, "L2 entry", "compressed data at " + offset
                    + " is past the end of the file (" + fileSize + " bytes)");
        }
        return new Compressed(offset, (int) (sectors * 512 - (offset & 511)));
    }

    // ---- For the writer (which holds the layer's metadata lock). ----

    long l1Offset() { return l1Offset; }

    /** From now on, clusters with the copied flag map as writable in place (no metadata change needed). */
    void allowInPlace() {
        inPlace = true;
    }
    long[] l1() { return l1; }

    /** The file grew to {@code size} bytes: data there is no longer "past the end". */
    void fileGrew(long size) {
        if (size > fileSize) fileSize = size;
    }

    /** The L1 entry for {@code index}, with its reserved bits checked. */
    long l1Entry(int index) throws ImageException {
        long entry = l1[index];
        if ((entry & L1_RESERVED) != 0) {
            throw ImageException.corrupt(file.path(), l1Offset + (long) index * 8, "L1 entry " + index,
                    "reserved bits are set (0x" + Long.toHexString(entry) + ")");
        }
        return entry;
    }

    void setL1(int index, long entry) throws IOException {
        file.writeFully(ByteBuffer.allocate(8).putLong(0, entry), l1Offset + (long) index * 8);
        long old = l1[index] & L1_OFFSET_MASK;
        if (old != 0) l2Clusters.remove(old);
        if ((entry & L1_OFFSET_MASK) != 0) l2Clusters.add(entry & L1_OFFSET_MASK);
        l1[index] = entry;
    }

    /** Switches to a new L1 table (grown by resize), already written at {@code offset}, with the same L2 tables. */
    void replaceL1(long offset, long[] table) {
        l1 = table;
        l1Offset = offset;
    }

    /** The L2 table at {@code offset} (a cluster-aligned offset in the file), as the writer last changed it. */
    long[] l2At(long offset) throws IOException {
        return l2Tables.get(offset, this::readL2);
    }

    /** A table just written at {@code offset}. */
    void putL2(long offset, long[] table) {
        l2Tables.put(offset, table);
    }

    /** Changes standard (not extended) L2 entries {@code index ...} in memory, like {@link #setL2}. */
    void setL2Run(long l2Offset, long[] table, int index, long[] entries) {
        if (stride() != 1) throw new IllegalStateException("extended L2 entries are changed one at a time");
        System.arraycopy(entries, 0, table, index, entries.length);
        l2Tables.changed(l2Offset, table, 0, index, index + entries.length);
    }

    /**
     * Changes L2 entry {@code index} (and its subcluster bitmap with extended L2 entries) in memory; a commit
     * ({@link #unwritten}, then {@link #written}) writes it.
     */
    void setL2(long l2Offset, long[] table, int index, long entry, long bitmap) {
        int stride = stride();
        if (stride == 2) {
            // Readers look at the entry before the bitmap: the bitmap may only say "allocated" once the entry has an offset.
            if ((entry & L2Entry.OFFSET_MASK) != 0) { table[index * 2] = entry; table[index * 2 + 1] = bitmap; }
            else { table[index * 2 + 1] = bitmap; table[index * 2] = entry; }
        } else {
            table[index] = entry;
        }
        l2Tables.changed(l2Offset, table, 0, index * stride, (index + 1) * stride);
    }

    /** How many L2 tables have changes not yet written (each pinned in memory until then). */
    int unwrittenTables() {
        return l2Tables.pinnedCount();
    }

    /** Copies of every changed L2 entry, to write once what they point to is on the disk (under the writer's lock). */
    List<DirtyTables.Copy> unwritten() {
        return l2Tables.take();
    }

    /** The copies were written: tables not changed since leave memory's pinned set (under the writer's lock). */
    void written(List<DirtyTables.Copy> copies) {
        l2Tables.written(copies);
    }

    /** Writes every changed L2 entry now, for a repair (under the writer's lock, nothing else waiting). */
    void writeUnwritten() throws IOException {
        List<DirtyTables.Copy> copies = unwritten();
        DirtyTables.write(file, copies);
        written(copies);
    }
}
