package org.vdiskload.format.qcow;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
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
import org.vdiskload.ops.Resize;
import org.vdiskload.io.WindowedDeflate;
import org.vdiskload.testing.Tools;
import org.vdiskload.testing.WriteTorture;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.zip.Inflater;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Creating, writing and converting qcow (version 1) images, with qemu-img as the oracle. */
class QcowWriteTest {
    @TempDir
    Path dir;

    private static final OpenOptions RW = OpenOptions.DEFAULTS.withFormat("qcow").withWritable(true);

    private Path create(String name, long size, String backing, String backingFormat) throws Exception {
        Path p = dir.resolve(name);
        Create.create(p, new QcowFormat(), size, Map.of(), backing, backingFormat);
        return p;
    }

    /** qemu-img create -f qcow [OPTIONS] NAME SIZE */
    private Path qemuCreate(String name, String size, String... options) throws Exception {
        Path p = dir.resolve(name);
        List<String> cmd = new java.util.ArrayList<>(List.of("qemu-img", "create", "-q", "-f", "qcow"));
        cmd.addAll(List.of(options));
        cmd.addAll(List.of(p.toString(), size));
        Tools.run(cmd, dir).requireSuccess(cmd);
        return p;
    }

    private void qio(String fmt, Path p, String... cmds) throws Exception {
        List<String> cmd = new java.util.ArrayList<>(List.of("qemu-io", "-f", fmt));
        for (String c : cmds) cmd.addAll(List.of("-c", c));
        cmd.add(p.toString());
        Tools.run(cmd, dir).requireSuccess(cmd);
    }

    @Test
    void createIsByteIdenticalToQemuImg() throws Exception {
        Tools.check("qemu-img", "create", "-q", "-f", "raw", dir.resolve("base.raw").toString(), "3M");
        for (long size : new long[] {1000, 8 << 20, 3 * 1024 * 1024 + 512, 5L << 30}) {
            Path ours = create("ours-" + size + ".qcow", size, null, null);
            Path theirs = dir.resolve("theirs-" + size + ".qcow");
            Tools.check("qemu-img", "create", "-q", "-f", "qcow", theirs.toString(), Long.toString(size));
            assertArrayEquals(Files.readAllBytes(theirs), Files.readAllBytes(ours), "size " + size);
        }
        Path ours = create("ours-b.qcow", 4 << 20, "base.raw", "raw");
        Tools.check("qemu-img", "create", "-q", "-f", "qcow", "-b", "base.raw", "-F", "raw", dir.resolve("theirs-b.qcow").toString(), "4M");
        assertArrayEquals(Files.readAllBytes(dir.resolve("theirs-b.qcow")), Files.readAllBytes(ours));
        try (DiskImage d = Images.open(ours, OpenOptions.DEFAULTS)) {
            assertEquals(512L, d.layers().get(0).info().clusterSize());
            assertEquals("base.raw", d.layers().get(0).backing().orElseThrow().name());
        }
    }

    @Test
    void badOptionsAreRefusedAndLeaveNoFile() {
        Path p = dir.resolve("bad.qcow");
        for (Map<String, String> o : List.of(Map.of("cluster_size", "64k"), Map.of("encryption", "on"),
                Map.of("encryption", "maybe"), Map.of("preallocation", "full"), Map.of("encrypt.format", "aes"))) {
            ImageException e = assertThrows(ImageException.class, () -> Create.create(p, new QcowFormat(), 1 << 20, o, null, null));
            assertTrue(e.getMessage().startsWith(p + ": "), e.getMessage());
            assertFalse(Files.exists(p), o.toString());
        }
        ImageException zero = assertThrows(ImageException.class, () -> Create.create(p, new QcowFormat(), 0, Map.of(), null, null));
        assertTrue(zero.getMessage().contains("cannot be zero length"), zero.getMessage());
        assertThrows(ImageException.class, () -> Create.create(p, new QcowFormat(), 1L << 62, Map.of(), null, null));
        assertFalse(Files.exists(p));
    }

