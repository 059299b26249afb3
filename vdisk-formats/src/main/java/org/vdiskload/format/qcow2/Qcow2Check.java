package org.vdiskload.format.qcow2;

import org.vdiskload.check.CheckReport;
import org.vdiskload.check.RepairMode;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

import static org.vdiskload.format.qcow2.ClusterMap.L1_OFFSET_MASK;

/**
 * qemu-img check for qcow2 (block/qcow2-refcount.c, qcow2_check_refcounts): counts the references
 * to every host cluster by walking the header, the active and snapshot L1/L2 tables, the snapshot
 * table, the persistent bitmaps and the refcount structure, and compares them with the stored refcounts. A refcount above
 * its references is a leak, below is a corruption; so are a wrong copied flag and pointers that are
 * unaligned or past the end of the file. Repairs: -r leaks lowers leaked refcounts; -r all rebuilds
 * the refcount structure from the references and fixes copied flags.
 */
final class Qcow2Check {
    private final ImageFile file;
    private final Qcow2Header h;
    private final List<Qcow2Snapshot> snapshots;
    private final long snapshotTableBytes;
    private final ClusterMap active;
    private final Refcounts refcounts;
    private final int clusterBits;
    private final long cs;
    private final long size;
    private final List<HostRange> bitmaps;

    Qcow2Check(ImageFile file, Qcow2Header h, long size, List<Qcow2Snapshot> snapshots, ClusterMap active,
               Refcounts refcounts, List<HostRange> bitmaps) {
        this.file = file;
        this.size = size;
        this.bitmaps = bitmaps;
        this.h = h;
        this.snapshots = snapshots;
        this.snapshotTableBytes = snapshots.stream().mapToLong(Qcow2Snapshot::entryBytes).sum();
        this.active = active;
        this.refcounts = refcounts;
        this.clusterBits = h.clusterBits();
        this.cs = h.clusterSize();
    }

    /** A wrong copied flag: the table entry at {@code at} should read {@code fixed}. */
    private record CopiedFix(long at, long fixed, long l2Offset, int index) {}

    /** One pass over the image. */
    private final class Scan {
        final long[] refs;
        final List<String> messages = new ArrayList<>();
        long structural;
        long refcountErrors;
        long leaks;
        final List<Long> leaked = new ArrayList<>();
        final List<CopiedFix> copied = new ArrayList<>();
        long allocated, fragmented, compressed;
        long highest = -1;

        Scan() throws IOException {
            long fileClusters = (file.size() + cs - 1) >>> clusterBits;
            if (fileClusters > Integer.MAX_VALUE - 16) {
                throw ImageException.unsupported(file.path(), "the file is too large to check (" + fileClusters + " clusters)");
            }
            refs = new long[(int) fileClusters];
        }

        void ref(long offset, long length, String what) {
            if (length <= 0) return;
            long first = offset >>> clusterBits, last = (offset + length - 1) >>> clusterBits;
            for (long c = first; c <= last; c++) {
                if (c >= refs.length) {
                    structural++;
                    messages.add("ERROR " + what + " at offset " + offset + " is past the end of the file");
                    return;
                }
                refs[(int) c]++;
            }
        }

        void error(String message) {
            structural++;
            messages.add("ERROR " + message);
        }
    }

    private Scan scan() throws IOException {
        Scan s = new Scan();
        s.ref(0, cs, "header");
        if (h.nbSnapshots() > 0) s.ref(h.snapshotsOffset(), snapshotTableBytes, "snapshot table");
        walkL1(s, active.l1Offset(), active.l1(), true);
        for (Qcow2Snapshot snap : snapshots) {
            long[] l1 = new long[snap.l1Size()];
            if (l1.length > 0) {
                file.readStruct(snap.l1TableOffset(), (long) l1.length * 8, ByteOrder.BIG_ENDIAN, "snapshot L1 table").asLongBuffer().get(l1);
            }
            walkL1(s, snap.l1TableOffset(), l1, false);
        }
        for (HostRange part : refcountStructure(s)) s.ref(part.offset(), part.length(), "refcount structure");
        for (HostRange part : bitmaps) s.ref(part.offset(), part.length(), "bitmap");
        compare(s);
        checkCopied(s);
        return s;
    }

