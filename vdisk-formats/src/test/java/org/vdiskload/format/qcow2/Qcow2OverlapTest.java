package org.vdiskload.format.qcow2;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.check.CheckReport;
import org.vdiskload.check.RepairMode;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Extent;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.ops.Check;
import org.vdiskload.testing.Tools;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Images whose tables point into their own metadata (qemu-made, then one entry patched): the map never serves
 * such a cluster as data, a write there is refused with a CORRUPT error naming the structure and leaves every
 * byte of the metadata as it was, and the image is marked corrupt (it then opens read-write only for a repair).
 */
class Qcow2OverlapTest {
    private static final OpenOptions RW = OpenOptions.DEFAULTS.withFormat("qcow2").withWritable(true);
    private static final OpenOptions RO = OpenOptions.DEFAULTS.withFormat("qcow2");

    @TempDir
    Path dir;

    /** A 4 MiB image with data in guest cluster 0 and a snapshot (so it has a snapshot table and an inactive L1 table). */
    private Path image(String name) throws Exception {
        Path p = TestImages.make(dir, name, "cluster_size=65536", "4M", "write -P 0x11 0 64k");
        Tools.check("qemu-img", "snapshot", "-c", "s1", p.toString());
        Tools.check("qemu-io", "-f", "qcow2", "-c", "write -P 0x22 0 64k", "-c", "write -P 0x33 1M 64k", p.toString());
        return p;
    }

    /** Where each structure's first cluster lies in {@code p}. */
    private static long structure(Path p, String which) throws Exception {
        Qcow2Header h = TestImages.header(p);
        return switch (which) {
            case "the active L1 table" -> h.l1TableOffset();
            case "an active L2 table" -> TestImages.readLong(p, h.l1TableOffset()) & ClusterMap.L1_OFFSET_MASK;
            case "the refcount table" -> h.refcountTableOffset();
            case "a refcount block" -> TestImages.readLong(p, h.refcountTableOffset()) & Refcounts.TABLE_OFFSET_MASK;
            case "the snapshot table" -> h.snapshotsOffset() & -h.clusterSize();
            case "a snapshot's L1 table" -> TestImages.readLong(p, h.snapshotsOffset()) & -h.clusterSize();
            default -> throw new IllegalArgumentException(which);
        };
    }

    /** The header cannot be named: an entry of offset 0 means "unallocated". */
    private static final List<String> STRUCTURES = List.of("the active L1 table", "an active L2 table",
            "the refcount table", "a refcount block", "the snapshot table", "a snapshot's L1 table");

    @TestFactory
    Stream<DynamicTest> dataOnMetadataIsNeitherServedNorWritten() {
        return STRUCTURES.stream().map(which -> DynamicTest.dynamicTest(which, () -> {
            Path p = image("over-" + STRUCTURES.indexOf(which) + ".qcow2");
            long target = structure(p, which);
            // Guest cluster 1 MiB (written, its own cluster) now points at the structure.
            long entryAt = TestImages.l2Entry(p, 16);
            TestImages.writeLong(p, entryAt, target | L2Entry.COPIED);
            byte[] before = Files.readAllBytes(p);
            try (DiskImage d = Images.open(p, RW)) {
                d.prepareForWrites();
                for (Extent e : d.map(0, d.size())) {
                    if (e.kind() != Extent.Kind.DATA) continue;
                    assertFalse(e.fileOffset() < target + 65536 && e.fileOffset() + e.length() > target,
                            which + ": served as data: " + e);
                }
                Extent over = d.map(1 << 20, 65536).get(0);
                assertEquals(Extent.Kind.NEEDS_LIBRARY, over.kind(), over.toString());
                assertFalse(over.inPlace());
                ByteBuffer read = ByteBuffer.allocate(16);
                d.read(read, 1 << 20); // read as qemu reads it: the structure's bytes
                assertArrayEquals(Arrays.copyOfRange(before, (int) target, (int) target + 16), read.array());
                ImageException e = assertThrows(ImageException.class, () -> d.write(ByteBuffer.wrap(new byte[] {7}), (1 << 20) + 100));
                assertEquals(ImageException.Kind.CORRUPT, e.kind());
                assertTrue(e.getMessage().contains("it would overwrite " + which), e.getMessage());
                ImageException again = assertThrows(ImageException.class, () -> d.write(ByteBuffer.wrap(new byte[] {7}), 0));
                assertTrue(again.getMessage().contains("marked corrupt"), again.getMessage());
            }
            byte[] after = Files.readAllBytes(p);
            assertEquals(before.length, after.length);
            // Nothing changed but the corrupt bit (incompatible feature bit 1 of the header's field at 72).
            before[72 + 7] |= 2;
            assertArrayEquals(before, after, which + ": the refused write changed the image");
            ImageException refused = assertThrows(ImageException.class, () -> Images.open(p, RW).close());
            assertTrue(refused.getMessage().contains("marked corrupt") && refused.getMessage().contains("vdiskload check -r all"),
                    refused.getMessage());
            try (DiskImage d = Images.open(p, RO)) {
                d.read(ByteBuffer.allocate(65536), 0); // read-only opens still work
            }
            Tools.Result info = Tools.run(List.of("qemu-img", "info", "--output=json", p.toString()), null);
            assertTrue(info.stdout().contains("\"corrupt\": true"), info.stdout());
        }));
    }