    @Test
    void tortureWithoutBackingFile() throws Exception {
        Path img = create("t.qcow", 8 << 20, null, null);
        WriteTorture.run(img, "qcow", new WriteTorture.Plan(2000, 250, 4096, 7));
    }

    @Test
    void tortureQemuMadeImagesWithCompressedClustersAndOtherGeometries() throws Exception {
        Path plain = qemuCreate("plain.qcow", "6M");
        qio("qcow", plain, "write -P 0x11 0 1M", "write -P 0x22 3M 100k");
        Path compressed = dir.resolve("compressed.qcow");
        // qemu 7.2 fails its last, empty compressed write to qcow (exit 1) after copying everything.
        Tools.run(List.of("qemu-img", "convert", "-c", "-f", "qcow", "-O", "qcow", plain.toString(), compressed.toString()), dir);
        Tools.check("qemu-img", "compare", "-f", "qcow", "-F", "qcow", plain.toString(), compressed.toString());
        WriteTorture.run(compressed, "qcow", new WriteTorture.Plan(1500, 300, 4096, 8));
        Path big = dir.resolve("c64k.qcow");
        Tools.check("python3", Tools.repo().resolve("testdata/qcow-geometry.py").toString(), big.toString(), "16", "13", "8000000");
        WriteTorture.run(big, "qcow", new WriteTorture.Plan(800, 200, 65536, 9));
        Path small = dir.resolve("c512.qcow");
        Tools.check("python3", Tools.repo().resolve("testdata/qcow-geometry.py").toString(), small.toString(), "9", "6", "3000000");
        WriteTorture.run(small, "qcow", new WriteTorture.Plan(1500, 300, 512, 10));
    }

    /** base.qcow &lt;- mid.qcow &lt;- top.qcow, the lower two written by qemu-io; qcow records no backing format. */
    @Test
    void tortureThroughAThreeDeepChain() throws Exception {
        Path base = qemuCreate("base.qcow", "8M");
        qio("qcow", base, "write -P 0xa1 0 8M");
        Path mid = qemuCreate("mid.qcow", "8M", "-b", "base.qcow", "-F", "qcow");
        qio("qcow", mid, "write -P 0xb2 1M 1M", "write -z 5M 64k");
        // ops.Create opens the backing chain to check it, without a backing format for mid's own
        // backing file, so the top is made by qemu-img (createIsByteIdenticalToQemuImg covers ours).
        Path top = qemuCreate("top.qcow", "8M", "-b", "mid.qcow", "-F", "qcow");
        WriteTorture.run(top, "qcow", "qcow", new WriteTorture.Plan(1200, 200, 512, 11));
    }

    /** A 4 KiB-cluster image over a backing file (qemu would not copy the rest of a cluster; we do). */
    @Test
    void partialClustersAreFilledFromTheBackingFile() throws Exception {
        Path base = dir.resolve("base.raw");
        Tools.check("qemu-img", "create", "-q", "-f", "raw", base.toString(), "1M");
        qio("raw", base, "write -P 0x5a 0 1M");
        // Created over the backing file (512-byte clusters), then given qemu's no-backing geometry:
        // both have one L1 entry for 1 MiB, so only cluster_bits and l2_bits change.
        Path top = create("wide.qcow", 1 << 20, "base.raw", "raw");
        Tools.check("python3", Tools.repo().resolve("testdata/structpatch.py").toString(), top.toString(), "32", "B", "12", "33", "B", "9");
        try (DiskImage d = Images.open(top, RW)) {
            d.write(ByteBuffer.wrap(new byte[] {1, 2, 3}), 4096 + 100);
        }
        try (DiskImage d = Images.open(top, OpenOptions.DEFAULTS)) {
            assertEquals(4096L, d.layers().get(0).info().clusterSize());
            ByteBuffer b = ByteBuffer.allocate(4096);
            d.read(b, 4096);
            byte[] want = new byte[4096];
            Arrays.fill(want, (byte) 0x5a);
            want[100] = 1;
            want[101] = 2;
            want[102] = 3;
            assertArrayEquals(want, b.array());
        }
        Path raw = dir.resolve("wide.raw");
        Tools.check("qemu-img", "convert", "-f", "qcow", "-O", "raw", top.toString(), raw.toString());
        byte[] all = Files.readAllBytes(raw);
        assertEquals(1, all[4196]);
        assertEquals(0x5a, all[4095]);
        assertEquals(0x5a, all[8191]);
    }

