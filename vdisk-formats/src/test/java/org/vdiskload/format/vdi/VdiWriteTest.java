package org.vdiskload.format.vdi;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.check.CheckReport;
import org.vdiskload.check.RepairMode;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Extent;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.ops.Check;
import org.vdiskload.ops.Convert;
import org.vdiskload.ops.Create;
import org.vdiskload.ops.Progress;
import org.vdiskload.testing.CrashTest;
import org.vdiskload.testing.Tools;
import org.vdiskload.testing.WriteTorture;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Creating, writing, converting and checking VDI images, with qemu-img as the oracle. */
class VdiWriteTest {
    @TempDir
    Path dir;

    private static final OpenOptions RW = OpenOptions.DEFAULTS.withFormat("vdi").withWritable(true);
    private static final int MB = 1 << 20;

    private Path create(String name, long size, Map<String, String> options) throws Exception {
        Path p = dir.resolve(name);
        Create.create(p, new VdiFormat(), size, options, null, null);
        return p;
    }

    private static Tools.Result qemuCheck(Path p) throws Exception {
        return Tools.run(List.of("qemu-img", "check", "-f", "vdi", p.toString()), null);
    }

    private void patch(Path p, String... fields) throws Exception {
        List<String> cmd = new java.util.ArrayList<>(List.of("python3", Tools.repo().resolve("testdata/structpatch.py").toString(), p.toString()));
        cmd.addAll(List.of(fields));
        Tools.run(cmd, dir).requireSuccess(cmd);
    }

