package org.vdiskload.format.vdi;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.check.RepairMode;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.ops.Check;
import org.vdiskload.ops.Create;
import org.vdiskload.ops.Resize;
import org.vdiskload.testing.Tools;
import org.vdiskload.testing.WriteTorture;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Resizing VDI images. qemu cannot resize VDI, so the oracle is the same writes made by qemu-io into a
 * raw image resized by qemu-img: qemu-img check must find ours clean and convert -O raw must give the
 * same bytes.
 */
class VdiResizeTest {
    @TempDir
    Path dir;

    private static final int MB = 1 << 20;
    private static final String[] WRITES = {"write -P 0x11 0 4k", "write -P 0x22 1M 1M", "write -P 0x33 3M 100", "write -P 0x44 4607k 1k"};

    /** A vdi and a raw image of {@code size} with the same {@link #WRITES} made by qemu-io. */
    private Path[] pair(String name, String size, String... createOptions) throws Exception {
        Path vdi = dir.resolve(name + ".vdi");
        Path raw = dir.resolve(name + ".raw");
        List<String> create = new ArrayList<>(List.of("qemu-img", "create", "-q", "-f", "vdi"));
        for (String o : createOptions) create.addAll(List.of("-o", o));
        create.addAll(List.of(vdi.toString(), size));
        Tools.run(create, dir).requireSuccess(create);
        Tools.check("qemu-img", "create", "-q", "-f", "raw", raw.toString(), size);
        for (Path p : new Path[] {vdi, raw}) {
            List<String> io = new ArrayList<>(List.of("qemu-io", "-f", p.equals(vdi) ? "vdi" : "raw"));
            for (String w : WRITES) io.addAll(List.of("-c", w));
            io.add(p.toString());
            Tools.run(io, dir).requireSuccess(io);
        }
        return new Path[] {vdi, raw};
    }

    /** Resizes the raw twin with qemu-img, the vdi with us; then both must hold the same bytes. */
    private void resizeBoth(Path[] pair, long newSize, boolean shrink) throws Exception {
        Resize.resize(pair[0], "vdi", newSize, shrink);
        List<String> cmd = new ArrayList<>(List.of("qemu-img", "resize", "-q", "-f", "raw"));
        if (shrink) cmd.add("--shrink");
        cmd.addAll(List.of(pair[1].toString(), Long.toString(newSize)));
        Tools.run(cmd, dir).requireSuccess(cmd);
        assertSameContent(pair);
    }

    private void assertSameContent(Path[] pair) throws Exception {
        Tools.Result check = Tools.run(List.of("qemu-img", "check", "-f", "vdi", pair[0].toString()), dir);
        assertEquals(0, check.exit(), check.stdout() + check.stderr());
        assertEquals(0, Check.check(pair[0], "vdi", RepairMode.NONE).exitCode());
        byte[] expected = Files.readAllBytes(pair[1]);
        Path converted = dir.resolve("converted.raw");
        Tools.check("qemu-img", "convert", "-f", "vdi", "-O", "raw", pair[0].toString(), converted.toString());
        assertArrayEquals(expected, Files.readAllBytes(converted), "qemu-img convert -O raw");
        Files.delete(converted);
        try (DiskImage d = Images.open(pair[0], OpenOptions.DEFAULTS.withFormat("vdi"))) {
            assertArrayEquals(expected, WriteTorture.readAll(d), "our reader");
        }
    }

    /** The u32 at {@code at} in the file (header fields, map entries). */
    private static int fileInt(Path p, long at) throws Exception {
        try (var ch = java.nio.channels.FileChannel.open(p)) {
            ByteBuffer b = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
            ch.read(b, at);
            return b.getInt(0);
        }
    }

    /** 5 MiB: a one-sector map with room for 128 blocks. */
    @Test
    void growsWithinTheMapPadding() throws Exception {
        Path[] p = pair("g", "5M");
        int offsetData = fileInt(p[0], 0x158);
        resizeBoth(p, 100 * MB + 1536, false);
        assertEquals(offsetData, fileInt(p[0], 0x158), "data stays where it was");
        assertEquals(101, fileInt(p[0], 0x180), "blocks_in_image");
        resizeBoth(p, 128 * MB, false);
        WriteTorture.run(p[0], "vdi", new WriteTorture.Plan(1500, 300, MB, 41));
    }