    @Test
    void inPlaceOnlyForAllocatedPlainClusters() throws Exception {
        Path base = dir.resolve("b.raw");
        Tools.check("qemu-img", "create", "-q", "-f", "raw", base.toString(), "1M");
        Path img = create("m.qcow", 1 << 20, null, null);
        byte[] data = new byte[4096];
        new Random(1).nextBytes(data);
        try (DiskImage d = Images.open(img, RW)) {
            d.write(ByteBuffer.wrap(data), 0);
            d.layers().get(0).writeCompressed(ByteBuffer.wrap(new byte[4096]).put(0, (byte) 7), 8192);
            List<Extent> map = d.map(0, d.size());
            assertTrue(map.get(0).inPlace() && map.get(0).kind() == Extent.Kind.DATA, map.toString());
            assertEquals(4096, map.get(0).length());
            assertFalse(map.get(1).inPlace(), map.toString());                      // unallocated
            assertEquals(Extent.Kind.NEEDS_LIBRARY, map.get(2).kind(), map.toString()); // compressed
            assertFalse(map.get(2).inPlace());
        }
        try (DiskImage d = Images.open(img, OpenOptions.DEFAULTS.withFormat("qcow"))) {
            assertTrue(d.map(0, d.size()).stream().noneMatch(Extent::inPlace));
        }
        Path top = create("over.qcow", 1 << 20, "b.raw", "raw");
        try (DiskImage d = Images.open(top, RW)) {
            assertTrue(d.map(0, d.size()).stream().noneMatch(Extent::inPlace), "unallocated over a backing file");
        }
    }

    /** Without a backing file a whole zeroed cluster is unallocated again; with one it is written as zeros. */
    @Test
    void writeZeroesUnallocatesOnlyWithoutABackingFile() throws Exception {
        Path img = create("z.qcow", 1 << 20, null, null);
        byte[] ones = new byte[12288];
        Arrays.fill(ones, (byte) 1);
        try (DiskImage d = Images.open(img, RW)) {
            d.write(ByteBuffer.wrap(ones), 0);
            d.writeZeroes(0, 4096, true);   // unallocated
            d.writeZeroes(4096, 4096, false); // kept, zeros written
            d.writeZeroes(8192 + 100, 50, true); // partial: zeros written
            List<Extent> map = d.map(0, 12288);
            assertEquals(Extent.zero(0, 4096, 0, false), map.get(0));
            assertEquals(Extent.Kind.DATA, map.get(1).kind());
        }
        Path raw = dir.resolve("z.raw");
        Tools.check("qemu-img", "convert", "-f", "qcow", "-O", "raw", img.toString(), raw.toString());
        byte[] all = Files.readAllBytes(raw);
        for (int i = 0; i < 12288; i++) assertEquals(i >= 8192 && !(i >= 8292 && i < 8342) ? 1 : 0, all[i], "byte " + i);
        Path base = dir.resolve("zb.raw");
        Files.write(base, ones);
        Path top = create("zt.qcow", 12288, "zb.raw", "raw");
        try (DiskImage d = Images.open(top, RW)) {
            d.writeZeroes(0, 12288, true);
            assertTrue(d.map(0, 12288).stream().allMatch(e -> e.kind() == Extent.Kind.DATA && e.depth() == 0));
        }
        Path zeros = dir.resolve("zeros.raw");
        Files.write(zeros, new byte[12288]);
        Tools.check("qemu-img", "compare", "-f", "qcow", "-F", "raw", top.toString(), zeros.toString());
    }

