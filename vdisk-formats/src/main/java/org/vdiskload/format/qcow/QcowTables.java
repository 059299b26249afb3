package org.vdiskload.format.qcow;

import org.vdiskload.io.Checked;
import org.vdiskload.io.ImageFile;
import org.vdiskload.io.LruCache;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.locks.ReadWriteLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * The two-level cluster mapping: the L1 table (read once) and L2 tables (read on demand into a
 * bounded cache). Every table offset and every entry is checked against the file before use.
 *
 * <p>Writes are write-back: changed L2 tables stay in memory, pinned, until {@link #flush}, which
 * writes them in qemu's safe order (the data they point at is already durable, the L2 tables
 * before the L1 entries that point at new ones). A crash before a flush loses only the
 * unflushed writes; the space they took at the end of the file is unreferenced. Lookups and
 * changes are guarded by one read-write lock, so a reader never caches a table older than a
 * change (qcow has no other metadata).
 */
final class QcowTables {
    /**
     * qemu aligns uncompressed clusters to sectors and fails reads of others; we hold L2 tables to the
     * same. With offset 0 meaning "unallocated", alignment also keeps both clear of the header.
     */
    static final int SECTOR = 512;

    private final ImageFile file;
    private final QcowHeader header;
    private final long[] l1;
    private final LruCache<long[]> l2Cache;
    private final int maxDirty;
    private final ReadWriteLock lock = new ReentrantReadWriteLock();
    /** Changed L2 tables by L1 index, not yet written: pinned until {@link #flush}. */
    private final Map<Integer, long[]> dirty = new TreeMap<>();
    /** L1 entries pointing at new tables, not yet written. */
    private final Map<Integer, Long> dirtyL1 = new TreeMap<>();

    QcowTables(ImageFile file, QcowHeader header, long cacheBytes) throws IOException {
        this.file = file;
        this.header = header;
        long l1Offset = header.l1TableOffset();
        int entries = (int) header.l1Entries();
        Checked.require(l1Offset >= QcowHeader.LENGTH, file, 40, "l1_table_offset",
                "L1 table at " + l1Offset + " overlaps the header");
        Checked.requireAligned(file, 40, "l1_table_offset", l1Offset, 8);
        ByteBuffer b = file.readStruct(l1Offset, entries * 8L, ByteOrder.BIG_ENDIAN, "L1 table");
        this.l1 = new long[entries];
        b.asLongBuffer().get(l1);
        this.l2Cache = new LruCache<>(LruCache.entriesFor(cacheBytes, tableBytes()));
        this.maxDirty = LruCache.entriesFor(cacheBytes, tableBytes());
    }

    /** Bytes of one L2 table. */
    int tableBytes() {
        return 8 << header.l2Bits();
    }

    /** Whether the L2 table covering L1 index {@code l1Index} exists (else its whole span is unallocated). */
    boolean hasL2(int l1Index) {
        lock.readLock().lock();
        try {
            return l1[l1Index] != 0;
        } finally {
            lock.readLock().unlock();
        }
    }

    /** The validated entry for guest cluster {@code cluster}. */
    QcowCluster cluster(long cluster) throws IOException {
        int l1Index = (int) (cluster >>> header.l2Bits());
        int l2Index = (int) (cluster & (header.l2Entries() - 1));
        lock.readLock().lock();
        try {
            long[] l2 = table(l1Index);
            if (l2 == null) return QcowCluster.UNALLOCATED;
            return checked(QcowCluster.decode(l2[l2Index], header.clusterBits()), l1[l1Index] + 8L * l2Index);
        } finally {
            lock.readLock().unlock();
        }
    }

    /** The table for {@code l1Index}, or null; call with the lock held. */
    private long[] table(int l1Index) throws IOException {
        long[] d = dirty.get(l1Index);
        if (d != null) return d;
        long l2Offset = l1[l1Index];
        if (l2Offset == 0) return null;
        return l2Cache.get(l2Offset, off -> loadL2(l1Index, off));
    }

