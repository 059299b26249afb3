package org.vdiskload.format.qcow2;

import org.vdiskload.image.CompressedUnit;
import org.vdiskload.image.Beneath;
import org.vdiskload.image.LayerRun;
import org.vdiskload.image.MapChangeListener;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.DirtyTables;
import org.vdiskload.io.ImageFile;
import org.vdiskload.io.WriteBack;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

import static org.vdiskload.format.qcow2.ClusterMap.L1_OFFSET_MASK;

/**
 * Writes into the active layer of a qcow2 image (block/qcow2-cluster.c, qcow2-refcount.c):
 * clusters are allocated from the refcounts (freed ones reused, else past the end), and every
 * change is ordered so a crash or power cut leaks space at worst: new data and its refcount before
 * the L2 entry pointing at it, a new L2 table (and its refcount) before the L1 entry, an entry removed
 * before the refcount of what it pointed to drops. Each "before" is a flush of the file, not only an
 * order of writes: after a power cut the page cache may have written back any subset of what was not
 * flushed (see PowerCutTest). So that allocating writes do not each pay a flush, L2 entries wait in
 * memory ({@link ClusterMap#setL2}) and refcount drops in {@link #unwrittenFrees}; a commit
 * ({@link WriteBack}, {@link #unwritten}) writes them in order, at every {@link #flush} and whenever too
 * many wait. As with a disk's write cache, what was written since the last flush may be lost; what was
 * flushed never is. With metadata write-through, every write commits its L2 entries before it returns
 * (refcount drops still wait: a lost one is a leak), so a killed process loses no completed write.
 * Writes to a cluster this layer owns alone (copied flag) go straight to the file, without the lock.
 */
final class Qcow2Writer {
    private final ImageFile file;
    private final Qcow2Header header;
    private final ClusterMap clusters;
    private final Refcounts refcounts;
    private final Object lock = new Object();
    private final int clusterBits;
    private final int clusterSize;
    /** Bytes per allocation unit: the cluster, or a subcluster with extended L2 entries. */
    private final int unit;
    private final int units;
    private volatile long size;
    private long incompatible;
    private long autoclear;
    private boolean started;
    private boolean markedDirty;
    /** Next free byte after the last compressed cluster written, in a cluster we hold; 0 if none. */
    private long compressedTail;
    /** The clusters of persistent bitmaps, freed by the first write (which makes them stale). */
    private List<HostRange> bitmaps;
    /** {offset, length} ranges to drop a reference from once the entries that pointed at them are on the disk. */
    private final List<HostRange> unwrittenFrees = new ArrayList<>();
    /** L2 tables pinned with unwritten entries (about 8 MiB of them) before a commit writes them. */
    private final int maxUnwrittenTables;
    /** Commits what waits in memory; counts each change (under {@link #lock}). */
    private final WriteBack writeBack;
    /** Where the metadata lies, for the check before every write; set once at open. */
    private volatile MetadataOverlap overlap;
    /** A write found the image corrupt: no more writes (a v2 image has no corrupt bit to keep this in). */
    private volatile boolean corruptFound;
    /** Told of every cluster whose L2 entry changes. */
    private volatile MapChangeListener listener = MapChangeListener.NONE;

    Qcow2Writer(ImageFile file, Qcow2Header header, ClusterMap clusters, Refcounts refcounts, List<HostRange> bitmaps) {
        this.bitmaps = bitmaps;
        this.file = file;
        this.header = header;
        this.clusters = clusters;
        this.refcounts = refcounts;
        this.clusterBits = header.clusterBits();
        this.clusterSize = (int) header.clusterSize();
        this.units = header.extendedL2() ? L2Entry.SUBCLUSTERS : 1;
        this.unit = clusterSize / units;
        this.maxUnwrittenTables = Math.max(2, (8 << 20) / clusterSize);
        this.size = header.size();
        this.incompatible = header.incompatibleFeatures();
        this.autoclear = header.autoclearFeatures();
        this.writeBack = new WriteBack(file, WriteBack.FormatLock.of(lock), this::unwritten);
        // With autoclear bits to clear (stale bitmaps), the first write must come through beginWrite().
        if (header.version() < 3 || autoclear == 0) clusters.allowInPlace();
    }

    long size() { return size; }
    Object lock() { return lock; }
    Refcounts refcounts() { return refcounts; }
    List<HostRange> bitmaps() { return bitmaps; }
    boolean dirty() { return (incompatible & Qcow2Header.INCOMPAT_DIRTY) != 0; }
    void setMapChangeListener(MapChangeListener l) { listener = l; }