    /** The refcount table and its blocks; unaligned or out-of-file blocks are errors (and left out). */
    private List<HostRange> refcountStructure(Scan s) throws IOException {
        List<HostRange> out = new ArrayList<>();
        out.add(new HostRange(refcounts.tableOffset(), (long) refcounts.tableClusters() * cs));
        for (int t = 0; t < refcounts.tableEntries(); t++) {
            try {
                long offset = refcounts.blockOffset(t);
                if (offset != 0) out.add(new HostRange(offset, cs));
            } catch (ImageException e) {
                s.error("refcount block " + t + ": " + e.getMessage());
            }
        }
        return out;
    }

    private void walkL1(Scan s, long l1Offset, long[] l1, boolean isActive) throws IOException {
        s.ref(l1Offset, (long) l1.length * 8, "L1 table");
        for (int i = 0; i < l1.length; i++) {
            long next = 0; // as qemu counts: fragmentation within each L2 table
            long l2Offset = l1[i] & L1_OFFSET_MASK;
            if (l2Offset == 0) continue;
            if ((l2Offset & (cs - 1)) != 0 || l2Offset + cs > file.size()) {
                s.error("L1 entry " + i + ": L2 table offset " + l2Offset + " is unaligned or past the end of the file");
                continue;
            }
            s.ref(l2Offset, cs, "L2 table");
            long[] l2 = new long[(int) (cs / 8)];
            file.readStruct(l2Offset, cs, ByteOrder.BIG_ENDIAN, "L2 table").asLongBuffer().get(l2);
            int stride = h.extendedL2() ? 2 : 1;
            for (int j = 0; j < l2.length / stride; j++) {
                L2Entry entry = L2Entry.of(l2, j, stride);
                long at = l2Offset + (long) j * 8 * stride;
                if (entry.isCompressed()) {
                    if (entry.isCopied()) s.error("compressed cluster with the copied flag at L2 entry offset " + at);
                    try {
                        ClusterMap.Compressed c = active.compressed(new L2Entry(entry.descriptor() & ~L2Entry.COPIED, 0), at);
                        s.ref(c.hostOffset(), c.length(), "compressed cluster");
                    } catch (ImageException e) {
                        s.error(e.getMessage());
                    }
                    if (isActive) { s.allocated++; s.compressed++; s.fragmented++; }
                    continue;
                }
                long offset = entry.hostCluster();
                if (offset == 0) continue;
                if ((offset & (cs - 1)) != 0) {
                    s.error("L2 entry at offset " + at + ": cluster offset " + offset + " is not cluster-aligned");
                    continue;
                }
                if (isActive) {
                    s.allocated++;
                    if (next != 0 && offset != next) s.fragmented++;
                    next = offset + cs;
                }
                s.ref(offset, cs, "data cluster");
            }
        }
    }

    /** Stored refcounts against references: above is a leak, below a corruption. */
    private void compare(Scan s) throws IOException {
        int bits = refcounts.blockBits();
        for (int t = 0; t < refcounts.tableEntries(); t++) {
            long first = (long) t << bits;
            long offset;
            try {
                offset = refcounts.blockOffset(t);
            } catch (ImageException e) {
                offset = 0; // reported with the structure
            }
            if (offset == 0) {
                // No block: every refcount here is 0.
                for (long c = first; c < Math.min(s.refs.length, first + (1L << bits)); c++) compareOne(s, c, 0);
                continue;
            }
            for (long c = first; c < first + (1L << bits); c++) compareOne(s, c, refcounts.get(c));
        }
        for (long c = (long) refcounts.tableEntries() << bits; c < s.refs.length; c++) compareOne(s, c, 0);
    }

    private void compareOne(Scan s, long c, long stored) {
        long refd = c < s.refs.length ? s.refs[(int) c] : 0;
        if (stored > 0 || refd > 0) s.highest = c;
        if (stored > refd) {
            s.leaks++;
            s.leaked.add(c);
            s.messages.add("Leaked cluster " + c + " refcount=" + stored + " reference=" + refd);
        } else if (stored < refd) {
            s.refcountErrors++;
            s.messages.add("ERROR cluster " + c + " refcount=" + stored + " reference=" + refd);
        }
    }

