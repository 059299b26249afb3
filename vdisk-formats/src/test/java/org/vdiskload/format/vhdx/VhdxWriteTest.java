package org.vdiskload.format.vhdx;

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
import org.vdiskload.ops.Create;
import org.vdiskload.ops.Resize;
import org.vdiskload.testing.CrashTest;
import org.vdiskload.testing.Tools;
import org.vdiskload.testing.WriteTorture;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Creating, writing, checking and growing VHDX images, with qemu-img as the judge. */
class VhdxWriteTest {
    private static final long MB = 1 << 20;

    @TempDir
    Path dir;

    private Path create(String name, long size, String... options) throws IOException {
        Path p = dir.resolve(name);
        Map<String, String> o = new HashMap<>();
        for (String kv : options) o.put(kv.substring(0, kv.indexOf('=')), kv.substring(kv.indexOf('=') + 1));
        Create.create(p, new VhdxFormat(), size, o, null, null);
        return p;
    }

    private static DiskImage open(Path p, boolean writable) throws IOException {
        return Images.open(p, OpenOptions.DEFAULTS.withFormat("vhdx").withWritable(writable));
    }

    private static Tools.Result qemuCheck(Path p) throws Exception {
        return Tools.run(List.of("qemu-img", "check", "-f", "vhdx", p.toString()), null);
    }

    private static void write(Path p, long pos, byte value, int length) throws IOException {
        byte[] b = new byte[length];
        Arrays.fill(b, value);
        try (DiskImage d = open(p, true)) {
            d.write(ByteBuffer.wrap(b), pos);
        }
    }

    // ---- create ----

    @Test
    void createdImagesAreCleanAndAsAsked() throws Exception {
        Object[][] cases = {
            {"d1.vhdx", 24 * MB, new String[] {"block_size=1M"}, "Dynamic", 1 * MB},
            {"d32.vhdx", 100 * MB + 512, new String[] {"block_size=32M", "log_size=2M"}, "Dynamic", 32 * MB},
            {"def.vhdx", 3 * MB + 7, new String[] {}, "Dynamic", 8 * MB},
            {"nz.vhdx", 8 * MB, new String[] {"block_state_zero=off"}, "Dynamic", 8 * MB},
            {"fx.vhdx", 9 * MB, new String[] {"subformat=fixed", "block_size=2M"}, "Fixed", 2 * MB},
        };
        for (Object[] c : cases) {
            Path p = create((String) c[0], (Long) c[1], (String[]) c[2]);
            assertEquals(0, qemuCheck(p).exit(), c[0] + ": " + qemuCheck(p));
            String info = Tools.check("qemu-img", "info", "--output=json", p.toString());
            long size = ((Long) c[1] + 511) / 512 * 512;
            assertTrue(info.contains("\"virtual-size\": " + size), info);
            assertTrue(info.contains("\"cluster-size\": " + c[4]), info);
            String vhdi = Tools.check("vhdiinfo", p.toString());
            assertTrue(vhdi.contains("Disk type\t\t: " + c[3]), vhdi);
            assertTrue(vhdi.contains("(" + size + " bytes)"), vhdi);
            try (DiskImage d = open(p, false)) {
                assertEquals(size, d.size());
                // Dynamic blocks start out ZERO (or NOT_PRESENT); a fixed image's are all allocated, reading zeros.
                Extent.Kind kind = c[3].equals("Fixed") ? Extent.Kind.DATA : Extent.Kind.ZERO;
                assertTrue(d.map(0, d.size()).stream().allMatch(e -> e.kind() == kind), c[0] + ": " + d.map(0, d.size()));
                byte[] all = WriteTorture.readAll(d);
                assertArrayEquals(new byte[all.length], all);
            }
        }
    }

