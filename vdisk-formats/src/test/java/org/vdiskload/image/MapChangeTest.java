package org.vdiskload.image;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.format.qcow.QcowFormat;
import org.vdiskload.format.qcow2.Qcow2Format;
import org.vdiskload.format.raw.RawFormat;
import org.vdiskload.format.vdi.VdiFormat;
import org.vdiskload.format.vhd.VhdFormat;
import org.vdiskload.format.vhdx.VhdxFormat;
import org.vdiskload.format.vmdk.VmdkFormat;
import org.vdiskload.ops.Create;
import org.vdiskload.testing.Tools;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The two promises a backend serving in-place extents itself relies on, per writable format: after random
 * writes, zero-writes and discards, every range whose whole-disk {@link DiskImage#map} changed was reported to
 * the {@link MapChangeListener} (on the writing thread, before the call returned), and every range reported
 * lies inside the operation's range widened to {@link DiskImage#mappingUnit()}.
 */
class MapChangeTest {
    private static final long MB = 1 << 20;
    private static final int OPS = 300;

    @TempDir
    Path dir;

    /** Makes the image to torture in {@code dir}; returns the path to open read-write. */
    @FunctionalInterface
    private interface Maker {
        Path make(Path dir) throws Exception;
    }

    /** @param changes whether writes can change the map at all (not for images whose every byte is in place) */
    private record Case(String name, long seed, boolean changes, Maker maker) {
        Case(String name, long seed, Maker maker) {
            this(name, seed, true, maker);
        }
    }

    private static Path create(Path dir, String name, ImageFormat format, long size, Map<String, String> options) throws Exception {
        Path p = dir.resolve(name);
        Create.create(p, format, size, options, null, null);
        return p;
    }

    /** A base the top layer copies from: data in some places, zeros written in others, holes elsewhere. */
    private static void base(Path dir, String name, String format, String size, String options) throws Exception {
        Path p = dir.resolve(name);
        Tools.check("qemu-img", "create", "-q", "-f", format, "-o", options, p.toString(), size);
        Tools.check("qemu-io", "-f", format, "-c", "write -P 0x5a 0 3M", "-c", "write -P 0x21 5M 1M",
                "-c", "write -z 7M 1M", "-c", "write -P 0x33 9M 100k", p.toString());
    }

    private static List<Case> cases() {
        return List.of(
                new Case("qcow2", 1, d -> create(d, "a.qcow2", new Qcow2Format(), 16 * MB, Map.of())),
                new Case("qcow2 4k clusters", 2, d -> create(d, "a.qcow2", new Qcow2Format(), 16 * MB, Map.of("cluster_size", "4096"))),
                new Case("qcow2 compat=0.10", 3, d -> create(d, "a.qcow2", new Qcow2Format(), 16 * MB, Map.of("compat", "0.10"))),
                new Case("qcow2 extended L2", 4, d -> create(d, "a.qcow2", new Qcow2Format(), 16 * MB,
                        Map.of("extended_l2", "on", "cluster_size", "128k"))),
                new Case("qcow2 over a backing file", 5, d -> {
                    base(d, "base.qcow2", "qcow2", "16M", "cluster_size=65536");
                    Tools.check("qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", d.resolve("top.qcow2").toString());
                    return d.resolve("top.qcow2");
                }),
                new Case("qcow2 extended L2 over a backing file", 6, d -> {
                    base(d, "base.raw", "raw", "16M", "preallocation=off");
                    Tools.check("qemu-img", "create", "-q", "-f", "qcow2", "-o", "extended_l2=on,cluster_size=64k", "-b", "base.raw",
                            "-F", "raw", d.resolve("top.qcow2").toString());
                    return d.resolve("top.qcow2");
                }),
                new Case("qcow2 with a persistent bitmap", 7, d -> {
                    Path p = create(d, "a.qcow2", new Qcow2Format(), 16 * MB, Map.of());
                    Tools.check("qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 2M", p.toString());
                    Tools.check("qemu-img", "bitmap", "--add", p.toString(), "b0");
                    return p;
                }),
                new Case("qcow", 8, d -> create(d, "a.qcow", new QcowFormat(), 16 * MB, Map.of())),
                new Case("vmdk monolithicSparse", 9, d -> create(d, "a.vmdk", new VmdkFormat(), 16 * MB, Map.of())),
                new Case("vmdk of two sparse extents", 10, d -> {
                    Path p = d.resolve("a.vmdk");
                    Tools.check("qemu-img", "create", "-q", "-f", "vmdk", "-o", "subformat=twoGbMaxExtentSparse", p.toString(), "16M");
                    Files.copy(d.resolve("a-s001.vmdk"), d.resolve("a-s002.vmdk"));
                    String descriptor = Files.readString(p);
                    Files.writeString(p, descriptor.replace("RW 32768 SPARSE \"a-s001.vmdk\"\n",
                            "RW 32768 SPARSE \"a-s001.vmdk\"\nRW 32768 SPARSE \"a-s002.vmdk\"\n"));
                    return p;
                }),
                new Case("vmdk monolithicFlat", 11, false, d -> create(d, "a.vmdk", new VmdkFormat(), 16 * MB, Map.of("subformat", "monolithicFlat"))),
                new Case("vmdk over a parent", 12, d -> {
                    Path parent = create(d, "p.vmdk", new VmdkFormat(), 16 * MB, Map.of());
                    Tools.check("qemu-io", "-f", "vmdk", "-c", "write -P 0x5a 0 3M", parent.toString());
                    Path child = d.resolve("c.vmdk");
                    Create.create(child, new VmdkFormat(), -1, Map.of(), "p.vmdk", "vmdk");
                    return child;
                }),
                new Case("vdi dynamic", 13, d -> create(d, "a.vdi", new VdiFormat(), 16 * MB, Map.of())),
                new Case("vdi static", 14, false, d -> create(d, "a.vdi", new VdiFormat(), 16 * MB, Map.of("static", "on"))),
                new Case("vdi differencing", 23, d -> {
                    base(d, "p.vdi", "vdi", "16M", "static=off");
                    Path child = d.resolve("c.vdi");
                    Create.create(child, new VdiFormat(), -1, Map.of(), "p.vdi", null);
                    return child;
                }),
                new Case("vhd dynamic", 15, d -> create(d, "a.vhd", new VhdFormat(), 16 * MB, Map.of())),
                new Case("vhd fixed", 16, false, d -> create(d, "a.vhd", new VhdFormat(), 16 * MB, Map.of("subformat", "fixed"))),
                new Case("vhd differencing", 17, d -> {
                    base(d, "p.vhd", "vpc", "16M", "subformat=dynamic");
                    Path child = d.resolve("c.vhd");
                    Create.create(child, new VhdFormat(), -1, Map.of(), "p.vhd", "vpc");
                    return child;
                }),
                new Case("vhdx dynamic", 18, d -> create(d, "a.vhdx", new VhdxFormat(), 16 * MB, Map.of("block_size", "1M"))),
                new Case("vhdx differencing", 19, d -> {
                    base(d, "p.vhdx", "vhdx", "16M", "block_size=1M");
                    Path child = d.resolve("c.vhdx");
                    Create.create(child, new VhdxFormat(), -1, Map.of("block_size", "1M"), "p.vhdx", "vhdx");
                    return child;
                }),
                new Case("raw", 20, d -> {
                    base(d, "a.raw", "raw", "16M", "preallocation=off");
                    return d.resolve("a.raw");
                }),
                new Case("layout", 21, d -> {
                    create(d, "a.qcow2", new Qcow2Format(), 4 * MB, Map.of());
                    base(d, "b.raw", "raw", "10M", "preallocation=off");
                    create(d, "c.vdi", new VdiFormat(), 3 * MB, Map.of());
                    Path l = d.resolve("disk.json");
                    Files.writeString(l, """
                            { "vdiskload-layout": 1, "table": "gpt", "partitions": [
                              { "source": "a.qcow2" }, { "source": "b.raw" }, { "source": "c.vdi", "size": "4M" } ] }""");
                    return l;
                }),
                new Case("layout with a partition off its source's units", 22, d -> {
                    create(d, "a.qcow2", new Qcow2Format(), 4 * MB, Map.of("cluster_size", "2M"));
                    base(d, "b.raw", "raw", "10M", "preallocation=off");
                    Path l = d.resolve("disk.json");
                    Files.writeString(l, """
                            { "vdiskload-layout": 1, "table": "gpt", "alignment": "64k", "partitions": [
                              { "source": "a.qcow2" }, { "source": "b.raw" } ] }""");
                    return l;
                }));
    }

    @TestFactory
    Stream<DynamicTest> everyMapChangeIsReportedAndInsideTheWidenedRange() {
        return cases().stream().map(c -> DynamicTest.dynamicTest(c.name(), () -> {
            Path work = Files.createDirectory(dir.resolve(c.name().replaceAll("[^a-zA-Z0-9]+", "-")));
            Path image = c.maker().make(work);
            try (DiskImage d = Images.open(image, OpenOptions.DEFAULTS.withWritable(true))) {
                int changes = torture(d, new Random(c.seed()), OPS, false);
                assertEquals(c.changes(), changes > 0, changes + " changes of the map");
            }
        }));
    }

    /** The check itself: a format that forgets a report must fail it. */
    @Test
    void aForgottenReportFails() throws Exception {
        Path image = create(dir, "a.qcow2", new Qcow2Format(), 16 * MB, Map.of());
        try (DiskImage d = Images.open(image, OpenOptions.DEFAULTS.withWritable(true))) {
            AssertionError e = assertThrows(AssertionError.class, () -> torture(d, new Random(7), OPS, true));
            assertTrue(e.getMessage().contains("changed but was not reported"), e.getMessage());
        }
    }

    /**
     * Without {@link DiskImage#prepareForWrites}, the first write of a VMDK (new CID) or of a qcow2 with bitmaps
     * (dropped) turns every allocated range in place at once: the whole disk is reported.
     */
    @Test
    void aFirstWriteWithoutPreparingReportsTheWholeDisk() throws Exception {
        Path vmdk = create(dir, "a.vmdk", new VmdkFormat(), 16 * MB, Map.of());
        Path qcow2 = create(dir, "a.qcow2", new Qcow2Format(), 16 * MB, Map.of());
        Tools.check("qemu-img", "bitmap", "--add", qcow2.toString(), "b0");
        for (Path p : List.of(vmdk, qcow2)) {
            Tools.check("qemu-io", "-c", "write -P 0x11 0 2M", p.toString());
            try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS.withWritable(true))) {
                assertTrue(d.map(0, d.size()).stream().noneMatch(Extent::inPlace), p.toString());
                List<long[]> reported = new ArrayList<>();
                d.setMapChangeListener((pos, length) -> reported.add(new long[] {pos, length}));
                d.write(ByteBuffer.wrap(new byte[512]), 8 * MB);
                assertTrue(reported.stream().anyMatch(r -> r[0] == 0 && r[1] == d.size()), p.toString());
                assertTrue(d.map(0, 2 * MB).get(0).inPlace(), p.toString());
            }
        }
    }

    /** Its grains would straddle every unit of the disk: refused, before anything is written. */
    @Test
    void aVmdkSparseExtentOffItsGrainsIsRefusedForWriting() throws Exception {
        Path p = dir.resolve("b.vmdk");
        Tools.check("qemu-img", "create", "-q", "-f", "vmdk", "-o", "subformat=twoGbMaxExtentSparse", p.toString(), "1M");
        Files.write(dir.resolve("flat.bin"), new byte[100 * 512]);
        Files.writeString(p, Files.readString(p).replace("RW 2048 SPARSE", "RW 100 FLAT \"flat.bin\" 0\nRW 2048 SPARSE"));
        byte[] before = Files.readAllBytes(dir.resolve("b-s001.vmdk"));
        try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS.withWritable(true))) {
            d.write(ByteBuffer.wrap(new byte[] {1}), 0); // the flat extent takes it
            var e = assertThrows(org.vdiskload.image.error.ImageException.class, () -> d.write(ByteBuffer.wrap(new byte[] {1}), 100 * 512));
            assertTrue(e.getMessage().contains("extent 2 cannot be written") && e.getMessage().contains("51200"), e.getMessage());
            assertThrows(org.vdiskload.image.error.ImageException.class, () -> d.writeZeroes(0, 200 * 512, true));
        }
        assertTrue(Arrays.equals(before, Files.readAllBytes(dir.resolve("b-s001.vmdk"))));
    }

    /** Read-only, its source's own map shows; open for writing, the library serves it whole. */
    @Test
    void aLayoutPartitionOffItsSourcesUnitsMapsThroughTheLibraryWhenWritten() throws Exception {
        Path q = create(dir, "a.qcow2", new Qcow2Format(), 4 * MB, Map.of("cluster_size", "2M"));
        Tools.check("qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 1M", q.toString());
        Path l = dir.resolve("disk.json");
        Files.writeString(l, """
                { "vdiskload-layout": 1, "table": "gpt", "alignment": "64k", "partitions": [ { "source": "a.qcow2" } ] }""");
        long start = 64 << 10;
        try (DiskImage d = Images.open(l, OpenOptions.DEFAULTS)) {
            assertEquals(Extent.Kind.DATA, d.map(start, MB).get(0).kind());
        }
        try (DiskImage d = Images.open(l, OpenOptions.DEFAULTS.withWritable(true))) {
            assertEquals(List.of(Extent.Kind.NEEDS_LIBRARY), d.map(start, 4 * MB).stream().map(Extent::kind).distinct().toList());
            assertEquals(512, d.mappingUnit());
            d.write(ByteBuffer.wrap(new byte[] {7}), start + 3 * MB);
            ByteBuffer b = ByteBuffer.allocate(2);
            d.read(b, start + MB - 1);
            assertArrayEquals(new byte[] {0x11, 0}, b.array());
        }
    }

    @Test
    void unitsArePowersOfTwoAndTheirFormatsOwn() throws Exception {
        try (DiskImage d = Images.open(create(dir, "a.qcow2", new Qcow2Format(), 16 * MB, Map.of("cluster_size", "4096")),
                OpenOptions.DEFAULTS.withWritable(true))) {
            assertEquals(4096, d.mappingUnit());
        }
        try (DiskImage d = Images.open(create(dir, "a.vhdx", new VhdxFormat(), 16 * MB, Map.of("block_size", "8M")),
                OpenOptions.DEFAULTS.withWritable(true))) {
            assertEquals(8 * MB, d.mappingUnit());
        }
        try (DiskImage d = Images.open(create(dir, "a.vdi", new VdiFormat(), 16 * MB, Map.of()), OpenOptions.DEFAULTS.withWritable(true))) {
            assertEquals(MB, d.mappingUnit());
        }
        try (DiskImage d = Images.open(create(dir, "f.vhd", new VhdFormat(), 16 * MB, Map.of("subformat", "fixed")),
                OpenOptions.DEFAULTS.withWritable(true))) {
            assertEquals(512, d.mappingUnit(), "a fixed VHD's map never changes");
        }
    }

    /**
     * {@code ops} random operations on {@code d}; after each, the whole disk's map is compared with the one
     * before. With {@code dropReports}, every other report is thrown away (to show the check catches it).
     */
    private static int torture(DiskImage d, Random rnd, int ops, boolean dropReports) throws Exception {
        d.prepareForWrites();
        long unit = d.mappingUnit();
        assertTrue(unit >= 512 && Long.bitCount(unit) == 1, "mapping unit " + unit);
        List<long[]> reported = new ArrayList<>();
        Thread writer = Thread.currentThread();
        int[] seen = {0};
        d.setMapChangeListener((pos, length) -> {
            assertEquals(writer, Thread.currentThread(), "reported on another thread");
            assertTrue(length > 0 && pos >= 0 && pos + length <= d.size(), "reported " + pos + "+" + length);
            if (!dropReports || seen[0]++ % 2 == 0) reported.add(new long[] {pos, length});
        });
        long size = d.size();
        int changes = 0;
        List<Extent> before = d.map(0, size);
        for (int i = 0; i < ops; i++) {
            reported.clear();
            long[] range = operate(d, rnd, unit, i);
            List<Extent> after = d.map(0, size);
            String what = "operation " + i + " " + Arrays.toString(range) + " (unit " + unit + ")";
            long from = range[0] / unit * unit;
            long to = (range[0] + range[1] + unit - 1) / unit * unit;
            for (long[] r : reported) {
                if (r[0] < from || r[0] + r[1] > to) fail(what + ": reported " + r[0] + "+" + r[1] + " outside " + from + ".." + to);
            }
            for (long[] changed : differences(before, after)) {
                if (!covered(changed, reported)) {
                    fail(what + ": the map of " + changed[0] + "+" + changed[1] + " changed but was not reported (reported "
                            + reported.stream().map(Arrays::toString).toList() + ")\nbefore " + near(before, changed) + "\nafter  " + near(after, changed));
                }
            }
            changes += differences(before, after).size();
            before = after;
        }
        return changes;
    }


    /** One random operation; returns its {pos, length}. */
    private static long[] operate(DiskImage d, Random rnd, long unit, int index) throws Exception {
        long size = d.size();
        long span = Math.min(unit, 4 * MB);
        int len = (int) Math.min(size, switch (rnd.nextInt(5)) {
            case 0 -> 1 + rnd.nextInt(4096);
            case 1 -> 512L * (1 + rnd.nextInt(64));
            case 2 -> span;
            case 3 -> span * (1 + rnd.nextInt(3)) + rnd.nextInt((int) span);
            default -> 1 + rnd.nextInt((int) Math.min(2 * MB, 3 * span));
        });
        long max = size - len;
        long pos = switch (rnd.nextInt(3)) {
            case 0 -> (long) (rnd.nextDouble() * (max + 1));
            case 1 -> (long) (rnd.nextDouble() * (max + 1)) / span * span;
            default -> (long) (rnd.nextDouble() * (max + 1)) / 512 * 512;
        };
        pos = Math.max(0, Math.min(pos, max));
        int kind = rnd.nextInt(10);
        try {
            if (kind < 5) {
                byte[] data = new byte[len];
                if (rnd.nextInt(5) > 0) rnd.nextBytes(data); // else zeros, written as data
                d.write(ByteBuffer.wrap(data), pos);
            } else if (kind < 8) {
                d.writeZeroes(pos, len, rnd.nextBoolean());
            } else {
                d.discard(pos, len);
            }
        } catch (org.vdiskload.image.error.ImageException e) {
            // A layout's tables and gaps refuse data: nothing changes there.
            if (!e.getMessage().contains("holds fixed bytes")) throw e;
        }
        if (index % 37 == 36) d.flush();
        return new long[] {pos, len};
    }

    /** The ranges where two maps of the same disk say different things, merged. */
    static List<long[]> differences(List<Extent> a, List<Extent> b) {
        List<long[]> out = new ArrayList<>();
        int i = 0, j = 0;
        long pos = 0;
        while (i < a.size() && j < b.size()) {
            Extent x = a.get(i), y = b.get(j);
            long end = Math.min(x.end(), y.end());
            if (!same(x, y, pos)) {
                long[] last = out.isEmpty() ? null : out.get(out.size() - 1);
                if (last != null && last[0] + last[1] == pos) last[1] += end - pos;
                else out.add(new long[] {pos, end - pos});
            }
            pos = end;
            if (x.end() == end) i++;
            if (y.end() == end) j++;
        }
        return out;
    }

    /** Whether two extents say the same about the byte at {@code pos} (and so the rest they share). */
    private static boolean same(Extent x, Extent y, long pos) {
        if (x.kind() != y.kind() || x.depth() != y.depth() || x.allocated() != y.allocated() || x.inPlace() != y.inPlace()
                || x.file() != y.file()) return false;
        return x.file() == null || x.fileOffset() + (pos - x.start()) == y.fileOffset() + (pos - y.start());
    }

    private static boolean covered(long[] range, List<long[]> reported) {
        List<long[]> sorted = new ArrayList<>(reported);
        sorted.sort(Comparator.comparingLong(r -> r[0]));
        long pos = range[0];
        long end = range[0] + range[1];
        for (long[] r : sorted) {
            if (r[0] > pos) break;
            pos = Math.max(pos, r[0] + r[1]);
            if (pos >= end) return true;
        }
        return pos >= end;
    }

    private static String near(List<Extent> map, long[] range) {
        return map.stream().filter(e -> e.end() > range[0] && e.start() < range[0] + range[1]).toList().toString();
    }
}
