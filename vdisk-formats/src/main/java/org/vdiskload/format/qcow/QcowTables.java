package org.vdiskload.format.qcow;

import org.vdiskload.io.Checked;
import org.vdiskload.io.ImageFile;
import org.vdiskload.io.LruCache;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The two-level cluster mapping: the L1 table (read once) and L2 tables (read on demand into a
 * bounded cache). Every table offset and every entry is checked against the file before use.
 * Kept apart from the layer so that a writer can reuse the lookups.
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
        this.l2Cache = new LruCache<>(LruCache.entriesFor(cacheBytes, 8L << header.l2Bits()));
    }

    /** Whether the L2 table covering L1 index {@code l1Index} exists (else its whole span is unallocated). */
    boolean hasL2(int l1Index) {
        return l1[l1Index] != 0;
    }

    /** The validated entry for guest cluster {@code cluster}. */
    QcowCluster cluster(long cluster) throws IOException {
        int l1Index = (int) (cluster >>> header.l2Bits());
        long l2Offset = l1[l1Index];
        if (l2Offset == 0) return QcowCluster.UNALLOCATED;
        long[] l2 = l2Cache.get(l2Offset, off -> loadL2(l1Index, off));
        int l2Index = (int) (cluster & (header.l2Entries() - 1));
        return checked(QcowCluster.decode(l2[l2Index], header.clusterBits()), l2Offset + 8L * l2Index);
    }

    private long[] loadL2(int l1Index, long offset) throws IOException {
        String field = "L1 entry " + l1Index;
        long at = header.l1TableOffset() + 8L * l1Index;
        Checked.require(offset > 0, file, at, field, "L2 table offset " + offset + " is negative");
        Checked.requireAligned(file, at, field, offset, SECTOR);
        ByteBuffer b = file.readStruct(offset, 8L << header.l2Bits(), ByteOrder.BIG_ENDIAN, "L2 table (" + field + ")");
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
