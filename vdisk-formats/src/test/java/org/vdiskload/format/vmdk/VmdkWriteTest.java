package org.vdiskload.format.vmdk;

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
import org.vdiskload.ops.Create;
import org.vdiskload.ops.Resize;
import org.vdiskload.testing.CrashTest;
import org.vdiskload.testing.Tools;
import org.vdiskload.testing.WriteTorture;

import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** In-place writes into every writable VMDK kind: torture against a model, crashes, the CID, the extent map, check. */
class VmdkWriteTest {
    private static final int GRAIN = 64 << 10;
    private static final OpenOptions RW = OpenOptions.DEFAULTS.withFormat("vmdk").withWritable(true);
    private static final OpenOptions RO = OpenOptions.DEFAULTS.withFormat("vmdk");

    @TempDir
    Path dir;

    private Path create(String name, long size, Map<String, String> options) throws Exception {
        Path p = dir.resolve(name);
        Create.create(p, new VmdkFormat(), size, options, null, null);
        return p;
    }

    private static void qemu(String... cmd) throws Exception {
        Tools.check(cmd);
    }

    private static String cidOf(Path p) throws Exception {
        try (DiskImage d = Images.open(p, RO)) {
            return Long.toHexString(((VmdkLayer) d.layers().get(0)).cid());
        }
    }

    @Test
    void tortureMonolithicSparse() throws Exception {
        Path img = create("t.vmdk", 8 << 20, Map.of());
        WriteTorture.run(img, "vmdk", new WriteTorture.Plan(2000, 250, GRAIN, 1));
    }

    @Test
    void tortureMonolithicSparseWithZeroedGrains() throws Exception {
        Path img = create("z.vmdk", 8 << 20, Map.of("zeroed_grain", "on"));
        WriteTorture.run(img, "vmdk", new WriteTorture.Plan(2000, 250, GRAIN, 2));
    }

    @Test
    void tortureTwoGbMaxExtentSparse() throws Exception {
        Path img = create("s.vmdk", 8 << 20, Map.of("subformat", "twoGbMaxExtentSparse"));
        WriteTorture.run(img, "vmdk", new WriteTorture.Plan(1500, 250, GRAIN, 3));
    }

    @Test
    void tortureMonolithicFlat() throws Exception {
        Path img = create("f.vmdk", 8 << 20, Map.of("subformat", "monolithicFlat"));
        WriteTorture.run(img, "vmdk", new WriteTorture.Plan(1500, 250, GRAIN, 4));
    }

    /** A 3-deep chain made by qemu, each lower layer written by qemu-io; only the top is written here. */
    @Test
    void tortureThroughAThreeDeepChain() throws Exception {
        Path base = dir.resolve("base.vmdk");
        Path mid = dir.resolve("mid.vmdk");
        Path top = dir.resolve("top.vmdk");
        qemu("qemu-img", "create", "-q", "-f", "vmdk", base.toString(), "8M");
        qemu("qemu-io", "-f", "vmdk", "-c", "write -P 0x11 0 3M", "-c", "write -P 0x12 5M 100k", base.toString());
        qemu("qemu-img", "create", "-q", "-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk", mid.toString());
        qemu("qemu-io", "-f", "vmdk", "-c", "write -P 0x21 1M 3M", "-c", "write -z 6M 128k", mid.toString());
        qemu("qemu-img", "create", "-q", "-f", "vmdk", "-b", "mid.vmdk", "-F", "vmdk", top.toString());
        qemu("qemu-io", "-f", "vmdk", "-c", "write -P 0x31 2M 70k", top.toString());
        WriteTorture.run(top, "vmdk", new WriteTorture.Plan(1500, 250, GRAIN, 5));
    }