    /** File offset of data slot {@code n} (offset_data at 0x158). */
    private static long slot(Path p, int n) throws Exception {
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(p), 0x158, 4).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        return Integer.toUnsignedLong(b.getInt(0x158)) + (long) n * MB;
    }

    /** The header and block map (static images are sparse but large). */
    private static byte[] head(Path p) throws Exception {
        try (var in = Files.newInputStream(p)) {
            return in.readNBytes(64 << 10);
        }
    }

    /** Equal to qemu-img's file but for the two random UUIDs (image and last snapshot, 0x188..0x1a8). */
    @Test
    void createMatchesQemuImgButForTheUuids() throws Exception {
        for (String opts : new String[] {"", "static=on"}) {
            for (long size : new long[] {0, 1000, 5 * MB, 5 * MB + 512, 1L << 32}) {
                Map<String, String> o = opts.isEmpty() ? Map.of() : Map.of("static", "on");
                Path ours = create("ours.vdi", size, o);
                Path theirs = dir.resolve("theirs.vdi");
                List<String> cmd = new java.util.ArrayList<>(List.of("qemu-img", "create", "-q", "-f", "vdi"));
                if (!opts.isEmpty()) cmd.addAll(List.of("-o", opts));
                cmd.addAll(List.of(theirs.toString(), Long.toString(size)));
                Tools.run(cmd, dir).requireSuccess(cmd);
                assertEquals(Files.size(theirs), Files.size(ours), opts + " " + size);
                byte[] a = head(ours);
                byte[] b = head(theirs);
                Arrays.fill(a, 0x188, 0x1a8, (byte) 0);
                Arrays.fill(b, 0x188, 0x1a8, (byte) 0);
                assertArrayEquals(b, a, opts + " " + size);
                assertEquals(0, qemuCheck(ours).exit());
            }
        }
    }

    /**
     * A new block past the end of the file gets only the data written (the hole reads as zeros, the file
     * reaches the block's end); a slot inside the file, over old bytes, gets zeros around the data.
     */
    @Test
    void aPartlyWrittenNewBlockReadsZerosAroundItsData() throws Exception {
        Path p = create("partial.vdi", 8 * MB, Map.of());
        byte[] block = new byte[4096];
        Arrays.fill(block, (byte) 0x22);
        try (DiskImage d = Images.open(p, RW)) {
            d.write(ByteBuffer.wrap(block), 8192); // block 0, slot 0: past the end
        }
        assertEquals(slot(p, 1), Files.size(p), "the file reaches the end of slot 0");
        byte[] stale = new byte[MB];
        Arrays.fill(stale, (byte) 0x11);
        Files.write(p, stale, java.nio.file.StandardOpenOption.APPEND); // old bytes where slot 1 will be
        try (DiskImage d = Images.open(p, RW)) {
            d.write(ByteBuffer.wrap(block), 3L * MB + 8192); // block 3, slot 1: inside the file
        }
        byte[] expected = new byte[8 * MB];
        System.arraycopy(block, 0, expected, 8192, 4096);
        System.arraycopy(block, 0, expected, 3 * MB + 8192, 4096);
        Path raw = dir.resolve("partial.raw");
        Files.write(raw, expected);
        Tools.check("qemu-img", "compare", "-q", "-f", "raw", "-F", "vdi", raw.toString(), p.toString());
        assertEquals(0, qemuCheck(p).exit());
    }

    @Test
    void badOptionsAreRefusedAndLeaveNoFile() throws Exception {
        Path p = dir.resolve("bad.vdi");
        for (Map<String, String> o : List.of(Map.of("static", "maybe"), Map.of("cluster_size", "2M"), Map.of("subformat", "fixed"),
                Map.of("preallocation", "full"))) {
            ImageException e = assertThrows(ImageException.class, () -> Create.create(p, new VdiFormat(), MB, o, null, null));
            assertTrue(e.getMessage().startsWith(p + ": "), e.getMessage());
            assertFalse(Files.exists(p), o.toString());
        }
        ImageException big = assertThrows(ImageException.class, () -> Create.create(p, new VdiFormat(), 600L << 40, Map.of(), null, null));
        assertTrue(big.getMessage().contains("unsupported VDI image size"), big.getMessage());
        Path raw = dir.resolve("b.raw");
        Files.write(raw, new byte[512]);
        ImageException backed = assertThrows(ImageException.class, () -> Create.create(p, new VdiFormat(), MB, Map.of(), "b.raw", "raw"));
        assertTrue(backed.getMessage().contains("the parent of a differencing VDI must be a VDI, not raw"), backed.getMessage());
        assertFalse(Files.exists(p));
    }

    @Test
    void tortureDynamic() throws Exception {
        WriteTorture.run(create("d.vdi", 16 * MB, Map.of()), "vdi", new WriteTorture.Plan(2000, 250, MB, 21));
    }

    @Test
    void tortureStatic() throws Exception {
        WriteTorture.run(create("s.vdi", 8 * MB + 4096, Map.of("static", "on")), "vdi", new WriteTorture.Plan(1500, 250, MB, 22));
    }

    @Test
    void tortureQemuMadeImage() throws Exception {
        Path p = dir.resolve("q.vdi");
        Tools.check("qemu-img", "create", "-q", "-f", "vdi", p.toString(), "12M");
        Tools.check("qemu-io", "-f", "vdi", "-c", "write -P 0x11 3M 64k", "-c", "write -P 0x22 0 4k", "-c", "write -P 0x33 7M 1M", p.toString());
        WriteTorture.run(p, "vdi", new WriteTorture.Plan(1500, 300, MB, 23));
    }

    @Test
    void crashSafety() throws Exception {
        CrashTest.run(dir, "vdi", p -> Create.create(p, new VdiFormat(), 64 * MB, Map.of(), null, null), 24);
    }

    @Test
    void inPlaceOnlyForAllocatedBlocks() throws Exception {
        Path p = create("m.vdi", 4 * MB, Map.of());
        try (DiskImage d = Images.open(p, RW)) {
            d.write(ByteBuffer.wrap(new byte[] {9}), MB + 5);
            List<Extent> map = d.map(0, d.size());
            assertFalse(map.get(0).inPlace(), map.toString());
            assertTrue(map.get(1).inPlace() && map.get(1).kind() == Extent.Kind.DATA && map.get(1).length() == MB, map.toString());
            assertFalse(map.get(2).inPlace(), map.toString());
        }
        try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS.withFormat("vdi"))) {
            assertTrue(d.map(0, d.size()).stream().noneMatch(Extent::inPlace));
        }
    }

    /** A whole last block is given back (discarded, blocks_allocated lowered); others get zeros or a hole. */
    @Test
    void discardGivesBackTheLastBlockAndQemuStaysClean() throws Exception {
        Path p = create("z.vdi", 4 * MB, Map.of());
        byte[] ones = new byte[3 * MB];
        Arrays.fill(ones, (byte) 1);
        try (DiskImage d = Images.open(p, RW)) {
            d.write(ByteBuffer.wrap(ones), 0);
            d.discard(2 * MB, MB);            // the last slot: given back
            d.discard(0, MB);                 // not the last slot: a hole, still allocated
            d.writeZeroes(MB + 10, 100, false);
            List<Extent> map = d.map(0, d.size());
            assertEquals(Extent.Kind.DATA, map.get(0).kind(), map.toString());
            assertEquals(Extent.Kind.ZERO, map.get(map.size() - 1).kind(), map.toString());
        }
        assertEquals(slot(p, 2), Files.size(p));
        assertEquals(0, qemuCheck(p).exit(), qemuCheck(p).stderr());
        try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS.withFormat("vdi"))) {
            byte[] all = WriteTorture.readAll(d);
            for (int i = 0; i < all.length; i++) {
                int want = i >= MB && i < 2 * MB && !(i >= MB + 10 && i < MB + 110) ? 1 : 0;
                if (all[i] != want) throw new AssertionError("byte " + i + " is " + all[i]);
            }
        }
        try (DiskImage d = Images.open(p, RW)) { // the freed slot is used again
            d.write(ByteBuffer.wrap(new byte[] {5}), 3 * MB);
        }
        assertEquals(0, qemuCheck(p).exit());
        assertEquals(slot(p, 2) + MB, Files.size(p));
    }

    @Test
    void convertRoundTripsForQemu() throws Exception {
        Path src = dir.resolve("src.raw");
        Tools.check("qemu-img", "create", "-q", "-f", "raw", src.toString(), "5000000");
        byte[] random = new byte[300_000];
        new Random(3).nextBytes(random);
        Files.write(src, random, java.nio.file.StandardOpenOption.WRITE);
        Tools.check("qemu-io", "-f", "raw", "-c", "write -P 0x33 2M 1M", "-c", "write -P 0x44 4999680 320", src.toString());
        for (Map<String, String> o : List.of(Map.<String, String>of(), Map.of("static", "on"))) {
            Path out = dir.resolve("conv.vdi");
            try (DiskImage in = Images.open(src, OpenOptions.DEFAULTS.withFormat("raw"))) {
                Convert.convert(in, new Convert.Target(out, new VdiFormat(), o, false, false), Progress.NONE);
            }
            assertEquals(0, qemuCheck(out).exit(), o.toString());
            Tools.check("qemu-img", "compare", "-f", "raw", "-F", "vdi", src.toString(), out.toString());
            assertEquals(0, Check.check(out, "vdi", RepairMode.NONE).exitCode());
            Files.delete(out);
        }
    }

    /** More blocks allocated than mapped (a crash between a block and its map entry): a leak we repair. */
    @Test
    void unreferencedBlocksAreLeaksThatRepairGivesBack() throws Exception {
        Path p = create("l.vdi", 4 * MB, Map.of());
        try (DiskImage d = Images.open(p, RW)) {
            d.write(ByteBuffer.wrap(new byte[] {1}), 0);
            d.write(ByteBuffer.wrap(new byte[] {2}), MB);
            d.write(ByteBuffer.wrap(new byte[] {3}), 2 * MB);
        }
        // Drop block 1 (slot 1) from the map: slots 0 and 2 remain, blocks_allocated stays 3.
        patch(p, "0x204", "<I", "0xffffffff");
        assertEquals(2, qemuCheck(p).exit(), "qemu calls the mismatch a corruption");
        CheckReport r = Check.check(p, "vdi", RepairMode.NONE);
        assertEquals(1, r.leaks());
        assertEquals(3, r.exitCode());
        CheckReport fixed = Check.check(p, "vdi", RepairMode.LEAKS);
        assertEquals(1, fixed.leaksFixed());
        assertEquals(0, fixed.exitCode());
        assertEquals(0, qemuCheck(p).exit(), qemuCheck(p).stderr());
        assertEquals(slot(p, 2), Files.size(p));
        try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS.withFormat("vdi"))) {
            ByteBuffer b = ByteBuffer.allocate(1);
            d.read(b, 2 * MB);
            assertEquals(3, b.get(0));
            d.read(b.clear(), 0);
            assertEquals(1, b.get(0));
        }
    }

    @Test
    void duplicateAndMismatchedEntriesAreCorruptionsAsInQemu() throws Exception {
        Path p = create("c.vdi", 4 * MB, Map.of());
        try (DiskImage d = Images.open(p, RW)) {
            d.write(ByteBuffer.wrap(new byte[] {1}), 0);
            d.write(ByteBuffer.wrap(new byte[] {2}), MB);
        }
        patch(p, "0x208", "<I", "1"); // block 2 also uses data block 1
        Tools.Result q = qemuCheck(p);
        assertEquals(2, q.exit());
        CheckReport r = Check.check(p, "vdi", RepairMode.NONE);
        assertEquals(2, r.exitCode());
        assertEquals(2, r.corruptions(), r.messages().toString()); // as qemu: the duplicate and the count
        assertTrue(q.stderr().contains("also used by"), q.stderr());
        assertTrue(r.messages().stream().anyMatch(m -> m.contains("also used by")), r.messages().toString());
        assertEquals(2, Check.check(p, "vdi", RepairMode.ALL).exitCode(), "corruptions are not repaired");
    }
}
