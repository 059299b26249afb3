package org.vdiskload.format.qcow2;

import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteOrder;
import java.nio.LongBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Supplier;

/**
 * Where a qcow2 image's metadata lies in its file, cluster by cluster, for the check qemu makes before every
 * write (qcow2_check_metadata_overlap in block/qcow2-refcount.c) and for the map: guest data must never
 * land on, or be served from, a cluster that holds metadata, and one structure must not be written over
 * another. A damaged or hostile image whose tables point into its own metadata then fails the write with
 * a CORRUPT error naming the structure, instead of destroying it.
 *
 * <p>The structures are qemu's overlap-check categories. All but {@link Structure#INACTIVE_L2} are checked
 * always (qemu's default, "cached"); the snapshots' L2 tables only with the full check, which reads every
 * snapshot's L1 table at open. The header, snapshot table and snapshot L1 tables never change while the
 * image is open; the active L1 and L2 tables and the refcount structure are read live from their owners.
 */
final class MetadataOverlap {

    /** qemu's overlap-check categories (QCOW2_OL_*), as a message names them. */
    enum Structure {
        MAIN_HEADER("the header"),
        ACTIVE_L1("the active L1 table"),
        ACTIVE_L2("an active L2 table"),
        REFCOUNT_TABLE("the refcount table"),
        REFCOUNT_BLOCK("a refcount block"),
        SNAPSHOT_TABLE("the snapshot table"),
        INACTIVE_L1("a snapshot's L1 table"),
        INACTIVE_L2("a snapshot's L2 table"),
        BITMAP_DIRECTORY("the bitmap directory");

        final String description;

        Structure(String description) {
            this.description = description;
        }
    }

    /** Where a range met a structure: the first cluster of the range that holds it. */
    record Hit(Structure structure, long clusterOffset) {
        String describe() {
            return structure.description + " (cluster at " + clusterOffset + ")";
        }
    }

    /** The structures that never move while the image is open, merged into disjoint sorted ranges. */
    private record Fixed(long[] starts, long[] ends, Structure[] structures) {}

    private final long clusterSize;
    private final Fixed fixed;
    private final ClusterMap active;
    /** Null where the image is open read-only (the refcounts are not loaded). */
    private final Refcounts refcounts;
    /** The clusters of the snapshots' L2 tables: empty unless the full check was asked for. */
    private final ClusterSet inactiveL2 = new ClusterSet();
    /** The bitmap directory while the bitmaps live (or null): a first write drops them. */
    private final Supplier<HostRange> bitmapDirectory;

    MetadataOverlap(Qcow2Header h, List<Qcow2Snapshot> snapshots, long snapshotTableBytes, ClusterMap active, Refcounts refcounts,
                    long[] inactiveL2, Supplier<HostRange> bitmapDirectory) {
        this.clusterSize = h.clusterSize();
        this.active = active;
        this.refcounts = refcounts;
        this.inactiveL2.replaceWith(inactiveL2);
        this.bitmapDirectory = bitmapDirectory;
        List<Object[]> ranges = new ArrayList<>();
        ranges.add(new Object[] {0L, clusterSize, Structure.MAIN_HEADER});
        if (snapshotTableBytes > 0) {
            ranges.add(new Object[] {h.snapshotsOffset(), h.snapshotsOffset() + snapshotTableBytes, Structure.SNAPSHOT_TABLE});
        }
        for (Qcow2Snapshot s : snapshots) {
            if (s.l1Size() > 0) ranges.add(new Object[] {s.l1TableOffset(), s.l1TableOffset() + (long) s.l1Size() * 8, Structure.INACTIVE_L1});
        }
        this.fixed = merge(ranges, clusterSize);
    }

    /**
     * The clusters of every snapshot's L2 tables, for the full check: each snapshot's L1 table read once
     * (their offsets and sizes were validated with the snapshot table).
     */
    static long[] snapshotL2Tables(ImageFile file, Qcow2Header h, List<Qcow2Snapshot> snapshots) throws IOException {
        Set<Long> out = new HashSet<>();
        for (Qcow2Snapshot s : snapshots) {
            if (s.l1Size() == 0) continue;
            LongBuffer l1 = file.readStruct(s.l1TableOffset(), (long) s.l1Size() * 8, ByteOrder.BIG_ENDIAN, "snapshot L1 table").asLongBuffer();
            while (l1.hasRemaining()) {
                long offset = l1.get() & ClusterMap.L1_OFFSET_MASK;
                if (offset != 0) out.add(offset & -h.clusterSize());
            }
        }
        return out.stream().mapToLong(Long::longValue).toArray();
    }