    @Test
    void badOptionsAreRefusedBeforeAnyFileIsWritten() {
        String[][] bad = {
            {"subformat=diff", "subformat"}, {"block_size=3M", "block_size"}, {"block_size=512M", "block_size"},
            {"log_size=512K", "log_size"}, {"log_size=1536K", "log_size"}, {"cluster_size=64k", "unknown option 'cluster_size'"},
            {"block_state_zero=maybe", "block_state_zero"},
        };
        for (String[] b : bad) {
            Path p = dir.resolve("bad.vhdx");
            ImageException e = assertThrows(ImageException.class, () -> create("bad.vhdx", 8 * MB, b[0]), b[0]);
            assertTrue(e.getMessage().contains(b[1]), e.getMessage());
            assertFalse(e.getMessage().contains("\n"), e.getMessage());
            assertFalse(Files.exists(p), b[0] + " left a file");
        }
        assertThrows(ImageException.class, () -> create("big.vhdx", (64L << 40) + 512));
        assertFalse(Files.exists(dir.resolve("big.vhdx")));
    }

    // ---- writing ----

    @Test
    void tortureDynamicWith1MiBBlocks() throws Exception {
        Path p = create("t1.vhdx", 24 * MB, "block_size=1M");
        WriteTorture.run(p, "vhdx", new WriteTorture.Plan(800, 200, (int) MB, 11));
    }

    @Test
    void tortureDynamicWith32MiBBlocks() throws Exception {
        Path p = create("t32.vhdx", 72 * MB, "block_size=32M");
        WriteTorture.run(p, "vhdx", new WriteTorture.Plan(300, 100, (int) (32 * MB), 12));
    }

    @Test
    void tortureFixed() throws Exception {
        Path p = create("tf.vhdx", 16 * MB, "subformat=fixed", "block_size=2M");
        WriteTorture.run(p, "vhdx", new WriteTorture.Plan(600, 200, (int) (2 * MB), 13));
        try (DiskImage d = open(p, false)) {
            // A fixed image keeps every block allocated, whatever was discarded.
            assertTrue(d.map(0, d.size()).stream().noneMatch(e -> e.kind() == Extent.Kind.ZERO));
        }
    }

    @Test
    void tortureAnImageQemuMadeAndWrote() throws Exception {
        Path p = dir.resolve("q.vhdx");
        Tools.check("qemu-img", "create", "-q", "-f", "vhdx", "-o", "block_size=2M,block_state_zero=off", p.toString(), "20M");
        Tools.check("qemu-io", "-f", "vhdx", "-c", "write -P 0x21 1M 3M", "-c", "write -z 8M 2M", p.toString());
        WriteTorture.run(p, "vhdx", new WriteTorture.Plan(500, 250, (int) (2 * MB), 14));
    }

    @Test
    void crashAtAnyInstantLeavesARecoverableImage() throws Exception {
        CrashTest.run(dir, "vhdx", p -> Create.create(p, new VhdxFormat(), 32 * MB, Map.of("block_size", "1M"), null, null), 21, true);
    }

    @Test
    void allocatedBlocksAreWritableInPlaceAndNothingElse() throws Exception {
        Path p = create("m.vhdx", 8 * MB, "block_size=1M");
        write(p, 2 * MB + 100, (byte) 7, 10);
        try (DiskImage d = open(p, true)) {
            for (Extent e : d.map(0, d.size())) {
                boolean block2 = e.start() >= 2 * MB && e.end() <= 3 * MB;
                assertEquals(block2, e.inPlace(), e.toString());
                assertEquals(block2 ? Extent.Kind.DATA : Extent.Kind.ZERO, e.kind(), e.toString());
            }
            d.discard(2 * MB, MB);
            assertTrue(d.map(0, d.size()).stream().noneMatch(Extent::inPlace));
        }
        try (DiskImage d = open(p, false)) {
            assertTrue(d.map(0, d.size()).stream().noneMatch(Extent::inPlace), "read-only: nothing in place");
        }
        assertEquals(0, qemuCheck(p).exit());
    }

    @Test
    void discardedBlockKeepsItsSpaceForTheNextWrite() throws Exception {
        Path p = create("u.vhdx", 8 * MB, "block_size=1M");
        write(p, 0, (byte) 1, (int) MB);
        long size = Files.size(p);
        try (DiskImage d = open(p, true)) {
            d.discard(0, MB);
        }
        write(p, 4096, (byte) 2, 512);
        assertEquals(size, Files.size(p), "the UNMAPPED block's space was reused");
        byte[] want = new byte[8 * (int) MB];
        Arrays.fill(want, 4096, 4608, (byte) 2);
        try (DiskImage d = open(p, false)) {
            assertArrayEquals(want, WriteTorture.readAll(d));
        }
        assertEquals(0, qemuCheck(p).exit());
    }

