package org.vdiskload.format.vhd;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.check.RepairMode;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Extent;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.Images;
import org.vdiskload.image.LayerRun;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.ops.Check;
import org.vdiskload.ops.Create;
import org.vdiskload.testing.CrashTest;
import org.vdiskload.testing.Tools;
import org.vdiskload.testing.WriteTorture;

import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Writing dynamic, fixed and differencing disks. qemu is the oracle where it can read the image
 * (dynamic, fixed); differencing disks, which qemu neither makes nor reads, are checked against the
 * model and libvhdi's vhdimount.
 */
class VhdWriteTest {
    private static final int BLOCK = 2 << 20;

    @TempDir
    Path dir;

    private Path create(String name, long size, Map<String, String> options) throws Exception {
        Path p = dir.resolve(name);
        Create.create(p, new VhdFormat(), size, options, null, null);
        return p;
    }

    private Path child(String name, String parent) throws Exception {
        Path p = dir.resolve(name);
        Create.create(p, new VhdFormat(), -1, Map.of(), parent, "vpc");
        return p;
    }

    private static DiskImage rw(Path p) throws Exception {
        return Images.open(p, OpenOptions.DEFAULTS.withFormat("vpc").withWritable(true));
    }

    @Test
    void tortureDynamic() throws Exception {
        WriteTorture.run(create("d.vhd", 16 << 20, Map.of()), "vpc", new WriteTorture.Plan(2000, 250, 128 << 10, 11));
    }

    @Test
    void tortureDynamicMadeByQemu() throws Exception {
        Path p = dir.resolve("q.vhd");
        Tools.check("qemu-img", "create", "-q", "-f", "vpc", p.toString(), "24M");
        Tools.check("qemu-io", "-f", "vpc", "-c", "write -P 0x5a 1M 3M", "-c", "write -P 0x5b 9000k 7k", p.toString());
        WriteTorture.run(p, "vpc", new WriteTorture.Plan(2000, 250, 64 << 10, 12));
    }

    @Test
    void tortureFixed() throws Exception {
        WriteTorture.run(create("f.vhd", 16 << 20, Map.of("subformat", "fixed")), "vpc", new WriteTorture.Plan(2000, 250, 4096, 13));
    }

    /**
     * base (qemu-made, written by qemu-io) <- mid (ours, written by us) <- top, tortured. qemu cannot
     * read differencing disks, so the end check is libvhdi's vhdimount, whose view must be the model,
     * and our check. vhdimount finds parents by the header's parent name beside the child: the chain
     * lives in one directory.
     */
    @Test
    void tortureThreeDeepDifferencingChain() throws Exception {
        Path base = dir.resolve("base.vhd");
        Tools.check("qemu-img", "create", "-q", "-f", "vpc", base.toString(), "16M");
        Tools.check("qemu-io", "-f", "vpc", "-c", "write -P 0x11 0 3M", "-c", "write -P 0x12 7M 1M", base.toString());
        Path mid = child("mid.vhd", "base.vhd");
        try (DiskImage d = rw(mid)) {
            d.write(ByteBuffer.wrap(filled(5000, 0x21)), 1000);
            d.write(ByteBuffer.wrap(filled(BLOCK + 512, 0x22)), 5L << 20);
            d.writeZeroes(7L << 20, 4096, true);
        }
        Path top = child("top.vhd", "mid.vhd");
        try (DiskImage d = Images.open(top, OpenOptions.DEFAULTS)) {
            assertEquals(3, d.layers().size());
            byte[] all = WriteTorture.readAll(d);
            assertEquals(0x21, all[1000]);
            assertEquals(0x11, all[999]);
            assertEquals(0, all[7 << 20]);
            assertEquals(0x12, all[(7 << 20) + 4096]);
        }
        WriteTorture.run(top, "vpc", new WriteTorture.Plan(2000, 250, 64 << 10, 14), (image, format, model) -> {
            assertEquals(0, Check.check(image, format, RepairMode.NONE).exitCode());
            assertTrue(Tools.check("vhdiinfo", image.toString()).contains("Differential"));
            Tools.check("qemu-img", "info", "-f", "vpc", image.toString()); // qemu opens it (as a dynamic disk)
            assertTrue(Arrays.equals(model, Tools.vhdimount(image, 3)), "vhdimount reads the chain as the model");
        });
    }