    /** The refcounts say the L1 table's cluster is free: the allocator hands it out, the check before the write refuses it. */
    @Test
    void aFreeClusterHoldingMetadataIsNotWritten() throws Exception {
        Path p = image("free.qcow2");
        Qcow2Header h = TestImages.header(p);
        long block = TestImages.readLong(p, h.refcountTableOffset()) & Refcounts.TABLE_OFFSET_MASK;
        long l1Cluster = h.l1TableOffset() / h.clusterSize();
        TestImages.writeShort(p, block + 2 * l1Cluster, (short) 0); // 16-bit refcounts
        byte[] before = Files.readAllBytes(p);
        try (DiskImage d = Images.open(p, RW)) {
            ImageException e = assertThrows(ImageException.class, () -> d.write(ByteBuffer.wrap(new byte[65536]), 2 << 20));
            assertTrue(e.getMessage().contains("it would overwrite the active L1 table"), e.getMessage());
        }
        byte[] after = Files.readAllBytes(p);
        before[72 + 7] |= 2;
        assertArrayEquals(before, Arrays.copyOf(after, before.length), "only the corrupt bit changed in what was there");
    }

    /**
     * L1 entry 0 names the refcount table as its (copied) L2 table: a new cluster's L2 entry would be written
     * into the refcount table. The commit refuses it; the table keeps its bytes and the image is marked corrupt.
     */
    @Test
    void anL2TableOnTheRefcountTableIsNotWritten() throws Exception {
        Path p = image("l2-on-refcounts.qcow2");
        Qcow2Header h = TestImages.header(p);
        long table = h.refcountTableOffset();
        assertEquals(0, TestImages.readLong(p, table + 8 * 3), "refcount table entry 3 (the L2 entry of guest cluster 3) is free");
        TestImages.writeLong(p, h.l1TableOffset(), table | ClusterMap.L1_COPIED);
        byte[] before = Files.readAllBytes(p);
        DiskImage d = Images.open(p, RW.withMetadataWriteThrough(true));
        ImageException e = assertThrows(ImageException.class, () -> d.write(ByteBuffer.wrap(new byte[] {7}), 3 * 65536));
        assertEquals(ImageException.Kind.CORRUPT, e.kind());
        assertTrue(e.getMessage().contains("it would overwrite the refcount table"), e.getMessage());
        // The refused entry still waits in memory: the close's commit refuses it again (and closes the file).
        ImageException atClose = assertThrows(ImageException.class, d::close);
        assertTrue(atClose.getMessage().contains("it would overwrite the refcount table"), atClose.getMessage());
        byte[] after = Files.readAllBytes(p);
        assertArrayEquals(Arrays.copyOfRange(before, (int) table, (int) table + 65536),
                Arrays.copyOfRange(after, (int) table, (int) table + 65536), "the refcount table changed");
        assertTrue(TestImages.header(p).corrupt());
    }

    /** A repair that leaves no corruption clears the bit, as qemu-img check -r does; reading never needed it. */
    @Test
    void checkRepairClearsTheCorruptBit() throws Exception {
        Path p = image("bit.qcow2");
        TestImages.writeLong(p, Qcow2Header.INCOMPATIBLE_FIELD, TestImages.readLong(p, Qcow2Header.INCOMPATIBLE_FIELD) | 2);
        assertThrows(ImageException.class, () -> Images.open(p, RW).close());
        CheckReport plain = Check.check(p, "qcow2", RepairMode.NONE);
        assertEquals(0, plain.corruptions());
        assertTrue(TestImages.header(p).corrupt(), "a check without repair leaves it");
        CheckReport repaired = Check.check(p, "qcow2", RepairMode.ALL);
        assertEquals(0, repaired.corruptions(), repaired.toString());
        assertFalse(TestImages.header(p).corrupt());
        try (DiskImage d = Images.open(p, RW)) {
            d.write(ByteBuffer.wrap(new byte[] {1}), 0);
        }
        Tools.check("qemu-img", "check", p.toString());
    }

    /** The full check also knows the snapshots' L2 tables (qemu's overlap-check=all). */
    @Test
    void theFullCheckKnowsSnapshotL2Tables() throws Exception {
        Path p = image("full.qcow2");
        Qcow2Header h = TestImages.header(p);
        long snapshotL1 = TestImages.readLong(p, h.snapshotsOffset());
        long snapshotL2 = TestImages.readLong(p, snapshotL1) & ClusterMap.L1_OFFSET_MASK;
        assertTrue(snapshotL2 != (TestImages.readLong(p, h.l1TableOffset()) & ClusterMap.L1_OFFSET_MASK), "the active L2 was copied");
        TestImages.writeLong(p, TestImages.l2Entry(p, 16), snapshotL2 | L2Entry.COPIED);
        try (DiskImage d = Images.open(p, RW)) {
            assertEquals(Extent.Kind.DATA, d.map(1 << 20, 65536).get(0).kind(), "the default check does not read them");
        }
        try (DiskImage d = Images.open(p, RW.withFullOverlapCheck(true))) {
            assertEquals(Extent.Kind.NEEDS_LIBRARY, d.map(1 << 20, 65536).get(0).kind());
            ImageException e = assertThrows(ImageException.class, () -> d.write(ByteBuffer.wrap(new byte[] {7}), 1 << 20));
            assertTrue(e.getMessage().contains("a snapshot's L2 table"), e.getMessage());
        }
    }
}
