package org.vdiskload.format.vhd;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.ops.Convert;
import org.vdiskload.ops.Create;
import org.vdiskload.ops.Progress;
import org.vdiskload.ops.Resize;
import org.vdiskload.testing.Tools;

import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** create and convert -O vpc against qemu-img: the same sizes, the same bytes, content qemu reads back. */
class VhdCreateTest {
    @TempDir
    Path dir;

    private Path create(String name, long size, Map<String, String> options) throws Exception {
        Path p = dir.resolve(name);
        Create.create(p, new VhdFormat(), size, options, null, null);
        return p;
    }

    private static long qemuSize(Path image) throws Exception {
        String json = Tools.check("qemu-img", "info", "--output=json", "-f", "vpc", image.toString());
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("\"virtual-size\": (\\d+)").matcher(json);
        assertTrue(m.find(), json);
        return Long.parseLong(m.group(1));
    }

    /**
     * qemu-img create's virtual size, exactly: CHS rounding (the size grows to the next geometry),
     * sizes past the largest geometry kept, force_size keeping the size (rounded to a sector).
     * Files are compared byte for byte but for the time stamp, unique id and footer checksum.
     */
    @TestFactory
    Stream<DynamicTest> sameSizeAndBytesAsQemuImgCreate() {
        long[] sizes = {0, 1, 512, 1000, 1 << 20, 5 << 20, 100L << 20, 1L << 30, 31L << 30, 127L << 30,
                136365219841L, 136899993600L, 200L << 30, 2040L << 30};
        List<DynamicTest> tests = new ArrayList<>();
        for (long size : sizes) {
            for (String sub : new String[] {"dynamic", "fixed"}) {
                if (sub.equals("fixed") && size > (1L << 30)) continue; // sparse, but keep the test light
                if (sub.equals("fixed") && size == 0) continue; // refused: see fixedOfZeroBytesIsRefused
                for (String force : new String[] {"off", "on"}) {
                    tests.add(DynamicTest.dynamicTest(size + " " + sub + " force_size=" + force, () -> {
                        String name = size + "-" + sub + "-" + force;
                        Path ours = create(name + ".vhd", size, Map.of("subformat", sub, "force_size", force));
                        Path theirs = dir.resolve(name + "-qemu.vhd");
                        Tools.check("qemu-img", "create", "-q", "-f", "vpc", "-o", "subformat=" + sub + ",force_size=" + force,
                                theirs.toString(), Long.toString(size));
                        long want = qemuSize(theirs);
                        assertEquals(want, qemuSize(ours), "qemu's virtual size of our image");
                        try (DiskImage d = Images.open(ours, OpenOptions.DEFAULTS)) {
                            assertEquals(want, d.size(), "our virtual size");
                        }
                        assertArrayEquals(masked(theirs), masked(ours));
                        Files.delete(ours);
                        Files.delete(theirs);
                    }));
                }
            }
        }
        return tests.stream();
    }

    /** The file (its first 8 MiB and its tail footer) with the footers' time stamp, checksum and unique id zeroed. */
    private static byte[] masked(Path p) throws Exception {
        long size = Files.size(p);
        try (FileChannel ch = FileChannel.open(p)) {
            byte[] head = new byte[(int) Math.min(size - 512, 8 << 20)];
            byte[] tail = new byte[512];
            ch.read(ByteBuffer.wrap(head), 0);
            ch.read(ByteBuffer.wrap(tail), size - 512);
            if (head.length >= 512 && head[0] == 'c') maskFooter(head); // the copy of a dynamic disk
            maskFooter(tail);
            ByteBuffer out = ByteBuffer.allocate(8 + head.length + 512).putLong(size).put(head).put(tail);
            return out.array();
        }
    }

    private static void maskFooter(byte[] b) {
        Arrays.fill(b, 24, 28, (byte) 0);   // time stamp
        Arrays.fill(b, 64, 84, (byte) 0);   // checksum, unique id
    }

    /** qemu-img makes it, but then cannot open it ("Error reading dynamic VHD header"). */
    @Test
    void fixedOfZeroBytesIsRefused() throws Exception {
        Path q = dir.resolve("zero-qemu.vhd");
        Tools.check("qemu-img", "create", "-q", "-f", "vpc", "-o", "subformat=fixed", q.toString(), "0");
        assertEquals(1, Tools.run(List.of("qemu-img", "info", "-f", "vpc", q.toString()), null).exit());
        ImageException e = assertThrows(ImageException.class, () -> create("zero.vhd", 0, Map.of("subformat", "fixed")));
        assertTrue(e.getMessage().contains("0 bytes"), e.getMessage());
        assertFalse(Files.exists(dir.resolve("zero.vhd")));
    }