    @Test
    void firstWriteOfASessionRenewsTheWriteGuids() throws Exception {
        Path p = create("g.vhdx", 8 * MB, "block_size=1M");
        VhdxHeader before = header(p);
        try (DiskImage d = open(p, true)) {
            d.map(0, d.size());
        }
        assertEquals(before, header(p), "opening for writing alone changes nothing");
        write(p, 0, (byte) 1, 512);
        VhdxHeader after = header(p);
        assertTrue(Long.compareUnsigned(after.sequence(), before.sequence()) > 0);
        assertFalse(after.fileWriteGuid().equals(before.fileWriteGuid()));
        assertFalse(after.dataWriteGuid().equals(before.dataWriteGuid()));
        assertTrue(after.logGuid().isZero(), "the log is empty after every change");
        try (DiskImage d = open(p, true)) {
            assertTrue(d.map(0, d.size()).stream().anyMatch(Extent::inPlace));
        }
        VhdxHeader handedOut = header(p);
        assertFalse(handedOut.dataWriteGuid().equals(after.dataWriteGuid()),
                "in-place extents bypass write(): the GUIDs are renewed before they are handed out");
    }

    private static VhdxHeader header(Path p) throws IOException {
        try (var f = org.vdiskload.io.ImageFile.open(p, false)) {
            return VhdxHeader.current(f);
        }
    }

    @Test
    void writesThroughADifferencingImageCompleteItsBlocksFromTheParent() throws Exception {
        List<Tools.GeneratedImage> made = Tools.generate("vhdx-made.sh", Files.createDirectories(dir.resolve("made")));
        Path child = made.stream().filter(i -> i.path().getFileName().toString().equals("child.vhdx")).findFirst().orElseThrow().path();
        byte[] want;
        try (DiskImage d = open(child, false)) {
            want = WriteTorture.readAll(d);
        }
        try (DiskImage d = open(child, true)) {
            for (long pos = 0; pos < d.size(); pos += MB) {
                byte[] b = {(byte) 0xee, (byte) 0xef};
                d.write(ByteBuffer.wrap(b), pos + 1000);
                System.arraycopy(b, 0, want, (int) (pos + 1000), 2);
            }
            d.writeZeroes(3 * MB, MB, true);
            Arrays.fill(want, 3 * (int) MB, 4 * (int) MB, (byte) 0);
        }
        try (DiskImage d = open(child, false)) {
            assertArrayEquals(want, WriteTorture.readAll(d));
        }
        CheckReport r = Check.check(child, "vhdx", RepairMode.NONE);
        assertEquals(0, r.exitCode(), r.toString());
    }

    // ---- the log ----

    @Test
    void openingADirtyImageForWritingReplaysItsLogIntoTheFile() throws Exception {
        List<Tools.GeneratedImage> made = Tools.generate("vhdx-made.sh", Files.createDirectories(dir.resolve("made")));
        Tools.GeneratedImage dirty = made.stream().filter(i -> i.has("qemu-replay")).findFirst().orElseThrow();
        Path p = dirty.path();
        byte[] expected = Files.readAllBytes(p.resolveSibling(dirty.flag("expected")));
        assertTrue(qemuCheck(p).stderr().contains("needs to be replayed"));
        CheckReport ro = Check.check(p, "vhdx", RepairMode.NONE);
        assertEquals(1, ro.exitCode(), ro.toString());
        assertTrue(ro.messages().stream().anyMatch(m -> m.contains("need replay")), ro.toString());
        CheckReport fixed = Check.check(p, "vhdx", RepairMode.ALL);
        assertEquals(0, fixed.exitCode(), fixed.toString());
        assertEquals(1, fixed.corruptionsFixed(), fixed.toString());
        assertEquals(0, qemuCheck(p).exit(), "qemu opens it now: " + qemuCheck(p));
        assertTrue(header(p).logGuid().isZero());
        try (DiskImage d = open(p, false)) {
            assertArrayEquals(expected, WriteTorture.readAll(d));
            assertEquals(Boolean.FALSE, d.layers().get(0).info().dirty());
        }
    }