    /** Checks every write against {@code o} from now on, the refcount structure's own writes included. */
    void useOverlapCheck(MetadataOverlap o) {
        overlap = o;
        refcounts.useGuard(this::guard);
    }

    /** The bitmap directory while the bitmaps live, else null. */
    HostRange bitmapDirectory() {
        List<HostRange> b = bitmaps;
        return b.isEmpty() ? null : b.get(0);
    }

    /**
     * Fails, and marks the image corrupt, if {@code [offset, offset+length)} lies on metadata other than
     * {@code writing} (qemu's qcow2_pre_write_overlap_check): nothing is written there.
     */
    private void guard(long offset, long length, MetadataOverlap.Structure writing, String what) throws IOException {
        MetadataOverlap o = overlap;
        MetadataOverlap.Hit hit = o == null ? null : o.find(offset, length, writing);
        if (hit == null) return;
        throw corrupted(ImageException.corrupt(file.path(), offset, what, "refusing to write " + length + " bytes at " + offset
                + ": it would overwrite " + hit.describe()));
    }

    /**
     * A write path found the image corrupt: the header's corrupt bit is set (a version 3 image; qemu does the
     * same, qcow2_signal_corruption), so no one writes it again until a repair, and this open writes no more.
     * Returns {@code e} to throw.
     */
    private ImageException corrupted(ImageException e) {
        if (e.kind() != ImageException.Kind.CORRUPT || corruptFound) return e;
        corruptFound = true;
        if (header.version() < 3) return e;
        try {
            synchronized (lock) {
                setIncompatible(incompatible | Qcow2Header.INCOMPAT_CORRUPT);
            }
            file.force(false);
        } catch (IOException marking) {
            e.addSuppressed(marking);
        }
        return e;
    }

    /** Refuses writes once the image is known corrupt. */
    private void requireConsistent() throws ImageException {
        if (corruptFound || (incompatible & Qcow2Header.INCOMPAT_CORRUPT) != 0) {
            throw ImageException.unsupported(file.path(), "the image is marked corrupt; 'vdiskload check -r all'"
                    + " (or 'qemu-img check -r all') repairs it");
        }
    }

    /** After a repair that left no corruption: the corrupt bit, if set, is cleared (and writes may resume). */
    void markConsistent() throws IOException {
        synchronized (lock) {
            if ((incompatible & Qcow2Header.INCOMPAT_CORRUPT) == 0) return;
            file.force(false);
            setIncompatible(incompatible & ~Qcow2Header.INCOMPAT_CORRUPT);
            file.force(false);
            corruptFound = false;
        }
    }

    /** With {@code on}, every write commits its metadata before it returns (see {@link WriteBack}). */
    void setMetadataWriteThrough(boolean on) throws IOException {
        writeBack.setWriteThrough(on);
    }

    /** What the first write does to the image as a whole ({@link #beginWrite}), now. */
    void prepareForWrites() throws IOException {
        synchronized (lock) {
            beginWrite();
        }
    }

    // ---- Guest writes ----

    void write(ByteBuffer src, long pos, Beneath beneath) throws IOException {
        requireConsistent();
        try {
            writeChecked(src, pos, beneath);
        } catch (ImageException e) {
            throw corrupted(e);
        }
    }

    private void writeChecked(ByteBuffer src, long pos, Beneath beneath) throws IOException {
        long ticket = 0;
        while (src.hasRemaining()) {
            LayerRun run = clusters.map(pos, src.remaining());
            int n;
            if (run.inPlace()) {
                n = (int) run.length(); // the map checked it lies clear of the metadata
                file.writeFully(src.slice(src.position(), n), run.fileOffset());
            } else {
                boolean full;
                synchronized (lock) {
                    beginWrite();
                    long before = writeBack.ticket();
                    if (units == 1 && run.status() == LayerRun.Status.UNALLOCATED && (pos & (clusterSize - 1)) == 0
                            && Math.min(run.length(), src.remaining()) >= clusterSize) {
                        int whole = (int) (Math.min(run.length(), src.remaining()) / clusterSize);
                        n = writeNewClusters(src.slice(src.position(), whole * clusterSize), pos, beneath);
                    } else {
                        n = (int) Math.min(src.remaining(), clusterSize - (pos & (clusterSize - 1)));
                        writeCluster(src.slice(src.position(), n), pos, beneath);
                    }
                    if (writeBack.ticket() != before) ticket = writeBack.ticket();
                    full = full();
                }
                if (full) writeBack.commit(true);
            }
            src.position(src.position() + n);
            pos += n;
        }
        writeBack.settle(ticket);
    }