    /** Grain directories without grain tables (VMware leaves them out; qemu allocates all): tables are appended. */
    @Test
    void tortureAllocatesMissingGrainTables() throws Exception {
        Path img = create("nogt.vmdk", 40 << 20, Map.of());
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            for (int headerField : new int[] {48, 56}) { // rgdOffset, gdOffset: two entries each
                ByteBuffer h = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
                f.getChannel().read(h, headerField);
                f.getChannel().write(ByteBuffer.allocate(8), h.getLong(0) * 512);
            }
        }
        WriteTorture.run(img, "vmdk", new WriteTorture.Plan(600, 200, GRAIN, 7));
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "r")) {
            for (int headerField : new int[] {48, 56}) {
                ByteBuffer h = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
                f.getChannel().read(h, headerField);
                ByteBuffer gd = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
                f.getChannel().read(gd, h.getLong(0) * 512);
                assertTrue(gd.getInt(0) != 0 && gd.getInt(4) != 0 && gd.getInt(0) != gd.getInt(4), "tables appended for both directories");
            }
        }
    }

    /**
     * Threads write their own 2 MiB of one disk at once (allocating grains of the same grain tables) and
     * read back what they wrote after every write; at the end qemu-img sees every thread's bytes.
     */
    @Test
    void concurrentWritersAndReaders() throws Exception {
        Path img = create("cc.vmdk", 8 << 20, Map.of());
        byte[] model = new byte[8 << 20];
        try (DiskImage d = Images.open(img, RW)) {
            List<java.util.concurrent.Callable<Void>> jobs = new java.util.ArrayList<>();
            for (int t = 0; t < 4; t++) {
                int region = t;
                jobs.add(() -> {
                    java.util.Random r = new java.util.Random(region);
                    long base = region * (2L << 20);
                    for (int i = 0; i < 200; i++) {
                        int len = 1 + r.nextInt(3 * GRAIN);
                        long pos = base + r.nextInt((2 << 20) - len);
                        byte[] data = new byte[len];
                        r.nextBytes(data);
                        d.write(ByteBuffer.wrap(data), pos);
                        System.arraycopy(data, 0, model, (int) pos, len);
                        ByteBuffer back = ByteBuffer.allocate(2 << 20);
                        d.read(back, base);
                        assertArrayEquals(Arrays.copyOfRange(model, (int) base, (int) base + (2 << 20)), back.array(),
                                "thread " + region + " after write " + i);
                    }
                    return null;
                });
            }
            java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(4);
            try {
                for (java.util.concurrent.Future<Void> f : pool.invokeAll(jobs)) f.get();
            } finally {
                pool.shutdownNow();
            }
        }
        Path raw = dir.resolve("cc.raw");
        Files.write(raw, model);
        qemu("qemu-img", "check", "-q", img.toString());
        qemu("qemu-img", "compare", "-q", "-F", "raw", img.toString(), raw.toString());
    }

    @Test
    void crashesLeaveNoCorruption() throws Exception {
        CrashTest.run(dir, "vmdk", p -> Create.create(p, new VmdkFormat(), 32 << 20, Map.of(), null, null), 6);
    }

    /** Writes crossing the 2 GiB boundary between the extents of a twoGbMaxExtentSparse disk (sparse files: cheap). */
    @Test
    void writesCrossTheTwoGibExtentBoundary() throws Exception {
        long size = (2L << 30) + (4 << 20);
        Path img = create("big.vmdk", size, Map.of("subformat", "twoGbMaxExtentSparse"));
        assertTrue(Files.exists(dir.resolve("big-s002.vmdk")));
        Path raw = dir.resolve("big.raw");
        try (RandomAccessFile f = new RandomAccessFile(raw.toFile(), "rw")) {
            f.setLength(size);
        }
        long[][] writes = {{(2L << 30) - 1000, 3000}, {(2L << 30) - GRAIN, 3 * GRAIN}, {size - 700, 700}, {12345, 100}};
        try (DiskImage d = Images.open(img, RW); RandomAccessFile f = new RandomAccessFile(raw.toFile(), "rw")) {
            int k = 1;
            for (long[] w : writes) {
                byte[] data = new byte[(int) w[1]];
                Arrays.fill(data, (byte) k++);
                d.write(ByteBuffer.wrap(data), w[0]);
                f.seek(w[0]);
                f.write(data);
            }
            d.writeZeroes((2L << 30) - 100, 200, true);
            f.seek((2L << 30) - 100);
            f.write(new byte[200]);
        }
        qemu("qemu-img", "check", "-q", "-f", "vmdk", img.toString());
        qemu("qemu-img", "compare", "-q", "-f", "vmdk", "-F", "raw", img.toString(), raw.toString());
    }

    @Test
    void inPlaceOnlyForAllocatedGrainsAfterTheCidChanged() throws Exception {
        Path img = create("m.vmdk", 4 << 20, Map.of());
        try (DiskImage d = Images.open(img, RW)) {
            assertTrue(d.map(0, d.size()).stream().noneMatch(Extent::inPlace));
            d.write(ByteBuffer.wrap(new byte[] {1, 2, 3}), GRAIN + 10);
            List<Extent> map = d.map(0, d.size());
            for (Extent e : map) {
                boolean allocated = e.start() < 2L * GRAIN && e.end() > GRAIN;
                assertEquals(allocated, e.inPlace(), e.toString());
                if (allocated) assertEquals(Extent.Kind.DATA, e.kind());
            }
        }
        try (DiskImage d = Images.open(img, RO)) {
            assertTrue(d.map(0, d.size()).stream().noneMatch(Extent::inPlace));
        }
        Path child = dir.resolve("child.vmdk");
        Create.create(child, new VmdkFormat(), -1, Map.of(), "m.vmdk", "vmdk");
        try (DiskImage d = Images.open(child, RW)) {
            d.write(ByteBuffer.wrap(new byte[] {9}), 0);
            // copy-on-write from the parent: only the grain written is this layer's, and it is in place
            List<Extent> map = d.map(0, 2L * GRAIN);
            assertTrue(map.get(0).inPlace() && map.get(0).depth() == 0 && map.get(0).length() == GRAIN, map.toString());
            assertFalse(map.get(map.size() - 1).inPlace(), map.toString());
            ByteBuffer b = ByteBuffer.allocate(3);
            d.read(b, GRAIN + 10);
            assertArrayEquals(new byte[] {1, 2, 3}, b.array());
        }
        Path so = create("so.vmdk", 1 << 20, Map.of("subformat", "streamOptimized"));
        try (DiskImage d = Images.open(so, RW)) {
            d.write(ByteBuffer.wrap(new byte[GRAIN]).put(0, (byte) 1), 0);
            d.flush();
            assertTrue(d.map(0, d.size()).stream().noneMatch(Extent::inPlace));
        }
    }

    /** As qemu: the first write after open gives a new CID; a delta made before then no longer opens. */
    @Test
    void firstWriteChangesTheCid() throws Exception {
        Path parent = create("p.vmdk", 1 << 20, Map.of());
        String before = cidOf(parent);
        Path child = dir.resolve("c.vmdk");
        Create.create(child, new VmdkFormat(), -1, Map.of(), "p.vmdk", "vmdk");
        String desc = Files.readString(child, java.nio.charset.StandardCharsets.ISO_8859_1);
        assertTrue(desc.contains("parentCID=" + before + "\n") && desc.contains("parentFileNameHint=\"p.vmdk\"")
                && desc.contains("createType=\"monolithicSparse\""), desc);
        qemu("qemu-img", "check", "-q", child.toString());
        try (DiskImage d = Images.open(parent, RW)) {
            assertEquals(before, cidOf(parent), "opening alone keeps the CID");
            d.write(ByteBuffer.wrap(new byte[] {1}), 0);
        }
        String after = cidOf(parent);
        assertNotEquals(before, after);
        assertTrue(Tools.run(List.of("qemu-img", "info", parent.toString()), null).stdout().contains("cid: " + Long.parseLong(after, 16)));
        ImageException e = assertThrows(ImageException.class, () -> Images.open(child, RO).close());
        assertTrue(e.getMessage().contains("parentCID"), e.getMessage());
    }

    @Test
    void streamOptimizedIsAppendOnly() throws Exception {
        Path so = create("so.vmdk", 1 << 20, Map.of("subformat", "streamOptimized"));
        try (DiskImage d = Images.open(so, RW)) {
            d.write(ByteBuffer.wrap(new byte[100]).put(0, (byte) 7), 5);
            d.write(ByteBuffer.wrap(new byte[] {8}), 200); // same grain, still in memory
            d.write(ByteBuffer.wrap(new byte[] {9}), 3L * GRAIN);
            ImageException e = assertThrows(ImageException.class, () -> d.write(ByteBuffer.wrap(new byte[] {1}), 10));
            assertTrue(e.getMessage().contains("append-only") && !e.getMessage().contains("\n"), e.getMessage());
            ByteBuffer b = ByteBuffer.allocate(1);
            d.read(b, 3L * GRAIN);
            assertEquals(9, b.get(0));
        }
        Path raw = dir.resolve("so.raw");
        byte[] want = new byte[1 << 20];
        want[5] = 7;
        want[200] = 8;
        want[3 * GRAIN] = 9;
        Files.write(raw, want);
        qemu("qemu-img", "check", "-q", so.toString());
        qemu("qemu-img", "compare", "-q", "-F", "raw", so.toString(), raw.toString());
    }

    /** qemu's vmdk check: a grain past EOF is reported (qemu-img: "Check failed", exit 1); no leak accounting. */
    @Test
    void checkFindsGrainsPastTheEndLikeQemu() throws Exception {
        Path img = create("c.vmdk", 4 << 20, Map.of());
        try (DiskImage d = Images.open(img, RW)) {
            d.write(ByteBuffer.wrap(new byte[GRAIN]).put(0, (byte) 1), 0);
        }
        CheckReport clean = Check.check(img, "vmdk", RepairMode.NONE);
        assertEquals(0, clean.exitCode(), clean.toString());
        assertEquals(0, Check.check(img, "vmdk", RepairMode.LEAKS).exitCode());
        // point grain 1 far past the end of the file, in the grain table and its redundant copy
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            for (int headerField : new int[] {48, 56}) {
                ByteBuffer h = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
                f.getChannel().read(h, headerField);
                ByteBuffer gd = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
                f.getChannel().read(gd, h.getLong(0) * 512);
                f.getChannel().write(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(0, 999_999), gd.getInt(0) * 512L + 4);
            }
        }
        CheckReport bad = Check.check(img, "vmdk", RepairMode.NONE);
        Tools.Result q = Tools.run(List.of("qemu-img", "check", img.toString()), null);
        assertEquals(q.exit(), bad.exitCode(), bad + " vs " + q.stderr());
        assertEquals(1, bad.corruptions());
        assertTrue(bad.messages().get(0).contains("sector 128 points after EOF") && q.stderr().contains("sector 128 points after EOF"),
                bad.messages() + " / " + q.stderr());
    }

    /** As qemu: a version 3 (changed-block tracking) extent opens read-only only; a footer-directory stream takes no writes. */
    @Test
    void refusesWhatCannotBeWrittenSafely() throws Exception {
        Path v3 = create("v3.vmdk", 1 << 20, Map.of());
        try (RandomAccessFile f = new RandomAccessFile(v3.toFile(), "rw")) {
            f.getChannel().write(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(0, 3), 4);
        }
        Images.open(v3, RO).close();
        ImageException e = assertThrows(ImageException.class, () -> Images.open(v3, RW).close());
        assertEquals(ImageException.Kind.UNSUPPORTED, e.kind());
        assertTrue(e.getMessage().contains("version 3") && e.getMessage().contains("read-only"), e.getMessage());

        Path images = Files.createDirectories(dir.resolve("images"));
        Tools.generate("vmdk.sh", images);
        Path stream = images.resolve("vmware-stream.vmdk");
        byte[] before = Files.readAllBytes(stream);
        try (DiskImage d = Images.open(stream, RW)) {
            ImageException w = assertThrows(ImageException.class, () -> d.write(ByteBuffer.allocate(1), 3 << 20));
            assertTrue(w.getMessage().contains("grain directory in the footer"), w.getMessage());
        }
        assertArrayEquals(before, Files.readAllBytes(stream), "a refused write changes nothing, not even the CID");
    }

    @Test
    void resizeIsRefusedClearly() throws Exception {
        Path img = create("r.vmdk", 1 << 20, Map.of());
        ImageException e = assertThrows(ImageException.class, () -> Resize.resize(img, "vmdk", 2 << 20, false));
        assertTrue(e.getMessage().contains("resizing VMDK images is not supported"), e.getMessage());
    }

    /**
     * The hand-made test images take writes too: split and mixed extents, COWD and VMFSSPARSE extents, odd
     * grain and table sizes, grain tables scattered in the file, an embedded descriptor in a capacity-0
     * sparse file, deltas over a chain and over a flat disk.
     */
    @TestFactory
    Stream<DynamicTest> writesIntoEveryWritableTestImage() throws Exception {
        Path images = Files.createDirectories(dir.resolve("images"));
        List<String> writable = List.of("split.vmdk", "splitflat.vmdk", "vmfs.vmdk", "vmfssparse.vmdk", "cowd.vmdk", "mixed.vmdk",
                "small-grains.vmdk", "scattered.vmdk", "chain-top.vmdk", "flat-delta.vmdk", "short-flat.vmdk", "descsparse.vmdk");
        List<Tools.GeneratedImage> all = Tools.generate("vmdk.sh", images);
        return all.stream().filter(img -> writable.contains(img.path().getFileName().toString())).map(img ->
                DynamicTest.dynamicTest(img.toString(), () ->
                        WriteTorture.run(img.path(), "vmdk", new WriteTorture.Plan(300, 100, GRAIN, img.path().hashCode()))));
    }

    /** qemu-made images take our writes: qemu-img check stays clean and qemu reads back what we wrote. */
    @Test
    void writesIntoQemuMadeImages() throws Exception {
        for (String sub : new String[] {"monolithicSparse", "twoGbMaxExtentSparse", "monolithicFlat", "twoGbMaxExtentFlat"}) {
            Path img = dir.resolve("q-" + sub + ".vmdk");
            qemu("qemu-img", "create", "-q", "-f", "vmdk", "-o", "subformat=" + sub + ",zeroed_grain=" + (sub.endsWith("Sparse") ? "on" : "off"),
                    img.toString(), "4M");
            qemu("qemu-io", "-f", "vmdk", "-c", "write -P 0x11 0 100k", "-c", "write -z 1M 64k", img.toString());
            WriteTorture.run(img, "vmdk", new WriteTorture.Plan(300, 100, GRAIN, sub.hashCode()));
        }
    }
}
