package org.vdiskload.format.qcow2;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Extent;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.ops.Create;
import org.vdiskload.ops.Resize;
import org.vdiskload.testing.CrashTest;
import org.vdiskload.testing.Tools;
import org.vdiskload.testing.WriteTorture;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Writing qcow2: torture against a model per variant and through chains, crash safety, in-place extents, resize. */
class Qcow2WriteTest {
    @TempDir
    Path dir;

    static Map<String, String> options(String spec) {
        Map<String, String> o = new LinkedHashMap<>();
        if (!spec.isEmpty()) for (String kv : spec.split(",")) o.put(kv.split("=")[0], kv.split("=")[1]);
        return o;
    }

    private Path create(String name, long size, String spec) throws Exception {
        Path p = dir.resolve(name);
        Create.create(p, new Qcow2Format(), size, options(spec), null, null);
        return p;
    }

    private static int clusterSize(String spec) {
        String cs = options(spec).getOrDefault("cluster_size", "64k");
        return (int) org.vdiskload.image.Sizes.parse(cs);
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "compat=0.10", "cluster_size=512", "cluster_size=2M", "extended_l2=on",
            "extended_l2=on,cluster_size=16k", "refcount_bits=1", "refcount_bits=64,cluster_size=512", "lazy_refcounts=on",
            "preallocation=metadata", "preallocation=full,compat=0.10", "extended_l2=on,preallocation=metadata",
            "compression_type=zstd"})
    void tortureEveryVariant(String spec) throws Exception {
        long size = spec.contains("2M") ? 32 << 20 : 12 << 20;
        Path img = create("t.qcow2", size, spec);
        int ops = spec.contains("2M") ? 300 : 1000; // 2 MiB clusters: every op moves megabytes
        WriteTorture.run(img, "qcow2", new WriteTorture.Plan(ops, 200, clusterSize(spec), spec.hashCode()));
    }

    /** Three qcow2 layers, the lower two written by qemu-io; ours on top (standard and extended L2, v2). */
    @ParameterizedTest
    @ValueSource(strings = {"", "extended_l2=on", "compat=0.10", "cluster_size=4k"})
    void tortureThroughAThreeDeepChain(String spec) throws Exception {
        Path base = dir.resolve("base.qcow2"), mid = dir.resolve("mid.qcow2"), top = dir.resolve("top.qcow2");
        Tools.check("qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=4k", base.toString(), "10M");
        Tools.check("qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 6M", "-c", "write -P 0x12 7M 1M", base.toString());
        Tools.check("qemu-img", "create", "-q", "-f", "qcow2", "-b", base.toString(), "-F", "qcow2", mid.toString(), "12M");
        Tools.check("qemu-io", "-f", "qcow2", "-c", "write -P 0x21 1M 1500k", "-c", "write -z 3M 512k", "-c", "write -P 0x22 11M 64k", mid.toString());
        Create.create(top, new Qcow2Format(), -1, options(spec), base.getFileName().toString().replace("base", "mid"), "qcow2");
        WriteTorture.run(top, "qcow2", new WriteTorture.Plan(1200, 200, clusterSize(spec), 7 + spec.length()));
    }

    /** Images qemu made (every variant of testdata/qcow2.sh that may be written): our writes keep them clean. */
    @Test
    void tortureQemuMadeImages() throws Exception {
        for (Tools.GeneratedImage g : Tools.generate("qcow2.sh", dir)) {
            String name = g.path().getFileName().toString();
            if (g.flag("snapshot") != null || g.flag("backing-format") != null || name.equals("corrupt-bit.qcow2")
                    || name.equals("old-raw-backing.qcow2")) continue;
            try {
                WriteTorture.run(g.path(), "qcow2", new WriteTorture.Plan(150, 75, (int) clusterOf(g.path()), name.hashCode()));
            } catch (AssertionError | Exception e) {
                throw new AssertionError(name + ": " + e.getMessage(), e);
            }
        }
    }

    private static long clusterOf(Path p) throws Exception {
        return TestImages.header(p).clusterSize();
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "lazy_refcounts=on", "extended_l2=on", "compat=0.10,cluster_size=4k"})
    void crashesLeaveLeaksAtMost(String spec) throws Exception {
        CrashTest.run(dir, "qcow2", p -> Create.create(p, new Qcow2Format(), 48 << 20, options(spec), null, null), 11 + spec.length());
    }

    @Test
    void inPlaceOnlyForClustersThisLayerOwnsAlone() throws Exception {
        Path base = create("base.qcow2", 1 << 20, "");
        try (DiskImage d = Images.open(base, OpenOptions.DEFAULTS.withWritable(true))) {
            d.write(ByteBuffer.wrap(new byte[] {1}), 0);
            d.write(ByteBuffer.wrap(new byte[] {2}), 128 << 10);
        }
        Path top = dir.resolve("top.qcow2");
        Create.create(top, new Qcow2Format(), -1, Map.of(), "base.qcow2", "qcow2");
        Tools.check("qemu-io", "-f", "qcow2", "-c", "write -c -P 0x5 256k 64k", "-c", "write -P 0x6 512k 64k", top.toString());
        Tools.check("qemu-img", "snapshot", "-c", "s1", top.toString());
        Tools.check("qemu-io", "-f", "qcow2", "-c", "write -P 0x7 768k 64k", top.toString());
        try (DiskImage d = Images.open(top, OpenOptions.DEFAULTS.withWritable(true))) {
            assertFalse(inPlace(d, 0), "unallocated (backing shows through)");
            assertFalse(inPlace(d, 256 << 10), "compressed");
            assertFalse(inPlace(d, 512 << 10), "shared with a snapshot");
            assertTrue(inPlace(d, 768 << 10), "allocated after the snapshot, refcount 1");
            d.write(ByteBuffer.wrap(new byte[] {9}), 3);
            d.write(ByteBuffer.wrap(new byte[] {9}), (512 << 10) + 5);
            assertTrue(inPlace(d, 0), "copied up from the backing file");
            assertTrue(inPlace(d, 512 << 10), "copied away from the snapshot");
            ByteBuffer b = ByteBuffer.allocate(4);
            d.read(b, 0);
            assertArrayEquals(new byte[] {1, 0, 0, 9}, b.array());
        }
        try (DiskImage d = Images.open(top, OpenOptions.DEFAULTS)) {
            assertFalse(inPlace(d, 768 << 10), "read-only");
        }
        assertEquals(0, Tools.run(List.of("qemu-img", "check", top.toString()), null).exit());
        // The snapshot still reads what it held.
        try (DiskImage d = Images.open(top, OpenOptions.DEFAULTS.withSnapshot("s1"))) {
            ByteBuffer b = ByteBuffer.allocate(8);
            d.read(b, 512 << 10);
            byte[] want = new byte[8];
            Arrays.fill(want, (byte) 6);
            assertArrayEquals(want, b.array());
        }
    }

    /**
     * A new cluster gets only its data written where it lies past the end of the file (a hole reads as
     * zeros); one reused inside the file, still holding what was freed there, gets zeros around the data.
     */
    @Test
    void aPartlyWrittenNewClusterReadsZerosAroundItsData() throws Exception {
        Path p = create("partial.qcow2", 8 << 20, "");
        byte[] block = new byte[4096];
        Arrays.fill(block, (byte) 0x22);
        long freed;
        try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS.withWritable(true))) {
            byte[] old = new byte[64 << 10];
            Arrays.fill(old, (byte) 0x11);
            d.write(ByteBuffer.wrap(old), 0);
            d.flush();
            freed = d.map(0, 4096).get(0).fileOffset();
            d.discard(0, 64 << 10);
            d.flush();
        }
        try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS.withWritable(true))) {
            d.write(ByteBuffer.wrap(block), (1 << 20) + 8192);
            assertEquals(freed + 8192, d.map((1 << 20) + 8192, 4096).get(0).fileOffset(), "the freed cluster is reused");
            d.write(ByteBuffer.wrap(block), (2 << 20) + 8192);
            assertTrue(d.map((2 << 20) + 8192, 4096).get(0).fileOffset() >= freed + (64 << 10), "a cluster past the old end");
        }
        byte[] expected = new byte[8 << 20];
        System.arraycopy(block, 0, expected, (1 << 20) + 8192, 4096);
        System.arraycopy(block, 0, expected, (2 << 20) + 8192, 4096);
        Path raw = dir.resolve("partial.raw");
        Files.write(raw, expected);
        Tools.check("qemu-img", "compare", "-q", "-f", "raw", "-F", "qcow2", raw.toString(), p.toString());
        assertEquals(0, Tools.run(List.of("qemu-img", "check", p.toString()), null).exit());
    }

    private static boolean inPlace(DiskImage d, long pos) throws Exception {
        List<Extent> m = d.map(pos, 4096);
        return m.stream().allMatch(Extent::inPlace);
    }

    @Test
    void refusesToWriteWhatItCannotKeepConsistent() throws Exception {
        Path snap = TestImages.make(dir, "s.qcow2", "compat=1.1", "1M", "write -P 1 0 64k");
        Tools.check("qemu-img", "snapshot", "-c", "s1", snap.toString());
        ImageException e = assertThrows(ImageException.class,
                () -> Images.open(snap, OpenOptions.DEFAULTS.withSnapshot("s1").withWritable(true)));
        assertTrue(e.getMessage().contains("snapshots can only be opened read-only"), e.getMessage());
        Path corrupt = TestImages.make(dir, "c.qcow2", "compat=1.1", "1M");
        TestImages.writeLong(corrupt, 72, Qcow2Header.INCOMPAT_CORRUPT);
        e = assertThrows(ImageException.class, () -> Images.open(corrupt, OpenOptions.DEFAULTS.withWritable(true)));
        assertTrue(e.getMessage().contains("marked corrupt"), e.getMessage());
    }

    /**
     * Growing a child over a smaller backing file: the parent's data and the child's writes still read, the new
     * area reads zeros (also where the backing file, had it been grown, would have data), and the result is
     * what qemu-img resize makes of a twin.
     */
    @Test
    void resizeGrowsAChildOverItsBackingFile() throws Exception {
        Path base = dir.resolve("rb.qcow2");
        Tools.check("qemu-img", "create", "-q", "-f", "qcow2", base.toString(), "8M");
        Tools.check("qemu-io", "-f", "qcow2", "-c", "write -P 0x31 0 8M", base.toString());
        Path[] twins = {dir.resolve("rc.qcow2"), dir.resolve("rq.qcow2")};
        for (Path c : twins) {
            Tools.check("qemu-img", "create", "-q", "-f", "qcow2", "-b", "rb.qcow2", "-F", "qcow2", c.toString());
            Tools.check("qemu-io", "-f", "qcow2", "-c", "write -P 0x32 1M 64k", "-c", "write -P 0x33 8388096 512", c.toString());
        }
        Resize.resize(twins[0], "qcow2", 20 << 20, false);
        Tools.check("qemu-img", "resize", "-q", "-f", "qcow2", twins[1].toString(), "20M");
        Tools.Result check = Tools.run(List.of("qemu-img", "check", "-f", "qcow2", twins[0].toString()), dir);
        assertEquals(0, check.exit(), check.stdout() + check.stderr());
        Tools.check("qemu-io", "-f", "qcow2", "-c", "read -P 0x31 0 1M", "-c", "read -P 0x32 1M 64k",
                "-c", "read -P 0x31 1088k 7103k", "-c", "read -P 0x33 8388096 512", "-c", "read -P 0 8M 12M", twins[0].toString());
        Tools.check("qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", twins[0].toString(), twins[1].toString());
        try (DiskImage d = Images.open(twins[0], OpenOptions.DEFAULTS.withFormat("qcow2").withWritable(true))) {
            assertEquals(20 << 20, d.size());
            d.write(ByteBuffer.wrap(new byte[] {0x34}), 19 << 20);
        }
        Tools.check("qemu-io", "-f", "qcow2", "-c", "read -P 0x34 19M 1", "-c", "read -P 0 8M 11M", "-c", "read -P 0x31 0 1M",
                twins[0].toString());
        assertEquals(0, Tools.run(List.of("qemu-img", "check", "-f", "qcow2", twins[0].toString()), dir).exit());
    }

    @Test
    void resizeGrowsTheL1AndShrinksOnlyAnUnallocatedTail() throws Exception {
        Path img = create("r.qcow2", 1 << 20, "cluster_size=512");
        try (DiskImage d = Images.open(img, OpenOptions.DEFAULTS.withWritable(true))) {
            d.write(ByteBuffer.wrap(new byte[] {7, 7}), (1 << 20) - 1 - 1);
        }
        Resize.resize(img, "qcow2", 64 << 20, false); // 512-byte clusters: 32 KiB per L1 entry, the L1 table moves
        try (DiskImage d = Images.open(img, OpenOptions.DEFAULTS.withWritable(true))) {
            assertEquals(64 << 20, d.size());
            d.write(ByteBuffer.wrap(new byte[] {8}), (64 << 20) - 1);
        }
        assertEquals(0, Tools.run(List.of("qemu-img", "check", img.toString()), null).exit());
        ImageException e = assertThrows(ImageException.class, () -> Resize.resize(img, "qcow2", 32 << 20, false));
        assertTrue(e.getMessage().contains("--shrink"), e.getMessage());
        e = assertThrows(ImageException.class, () -> Resize.resize(img, "qcow2", 32 << 20, true));
        assertTrue(e.getMessage().contains("data is allocated"), e.getMessage());
        try (DiskImage d = Images.open(img, OpenOptions.DEFAULTS.withWritable(true))) {
            d.discard((64 << 20) - 512, 512);
        }
        Resize.resize(img, "qcow2", 2 << 20, true);
        Tools.Result info = Tools.run(List.of("qemu-img", "info", "--output=json", img.toString()), null);
        assertTrue(info.stdout().contains("\"virtual-size\": 2097152"), info.stdout());
        assertEquals(0, Tools.run(List.of("qemu-img", "check", img.toString()), null).exit());
        Path raw = dir.resolve("r.raw");
        Tools.check("qemu-img", "convert", "-O", "raw", img.toString(), raw.toString());
        byte[] all = Files.readAllBytes(raw);
        assertEquals(7, all[(1 << 20) - 2]);
        assertEquals(7, all[(1 << 20) - 1]);
        for (int i = 1 << 20; i < all.length; i++) assertEquals(0, all[i], "offset " + i);
    }
}