    /** The last block's tail past the old size reads as zeros after growing, whatever lay there. */
    @Test
    void growingShowsZerosPastTheOldSize() throws Exception {
        Path[] p = pair("t", "4609k"); // the 1k write at 4607k ends 1k before the end of block 4
        Path vdi = p[0];
        // qemu-io allocated blocks 0, 1, 3, 4 in that order: block 4 is data slot 3.
        long tail = (long) fileInt(vdi, 0x158) + 3L * MB + 4609 * 1024 - 4 * MB;
        try (var ch = java.nio.channels.FileChannel.open(vdi, java.nio.file.StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(new byte[] {7, 7, 7}), tail);
        }
        resizeBoth(p, 6 * MB, false);
    }

    /** No block allocated yet: the map grows over the empty data area, offset_data moves. */
    @Test
    void growsAnEmptyImageBeyondTheMapPadding() throws Exception {
        Path vdi = dir.resolve("e.vdi");
        Path raw = dir.resolve("e.raw");
        Tools.check("qemu-img", "create", "-q", "-f", "vdi", vdi.toString(), "2M");
        Tools.check("qemu-img", "create", "-q", "-f", "raw", raw.toString(), "2M");
        Path[] p = {vdi, raw};
        resizeBoth(p, 200 * MB, false);
        assertEquals(512 + 1024, fileInt(vdi, 0x158), "offset_data after a map of 200 entries");
        for (Path f : p) {
            Tools.check("qemu-io", "-f", f.equals(vdi) ? "vdi" : "raw", "-c", "write -P 0x55 199M 1M", "-c", "write -P 0x66 0 512", f.toString());
        }
        assertSameContent(p);
    }

    /** 200 blocks need 800 bytes of map: it moves into data slot 0, whose block goes to the end. */
    @Test
    void growsPastTheMapPaddingByMovingTheMapIntoTheFirstDataSlot() throws Exception {
        Path[] p = pair("m", "5M");
        int offsetData = fileInt(p[0], 0x158);
        resizeBoth(p, 200 * MB, false);
        assertEquals(offsetData, fileInt(p[0], 0x154), "offset_bmap: the old first data slot");
        assertEquals(offsetData + MB, fileInt(p[0], 0x158), "offset_data");
        assertEquals(4, fileInt(p[0], 0x184), "blocks_allocated");
        assertEquals(3, fileInt(p[0], offsetData), "block 0 now in the last slot");
        WriteTorture.run(p[0], "vdi", new WriteTorture.Plan(1500, 300, MB, 44));
    }