    /**
     * Writes whole clusters at {@code pos} (cluster-aligned, inside one L2 table) that are still
     * unallocated into as many new, contiguous clusters: one data write and one L2 write for the run
     * instead of a cluster at a time (convert writes megabytes into a new image); the entries wait in
     * memory like every other. Nothing beneath shows through a cluster written whole, so no backing
     * data is read. Returns the bytes written: the run stops at the first cluster allocated meanwhile,
     * which the caller writes the usual way.
     */
    private int writeNewClusters(ByteBuffer data, long pos, Beneath beneath) throws IOException {
        Slot s = slot(pos);
        int max = data.remaining() / clusterSize;
        int count = 0;
        while (count < max && s.table[s.index + count] == 0) count++;
        if (count == 0) {
            int n = Math.min(clusterSize, data.remaining());
            writeCluster(data.slice(data.position(), n), pos, beneath);
            return n;
        }
        long at = allocate(count);
        file.writeFully(data.slice(data.position(), count * clusterSize), at);
        clusters.fileGrew(at + (long) count * clusterSize);
        long[] entries = new long[count];
        for (int k = 0; k < count; k++) entries[k] = (at + (long) k * clusterSize) | L2Entry.COPIED;
        clusters.setL2Run(s.l2Offset, s.table, s.index, entries);
        writeBack.changed();
        listener.changed(s.guest, (long) count * clusterSize);
        return count * clusterSize;
    }

    /**
     * One entry of an L2 table that this layer may change (its L2 table has the copied flag), for the
     * cluster at guest offset {@code guest}.
     */
    private record Slot(long guest, long l2Offset, long[] table, int index, L2Entry entry) {}

    private Slot slot(long pos) throws IOException {
        long l2Offset = writableL2((int) (pos / header.bytesPerL1Entry()));
        long[] table = clusters.l2At(l2Offset);
        int index = clusters.l2Index(pos);
        int stride = clusters.stride();
        L2Entry entry = clusters.validated(L2Entry.of(table, index, stride), l2Offset + (long) index * header.l2EntryBytes());
        return new Slot(pos & -(long) clusterSize, l2Offset, table, index, entry);
    }

    /** Changes the slot's L2 entry (in memory, see {@link ClusterMap#setL2}): its cluster maps anew. */
    private void setL2(Slot s, long entry, long bitmap) {
        clusters.setL2(s.l2Offset, s.table, s.index, entry, bitmap);
        writeBack.changed();
        listener.changed(s.guest, clusterSize);
    }

    /**
     * The L2 table for L1 entry {@code i}, allocated (zeros) or copied (when a snapshot shares it)
     * first: table written, then the L1 entry, then the shared table's refcount dropped.
     */
    private long writableL2(int i) throws IOException {
        long entry = clusters.l1Entry(i);
        long old = entry & L1_OFFSET_MASK;
        if (old != 0) requireCluster(old, clusters.l1Offset() + (long) i * 8, "L1 entry " + i);
        if (old != 0 && (entry & ClusterMap.L1_COPIED) != 0) return old;
        long[] table = old == 0 ? new long[clusterSize / 8] : clusters.l2At(old).clone();
        long at = allocate(1);
        ByteBuffer b = ByteBuffer.allocate(clusterSize);
        b.asLongBuffer().put(table);
        file.writeFully(b, at);
        clusters.fileGrew(at + clusterSize);
        clusters.putL2(at, table);
        file.force(false); // the table and its refcount are on the disk before the L1 entry points at them
        guard(clusters.l1Offset() + (long) i * 8, 8, MetadataOverlap.Structure.ACTIVE_L1, "L1 entry " + i);
        clusters.setL1(i, at | L2Entry.COPIED);
        if (old != 0) free(old, clusterSize);
        return at;
    }

    private void requireCluster(long offset, long at, String field) throws IOException {
        if ((offset & (clusterSize - 1)) != 0 || offset < clusterSize || !file.reaches(offset + clusterSize)) {
            throw ImageException.corrupt(file.path(), at, field, "points to " + offset
                    + ", which is unaligned, in the header or past the end of the file");
        }
    }

    /** Allocates {@code count} contiguous clusters (checked to hold no metadata, see {@link Refcounts#allocate}). */
    private long allocate(long count) throws IOException {
        return refcounts.allocate(count) << clusterBits;
    }

    /**
     * Drops one reference to every cluster of {@code [offset, offset+length)} at a commit of everything,
     * once the entry that no longer points at them is on the disk: a refcount dropped while the old entry
     * may still be there would let the cluster be reused under it after a power cut.
     */
    private void free(long offset, long length) throws IOException {
        unwrittenFrees.add(new HostRange(offset, length));
        writeBack.changed();
    }