    /** The copied flag must be set exactly where the refcount is 1 (active L1 and its L2 tables). */
    private void checkCopied(Scan s) throws IOException {
        long[] l1 = active.l1();
        int stride = h.extendedL2() ? 2 : 1;
        for (int i = 0; i < l1.length; i++) {
            long l2Offset = l1[i] & L1_OFFSET_MASK;
            if (l2Offset == 0 || (l2Offset & (cs - 1)) != 0 || l2Offset + cs > file.size()) continue;
            long rc = safeRefcount(l2Offset);
            if ((rc == 1) != ((l1[i] & ClusterMap.L1_COPIED) != 0)) {
                long fixedL1 = rc == 1 ? l1[i] | ClusterMap.L1_COPIED : l1[i] & ~ClusterMap.L1_COPIED;
                s.copied.add(new CopiedFix(active.l1Offset() + (long) i * 8, fixedL1, -1, i));
                s.messages.add("ERROR OFLAG_COPIED L2 cluster: l1_index=" + i + " refcount=" + rc);
            }
            ByteBuffer b = file.readStruct(l2Offset, cs, ByteOrder.BIG_ENDIAN, "L2 table");
            for (int j = 0; j < cs / 8 / stride; j++) {
                long entry = b.getLong(j * 8 * stride);
                L2Entry decoded = new L2Entry(entry, 0);
                long offset = decoded.hostCluster();
                if (decoded.isCompressed() || offset == 0 || (offset & (cs - 1)) != 0) continue;
                long drc = safeRefcount(offset);
                if ((drc == 1) != decoded.isCopied()) {
                    long fixed = drc == 1 ? entry | L2Entry.COPIED : entry & ~L2Entry.COPIED;
                    s.copied.add(new CopiedFix(l2Offset + (long) j * 8 * stride, fixed, l2Offset, j));
                    s.messages.add("ERROR OFLAG_COPIED data cluster: l2_entry=" + Long.toHexString(entry) + " refcount=" + drc);
                }
            }
        }
    }

    private long safeRefcount(long offset) throws IOException {
        try {
            return refcounts.get(offset >>> clusterBits);
        } catch (ImageException e) {
            return 0;
        }
    }

    private long corruptions(Scan s) {
        return s.structural + s.refcountErrors + s.copied.size();
    }

    /** Checks, repairs what {@code mode} allows, and checks again (as qemu-img check does after a repair). */
    CheckReport run(RepairMode mode) throws IOException {
        Scan s = scan();
        long leaksFixed = 0, corruptionsFixed = 0;
        List<String> fixedMessages = new ArrayList<>();
        boolean rebuild = mode == RepairMode.ALL && (s.refcountErrors > 0 || s.structural > 0 && hasRefcountStructureError(s));
        if (rebuild) {
            rebuildRefcounts(s);
            leaksFixed += s.leaks;
            corruptionsFixed += s.refcountErrors;
            fixedMessages.add("Rebuilt the refcount structure");
            s = scan();
        } else if (mode != RepairMode.NONE && s.leaks > 0) {
            for (long c : s.leaked) refcounts.set(c, c < s.refs.length ? s.refs[(int) c] : 0);
            file.channel().force(false);
            leaksFixed += s.leaks;
            fixedMessages.add("Repaired " + s.leaks + " leaked cluster(s)");
            s = scan();
        }
        if (mode == RepairMode.ALL && !s.copied.isEmpty()) {
            for (CopiedFix f : s.copied) {
                if (f.l2Offset() < 0) {
                    active.setL1(f.index(), f.fixed());
                } else {
                    long[] table = active.l2At(f.l2Offset());
                    int stride = h.extendedL2() ? 2 : 1;
                    active.setL2(f.l2Offset(), table, f.index(), f.fixed(), stride == 2 ? table[f.index() * 2 + 1] : 0);
                }
            }
            active.writeUnwritten();
            file.channel().force(false);
            corruptionsFixed += s.copied.size();
            fixedMessages.add("Repaired " + s.copied.size() + " copied flag(s)");
            s = scan();
        }
        List<String> messages = new ArrayList<>(fixedMessages);
        messages.addAll(s.messages);
        long total = (size + cs - 1) >>> clusterBits;
        return new CheckReport("qcow2", corruptions(s), s.leaks, 0, corruptionsFixed, leaksFixed, List.copyOf(messages),
                (s.highest + 1) * cs, total, s.allocated, s.fragmented, s.compressed);
    }

    private static boolean hasRefcountStructureError(Scan s) {
        return s.messages.stream().anyMatch(m -> m.startsWith("ERROR refcount block"));
    }

    /** Writes a new refcount structure from the references (not counting the old structure, which it replaces). */
    private void rebuildRefcounts(Scan s) throws IOException {
        long[] counts = s.refs.clone();
        for (HostRange part : refcountStructure(new Scan())) {
            long first = part.offset() >>> clusterBits, last = (part.end() - 1) >>> clusterBits;
            for (long c = first; c <= last && c < counts.length; c++) counts[(int) c] = Math.max(0, counts[(int) c] - 1);
        }
        refcounts.replaceWith(counts, refcounts.tableEntries());
    }
}