    /**
     * A child growing an image in three steps, each moving the map past its room (into one, two, then six
     * data slots, whose blocks move to the end), is killed with SIGKILL at instants spread over the run.
     * Every time the image opens at the size before the interrupted step or after it, qemu-img check and
     * ours find no corruption (leaks at most, which check -r leaks gives back), and every block reads back.
     */
    @Test
    void killedWhileGrowingLeavesTheOldSizeOrTheNew() throws Exception {
        long[] sizes = {1L << 30, 300L << 30, 1536L << 30};
        long oldSize = 16 * MB;
        Path template = dir.resolve("kill-template.vdi");
        Tools.check("qemu-img", "create", "-q", "-f", "vdi", template.toString(), Long.toString(oldSize));
        // Twelve of the sixteen blocks, written out of order: the map is not the identity, the first slots hold data.
        int[] order = {5, 0, 11, 3, 14, 8, 1, 9, 6, 15, 2, 12};
        List<String> io = new ArrayList<>(List.of("qemu-io", "-f", "vdi"));
        List<String> reads = new ArrayList<>(List.of("qemu-io", "-r", "-f", "vdi"));
        byte[] model = new byte[(int) oldSize];
        for (int block = 0; block < 16; block++) {
            int b = block;
            boolean written = java.util.Arrays.stream(order).anyMatch(w -> w == b);
            if (written) java.util.Arrays.fill(model, block * MB, (block + 1) * MB, (byte) (0x20 + block));
            reads.addAll(List.of("-c", "read -P " + (written ? 0x20 + block : 0) + " " + block + "M 1M"));
        }
        for (int block : order) io.addAll(List.of("-c", "write -P " + (0x20 + block) + " " + block + "M 1M"));
        io.add(template.toString());
        Tools.run(io, dir).requireSuccess(io);
        Path image = dir.resolve("kill.vdi");
        Files.copy(template, image);
        long span = org.vdiskload.testing.ResizeCrash.uninterrupted(image, "vdi", sizes);
        java.util.Random rnd = new java.util.Random(77);
        int kills = org.vdiskload.testing.CrashTest.kills();
        int[] stepsDone = new int[sizes.length + 1];
        for (int i = 0; i < kills; i++) {
            Files.copy(template, image, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            long after = (long) (rnd.nextDouble() * span * 1.1);
            var outcome = org.vdiskload.testing.ResizeCrash.run(image, "vdi", after, sizes);
            int last = outcome.lastResized();
            String what = "kill " + i + " at " + after / 1000 + " us of " + span / 1000 + " (last step done " + last + ")";
            stepsDone[last + 1]++;
            long before = last < 0 ? oldSize : sizes[last];
            long next = last + 1 < sizes.length ? sizes[last + 1] : before;
            Tools.Result check = Tools.run(List.of("qemu-img", "check", "-f", "vdi", image.toString()), dir);
            assertTrue(check.exit() == 0 || check.exit() == 3, what + ": qemu-img check: " + check.stdout() + check.stderr());
            var repaired = Check.check(image, "vdi", RepairMode.LEAKS);
            assertEquals(0, repaired.corruptions(), what + ": check -r leaks: " + repaired);
            check = Tools.run(List.of("qemu-img", "check", "-f", "vdi", image.toString()), dir);
            assertEquals(0, check.exit(), what + ": qemu-img check after check -r leaks: " + check.stdout() + check.stderr());
            try (DiskImage d = Images.open(image, OpenOptions.DEFAULTS.withFormat("vdi"))) {
                assertTrue(d.size() == before || d.size() == next, what + ": size " + d.size());
                ByteBuffer got = ByteBuffer.allocate((int) oldSize);
                d.read(got, 0);
                assertArrayEquals(model, got.array(), what + ": the old data");
                for (long at : new long[] {oldSize, d.size() - MB}) {
                    if (at < oldSize || at + MB > d.size()) continue; // not grown: nothing past the old size
                    ByteBuffer zeros = ByteBuffer.allocate(MB);
                    d.read(zeros, at);
                    assertArrayEquals(new byte[MB], zeros.array(), what + ": past the old size at " + at);
                }
            }
            List<String> qemuReads = new ArrayList<>(reads);
            qemuReads.add(image.toString());
            Tools.run(qemuReads, dir).requireSuccess(qemuReads);
        }
        if (kills >= 20) { // the long run: kills must have landed during each step, not only around them
            for (int step = 0; step < sizes.length; step++) {
                assertTrue(stepsDone[step] > 0, "no kill during step " + step + ": " + java.util.Arrays.toString(stepsDone)
                        + " kills with 0, 1, 2, 3 steps done, in a run of " + span / 1000 + " us");
            }
        }
    }

    /**
     * Power cuts during a grow that moves the map, at every flush of it and at random points between: the disk
     * holds the old image, the temporary one of the old size (whose phantom entries name the slots taken for the
     * new map) or the new one, all clean for qemu-img check and holding the old data; resizing again from there
     * finishes the interrupted move and reaches the size asked for.
     */
    @Test
    void powerCutsWhileTheMapMovesLeaveTheOldDiskOrTheNew() throws Exception {
        Path[] p = pair("pc", "5M");
        byte[] old = Files.readAllBytes(p[1]);
        long newSize = 300L << 30; // a map of 1.2 MiB: two slots
        var recording = org.vdiskload.testing.PowerCut.record(p[0], log -> Resize.resize(p[0], "vdi", newSize, false));
        List<Integer> cuts = new ArrayList<>();
        for (int i = 0; i < recording.events().size(); i++) {
            if (recording.events().get(i).kind() == org.vdiskload.testing.RecordingChannel.Event.Kind.FLUSH) cuts.add(i + 1);
        }
        java.util.Random rnd = new java.util.Random(45);
        for (int i = 0; i < org.vdiskload.testing.PowerCut.cuts(); i++) cuts.add(1 + rnd.nextInt(recording.events().size()));
        java.util.Set<Long> sizes = new java.util.TreeSet<>();
        for (int cut : cuts) {
            Path image = dir.resolve("pc-cut.vdi");
            org.vdiskload.testing.PowerCut.replay(recording, cut, rnd, image);
            String what = "cut before event " + cut + " of " + recording.events().size();
            Tools.Result check = Tools.run(List.of("qemu-img", "check", "-f", "vdi", image.toString()), dir);
            assertTrue(check.exit() == 0 || check.exit() == 3, what + ": " + check.stdout() + check.stderr());
            assertEquals(0, Check.check(image, "vdi", RepairMode.NONE).corruptions(), what);
            try (DiskImage d = Images.open(image, OpenOptions.DEFAULTS.withFormat("vdi"))) {
                assertTrue(d.size() == 5 * MB || d.size() == newSize, what + ": size " + d.size());
                sizes.add(d.size());
                ByteBuffer got = ByteBuffer.allocate(old.length);
                d.read(got, 0);
                assertArrayEquals(old, got.array(), what);
            }
            Resize.resize(image, "vdi", newSize, false);
            check = Tools.run(List.of("qemu-img", "check", "-f", "vdi", image.toString()), dir);
            assertEquals(0, check.exit(), what + ", resized again: " + check.stdout() + check.stderr());
            try (DiskImage d = Images.open(image, OpenOptions.DEFAULTS.withFormat("vdi"))) {
                assertEquals(newSize, d.size(), what);
                ByteBuffer got = ByteBuffer.allocate(old.length);
                d.read(got, 0);
                assertArrayEquals(old, got.array(), what + ", resized again");
            }
            Tools.check("qemu-io", "-f", "vdi", "-c", "write -P 0x77 299G 1M", "-c", "read -P 0x11 0 4k", "-c", "read -P 0x22 1M 1M",
                    image.toString());
            assertEquals(0, Check.check(image, "vdi", RepairMode.NONE).exitCode(), what + ", written after");
        }
        assertEquals(java.util.Set.of(5L * MB, newSize), sizes, "cuts saw the old disk and the new");
    }

    /** A map of more than 1 MiB takes two slots; fewer blocks allocated than that leaves a gap. */
    @Test
    void growsToAMapOfSeveralSlots() throws Exception {
        Path vdi = dir.resolve("big.vdi");
        Tools.check("qemu-img", "create", "-q", "-f", "vdi", vdi.toString(), "4M");
        Tools.check("qemu-io", "-f", "vdi", "-c", "write -P 0x21 3M 1M", vdi.toString());
        long size = 300L << 30; // 307200 entries: a map of 1.2 MiB
        Resize.resize(vdi, "vdi", size, false);
        Tools.Result check = Tools.run(List.of("qemu-img", "check", "-f", "vdi", vdi.toString()), dir);
        assertEquals(0, check.exit(), check.stdout() + check.stderr());
        assertEquals(0, Check.check(vdi, "vdi", RepairMode.NONE).exitCode());
        assertEquals(1, fileInt(vdi, 0x184), "blocks_allocated: the gap of the second slot is not counted");
        Tools.check("qemu-io", "-f", "vdi", "-c", "read -P 0x21 3M 1M", "-c", "read -P 0 0 3M", "-c", "read -P 0 299G 1G",
                "-c", "write -P 0x31 299G 4k", vdi.toString());
        try (DiskImage d = Images.open(vdi, OpenOptions.DEFAULTS.withFormat("vdi"))) {
            assertEquals(size, d.size());
            ByteBuffer b = ByteBuffer.allocate(2);
            d.read(b, 3 * MB + MB - 1);
            assertEquals(0x21, b.get(0));
            assertEquals(0, b.get(1));
            d.read(b.clear(), 299L << 30);
            assertEquals(0x31, b.get(0));
        }
        assertEquals(0, Tools.run(List.of("qemu-img", "check", "-f", "vdi", vdi.toString()), dir).exit());
    }

    @Test
    void staticImagesGrowByAppendingAllocatedBlocks() throws Exception {
        Path[] p = pair("s", "5M", "static=on");
        resizeBoth(p, 9 * MB + 512, false);
        assertEquals(10, fileInt(p[0], 0x184), "blocks_allocated");
        assertEquals(fileInt(p[0], 0x158) + 10L * MB, Files.size(p[0]));
        WriteTorture.run(p[0], "vdi", new WriteTorture.Plan(1000, 250, MB, 42));
        byte[] before = Files.readAllBytes(p[0]);
        ImageException e = assertThrows(ImageException.class, () -> Resize.resize(p[0], "vdi", 200 * MB, false));
        assertEquals(ImageException.Kind.UNSUPPORTED, e.kind());
        assertTrue(e.getMessage().startsWith(p[0] + ": cannot grow a static VDI image to " + 200 * MB
                + " bytes: its block map has room for 128 blocks"), e.getMessage());
        assertArrayEquals(before, Files.readAllBytes(p[0]), "refused before anything is written");
        ImageException cut = assertThrows(ImageException.class, () -> Resize.resize(p[0], "vdi", 8 * MB, true));
        assertTrue(cut.getMessage().contains("block 8 (guest offset " + 8L * MB + ") holds data"), cut.getMessage());
    }

    @Test
    void shrinksOnlyWithShrinkAndOnlyUnallocatedBlocks() throws Exception {
        Path[] p = pair("k", "16M");
        long size = Files.size(p[0]);
        ImageException noFlag = assertThrows(ImageException.class, () -> Resize.resize(p[0], "vdi", 8 * MB, false));
        assertTrue(noFlag.getMessage().contains("use --shrink"), noFlag.getMessage());
        resizeBoth(p, 8 * MB, true);
        assertEquals(8, fileInt(p[0], 0x180), "blocks_in_image");
        assertEquals(size, Files.size(p[0]), "the file keeps its size");
        ImageException data = assertThrows(ImageException.class, () -> Resize.resize(p[0], "vdi", 4 * MB, true));
        assertTrue(data.getMessage().contains("cannot shrink to " + 4 * MB + " bytes: block 4 (guest offset " + 4L * MB + ") holds data"),
                data.getMessage());
        // Into an allocated block: the cut part is gone, and growing again shows zeros there.
        resizeBoth(p, 4718080, true); // in the middle of the write at 4607k
        resizeBoth(p, 12 * MB, false);
        WriteTorture.run(p[0], "vdi", new WriteTorture.Plan(1000, 250, MB, 43));
    }

    @Test
    void resizeThroughAnOpenImageShowsTheNewSize() throws Exception {
        Path p = dir.resolve("o.vdi");
        Create.create(p, new VdiFormat(), 3 * MB, Map.of(), null, null);
        try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS.withFormat("vdi").withWritable(true))) {
            d.layers().get(0).resize(6 * MB, false);
            d.write(ByteBuffer.wrap(new byte[] {9}), 5 * MB);
        }
        try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS.withFormat("vdi"))) {
            assertEquals(6 * MB, d.size());
            ByteBuffer b = ByteBuffer.allocate(1);
            d.read(b, 5 * MB);
            assertEquals(9, b.get(0));
        }
        assertEquals(0, Tools.run(List.of("qemu-img", "check", "-f", "vdi", p.toString()), dir).exit());
    }
}