    @Test
    void convertPlainAndCompressedIsIdenticalForQemu() throws Exception {
        Path src = dir.resolve("src.raw");
        Tools.check("qemu-img", "create", "-q", "-f", "raw", src.toString(), "5M");
        byte[] random = new byte[200_000];
        new Random(3).nextBytes(random);
        Files.write(src, random, java.nio.file.StandardOpenOption.WRITE);
        qio("raw", src, "write -P 0x33 1M 1M", "write -P 0x44 5241856 512");
        for (boolean compress : new boolean[] {false, true}) {
            Path out = dir.resolve("conv-" + compress + ".qcow");
            try (DiskImage in = Images.open(src, OpenOptions.DEFAULTS.withFormat("raw"))) {
                Convert.convert(in, new Convert.Target(out, new QcowFormat(), Map.of(), compress, false), Progress.NONE);
            }
            Tools.check("qemu-img", "compare", "-f", "raw", "-F", "qcow", src.toString(), out.toString());
            String info = Tools.check("qcowinfo", out.toString());
            assertTrue(info.contains("5242880 bytes"), info);
        }
        assertTrue(Files.size(dir.resolve("conv-true.qcow")) < Files.size(dir.resolve("conv-false.qcow")) / 2);
    }

    /** Clusters larger than qemu's 4 KiB inflate window still decompress in qemu. */
    @Test
    void compressedClustersStayInsideQemusWindow() throws Exception {
        byte[] cluster = new byte[65536];
        Random r = new Random(5);
        byte[] motif = new byte[3000];
        r.nextBytes(motif);
        for (int i = 0; i < cluster.length; i++) cluster[i] = motif[i % motif.length]; // long-distance repeats
        byte[] out = WindowedDeflate.compress(cluster, cluster.length - 1);
        assertNotNull(out);
        Inflater inf = new Inflater(true);
        inf.setInput(out);
        byte[] back = new byte[65536];
        assertEquals(65536, inf.inflate(back));
        assertArrayEquals(cluster, back);
        Path img = dir.resolve("w.qcow");
        Tools.check("python3", Tools.repo().resolve("testdata/qcow-geometry.py").toString(), img.toString(), "16", "13", "1048576");
        try (DiskImage d = Images.open(img, RW)) {
            d.layers().get(0).writeCompressed(ByteBuffer.wrap(cluster), 5 * 65536);
        }
        Path raw = dir.resolve("w.raw");
        Tools.check("qemu-img", "convert", "-f", "qcow", "-O", "raw", img.toString(), raw.toString());
        assertArrayEquals(cluster, Arrays.copyOfRange(Files.readAllBytes(raw), 5 * 65536, 6 * 65536));
        byte[] noise = new byte[65536];
        r.nextBytes(noise);
        assertEquals(null, WindowedDeflate.compress(noise, noise.length - 1)); // incompressible: written as a plain cluster
    }

    @Test
    void checkAndResizeAreUnsupportedAsInQemu() throws Exception {
        Path img = create("c.qcow", 1 << 20, null, null);
        ImageException e = assertThrows(ImageException.class, () -> Check.check(img, "qcow", RepairMode.NONE));
        assertTrue(e.getMessage().contains("does not support checks"), e.getMessage());
        assertEquals(63, Tools.run(List.of("qemu-img", "check", img.toString()), dir).exit());
        ImageException r = assertThrows(ImageException.class, () -> Resize.resize(img, "qcow", 2 << 20, false));
        assertEquals(ImageException.Kind.UNSUPPORTED, r.kind());
        assertEquals(1, Tools.run(List.of("qemu-img", "resize", img.toString(), "2M"), dir).exit());
    }
}