    /** Sorts cluster-widened ranges and merges those that overlap (the merged range names the first). */
    private static Fixed merge(List<Object[]> ranges, long clusterSize) {
        ranges.sort(Comparator.comparingLong(r -> (Long) r[0]));
        List<long[]> merged = new ArrayList<>();
        List<Structure> structures = new ArrayList<>();
        for (Object[] r : ranges) {
            long start = (Long) r[0] & -clusterSize;
            long end = ((Long) r[1] + clusterSize - 1) & -clusterSize;
            long[] last = merged.isEmpty() ? null : merged.get(merged.size() - 1);
            if (last != null && start < last[1]) {
                last[1] = Math.max(last[1], end);
            } else {
                merged.add(new long[] {start, end});
                structures.add((Structure) r[2]);
            }
        }
        long[] starts = new long[merged.size()];
        long[] ends = new long[merged.size()];
        for (int i = 0; i < starts.length; i++) {
            starts[i] = merged.get(i)[0];
            ends[i] = merged.get(i)[1];
        }
        return new Fixed(starts, ends, structures.toArray(new Structure[0]));
    }

    /**
     * The first cluster of {@code [offset, offset+length)} that holds a structure other than {@code writing}
     * (null: any), or null if none does.
     */
    Hit find(long offset, long length, Structure writing) {
        if (length <= 0) return null;
        long from = offset & -clusterSize;
        long to = (offset + length + clusterSize - 1) & -clusterSize;
        Hit best = fixedHit(from, to, writing);
        best = earlier(best, rangeHit(active.l1Offset(), (long) active.l1().length * 8, from, to, Structure.ACTIVE_L1, writing));
        if (refcounts != null) {
            best = earlier(best, rangeHit(refcounts.tableOffset(), (long) refcounts.tableClusters() * clusterSize, from, to,
                    Structure.REFCOUNT_TABLE, writing));
        }
        HostRange bitmaps = bitmapDirectory.get();
        if (bitmaps != null) best = earlier(best, rangeHit(bitmaps.offset(), bitmaps.length(), from, to, Structure.BITMAP_DIRECTORY, writing));
        long stop = best == null ? to : best.clusterOffset();
        if (writing != Structure.ACTIVE_L2) best = earlier(best, setHit(active.firstL2TableIn(from, stop), Structure.ACTIVE_L2));
        if (refcounts != null && writing != Structure.REFCOUNT_BLOCK) {
            best = earlier(best, setHit(refcounts.firstBlockIn(from, stop), Structure.REFCOUNT_BLOCK));
        }
        if (writing != Structure.INACTIVE_L2) best = earlier(best, setHit(inactiveL2.firstIn(from, stop), Structure.INACTIVE_L2));
        return best;
    }

    private static Hit setHit(long cluster, Structure structure) {
        return cluster < 0 ? null : new Hit(structure, cluster);
    }

    private Hit fixedHit(long from, long to, Structure writing) {
        long[] ends = fixed.ends();
        int i = Arrays.binarySearch(ends, from + 1);
        if (i < 0) i = -i - 1; // the first range ending past from
        for (; i < ends.length && fixed.starts()[i] < to; i++) {
            if (fixed.structures()[i] != writing) return new Hit(fixed.structures()[i], Math.max(from, fixed.starts()[i]));
        }
        return null;
    }

    private Hit rangeHit(long offset, long length, long from, long to, Structure structure, Structure writing) {
        if (structure == writing || length <= 0) return null;
        long start = offset & -clusterSize;
        long end = (offset + length + clusterSize - 1) & -clusterSize;
        return start < to && end > from ? new Hit(structure, Math.max(from, start)) : null;
    }

    private static Hit earlier(Hit a, Hit b) {
        if (a == null) return b;
        if (b == null) return a;
        return b.clusterOffset() < a.clusterOffset() ? b : a;
    }
}