    private static byte[] filled(int n, int b) {
        byte[] a = new byte[n];
        Arrays.fill(a, (byte) b);
        return a;
    }

    @Test
    void crashDynamic() throws Exception {
        CrashTest.run(dir, "vpc", p -> Create.create(p, new VhdFormat(), 24 << 20, Map.of(), null, null), 21);
    }

    @Test
    void crashDifferencing() throws Exception {
        CrashTest.run(dir, "vpc", p -> {
            Path parent = p.resolveSibling(p.getFileName() + ".parent.vhd");
            Create.create(parent, new VhdFormat(), 24 << 20, Map.of(), null, null);
            Create.create(p, new VhdFormat(), -1, Map.of(), parent.getFileName().toString(), "vpc");
        }, 22);
    }

    /** Allocated sectors (bit set) are in place when open for writing; unallocated ones and read-only opens never. */
    @Test
    void inPlaceExactlyWhereTheBitmapIsSet() throws Exception {
        Path dyn = create("m.vhd", 8 << 20, Map.of());
        try (DiskImage d = rw(dyn)) {
            d.write(ByteBuffer.wrap(filled(100, 7)), 5000);
            ImageLayer l = d.layers().get(0);
            assertTrue(l.map(0, BLOCK).inPlace(), "a dynamic disk's new block is allocated whole");
            assertEquals(BLOCK, l.map(0, BLOCK).length());
            LayerRun un = l.map(BLOCK, BLOCK);
            assertEquals(LayerRun.Status.UNALLOCATED, un.status());
            assertFalse(un.inPlace());
        }
        try (DiskImage d = Images.open(dyn, OpenOptions.DEFAULTS)) {
            assertTrue(d.map(0, d.size()).stream().noneMatch(Extent::inPlace));
        }
        Path fixed = create("mf.vhd", 1 << 20, Map.of("subformat", "fixed"));
        try (DiskImage d = rw(fixed)) {
            assertTrue(d.map(0, d.size()).stream().allMatch(Extent::inPlace));
        }
        child("mc.vhd", "m.vhd");
        try (DiskImage d = rw(dir.resolve("mc.vhd"))) {
            d.write(ByteBuffer.wrap(filled(1024, 9)), 1024);
            ImageLayer l = d.layers().get(0);
            LayerRun before = l.map(0, BLOCK);
            assertEquals(LayerRun.Status.UNALLOCATED, before.status());
            assertEquals(1024, before.length());
            assertFalse(before.inPlace());
            LayerRun written = l.map(1024, BLOCK - 1024);
            assertTrue(written.inPlace());
            assertEquals(1024, written.length());
            assertFalse(l.map(2048, 512).inPlace());
            // Through the chain: sectors 0-1 come from the parent, unchanged.
            byte[] head = new byte[5120];
            d.read(ByteBuffer.wrap(head), 0);
            assertEquals(0, head[1023]);
            assertEquals(9, head[1024]);
            assertEquals(0, head[2048]);
            assertEquals(7, head[5000]);
        }
    }

    /** As qemu does, a dynamic disk's new block has every bitmap bit set; a differencing disk's only the written sectors'. */
    @Test
    void bitmapsOfNewBlocks() throws Exception {
        Path dyn = create("b.vhd", 8 << 20, Map.of());
        try (DiskImage d = rw(dyn)) {
            d.write(ByteBuffer.wrap(filled(10, 1)), BLOCK + 700);
        }
        long blockAt = 2048; // after the footer copy, header, BAT: where the tail footer was
        assertTrue(allBytes(read(dyn, blockAt, 512), (byte) 0xff));
        Path diff = child("bc.vhd", "b.vhd");
        long tail = Files.size(diff) - 512;
        try (DiskImage d = rw(diff)) {
            d.write(ByteBuffer.wrap(filled(10, 1)), 700); // inside sector 1
            d.write(ByteBuffer.wrap(filled(1024, 2)), 4096); // sectors 8-9
        }
        byte[] bitmap = read(diff, tail, 512);
        assertEquals(0x40, bitmap[0] & 0xff);
        assertEquals(0xc0, bitmap[1] & 0xff);
        assertTrue(allBytes(Arrays.copyOfRange(bitmap, 2, 512), (byte) 0));
        // The partly written sector was completed from the parent (zeros there).
        byte[] sector1 = read(diff, tail + 512 + 512, 512);
        assertEquals(0, sector1[187]);
        assertEquals(1, sector1[188]);
        assertEquals(Files.size(diff), tail + 512 + BLOCK + 512, "the block, then the footer");
        assertEquals(0, Check.check(diff, "vpc", RepairMode.NONE).exitCode());
    }