    @Test
    void badOptionsAreRefusedAndLeaveNoFile() {
        Path p = dir.resolve("bad.vhd");
        String[][] bad = {{"subformat", "bogus"}, {"cluster_size", "64k"}, {"block_size", "1M"}, {"force_size", "maybe"}};
        for (String[] kv : bad) {
            ImageException e = assertThrows(ImageException.class, () -> create("bad.vhd", 1 << 20, Map.of(kv[0], kv[1])));
            assertTrue(e.getMessage().contains(kv[0]), e.getMessage());
            assertFalse(e.getMessage().contains("\n"), e.getMessage());
            assertFalse(Files.exists(p), kv[0]);
        }
        ImageException big = assertThrows(ImageException.class, () -> create("bad.vhd", (2040L << 30) + 512, Map.of()));
        assertTrue(big.getMessage().contains("2040 GiB"), big.getMessage());
        assertFalse(Files.exists(p));
    }

    @Test
    void differencingOptionsAreChecked() throws Exception {
        Path parent = create("parent.vhd", 4 << 20, Map.of());
        Path raw = dir.resolve("raw.img");
        Files.write(raw, new byte[4 << 20]);
        Path child = dir.resolve("child.vhd");
        List<Map<String, String>> bad = List.of(Map.of("subformat", "fixed"), Map.of("force_size", "on"));
        for (Map<String, String> o : bad) {
            assertThrows(ImageException.class, () -> Create.create(child, new VhdFormat(), -1, o, "parent.vhd", "vpc"));
            assertFalse(Files.exists(child));
        }
        ImageException e = assertThrows(ImageException.class,
                () -> Create.create(child, new VhdFormat(), -1, Map.of(), "raw.img", "raw"));
        assertTrue(e.getMessage().contains("must be a VHD"), e.getMessage());
        e = assertThrows(ImageException.class, () -> Create.create(child, new VhdFormat(), 8 << 20, Map.of(), "parent.vhd", "vpc"));
        assertTrue(e.getMessage().contains("parent's size"), e.getMessage());
        assertFalse(Files.exists(child));
        assertTrue(Files.exists(parent));
    }

    /** qemu-img resize -f vpc says "Image format driver does not support resize": so do we. */
    @Test
    void resizeIsRefusedLikeQemu() throws Exception {
        Path p = create("r.vhd", 4 << 20, Map.of());
        Tools.Result q = Tools.run(List.of("qemu-img", "resize", "-f", "vpc", p.toString(), "8M"), null);
        assertEquals(1, q.exit(), q.stderr());
        assertTrue(q.stderr().contains("does not support resize"), q.stderr());
        ImageException e = assertThrows(ImageException.class, () -> Resize.resize(p, "vpc", 8 << 20, false));
        assertTrue(e.getMessage().contains("resizing vpc images is not supported"), e.getMessage());
        assertEquals(ImageException.Kind.UNSUPPORTED, e.kind());
    }

    /**
     * Every testdata image (vhd.sh's and every-format.sh's) converted into a dynamic and a fixed VHD:
     * qemu-img compare finds it identical to the source, and vhdiinfo reads it.
     */
    @TestFactory
    Stream<DynamicTest> convertEveryTestdataImage() throws Exception {
        List<Tools.GeneratedImage> sources = new ArrayList<>(Tools.generate("vhd.sh", Files.createDirectory(dir.resolve("vhd"))));
        sources.addAll(Tools.generate("every-format.sh", Files.createDirectory(dir.resolve("every"))));
        List<DynamicTest> tests = new ArrayList<>();
        for (Tools.GeneratedImage src : sources) {
            for (String sub : new String[] {"dynamic", "fixed"}) {
                tests.add(DynamicTest.dynamicTest(src.path().getParent().getFileName() + "/" + src + " -> " + sub,
                        () -> roundTrip(src, sub)));
            }
        }
        return tests.stream();
    }

    private void roundTrip(Tools.GeneratedImage src, String sub) throws Exception {
        Path out = dir.resolve(src.path().getFileName() + "." + sub + ".vhd");
        Map<String, String> options = new HashMap<>(Map.of("subformat", sub));
        try (DiskImage in = Images.open(src.path(), OpenOptions.DEFAULTS.withFormat(src.format()))) {
            Convert.convert(in, new Convert.Target(out, new VhdFormat(), options, false, false), Progress.NONE);
        }
        Tools.Result cmp = Tools.run(List.of("qemu-img", "compare", "-f", src.format(), "-F", "vpc",
                src.path().toString(), out.toString()), null);
        assertEquals(0, cmp.exit(), cmp.stdout() + cmp.stderr());
        String info = Tools.check("vhdiinfo", out.toString());
        assertTrue(info.contains(sub.equals("fixed") ? "Fixed" : "Dynamic"), info);
        try (DiskImage d = Images.open(out, OpenOptions.DEFAULTS)) {
            assertTrue(d.layers().get(0).check(org.vdiskload.check.RepairMode.NONE).clean());
        }
        Files.delete(out);
    }
}