    /**
     * Sets entries of the table for {@code l1Index} ({@code entries[i]} for L2 index {@code first + i}),
     * creating the table at {@code newTableOffset} if there is none (the caller reserved the space;
     * pass -1 when the table exists). The change is in memory until {@link #flush}.
     */
    void setEntries(int l1Index, int first, long[] entries, long newTableOffset) throws IOException {
        lock.writeLock().lock();
        try {
            long[] t = dirty.get(l1Index);
            if (t == null) {
                long[] current = table(l1Index);
                if (current == null) {
                    if (newTableOffset <= 0) throw new IllegalStateException("no L2 table for L1 index " + l1Index);
                    current = new long[header.l2Entries()];
                    l1[l1Index] = newTableOffset;
                    dirtyL1.put(l1Index, newTableOffset);
                }
                // Copy: readers holding the cached array see it unchanged until they retake the lock.
                t = current.clone();
                l2Cache.invalidate(l1[l1Index]);
                dirty.put(l1Index, t);
            }
            System.arraycopy(entries, 0, t, first, entries.length);
        } finally {
            lock.writeLock().unlock();
        }
    }

    /** Tables changed since the last flush. */
    int dirtyTables() {
        lock.readLock().lock();
        try {
            return dirty.size();
        } finally {
            lock.readLock().unlock();
        }
    }

    /** How many changed tables a writer keeps before it flushes (the cache budget). */
    int maxDirtyTables() {
        return maxDirty;
    }

    /**
     * Writes changed metadata in a crash-safe order: data (written by the caller before it changed
     * entries) is forced first, then the L2 tables, forced, then the L1 entries of new tables, forced.
     */
    void flush() throws IOException {
        lock.writeLock().lock();
        try {
            file.force(false);
            if (dirty.isEmpty()) return;
            for (Map.Entry<Integer, long[]> e : dirty.entrySet()) {
                ByteBuffer b = ByteBuffer.allocate(tableBytes()).order(ByteOrder.BIG_ENDIAN);
                b.asLongBuffer().put(e.getValue());
                file.writeFully(b, l1[e.getKey()]);
            }
            file.force(false);
            if (!dirtyL1.isEmpty()) {
                for (Map.Entry<Integer, Long> e : dirtyL1.entrySet()) {
                    ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN).putLong(0, e.getValue());
                    file.writeFully(b, header.l1TableOffset() + 8L * e.getKey());
                }
                file.force(false);
            }
            dirty.clear();
            dirtyL1.clear();
        } finally {
            lock.writeLock().unlock();
        }
    }

    private long[] loadL2(int l1Index, long offset) throws IOException {
        String field = "L1 entry " + l1Index;
        long at = header.l1TableOffset() + 8L * l1Index;
        Checked.require(offset > 0, file, at, field, "L2 table offset " + offset + " is negative");
        Checked.requireAligned(file, at, field, offset, SECTOR);
        ByteBuffer b = file.readStruct(offset, tableBytes(), ByteOrder.BIG_ENDIAN, "L2 table (" + field + ")");
        long[] table = new long[header.l2Entries()];
        b.asLongBuffer().get(table);
        return table;
    }

    private QcowCluster checked(QcowCluster c, long entryAt) throws IOException {
        String field = "L2 entry";
        switch (c.kind()) {
            case UNALLOCATED -> { }
            case DATA -> {
                Checked.requireAligned(file, entryAt, field, c.hostOffset(), SECTOR);
                // The cluster's tail may lie past EOF (it reads as zeros, as in qemu); its start may not.
                Checked.require(c.hostOffset() < file.size(), file, entryAt, field,
                        "data cluster at " + c.hostOffset() + " is past the end of the file (" + file.size() + " bytes)");
            }
            case COMPRESSED -> {
                Checked.require(c.compressedSize() > 0, file, entryAt, field, "compressed cluster has a size of 0 bytes");
                Checked.requireInFile(file, c.hostOffset(), c.compressedSize(), field + " (compressed cluster)");
            }
        }
        return c;
    }
}
