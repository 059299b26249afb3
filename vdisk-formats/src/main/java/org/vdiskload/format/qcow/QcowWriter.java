package org.vdiskload.format.qcow;

import org.vdiskload.image.Beneath;
import org.vdiskload.image.CompressedUnit;
import org.vdiskload.image.MapChangeListener;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.Bytes;
import org.vdiskload.io.ImageFile;
import org.vdiskload.io.WriteBack;
import org.vdiskload.io.WindowedDeflate;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Writes into a qcow (version 1) image as qemu's block/qcow.c does: clusters and L2 tables are
 * appended at the end of the file (qcow has no refcounts, so space is never reused); a write into
 * part of a new cluster fills the rest from the backing chain (qemu relies on 512-byte clusters for
 * that), a partial write into a compressed cluster rewrites it as a plain cluster. Data is written
 * before the table entries that point at it; the tables reach the file at a commit ({@link WriteBack}):
 * at each flush, when too many wait, or with metadata write-through before each write returns.
 * Writes into allocated clusters go straight to the file without the allocation lock.
 */
final class QcowWriter {
    private static final int ZERO_CHUNK = 1 << 20;

    /** Decompresses one compressed cluster (the layer's cached decoder). */
    @FunctionalInterface
    interface Decompressor {
        byte[] decompress(QcowCluster c) throws IOException;
    }

    private final ImageFile file;
    private final QcowHeader header;
    private final QcowTables tables;
    private final Decompressor decompressor;
    private final int clusterSize;
    private final int bits;
    private final ReentrantLock allocation = new ReentrantLock();
    /** Where the next allocation goes: the end of the file as it will be. Guarded by {@link #allocation}. */
    private long end;
    /** Told of every cluster whose L2 entry changes. */
    private volatile MapChangeListener listener = MapChangeListener.NONE;
    /** Commits the changed tables; counts each change (under {@link #allocation}). */
    private final WriteBack writeBack;

    QcowWriter(ImageFile file, QcowHeader header, QcowTables tables, Decompressor decompressor) throws IOException {
        this.file = file;
        this.header = header;
        this.tables = tables;
        this.decompressor = decompressor;
        this.clusterSize = header.clusterSize();
        this.bits = header.clusterBits();
        this.end = file.size();
        this.writeBack = new WriteBack(file, WriteBack.FormatLock.of(allocation), tables::unwritten);
    }

    void setMetadataWriteThrough(boolean on) throws IOException {
        writeBack.setWriteThrough(on);
    }

    void setMapChangeListener(MapChangeListener l) {
        listener = l;
    }

    void write(ByteBuffer src, long pos, Beneath beneath) throws IOException {
        long ticket = 0;
        while (src.hasRemaining()) {
            long tableEnd = ((pos >>> header.l1Shift()) + 1) << header.l1Shift();
            int n = (int) Math.min(src.remaining(), tableEnd - pos);
            ByteBuffer part = Bytes.take(src, n);
            if (!writeInPlace(part.duplicate(), pos)) ticket = writeAllocating(part, pos, beneath);
            pos += n;
        }
        writeBack.settle(ticket);
    }

    /** Writes when every cluster of the range is allocated and plain; false (nothing written) otherwise. */
    private boolean writeInPlace(ByteBuffer src, long pos) throws IOException {
        long first = pos >>> bits;
        long last = (pos + src.remaining() - 1) >>> bits;
        long[] hosts = new long[(int) (last - first + 1)];
        for (long c = first; c <= last; c++) {
            QcowCluster e = tables.cluster(c);
            if (e.kind() != QcowCluster.Kind.DATA) return false;
            hosts[(int) (c - first)] = e.hostOffset();
        }
        for (long c = first; c <= last; c++) {
            int n = (int) Math.min(src.remaining(), ((c + 1) << bits) - pos);
            file.writeFully(Bytes.take(src, n), hosts[(int) (c - first)] + (pos & (clusterSize - 1)));
            pos += n;
        }
        return true;
    }

