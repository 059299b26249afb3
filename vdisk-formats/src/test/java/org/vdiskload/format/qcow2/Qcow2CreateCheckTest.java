package org.vdiskload.format.qcow2;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
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
import org.vdiskload.testing.Tools;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** qcow2 create options against qemu-img info, convert round trips, and check against qemu-img check. */
class Qcow2CreateCheckTest {
    @TempDir
    Path dir;

    private static String info(Path p) throws Exception {
        return Tools.check("qemu-img", "info", "--output=json", p.toString()).replaceAll("\\s+", "");
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "compat=0.10", "cluster_size=512", "cluster_size=2M", "refcount_bits=1", "refcount_bits=64",
            "lazy_refcounts=on", "extended_l2=on,cluster_size=16k", "compression_type=zstd", "preallocation=metadata",
            "preallocation=falloc", "preallocation=full,cluster_size=4k"})
    void createdAsRequestedAndClean(String spec) throws Exception {
        Path p = dir.resolve("c.qcow2");
        Map<String, String> o = Qcow2WriteTest.options(spec);
        Create.create(p, new Qcow2Format(), 5 << 20, o, null, null);
        assertEquals(0, Tools.run(List.of("qemu-img", "check", p.toString()), null).exit());
        String info = info(p);
        assertTrue(info.contains("\"virtual-size\":5242880"), info);
        assertTrue(info.contains("\"cluster-size\":" + org.vdiskload.image.Sizes.parse(o.getOrDefault("cluster_size", "64k"))), info);
        assertTrue(info.contains("\"compat\":\"" + o.getOrDefault("compat", "1.1") + "\""), info);
        assertTrue(info.contains("\"refcount-bits\":" + o.getOrDefault("refcount_bits", "16")), info);
        assertTrue(info.contains("\"compression-type\":\"" + o.getOrDefault("compression_type", "zlib") + "\""), info);
        if (!spec.contains("compat=0.10")) {
            assertTrue(info.contains("\"lazy-refcounts\":" + o.containsKey("lazy_refcounts")), info);
            assertTrue(info.contains("\"extended-l2\":" + o.containsKey("extended_l2")), info);
        }
        if (spec.contains("prealloc")) {
            List<QemuMap> map = qemuMap(p);
            assertTrue(map.stream().allMatch(QemuMap::data), "preallocated: every cluster allocated " + map);
        }
        // libyal's qcowinfo reads what we made (it knows neither extended L2 entries nor zstd).
        if (!spec.contains("extended_l2") && !spec.contains("zstd")) {
            String out = Tools.check("qcowinfo", p.toString());
            assertTrue(out.contains("5242880"), out);
        }
    }

    private record QemuMap(boolean data) {}

    private static List<QemuMap> qemuMap(Path p) throws Exception {
        String out = Tools.check("qemu-img", "map", "--output=json", p.toString());
        return Pattern.compile("\"data\":\\s*(true|false)").matcher(out).results().map(m -> new QemuMap(m.group(1).equals("true"))).toList();
    }

    @Test
    void backingFileAndFormatAreRecorded() throws Exception {
        Path base = dir.resolve("base.raw");
        Files.write(base, new byte[3 << 20]);
        Path p = dir.resolve("child.qcow2");
        Create.create(p, new Qcow2Format(), -1, Map.of("compat", "0.10"), "base.raw", "raw");
        String info = info(p);
        assertTrue(info.contains("\"backing-filename\":\"base.raw\""), info);
        assertTrue(info.contains("\"backing-filename-format\":\"raw\""), info);
        assertTrue(info.contains("\"virtual-size\":3145728"), info);
        assertEquals(0, Tools.run(List.of("qemu-img", "check", p.toString()), null).exit());
        Path x = dir.resolve("x.qcow2");
        Create.create(x, new Qcow2Format(), -1, Map.of("extended_l2", "on", "preallocation", "metadata"), "base.raw", "raw");
        assertEquals(0, Tools.run(List.of("qemu-img", "compare", x.toString(), base.toString()), null).exit());
    }

    @ParameterizedTest
    @ValueSource(strings = {"cluster_size=3000", "cluster_size=256", "cluster_size=4M", "refcount_bits=3", "refcount_bits=128",
            "compat=0.10,refcount_bits=8", "compat=0.10,lazy_refcounts=on", "compat=0.10,compression_type=zstd",
            "extended_l2=on,cluster_size=8k", "compat=2.0", "preallocation=sparse", "compression_type=lz4", "lazy_refcounts=maybe",
            "encryption=on", "data_file=x.raw"})
    void badOptionsAreRefusedBeforeAnyFileIsWritten(String spec) {
        Path p = dir.resolve("bad.qcow2");
        ImageException e = assertThrows(ImageException.class, () -> Create.create(p, new Qcow2Format(), 1 << 20, Qcow2WriteTest.options(spec), null, null));
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
        assertTrue(e.getMessage().contains("bad.qcow2"), e.getMessage());
        assertFalse(Files.exists(p), spec);
    }

    @Test
    void backingWithPreallocationNeedsExtendedL2() throws Exception {
        Path base = dir.resolve("b.raw");
        Files.write(base, new byte[1 << 20]);
        Path p = dir.resolve("p.qcow2");
        ImageException e = assertThrows(ImageException.class,
                () -> Create.create(p, new Qcow2Format(), -1, Map.of("preallocation", "metadata"), "b.raw", "raw"));
        assertTrue(e.getMessage().contains("extended_l2"), e.getMessage());
        assertFalse(Files.exists(p));
    }

    /** Every qemu-made variant converts into qcow2 with each option (and compressed) and compares equal. */
    @Test
    void convertEveryTestImageWithEachOption() throws Exception {
        Path images = Files.createDirectory(dir.resolve("images"));
        Set<Path> seen = new HashSet<>();
        String[] specs = {"", "compat=0.10", "cluster_size=512", "extended_l2=on", "refcount_bits=1", "cluster_size=2M,lazy_refcounts=on",
                "compression_type=zstd", "cluster_size=4k,compression_type=zstd"};
        for (Tools.GeneratedImage g : Tools.generate("qcow2.sh", images)) {
            if (g.flag("snapshot") != null || !seen.add(g.path())) continue;
            OpenOptions o = OpenOptions.DEFAULTS.withFormat("qcow2");
            if (g.flag("backing-format") != null) o = o.withBackingFormat(g.flag("backing-format"));
            int k = 0;
            for (String spec : specs) {
                for (boolean compress : new boolean[] {false, true}) {
                    if (compress && k++ % 2 == 1) continue; // compressed with every other option
                    Path out = dir.resolve("out.qcow2");
                    Files.deleteIfExists(out);
                    String what = g.path().getFileName() + " -o " + spec + (compress ? " -c" : "");
                    try (DiskImage src = Images.open(g.path(), o)) {
                        Convert.convert(src, new Convert.Target(out, new Qcow2Format(), Qcow2WriteTest.options(spec), compress, false), Progress.NONE);
                    }
                    Tools.Result check = Tools.run(List.of("qemu-img", "check", out.toString()), null);
                    assertEquals(0, check.exit(), what + ": " + check.stdout() + check.stderr());
                    List<String> cmp = g.flag("backing-format") != null
                            ? List.of("qemu-img", "compare", "-F", "qcow2", out.toString(), g.path().toString())
                            : List.of("qemu-img", "compare", out.toString(), g.path().toString());
                    Tools.Result same = Tools.run(cmp, null);
                    assertEquals(0, same.exit(), what + ": " + same.stdout() + same.stderr());
                }
            }
        }
    }

    private static long json(String json, String key) {
        Matcher m = Pattern.compile("\"" + key + "\":\\s*(\\d+)").matcher(json);
        return m.find() ? Long.parseLong(m.group(1)) : 0;
    }

    /** Our counts equal qemu-img check's on every image qemu made (including the dirty one). */
    @Test
    void countsAgreeWithQemuImgCheck() throws Exception {
        Set<Path> seen = new HashSet<>();
        for (Tools.GeneratedImage g : Tools.generate("qcow2.sh", dir)) {
            if (!seen.add(g.path())) continue;
            String q = Tools.run(List.of("qemu-img", "check", "--output=json", g.path().toString()), null).stdout();
            CheckReport r = Check.check(g.path(), "qcow2", RepairMode.NONE);
            String what = g.path().getFileName() + ": " + r + " vs " + q;
            assertEquals(json(q, "corruptions"), r.corruptions(), what);
            assertEquals(json(q, "leaks"), r.leaks(), what);
            assertEquals(json(q, "image-end-offset"), r.imageEndOffset(), what);
            assertEquals(json(q, "total-clusters"), r.totalClusters(), what);
            assertEquals(json(q, "allocated-clusters"), r.allocatedClusters(), what);
            assertEquals(json(q, "fragmented-clusters"), r.fragmentedClusters(), what);
            assertEquals(json(q, "compressed-clusters"), r.compressedClusters(), what);
        }
    }

    private Path written(String name, String spec) throws Exception {
        Path p = dir.resolve(name);
        Create.create(p, new Qcow2Format(), 4 << 20, Qcow2WriteTest.options(spec), null, null);
        try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS.withWritable(true))) {
            d.write(ByteBuffer.wrap(new byte[256 << 10]).put(0, (byte) 1).put(100 << 10, (byte) 2).put(200 << 10, (byte) 3), 0);
        }
        return p;
    }

    /** The refcount-block entry of host cluster {@code c} (16-bit refcounts). */
    private static long refcountEntry(Path p, long c) throws Exception {
        Qcow2Header h = TestImages.header(p);
        long block = TestImages.readLong(p, h.refcountTableOffset());
        return block + c * 2;
    }

    @Test
    void leaksExitThreeAndRepairLeaksFixesThem() throws Exception {
        Path p = written("leak.qcow2", "");
        long entry = TestImages.l2Entry(p, 1);
        long cluster = (TestImages.readLong(p, entry) & L2Entry.OFFSET_MASK) >>> 16;
        TestImages.writeLong(p, entry, 0); // the cluster stays counted but nothing points to it
        Tools.Result q = Tools.run(List.of("qemu-img", "check", p.toString()), null);
        assertEquals(3, q.exit(), q.stdout());
        CheckReport r = Check.check(p, "qcow2", RepairMode.NONE);
        assertEquals(3, r.exitCode(), r.toString());
        assertEquals(1, r.leaks());
        assertTrue(r.messages().contains("Leaked cluster " + cluster + " refcount=1 reference=0"), r.messages().toString());
        r = Check.check(p, "qcow2", RepairMode.LEAKS);
        assertEquals(0, r.exitCode(), r.toString());
        assertEquals(1, r.leaksFixed());
        assertEquals(0, Tools.run(List.of("qemu-img", "check", p.toString()), null).exit());
    }

    @Test
    void corruptionsExitTwoAndRepairAllRebuildsTheRefcounts() throws Exception {
        Path p = written("bad.qcow2", "");
        long cluster = (TestImages.readLong(p, TestImages.l2Entry(p, 2)) & L2Entry.OFFSET_MASK) >>> 16;
        TestImages.writeShort(p, refcountEntry(p, cluster), (short) 0); // in use, but counted free
        assertEquals(2, Tools.run(List.of("qemu-img", "check", p.toString()), null).exit());
        CheckReport r = Check.check(p, "qcow2", RepairMode.NONE);
        assertEquals(2, r.exitCode(), r.toString());
        assertTrue(r.messages().stream().anyMatch(m -> m.equals("ERROR cluster " + cluster + " refcount=0 reference=1")), r.messages().toString());
        assertTrue(r.messages().stream().anyMatch(m -> m.startsWith("ERROR OFLAG_COPIED data cluster")), r.messages().toString());
        r = Check.check(p, "qcow2", RepairMode.LEAKS);
        assertEquals(2, r.exitCode(), "-r leaks does not touch corruptions: " + r);
        r = Check.check(p, "qcow2", RepairMode.ALL);
        assertEquals(0, r.exitCode(), r.toString());
        assertTrue(r.corruptionsFixed() >= 1, r.toString());
        assertEquals(0, Tools.run(List.of("qemu-img", "check", p.toString()), null).exit());
        try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS)) {
            ByteBuffer b = ByteBuffer.allocate(1);
            d.read(b, 200 << 10);
            assertEquals(3, b.get(0));
        }
    }

    @Test
    void aDirtyLazyRefcountImageIsRepairedWhenOpenedForWriting() throws Exception {
        Path p = TestImages.make(dir, "dirty.qcow2", "lazy_refcounts=on", "4M");
        Tools.run(List.of("qemu-io", "-f", "qcow2", "-c", "write -P 0x71 64k 64k", "-c", "sigraise 9", p.toString()), null);
        assertTrue(TestImages.header(p).dirty());
        assertEquals(2, Check.check(p, "qcow2", RepairMode.NONE).exitCode());
        try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS.withWritable(true))) {
            d.write(ByteBuffer.wrap(new byte[] {5}), 0);
        }
        assertFalse(TestImages.header(p).dirty());
        assertEquals(0, Tools.run(List.of("qemu-img", "check", p.toString()), null).exit());
        Tools.Result read = Tools.run(List.of("qemu-io", "-f", "qcow2", "-c", "read -P 0x71 64k 64k", p.toString()), null);
        assertFalse(read.stdout().contains("Pattern verification failed"), read.stdout());
    }

    @Test
    void lazyRefcountsSetTheDirtyBitWhileOpenAndClearItOnClose() throws Exception {
        Path p = dir.resolve("lazy.qcow2");
        Create.create(p, new Qcow2Format(), 1 << 20, Map.of("lazy_refcounts", "on"), null, null);
        try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS.withWritable(true))) {
            d.write(ByteBuffer.wrap(new byte[] {5}), 0);
            assertTrue(TestImages.header(p).dirty());
        }
        assertFalse(TestImages.header(p).dirty());
        assertEquals(0, Tools.run(List.of("qemu-img", "check", p.toString()), null).exit());
    }

    @Test
    void writingClearsTheBitmapsAutoclearBitAndFreesTheirClusters() throws Exception {
        Path p = TestImages.make(dir, "bm.qcow2", "compat=1.1", "4M");
        Tools.check("qemu-img", "bitmap", "--add", p.toString(), "b0");
        Tools.check("qemu-io", "-f", "qcow2", "-c", "write -P 1 0 64k", p.toString());
        assertEquals(0, Check.check(p, "qcow2", RepairMode.NONE).exitCode(), "bitmap clusters are counted");
        try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS.withWritable(true))) {
            // Not in place before the first write: writing past us would leave the bitmaps stale but trusted.
            assertFalse(d.map(0, 4096).stream().allMatch(Extent::inPlace));
            d.write(ByteBuffer.wrap(new byte[] {5}), 1 << 20);
            assertTrue(d.map(0, 4096).stream().allMatch(Extent::inPlace));
        }
        assertEquals(0, TestImages.header(p).autoclearFeatures());
        assertEquals(0, Tools.run(List.of("qemu-img", "check", p.toString()), null).exit());
    }
}