    /**
     * Appends a block of 0x3d bytes to {@code p}, then leaves its header naming a new log whose one entry
     * makes block 1 present there: complete, or torn by a kill before its last bytes reached the disk.
     */
    private static void logAnEntry(Path p, boolean torn) throws IOException {
        try (var f = org.vdiskload.io.ImageFile.open(p, true)) {
            long block = (f.size() + MB - 1) / MB * MB;
            byte[] data = new byte[(int) MB];
            Arrays.fill(data, (byte) 0x3d);
            f.writeFully(ByteBuffer.wrap(data), block);
            VhdxHeader h = VhdxHeader.current(f);
            RegionTable regions = RegionTable.read(new ReplayedFile(f, LogOverlay.EMPTY, f.size()));
            ByteBuffer page = f.readStruct(regions.bat().fileOffset(), 4096, ByteOrder.LITTLE_ENDIAN, "BAT");
            page.putLong(8, block | BatEntry.FULLY_PRESENT);
            Guid log = Guid.random();
            VhdxHeader withLog = h.successor(h.fileWriteGuid(), h.dataWriteGuid(), log);
            f.writeFully(withLog.encode(), withLog.offset());
            ByteBuffer entry = LogEntry.encode(log, 5, f.size(), List.of(new LogEntry.Sector(regions.bat().fileOffset(), page.array())));
            if (torn) entry.limit(entry.capacity() - 100);
            f.writeFully(entry, h.logOffset());
        }
    }

    @Test
    void tornLogEntryIsIgnoredAndACompleteOneReplayed() throws Exception {
        for (boolean torn : new boolean[] {true, false}) {
            Path p = create("log-" + torn + ".vhdx", 4 * MB, "block_size=1M");
            write(p, 0, (byte) 0x3c, (int) MB);
            logAnEntry(p, torn);
            byte[] want = new byte[4 * (int) MB];
            Arrays.fill(want, 0, (int) MB, (byte) 0x3c);
            if (!torn) Arrays.fill(want, (int) MB, 2 * (int) MB, (byte) 0x3d);
            try (DiskImage d = open(p, false)) {
                assertArrayEquals(want, WriteTorture.readAll(d), "torn " + torn);
                assertEquals(!torn, d.layers().get(0).info().dirty());
            }
            // qemu agrees after its own replay of a copy...
            Path copy = dir.resolve("copy-" + torn + ".vhdx");
            Files.copy(p, copy);
            Tools.check("qemu-img", "check", "-r", "all", "-f", "vhdx", copy.toString());
            Path raw = dir.resolve("copy-" + torn + ".raw");
            Tools.check("qemu-img", "convert", "-f", "vhdx", "-O", "raw", copy.toString(), raw.toString());
            assertArrayEquals(want, Files.readAllBytes(raw));
            // ...and after ours, into the file.
            CheckReport r = Check.check(p, "vhdx", RepairMode.ALL);
            assertEquals(torn ? 0 : 1, r.corruptionsFixed(), r.toString());
            assertEquals(0, r.exitCode(), r.toString());
            assertEquals(0, qemuCheck(p).exit(), qemuCheck(p).toString());
            try (DiskImage d = open(p, false)) {
                assertArrayEquals(want, WriteTorture.readAll(d), "torn " + torn + " after check -r all");
            }
        }
    }

    @Test
    void logWritingFarPastAnyFileSizeIsNotReplayedIntoTheFile() throws Exception {
        Path p = create("far.vhdx", 4 * MB, "block_size=1M");
        try (var f = org.vdiskload.io.ImageFile.open(p, true)) {
            VhdxHeader h = VhdxHeader.current(f);
            Guid log = Guid.random();
            VhdxHeader withLog = h.successor(h.fileWriteGuid(), h.dataWriteGuid(), log);
            f.writeFully(withLog.encode(), withLog.offset());
            f.writeFully(LogEntry.encode(log, 1, f.size(), List.of(new LogEntry.Sector(1L << 61, new byte[4096]))), h.logOffset());
        }
        long size = Files.size(p);
        ImageException e = assertThrows(ImageException.class, () -> open(p, true).close());
        assertEquals(ImageException.Kind.CORRUPT, e.kind());
        assertTrue(e.getMessage().contains("refusing to replay"), e.getMessage());
        assertEquals(size, Files.size(p), "nothing written");
    }