    /** Whether what waits in memory is as much as it may grow (under the lock): then it is committed at once. */
    private boolean full() {
        return clusters.unwrittenTables() > maxUnwrittenTables || unwrittenFrees.size() > 4096;
    }

    /**
     * What waits in memory, for a commit (under the lock), in the order a power cut needs: the commit flushes
     * (the data and refcounts the new entries point to), writes the L2 entries and, with {@code all}, flushes
     * again and drops the refcounts of what they no longer use.
     */
    private WriteBack.Batch unwritten(boolean all) {
        List<DirtyTables.Copy> entries = clusters.unwritten();
        List<HostRange> frees = all ? List.copyOf(unwrittenFrees) : List.of();
        if (all) unwrittenFrees.clear();
        if (entries.isEmpty() && frees.isEmpty()) return null;
        return new WriteBack.Batch() {
            @Override
            public void write() throws IOException {
                for (DirtyTables.Copy c : entries) {
                    guard(c.offset(), c.bytes().remaining(), MetadataOverlap.Structure.ACTIVE_L2, "L2 entries");
                }
                DirtyTables.write(file, entries);
            }

            @Override
            public void written() {
                clusters.written(entries);
            }

            @Override
            public boolean hasFollowUp() {
                return !frees.isEmpty();
            }

            @Override
            public void durable() throws IOException {
                for (HostRange f : frees) {
                    long first = f.offset() >>> clusterBits, last = (f.end() - 1) >>> clusterBits;
                    refcounts.add(first, last - first + 1, -1);
                }
                compressedTail = 0; // a freed cluster may be reused for anything
            }
        };
    }

    /** What unit {@code u} of the slot's cluster holds. */
    private L2Entry.Kind kind(Slot s, int u) {
        return s.entry.kind(u, units > 1);
    }

    private long dataOffset(Slot s) throws IOException {
        long at = s.l2Offset + (long) s.index * header.l2EntryBytes();
        long offset = s.entry.hostCluster(); // aligned: the slot's entry was validated
        if (offset != 0 && !file.reaches(offset + 1)) {
            throw ImageException.corrupt(file.path(), at, "L2 entry", "data cluster at " + offset + " is past the end of the file");
        }
        return offset;
    }

    private static long mask(int from, int to) {
        return to - from >= 64 ? -1L : ((1L << (to - from)) - 1) << from;
    }

    /** Writes {@code data} at {@code pos}, all inside one cluster, allocating or copying the cluster as needed. */
    private void writeCluster(ByteBuffer data, long pos, Beneath beneath) throws IOException {
        Slot slot = slot(pos);
        long base = pos & ~(long) (clusterSize - 1);
        int from = (int) (pos - base), to = from + data.remaining();
        int firstUnit = from / unit, endUnit = (to + unit - 1) / unit;
        long touched = mask(firstUnit, endUnit);
        boolean compressed = slot.entry.isCompressed();
        long offset = compressed ? 0 : dataOffset(slot);
        if (!compressed && offset != 0 && slot.entry.isCopied()) {
            // Ours alone: fill what the touched units lack, write in place, then mark them allocated.
            ByteBuffer buf = ByteBuffer.allocate((endUnit - firstUnit) * unit);
            for (int u = firstUnit; u < endUnit; u++) {
                if (u * unit >= from && (u + 1) * unit <= to) continue;
                fill(buf, (u - firstUnit) * unit, kind(slot, u), base + (long) u * unit, offset + (long) u * unit, null, beneath);
            }
            buf.put(from - firstUnit * unit, data, data.position(), data.remaining());
            guard(offset + (long) firstUnit * unit, buf.capacity(), null, "guest data");
            file.writeFully(buf, offset + (long) firstUnit * unit);
            long entry = slot.entry.descriptor() & ~L2Entry.ZERO;
            long bitmap = units > 1 ? (slot.entry.bitmap() | touched) & ~(touched << 32) : 0;
            if (entry != slot.entry.descriptor() || bitmap != slot.entry.bitmap()) setL2(slot, entry, bitmap);
            return;
        }
        // A new cluster: copy what must survive from the old one (compressed, shared) or from beneath.
        long needed = units == 1 || compressed ? mask(0, units)
                : offset != 0 ? touched | slot.entry.allocatedSubclusters() : touched;
        boolean zerosAround = !compressed && onlyZerosAround(slot, needed, from, to, beneath);
        long at = zerosAround ? allocate(1) : -1;
        if (zerosAround && !file.reaches(at + 1)) {
            // Past the end of the file the new cluster reads as zeros already: write the data alone
            // (a random 4 KiB write into a 64 KiB cluster writes 4 KiB, not 64, as qemu's does).
            file.writeFully(data.duplicate(), at + from);
        } else {
            byte[] old = compressed ? decompress(slot) : null;
            ByteBuffer buf = ByteBuffer.allocate(clusterSize);
            int lo = Long.numberOfTrailingZeros(needed), hi = 64 - Long.numberOfLeadingZeros(needed);
            for (int u = lo; u < hi; u++) {
                if ((needed >>> u & 1) == 0 || (u * unit >= from && (u + 1) * unit <= to)) continue;
                fill(buf, u * unit, kind(slot, u), base + (long) u * unit, offset + (long) u * unit, old, beneath);
            }
            buf.put(from, data, data.position(), data.remaining());
            if (at < 0) at = allocate(1);
            file.writeFully(buf.slice(lo * unit, (hi - lo) * unit), at + (long) lo * unit);
        }
        extendToCluster(at);
        long zeros = compressed ? 0 : slot.entry.zeroSubclusters() & ~needed;
        setL2(slot, at | L2Entry.COPIED, units > 1 ? needed | zeros << 32 : 0);
        release(slot);
    }