    /** Zeroing an unallocated range of a dynamic disk allocates nothing; on a differencing disk it hides the parent. */
    @Test
    void writeZeroes() throws Exception {
        Path dyn = create("z.vhd", 8 << 20, Map.of());
        try (DiskImage d = rw(dyn)) {
            d.write(ByteBuffer.wrap(filled(4096, 3)), 0);
        }
        long size = Files.size(dyn);
        try (DiskImage d = rw(dyn)) {
            d.discard(BLOCK, 3 * BLOCK);
            d.writeZeroes(100, 1000, false);
        }
        assertEquals(size, Files.size(dyn));
        Path diff = child("zc.vhd", "z.vhd");
        try (DiskImage d = rw(diff)) {
            d.discard(0, 2048);
            byte[] head = new byte[4096];
            d.read(ByteBuffer.wrap(head), 0);
            for (int i = 0; i < 2048; i++) if (head[i] != 0) fail("offset " + i + " still reads the parent");
            assertEquals(3, head[2048]);
        }
    }

    private static byte[] read(Path p, long at, int n) throws Exception {
        try (FileChannel ch = FileChannel.open(p)) {
            ByteBuffer b = ByteBuffer.allocate(n);
            ch.read(b, at);
            return b.array();
        }
    }

    private static boolean allBytes(byte[] a, byte v) {
        for (byte b : a) if (b != v) return false;
        return true;
    }

    /**
     * Threads writing their own sectors, interleaved within the same blocks, while others read: each
     * thread's bytes must survive the others' allocations and bitmap updates.
     */
    @Test
    void concurrentWritersInTheSameBlocks() throws Exception {
        Path parent = create("cp.vhd", 8 << 20, Map.of());
        try (DiskImage d = rw(parent)) {
            d.write(ByteBuffer.wrap(filled(8 << 20, 0x77)), 0);
        }
        for (Path p : List.of(create("cd.vhd", 8 << 20, Map.of()), child("cc.vhd", "cp.vhd"))) {
            int threads = 4;
            try (DiskImage d = rw(p)) {
                List<Thread> all = new java.util.ArrayList<>();
                java.util.concurrent.atomic.AtomicReference<Throwable> failed = new java.util.concurrent.atomic.AtomicReference<>();
                for (int t = 0; t < threads; t++) {
                    int id = t;
                    all.add(new Thread(() -> {
                        try {
                            byte[] back = new byte[300];
                            for (int k = 0; k < 400; k++) {
                                long pos = ((long) k * threads + id) * 20_000 % ((8 << 20) - 300);
                                pos -= pos % (threads * 300L) - id * 300L; // this thread's 300-byte slot
                                if (pos < 0 || pos + 300 > (8 << 20)) continue;
                                d.write(ByteBuffer.wrap(filled(300, id + 1)), pos);
                                d.read(ByteBuffer.wrap(back), pos);
                                if (!allBytes(back, (byte) (id + 1))) throw new AssertionError("thread " + id + " at " + pos);
                            }
                        } catch (Throwable e) {
                            failed.compareAndSet(null, e);
                        }
                    }));
                }
                all.forEach(Thread::start);
                for (Thread t : all) t.join();
                if (failed.get() != null) throw new AssertionError(p.getFileName() + ": " + failed.get(), failed.get());
            }
            assertEquals(0, Check.check(p, "vpc", RepairMode.NONE).exitCode());
        }
    }

    /** qemu-img check has no checks for vpc: why the torture and crash tests use ours. */
    @Test
    void qemuImgCheckHasNoChecksForVpc() throws Exception {
        Path p = create("c.vhd", 1 << 20, Map.of());
        Tools.Result r = Tools.run(List.of("qemu-img", "check", "-f", "vpc", p.toString()), null);
        assertEquals(63, r.exit());
        assertTrue(r.stderr().contains("does not support checks"), r.stderr());
    }
}