    @Test
    void concurrentWritersAndReadersSeeConsistentData() throws Exception {
        Path p = create("c.vhdx", 16 * MB, "block_size=1M");
        int threads = 4;
        try (DiskImage d = open(p, true)) {
            List<Thread> all = new java.util.ArrayList<>();
            java.util.concurrent.atomic.AtomicReference<Throwable> failure = new java.util.concurrent.atomic.AtomicReference<>();
            for (int t = 0; t < threads; t++) {
                int id = t;
                all.add(new Thread(() -> {
                    try {
                        // Thread id owns every 4th 64 KiB chunk; chunks share blocks with other threads' chunks.
                        byte[] chunk = new byte[64 << 10];
                        Arrays.fill(chunk, (byte) (id + 1));
                        ByteBuffer check = ByteBuffer.allocate(chunk.length);
                        for (long pos = id * (64L << 10); pos < d.size(); pos += threads * (64L << 10)) {
                            d.write(ByteBuffer.wrap(chunk), pos);
                            d.read(check.clear(), pos);
                            if (!Arrays.equals(chunk, check.array())) throw new AssertionError("thread " + id + " read back other data at " + pos);
                        }
                    } catch (Throwable x) {
                        failure.compareAndSet(null, x);
                    }
                }));
            }
            all.forEach(Thread::start);
            for (Thread t : all) t.join();
            if (failure.get() != null) throw new AssertionError(failure.get());
        }
        try (DiskImage d = open(p, false)) {
            byte[] got = WriteTorture.readAll(d);
            for (int i = 0; i < got.length; i++) assertEquals((byte) (i / (64 << 10) % threads + 1), got[i], "offset " + i);
        }
        assertEquals(0, qemuCheck(p).exit());
    }

    // ---- check ----