    /** Whether every unit of {@code needed} that {@code [from, to)} does not cover whole reads as zeros. */
    private boolean onlyZerosAround(Slot slot, long needed, int from, int to, Beneath beneath) {
        for (int u = Long.numberOfTrailingZeros(needed); u < 64 - Long.numberOfLeadingZeros(needed); u++) {
            if ((needed >>> u & 1) == 0 || (u * unit >= from && (u + 1) * unit <= to)) continue;
            L2Entry.Kind k = kind(slot, u);
            if (k != L2Entry.Kind.ZERO && (k != L2Entry.Kind.UNALLOCATED || beneath.exists())) return false;
        }
        return true;
    }

    /** Keeps the file covering a whole allocated cluster, so no reference points past its end. */
    private void extendToCluster(long at) throws IOException {
        if (!file.reaches(at + clusterSize)) file.writeFully(ByteBuffer.allocate(1), at + clusterSize - 1);
        clusters.fileGrew(at + clusterSize);
    }

    /** Drops what an L2 entry that was just replaced pointed to. */
    private void release(Slot s) throws IOException {
        if (s.entry.isCompressed()) {
            ClusterMap.Compressed c = clusters.compressed(s.entry, s.l2Offset + (long) s.index * header.l2EntryBytes());
            free(c.hostOffset(), c.length());
        } else if (s.entry.hostCluster() != 0) {
            free(s.entry.hostCluster(), clusterSize);
        }
    }

    /** Fills one unit of {@code buf} at {@code at} with what it reads as now. */
    private void fill(ByteBuffer buf, int at, L2Entry.Kind kind, long guest, long host, byte[] decompressed, Beneath beneath) throws IOException {
        ByteBuffer dst = buf.slice(at, unit);
        switch (kind) {
            case DATA -> file.readPadded(dst, host);
            case COMPRESSED -> dst.put(decompressed, at, unit);
            case UNALLOCATED -> beneath.read(dst, guest);
            case ZERO -> { } // already zeros
        }
    }

    private byte[] decompress(Slot s) throws IOException {
        ClusterMap.Compressed c = clusters.compressed(s.entry, s.l2Offset + (long) s.index * header.l2EntryBytes());
        ByteBuffer in = ByteBuffer.allocate(c.length());
        file.readPadded(in, c.hostOffset());
        return Compression.decompress(header.compressionType(), in.array(), clusterSize, file, c.hostOffset());
    }

    // ---- Zeroing ----

    void writeZeroes(long pos, long length, boolean mayUnmap, Beneath beneath) throws IOException {
        requireConsistent();
        try {
            writeZeroesChecked(pos, length, mayUnmap, beneath);
        } catch (ImageException e) {
            throw corrupted(e);
        }
    }

    private void writeZeroesChecked(long pos, long length, boolean mayUnmap, Beneath beneath) throws IOException {
        long end = pos + length;
        long ticket = 0;
        while (pos < end) {
            boolean full = false;
            synchronized (lock) {
                beginWrite();
                long before = writeBack.ticket();
                while (pos < end && !full) {
                    long base = pos & ~(long) (clusterSize - 1);
                    long n = Math.min(end, base + clusterSize) - pos;
                    zeroCluster(pos, (int) n, mayUnmap, beneath);
                    full = full();
                    pos += n;
                }
                if (writeBack.ticket() != before) ticket = writeBack.ticket();
            }
            if (full) writeBack.commit(true);
        }
        writeBack.settle(ticket);
    }