    /** Writes a range inside one L2 table's span, allocating clusters where needed; returns the commit ticket. */
    private long writeAllocating(ByteBuffer src, long pos, Beneath beneath) throws IOException {
        int l1Index = (int) (pos >>> header.l1Shift());
        long first = pos >>> bits;
        long last = (pos + src.remaining() - 1) >>> bits;
        long[] entries = new long[(int) (last - first + 1)];
        boolean full;
        long ticket;
        allocation.lock();
        try {
            ByteBuffer cluster = ByteBuffer.allocate(clusterSize);
            for (long c = first; c <= last; c++) {
                long start = c << bits;
                int n = (int) Math.min(src.remaining(), start + clusterSize - pos);
                ByteBuffer piece = Bytes.take(src, n);
                QcowCluster e = tables.cluster(c);
                if (e.kind() == QcowCluster.Kind.DATA) {
                    file.writeFully(piece, e.hostOffset() + (pos - start));
                } else {
                    fillCluster(cluster, e, start, beneath, pos - start == 0 && n >= guestBytes(start));
                    cluster.put((int) (pos - start), piece, piece.position(), n);
                    long host = reserve(clusterSize, true);
                    file.writeFully(cluster.clear(), host);
                    entries[(int) (c - first)] = host;
                }
                pos += n;
            }
            publish(l1Index, first, entries);
            full = tables.dirtyTables() > tables.maxDirtyTables();
            ticket = writeBack.ticket();
        } finally {
            allocation.unlock();
        }
        if (full) writeBack.commit(true);
        return ticket;
    }

    /** Guest bytes of the cluster starting at {@code start} (the last cluster may extend past the disk). */
    private long guestBytes(long start) {
        return Math.min(clusterSize, header.virtualSize() - start);
    }

    /** The old content of a cluster being replaced: its decompressed bytes, or what lies beneath (zeros past the disk). */
    private void fillCluster(ByteBuffer cluster, QcowCluster old, long start, Beneath beneath, boolean whole) throws IOException {
        cluster.clear();
        if (whole) {
            Bytes.fillZero(cluster);
        } else if (old.kind() == QcowCluster.Kind.COMPRESSED) {
            cluster.put(decompressor.decompress(old));
        } else {
            ByteBuffer guest = cluster.slice(0, (int) guestBytes(start));
            beneath.read(guest, start);
            cluster.position(guest.capacity());
            Bytes.fillZero(cluster);
        }
        cluster.clear();
    }

    /** Points the clusters with a non-zero {@code entries[i]} (cluster {@code first + i}) at their new place. */
    private void publish(int l1Index, long first, long[] entries) throws IOException {
        int i = 0;
        while (i < entries.length) {
            if (entries[i] == 0) {
                i++;
                continue;
            }
            int j = i;
            while (j < entries.length && entries[j] != 0) j++;
            long[] run = java.util.Arrays.copyOfRange(entries, i, j);
            int l2Index = (int) ((first + i) & (header.l2Entries() - 1));
            tables.setEntries(l1Index, l2Index, run, tables.hasL2(l1Index) ? -1 : reserve(tables.tableBytes(), true));
            writeBack.changed();
            listener.changed((first + i) << bits, (long) (j - i) << bits);
            i = j;
        }
    }

    /** Space for {@code bytes} at the end of the file, cluster-aligned for tables and plain clusters. */
    private long reserve(long bytes, boolean aligned) throws ImageException {
        long at = aligned ? Math.addExact(end, clusterSize - 1) & -(long) clusterSize : end;
        if (at + bytes > (1L << (63 - bits))) {
            throw ImageException.invalid(file.path(), "the image file cannot grow past " + (1L << (63 - bits)) + " bytes");
        }
        end = at + bytes;
        return at;
    }

