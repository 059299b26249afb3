package org.vdiskload.format.qcow;

import org.vdiskload.io.Checked;
import org.vdiskload.io.DirtyTables;
import org.vdiskload.io.ImageFile;
import org.vdiskload.io.LruCache;
import org.vdiskload.io.WriteBack;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.locks.ReadWriteLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * The two-level cluster mapping: the L1 table (read once) and L2 tables (read on demand into a
 * bounded cache). Every table offset and every entry is checked against the file before use.
 *
 * <p>Writes are write-back: changed L2 tables stay in memory, pinned ({@link DirtyTables}), until a commit
 * ({@link #unwritten}, run by the writer's {@link WriteBack}) writes them in qemu's safe order: the data they
 * point at is already durable, the L2 tables before the L1 entries that point at new ones. A crash before
 * a commit loses only the writes since the last one; the space they took at the end of the file is
 * unreferenced. Lookups and changes are guarded by one read-write lock, so a reader never caches a table
 * older than a change (qcow has no other metadata).
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
    /** L2 tables by file offset: cached, or pinned with changes not yet written. */
    private final DirtyTables<long[]> tables;
    private final int maxDirty;
    private final ReadWriteLock lock = new ReentrantReadWriteLock();
    /** L1 entries pointing at new tables, not yet written, by L1 index. */
    private final Map<Integer, Long> newTables = new TreeMap<>();

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
        this.tables = new DirtyTables<>(LruCache.entriesFor(cacheBytes, tableBytes()), DirtyTables.BIG_ENDIAN_LONGS);
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
        long l2Offset = l1[l1Index];
        if (l2Offset == 0) return null;
        return tables.get(l2Offset, off -> loadL2(l1Index, off));
    }

    /**
     * Sets entries of the table for {@code l1Index} ({@code entries[i]} for L2 index {@code first + i}),
     * creating the table at {@code newTableOffset} if there is none (the caller reserved the space;
     * pass -1 when the table exists). The change is in memory until a commit writes it; the caller
     * holds its allocation lock (the commit's).
     */
    void setEntries(int l1Index, int first, long[] entries, long newTableOffset) throws IOException {
        lock.writeLock().lock();
        try {
            long[] t = table(l1Index);
            if (t == null) {
                if (newTableOffset <= 0) throw new IllegalStateException("no L2 table for L1 index " + l1Index);
                t = new long[header.l2Entries()];
                // A new table is written whole: the file has nothing there yet.
                tables.changed(newTableOffset, t, 0, 0, t.length);
                l1[l1Index] = newTableOffset;
                newTables.put(l1Index, newTableOffset);
            }
            System.arraycopy(entries, 0, t, first, entries.length);
            tables.changed(l1[l1Index], t, 0, first, first + entries.length);
        } finally {
            lock.writeLock().unlock();
        }
    }

    /** Tables changed and not yet written. */
    int dirtyTables() {
        return tables.pinnedCount();
    }

    /** How many changed tables a writer keeps before it commits (the cache budget). */
    int maxDirtyTables() {
        return maxDirty;
    }

    /**
     * What waits, for a commit (under the writer's allocation lock): after the commit's flush of the data,
     * the changed L2 entries, then a flush, then the L1 entries of new tables.
     */
    WriteBack.Batch unwritten(boolean all) {
        List<DirtyTables.Copy> copies;
        Map<Integer, Long> l1Entries;
        lock.readLock().lock();
        try {
            copies = tables.take();
            l1Entries = Map.copyOf(newTables);
        } finally {
            lock.readLock().unlock();
        }
        if (copies.isEmpty() && l1Entries.isEmpty()) return null;
        return new WriteBack.Batch() {
            @Override
            public void write() throws IOException {
                DirtyTables.write(file, copies);
                if (l1Entries.isEmpty()) return;
                file.force(false);
                for (Map.Entry<Integer, Long> e : new TreeMap<>(l1Entries).entrySet()) {
                    ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN).putLong(0, e.getValue());
                    file.writeFully(b, header.l1TableOffset() + 8L * e.getKey());
                }
            }

            @Override
            public void written() {
                lock.writeLock().lock();
                try {
                    tables.written(copies);
                    for (Integer i : l1Entries.keySet()) newTables.remove(i);
                } finally {
                    lock.writeLock().unlock();
                }
            }
        };
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