    private void zeroCluster(long pos, int n, boolean mayUnmap, Beneath beneath) throws IOException {
        long base = pos & ~(long) (clusterSize - 1);
        int from = (int) (pos - base), to = from + n;
        if (base + to >= size) to = clusterSize; // the disk ends inside this cluster: the rest is never read
        long[] table = clusters.l2Table(pos / header.bytesPerL1Entry());
        if (table == null && !beneath.exists()) return; // unallocated, and nothing beneath: zeros already
        if (units > 1) {
            zeroSubclusters(pos, from, to, mayUnmap, beneath);
            return;
        }
        Slot slot = slot(pos);
        boolean compressed = slot.entry.isCompressed();
        long offset = compressed ? 0 : dataOffset(slot);
        boolean ownData = !compressed && offset != 0 && slot.entry.isCopied();
        boolean readsZero = (!compressed && slot.entry.isZeroFlagged()) || (slot.entry.descriptor() == 0 && !beneath.exists());
        if (from != 0 || to != clusterSize) {
            if (!readsZero) writeCluster(ByteBuffer.allocate(Math.min(n, clusterSize - from)), pos, beneath);
            return;
        }
        if (header.version() >= 3) {
            if (readsZero && (offset == 0 || !mayUnmap)) return;
            long entry = ownData && !mayUnmap ? offset | L2Entry.COPIED | L2Entry.ZERO : L2Entry.ZERO;
            setL2(slot, entry, 0);
            if (entry == L2Entry.ZERO) release(slot);
        } else if (!beneath.exists() && !(ownData && !mayUnmap)) {
            if (slot.entry.descriptor() == 0) return;
            setL2(slot, 0, 0);
            release(slot);
        } else {
            writeCluster(ByteBuffer.allocate(Math.min(n, clusterSize)), pos, beneath);
        }
    }

    /** Extended L2: whole subclusters get the zero bit; partial ones are written as zeros. */
    private void zeroSubclusters(long pos, int from, int to, boolean mayUnmap, Beneath beneath) throws IOException {
        long base = pos - from;
        int firstWhole = (from + unit - 1) / unit, endWhole = to / unit;
        Slot slot = slot(pos);
        for (int[] part : new int[][] {{from, Math.min(to, firstWhole * unit)}, {Math.max(from, Math.max(firstWhole, endWhole) * unit), to}}) {
            if (part[0] >= part[1]) continue;
            L2Entry.Kind k = kind(slot, part[0] / unit);
            if (k == L2Entry.Kind.ZERO || (k == L2Entry.Kind.UNALLOCATED && !beneath.exists())) continue;
            writeCluster(ByteBuffer.allocate(part[1] - part[0]), base + part[0], beneath);
            slot = slot(pos);
        }
        if (firstWhole >= endWhole) return;
        long full = mask(firstWhole, endWhole);
        boolean compressed = slot.entry.isCompressed();
        long offset = compressed ? 0 : dataOffset(slot);
        boolean own = !compressed && (offset == 0 || slot.entry.isCopied());
        long all = mask(0, units);
        if (full == all && (mayUnmap || !own || offset == 0)) {
            setL2(slot, 0, all << 32);
            release(slot);
        } else if (own) {
            long alloc = slot.entry.allocatedSubclusters() & ~full;
            long zero = (slot.entry.zeroSubclusters() | full) & all;
            if (mayUnmap && alloc == 0 && offset != 0) {
                setL2(slot, 0, zero << 32);
                release(slot);
            } else {
                setL2(slot, slot.entry.descriptor(), alloc | zero << 32);
            }
        } else {
            writeCluster(ByteBuffer.allocate((endWhole - firstWhole) * unit), base + (long) firstWhole * unit, beneath);
        }
    }

    // ---- Compressed clusters (convert -c) ----

    /** Compresses one cluster (a short last one is compressed zero-padded, as qemu does). */
    CompressedUnit compress(ByteBuffer data, long pos) {
        byte[] in = new byte[clusterSize];
        int n = data.remaining();
        data.duplicate().get(in, 0, n);
        byte[] packed = Compression.compress(header.compressionType(), in, clusterSize - 1);
        return packed != null ? CompressedUnit.packed(pos, packed) : CompressedUnit.plain(pos, ByteBuffer.wrap(in, 0, n));
    }

    void writeCompressed(CompressedUnit unit) throws IOException {
        requireConsistent();
        try {
            writeCompressedChecked(unit);
        } catch (ImageException e) {
            throw corrupted(e);
        }
    }