    /**
     * Makes the range read as zeros. qcow has no zero flag: without a backing file a whole cluster is
     * unallocated (when unmapping is allowed, or it is compressed), which leaks its space until the
     * image is converted; everything else is written as zeros (with copy-on-write where needed).
     */
    void writeZeroes(long pos, long length, boolean mayUnmap, Beneath beneath) throws IOException {
        long stop = pos + length;
        long runStart = -1;
        while (pos < stop) {
            long start = pos & -(long) clusterSize;
            long pieceEnd = Math.min(stop, start + guestBytes(start));
            QcowCluster e = tables.cluster(pos >>> bits);
            boolean whole = pos == start && pieceEnd == start + guestBytes(start);
            boolean write = beneath.exists()
                    || (e.kind() == QcowCluster.Kind.DATA && !(whole && mayUnmap))
                    || (e.kind() == QcowCluster.Kind.COMPRESSED && !whole);
            if (write) {
                if (runStart < 0) runStart = pos;
            } else {
                if (runStart >= 0) writeZeroRun(runStart, pos, beneath);
                runStart = -1;
                if (e.kind() != QcowCluster.Kind.UNALLOCATED) unmap(pos >>> bits);
            }
            pos = pieceEnd;
        }
        if (runStart >= 0) writeZeroRun(runStart, stop, beneath);
    }

    private void writeZeroRun(long pos, long stop, Beneath beneath) throws IOException {
        ByteBuffer zeros = ByteBuffer.allocate((int) Math.min(ZERO_CHUNK, stop - pos));
        while (pos < stop) {
            int n = (int) Math.min(zeros.capacity(), stop - pos);
            write(zeros.clear().limit(n), pos, beneath);
            pos += n;
        }
    }

    private void unmap(long cluster) throws IOException {
        long ticket;
        allocation.lock();
        try {
            tables.setEntries((int) (cluster >>> header.l2Bits()), (int) (cluster & (header.l2Entries() - 1)), new long[] {0}, -1);
            writeBack.changed();
            ticket = writeBack.ticket();
            listener.changed(cluster << bits, clusterSize);
        } finally {
            allocation.unlock();
        }
        writeBack.settle(ticket);
    }

    /**
     * Compresses one cluster (raw deflate, as qemu); a cluster that does not shrink is kept to be
     * written plainly.
     */
    CompressedUnit compress(ByteBuffer unit, long pos) {
        if ((pos & (clusterSize - 1)) != 0 || unit.remaining() > clusterSize || unit.remaining() < guestBytes(pos)) {
            throw new IllegalArgumentException("compressed write of " + unit.remaining() + " bytes at " + pos + " is not one cluster");
        }
        byte[] in = new byte[clusterSize];
        int n = unit.remaining();
        unit.duplicate().get(in, 0, n);
        byte[] out = WindowedDeflate.compress(in, clusterSize - 1);
        return out != null ? CompressedUnit.packed(pos, out) : CompressedUnit.plain(pos, ByteBuffer.wrap(in, 0, n));
    }

    /** Writes one unallocated cluster compressed (packed at the end of the file, unaligned, as qemu does). */
    void writeCompressed(CompressedUnit unit, Beneath nothing) throws IOException {
        long pos = unit.pos();
        byte[] out = unit.packed();
        if (out == null) {
            write(unit.plain().duplicate(), pos, nothing);
            return;
        }
        long c = pos >>> bits;
        long ticket;
        boolean full;
        allocation.lock();
        try {
            if (tables.cluster(c).kind() != QcowCluster.Kind.UNALLOCATED) {
                throw ImageException.invalid(file.path(), "cannot write a compressed cluster at " + pos + ": it is already allocated");
            }
            long host = reserve(out.length, false);
            file.writeFully(ByteBuffer.wrap(out), host);
            long entry = QcowCluster.COMPRESSED_FLAG | ((long) out.length << (63 - bits)) | host;
            publish((int) (pos >>> header.l1Shift()), c, new long[] {entry});
            ticket = writeBack.ticket();
            full = tables.dirtyTables() > tables.maxDirtyTables();
        } finally {
            allocation.unlock();
        }
        if (full) writeBack.commit(true);
        writeBack.settle(ticket);
    }

    /** Commits what waits (the commit flushes the data first), then flushes the metadata written. */
    void flush() throws IOException {
        writeBack.commit(true);
        file.force(false);
    }
}