    private static void patchBat(Path p, long index, long raw) throws IOException {
        long bat;
        try (var f = org.vdiskload.io.ImageFile.open(p, false)) {
            bat = RegionTable.read(new ReplayedFile(f, LogOverlay.EMPTY, f.size())).bat().fileOffset();
        }
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, raw), bat + index * 8);
        }
    }

    @Test
    void spaceNoBlockUsesIsNotALeakAsForQemu() throws Exception {
        // qemu's own create leaves the file longer than its last block; a block written just before a crash
        // looks the same. qemu-img check counts neither as a leak, and neither do we (it is mentioned).
        Path q = dir.resolve("q.vhdx");
        Tools.check("qemu-img", "create", "-q", "-f", "vhdx", q.toString(), "5000000");
        Path p = create("l.vhdx", 8 * MB, "block_size=1M");
        write(p, MB, (byte) 5, 4096);
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(new byte[] {9}), Files.size(p) + 3 * MB - 1);
        }
        for (Path img : List.of(q, p)) {
            CheckReport r = Check.check(img, "vhdx", RepairMode.NONE);
            assertEquals(0, r.exitCode(), r.toString());
            assertTrue(r.messages().stream().anyMatch(m -> m.contains("past the last block in use")), r.toString());
            assertEquals(0, qemuCheck(img).exit());
        }
    }

    @Test
    void blocksPastTheEndOrOverlappingAreCorruptions() throws Exception {
        Path past = create("past.vhdx", 8 * MB, "block_size=1M");
        patchBat(past, 2, (100 * MB) | BatEntry.FULLY_PRESENT);
        Path overlap = create("overlap.vhdx", 8 * MB, "block_size=1M");
        write(overlap, 0, (byte) 1, 512);
        try (var f = org.vdiskload.io.ImageFile.open(overlap, false)) {
            long bat = RegionTable.read(new ReplayedFile(f, LogOverlay.EMPTY, f.size())).bat().fileOffset();
            long block0 = f.readStruct(bat, 8, ByteOrder.LITTLE_ENDIAN, "BAT").getLong(0);
            patchBat(overlap, 3, block0);
        }
        Path onBat = create("onbat.vhdx", 8 * MB, "block_size=1M");
        try (var f = org.vdiskload.io.ImageFile.open(onBat, false)) {
            long bat = RegionTable.read(new ReplayedFile(f, LogOverlay.EMPTY, f.size())).bat().fileOffset();
            patchBat(onBat, 1, bat | BatEntry.FULLY_PRESENT);
        }
        for (Path p : List.of(past, overlap, onBat)) {
            CheckReport r = Check.check(p, "vhdx", RepairMode.NONE);
            assertEquals(2, r.exitCode(), p.getFileName() + ": " + r);
            assertTrue(r.messages().stream().anyMatch(m -> m.contains("payload block")), r.toString());
            // qemu 7.2 checks blocks against the end of the file and the regions, not against each other.
            assertEquals(p == overlap ? 0 : 2, qemuCheck(p).exit(), p.getFileName() + ": " + qemuCheck(p));
        }
    }

    // ---- convert and resize ----

    @Test
    void convertingEveryTestImageRoundTrips() throws Exception {
        List<Tools.GeneratedImage> sources = new java.util.ArrayList<>(Tools.generate("every-format.sh", Files.createDirectories(dir.resolve("every"))));
        sources.addAll(Tools.generate("vhdx.sh", Files.createDirectories(dir.resolve("qv"))));
        String[] targets = {"block_size=1M", "", "block_size=32M,log_size=2M", "subformat=fixed,block_size=2M", "block_state_zero=off"};
        int n = 0;
        for (Tools.GeneratedImage src : sources) {
            if (Files.size(src.path()) > 64 * MB || src.path().getFileName().toString().startsWith("dyn-256m")) continue;
            String opts = targets[n++ % targets.length];
            Path out = dir.resolve("rt-" + n + ".vhdx");
            convert(src, out, opts);
            String what = src + " -> " + opts;
            assertEquals(0, qemuCheck(out).exit(), what + ": " + qemuCheck(out));
            Tools.Result cmp = Tools.run(List.of("qemu-img", "compare", "-f", src.format(), "-F", "vhdx", src.path().toString(), out.toString()), null);
            assertEquals(0, cmp.exit(), what + ": " + cmp.stdout() + cmp.stderr());
            String vhdi = Tools.check("vhdiinfo", out.toString());
            assertTrue(vhdi.contains("Disk type\t\t: " + (opts.contains("fixed") ? "Fixed" : "Dynamic")), vhdi);
            assertEquals(0, Check.check(out, "vhdx", RepairMode.NONE).exitCode());
        }
        assertTrue(n >= 10, "converted " + n);
    }

    private static void convert(Tools.GeneratedImage src, Path out, String opts) throws IOException {
        Map<String, String> o = org.vdiskload.image.CreateOptions.parse(opts, out);
        try (DiskImage in = Images.open(src.path(), OpenOptions.DEFAULTS.withFormat(src.format()))) {
            org.vdiskload.ops.Convert.convert(in, new org.vdiskload.ops.Convert.Target(out, new VhdxFormat(), o, false, false),
                    org.vdiskload.ops.Progress.NONE);
        }
    }

    @Test
    void growsInPlaceWhenTheBatHasRoom() throws Exception {
        for (String kind : new String[] {"dynamic", "fixed"}) {
            Path p = create("r-" + kind + ".vhdx", 3 * MB + 512, "block_size=1M", "subformat=" + kind);
            write(p, 3 * MB, (byte) 4, 512);
            Resize.resize(p, "vhdx", 40 * MB, false);
            assertEquals(0, qemuCheck(p).exit(), kind + ": " + qemuCheck(p));
            assertTrue(Tools.check("qemu-img", "info", "--output=json", p.toString()).contains("\"virtual-size\": " + 40 * MB));
            byte[] want = new byte[40 * (int) MB];
            Arrays.fill(want, 3 * (int) MB, 3 * (int) MB + 512, (byte) 4);
            try (DiskImage d = open(p, false)) {
                assertArrayEquals(want, WriteTorture.readAll(d), kind);
            }
            write(p, 39 * MB, (byte) 6, 4096);
            assertEquals(0, qemuCheck(p).exit());
            assertEquals(batRegion(p), batRegion(create("fresh-" + kind + ".vhdx", 3 * MB + 512, "block_size=1M")), "the BAT did not move");
            ImageException e = assertThrows(ImageException.class, () -> Resize.resize(p, "vhdx", MB, true));
            assertTrue(e.getMessage().contains("shrinking"), e.getMessage());
        }
    }

    private static RegionTable.Region batRegion(Path p) throws IOException {
        try (var f = org.vdiskload.io.ImageFile.open(p, false)) {
            return RegionTable.read(new ReplayedFile(f, LogOverlay.EMPTY, f.size())).bat();
        }
    }

    /**
     * 1 MiB blocks: qemu's 1 MiB BAT region holds 131072 entries, 128 GiB of disk. Growing to 160 GiB moves the
     * BAT to the end of the file; qemu must find the image clean and read the old data and the new.
     */
    @Test
    void growsPastItsBatByMovingIt() throws Exception {
        Path p = dir.resolve("q64.vhdx");
        Tools.check("qemu-img", "create", "-q", "-f", "vhdx", "-o", "block_size=1M", p.toString(), "64M");
        Tools.check("qemu-io", "-f", "vhdx", "-c", "write -P 0x41 0 2M", "-c", "write -P 0x42 63M 1M", p.toString());
        RegionTable.Region before = batRegion(p);
        long newSize = 160L << 30;
        Resize.resize(p, "vhdx", newSize, false);
        RegionTable.Region after = batRegion(p);
        assertTrue(after.fileOffset() > before.fileOffset() && after.length() >= (newSize / MB + 40) * 8, after.toString());
        assertTrue(header(p).logGuid().isZero());
        assertEquals(0, qemuCheck(p).exit(), qemuCheck(p).toString());
        assertTrue(Tools.check("qemu-img", "info", "--output=json", p.toString()).contains("\"virtual-size\": " + newSize));
        long[] past = {64 * MB, 100L << 30, newSize - 4096};
        try (DiskImage d = open(p, true)) {
            for (int i = 0; i < past.length; i++) {
                byte[] b = new byte[4096];
                Arrays.fill(b, (byte) (0x60 + i));
                d.write(ByteBuffer.wrap(b), past[i]);
            }
        }
        assertEquals(0, qemuCheck(p).exit(), qemuCheck(p).toString());
        assertEquals(0, Check.check(p, "vhdx", RepairMode.NONE).exitCode());
        Path raw = dir.resolve("q64.raw");
        Tools.check("qemu-img", "convert", "-f", "vhdx", "-O", "raw", p.toString(), raw.toString());
        assertEquals(newSize, Files.size(raw));
        try (FileChannel ch = FileChannel.open(raw)) {
            assertRange(ch, 0, 2 * MB, (byte) 0x41);
            assertRange(ch, 2 * MB, MB, (byte) 0);
            assertRange(ch, 63 * MB, MB, (byte) 0x42);
            for (int i = 0; i < past.length; i++) {
                assertRange(ch, past[i], 4096, (byte) (0x60 + i));
                if (i > 0) assertRange(ch, past[i] - 4096, 4096, (byte) 0);
            }
        }
        Files.delete(raw);
        // Grown again, the moved BAT has room and stays where it is.
        Resize.resize(p, "vhdx", newSize + MB, false);
        assertEquals(after, batRegion(p));
        assertEquals(0, qemuCheck(p).exit(), qemuCheck(p).toString());
    }

    /** A fixed image grown past its BAT gets every new block allocated, reading zeros, behind the moved BAT. */
    @Test
    void fixedImageGrowsPastItsBat() throws Exception {
        Path p = create("fixed-mv.vhdx", 8 * MB, "subformat=fixed", "block_size=1M");
        write(p, 7 * MB, (byte) 0x33, (int) MB);
        long newSize = 129L << 30;
        Resize.resize(p, "vhdx", newSize, false);
        assertEquals(0, qemuCheck(p).exit(), qemuCheck(p).toString());
        Tools.check("qemu-io", "-f", "vhdx", "-c", "read -P 0x33 7M 1M", "-c", "read -P 0 8M 1M",
                "-c", "read -P 0 " + (newSize - MB) + " 1M", p.toString());
        try (DiskImage d = open(p, false)) {
            assertEquals(newSize, d.size());
            assertTrue(d.map(0, d.size()).stream().allMatch(e -> e.kind() == Extent.Kind.DATA), "every block allocated");
        }
        assertEquals(0, Check.check(p, "vhdx", RepairMode.NONE).exitCode());
    }

    private static void assertRange(FileChannel ch, long pos, long length, byte value) throws IOException {
        ByteBuffer got = ByteBuffer.allocate((int) length);
        while (got.hasRemaining() && ch.read(got, pos + got.position()) >= 0) { }
        byte[] want = new byte[(int) length];
        Arrays.fill(want, value);
        assertArrayEquals(want, got.array(), "at " + pos);
    }

    /**
     * A crash while the BAT moves, made by hand: the grown file with the old region tables and metadata put back
     * and the header naming the log whose one entry switches them, complete or torn. Complete, replay (ours and
     * qemu's) gives the grown disk; torn, the old one; both hold the old data and qemu finds them clean.
     */
    @Test
    void crashWhileTheBatMovesLeavesTheOldDiskOrTheNew() throws Exception {
        for (boolean torn : new boolean[] {false, true}) {
            Path p = dir.resolve("mv-" + torn + ".vhdx");
            Tools.check("qemu-img", "create", "-q", "-f", "vhdx", "-o", "block_size=1M", p.toString(), "64M");
            Tools.check("qemu-io", "-f", "vhdx", "-c", "write -P 0x41 0 2M", p.toString());
            Path before = dir.resolve("mv-before.vhdx");
            Files.copy(p, before, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            long newSize = 130L << 30;
            Resize.resize(p, "vhdx", newSize, false);
            try (FileChannel old = FileChannel.open(before); FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
                long metadata;
                try (var f = org.vdiskload.io.ImageFile.open(before, false)) {
                    metadata = RegionTable.read(new ReplayedFile(f, LogOverlay.EMPTY, f.size())).metadata().fileOffset();
                }
                for (long[] range : new long[][] {{RegionTable.TABLE1, 2L * RegionTable.SIZE}, {metadata, MB}}) {
                    ByteBuffer b = ByteBuffer.allocate((int) range[1]);
                    old.read(b, range[0]);
                    ch.write(b.flip(), range[0]);
                }
            }
            try (var f = org.vdiskload.io.ImageFile.open(p, true)) {
                VhdxHeader h = VhdxHeader.current(f);
                ByteBuffer entry = f.readStruct(h.logOffset(), 4096, ByteOrder.LITTLE_ENDIAN, "log entry");
                Guid log = Guid.read(entry, 32); // LogGuid of the last entry written, at the start of the log
                VhdxHeader withLog = h.successor(h.fileWriteGuid(), h.dataWriteGuid(), log);
                f.writeFully(withLog.encode(), withLog.offset());
                if (torn) {
                    int length = entry.getInt(8); // EntryLength
                    f.writeFully(ByteBuffer.wrap(new byte[] {0x5a}), h.logOffset() + length - 1);
                }
            }
            long want = torn ? 64 * MB : newSize;
            byte[] data = new byte[2 * (int) MB];
            Arrays.fill(data, (byte) 0x41);
            try (DiskImage d = open(p, false)) {
                assertEquals(want, d.size(), "torn " + torn);
                ByteBuffer got = ByteBuffer.allocate(data.length);
                d.read(got, 0);
                assertArrayEquals(data, got.array());
            }
            Path copy = dir.resolve("mv-copy.vhdx");
            Files.copy(p, copy, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            Tools.check("qemu-img", "check", "-r", "all", "-f", "vhdx", copy.toString());
            assertEquals(0, qemuCheck(copy).exit(), qemuCheck(copy).toString());
            assertTrue(Tools.check("qemu-img", "info", "--output=json", copy.toString()).contains("\"virtual-size\": " + want));
            Tools.check("qemu-io", "-f", "vhdx", "-c", "read -P 0x41 0 2M", "-c", "read -P 0 " + (want - MB) + " 1M", copy.toString());
            CheckReport r = Check.check(p, "vhdx", RepairMode.ALL);
            assertEquals(0, r.exitCode(), r.toString());
            assertEquals(0, qemuCheck(p).exit(), qemuCheck(p).toString());
        }
    }
}