    private void writeCompressedChecked(CompressedUnit unit) throws IOException {
        long pos = unit.pos();
        byte[] packed = unit.packed();
        boolean full;
        long ticket;
        synchronized (lock) {
            beginWrite();
            if (packed == null) {
                writeCluster(unit.plain().duplicate(), pos, NothingBeneath.NONE);
            } else {
                Slot s = slot(pos);
                long at = placeCompressed(packed.length);
                file.writeFully(ByteBuffer.wrap(packed), at);
                clusters.fileGrew(at + packed.length);
                setL2(s, L2Entry.compressed(at, packed.length, clusterBits).descriptor(), 0);
                release(s);
            }
            full = full();
            ticket = writeBack.ticket();
        }
        if (full) writeBack.commit(true);
        writeBack.settle(ticket);
    }

    /** Packs compressed data after the previous one, as qemu does; each host cluster touched gains a reference. */
    private long placeCompressed(int length) throws IOException {
        long tail = compressedTail;
        // A cluster whose refcount is at its maximum (1-bit refcounts) cannot be shared.
        if (tail != 0 && refcounts.get(tail >>> clusterBits) >= refcounts.maxRefcount()) tail = 0;
        long at;
        if (tail != 0 && (tail & (clusterSize - 1)) + length <= clusterSize) {
            refcounts.add(tail >>> clusterBits, 1, 1);
            at = tail;
        } else {
            long fresh = allocate(1);
            if (tail != 0 && fresh == (tail | (clusterSize - 1)) + 1) {
                refcounts.add(tail >>> clusterBits, 1, 1);
                at = tail;
            } else {
                at = fresh;
            }
        }
        compressedTail = ((at + length) & (clusterSize - 1)) == 0 ? 0 : at + length;
        return at;
    }

    /** Nothing beneath: a target of convert is opened without its backing chain. */
    private enum NothingBeneath implements Beneath {
        NONE;

        @Override
        public void read(ByteBuffer dst, long pos) {
            while (dst.hasRemaining()) dst.put((byte) 0);
        }

        @Override
        public boolean exists() {
            return false;
        }
    }

    // ---- Header state ----

    /**
     * Before the first change: clear autoclear bits we do not maintain (qemu then ignores the bitmaps,
     * whose clusters are freed after the bit is cleared); with lazy refcounts, set the dirty bit.
     */
    private void beginWrite() throws IOException {
        if (started) return;
        if (header.version() >= 3 && autoclear != 0) {
            file.writeFully(ByteBuffer.allocate(8), Qcow2Header.AUTOCLEAR_FIELD);
            autoclear = 0;
            for (HostRange b : bitmaps) free(b.offset(), b.length());
            bitmaps = List.of();
            clusters.allowInPlace();
            listener.changed(0, size); // every cluster of ours maps in place from now on
        }
        if (header.lazyRefcounts() && !dirty()) {
            setIncompatible(incompatible | Qcow2Header.INCOMPAT_DIRTY);
            file.force(false);
            markedDirty = true;
        }
        started = true;
    }

    private void setIncompatible(long bits) throws IOException {
        file.writeFully(ByteBuffer.allocate(8).putLong(0, bits), Qcow2Header.INCOMPATIBLE_FIELD);
        incompatible = bits;
    }

    /** After a repair of a dirty image: refcounts are right again. */
    void markClean() throws IOException {
        if (!dirty()) return;
        file.force(false);
        setIncompatible(incompatible & ~Qcow2Header.INCOMPAT_DIRTY);
        file.force(false);
        markedDirty = false;
    }

    void flush() throws IOException {
        try {
            writeBack.commit(true);
        } catch (ImageException e) {
            throw corrupted(e);
        }
        file.force(true);
    }

    /** A clean close: everything durable, then the dirty bit cleared. */
    void close() throws IOException {
        synchronized (lock) {
            if (!started) return;
        }
        flush();
        synchronized (lock) {
            if (markedDirty) markClean();
        }
    }

    // ---- Preallocation (create) ----

    /**
     * Allocates every cluster of the disk: per L2 table, its data clusters in one contiguous run, then
     * the table pointing at them. {@code falloc} reserves their space, {@code full} writes zeros; with a
     * backing file (extended L2 only) the subclusters stay unallocated, so the backing file shows through.
     */
    void preallocate(String mode, boolean backing) throws IOException {
        synchronized (lock) {
            long total = (size + clusterSize - 1) / clusterSize;
            long perTable = 1L << header.l2Bits();
            int stride = clusters.stride();
            long bitmap = backing ? 0 : mask(0, units);
            for (int i = 0; (long) i * perTable < total; i++) {
                int n = (int) Math.min(perTable, total - i * perTable);
                long l2Offset = writableL2(i);
                long first = allocate(n);
                long end = first + (long) n * clusterSize;
                if (mode.equals("falloc") && !org.vdiskload.io.Holes.allocate(file.path(), first, end - first)) {
                    throw ImageException.unsupported(file.path(), "preallocation=falloc: the file system cannot reserve space");
                }
                if (mode.equals("full")) {
                    ByteBuffer zeros = ByteBuffer.allocate(Math.min(clusterSize * 16, 1 << 20));
                    for (long p = first; p < end; p += zeros.capacity()) {
                        file.writeFully(zeros.clear().limit((int) Math.min(zeros.capacity(), end - p)), p);
                    }
                }
                extendToCluster(end - clusterSize);
                long[] table = clusters.l2At(l2Offset).clone();
                for (int k = 0; k < n; k++) {
                    table[k * stride] = (first + (long) k * clusterSize) | L2Entry.COPIED;
                    if (stride == 2) table[k * 2 + 1] = bitmap;
                }
                ByteBuffer b = ByteBuffer.allocate(clusterSize);
                b.asLongBuffer().put(table);
                guard(l2Offset, clusterSize, MetadataOverlap.Structure.ACTIVE_L2, "L2 table");
                file.writeFully(b, l2Offset);
                clusters.putL2(l2Offset, table);
            }
        }
        flush();
    }

    // ---- Resize ----

    void resize(long newSize, boolean allowShrink) throws IOException {
        requireConsistent();
        if (newSize < 0 || newSize % 512 != 0) {
            throw ImageException.invalid(file.path(), "the new size " + newSize + " is not a multiple of 512 bytes");
        }
        synchronized (lock) {
            if (newSize < size) {
                if (!allowShrink) {
                    throw ImageException.invalid(file.path(), "shrinking from " + size + " to " + newSize
                            + " bytes discards data; use --shrink if that is intended");
                }
                for (long p = newSize; p < size; ) {
                    LayerRun run = clusters.map(p, size - p);
                    if (run.status() == LayerRun.Status.DATA || run.status() == LayerRun.Status.ENCODED) {
                        throw ImageException.invalid(file.path(), "cannot shrink to " + newSize
                                + " bytes: data is allocated at " + p + " (discard it first)");
                    }
                    p += run.length();
                }
            } else if (newSize > size) {
                growL1(newSize);
                zeroTailOfLastCluster();
            }
            beginWrite();
            file.writeFully(ByteBuffer.allocate(8).putLong(0, newSize), Qcow2Header.SIZE_FIELD);
            file.force(false);
            size = newSize;
        }
    }

    /** Bytes past the old end inside its last cluster may hold anything: make them read as zeros. */
    private void zeroTailOfLastCluster() throws IOException {
        long tail = size & (clusterSize - 1);
        if (tail == 0) return;
        LayerRun run = clusters.map(size - 1, 1);
        if (!run.inPlace()) return;
        guard(run.fileOffset() + 1, clusterSize - tail, null, "guest data past the old end");
        file.writeFully(ByteBuffer.allocate((int) (clusterSize - tail)), run.fileOffset() + 1);
    }

    private void growL1(long newSize) throws IOException {
        long needed = Qcow2Header.l1EntriesFor(newSize, header.bytesPerL1Entry());
        long[] old = clusters.l1();
        if (needed <= old.length) return;
        if (needed * 8 > Qcow2Header.MAX_L1_BYTES) {
            throw ImageException.invalid(file.path(), "the new size " + newSize + " needs an L1 table larger than qemu's limit of 32 MiB");
        }
        long bytes = needed * 8;
        long clustersNeeded = (bytes + clusterSize - 1) / clusterSize;
        beginWrite();
        long at = allocate(clustersNeeded);
        long[] table = java.util.Arrays.copyOf(old, (int) needed);
        ByteBuffer b = ByteBuffer.allocate((int) (clustersNeeded * clusterSize));
        b.asLongBuffer().put(table);
        file.writeFully(b, at);
        clusters.fileGrew(at + b.capacity());
        file.force(false);
        file.writeFully(ByteBuffer.allocate(12).putInt(0, (int) needed).putLong(4, at), Qcow2Header.L1_SIZE_FIELD);
        file.force(false);
        long oldOffset = clusters.l1Offset();
        clusters.replaceL1(at, table);
        if (old.length > 0) free(oldOffset, (long) old.length * 8);
    }
}
