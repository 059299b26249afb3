package org.vdiskload.format.vmdk;

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
import org.vdiskload.testing.QemuOracle;
import org.vdiskload.testing.Tools;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** create as qemu-img create -f vmdk writes it; convert from every test image into every subformat. */
class VmdkCreateTest {
    @TempDir
    Path dir;

    private static final String[] SUBFORMATS = VmdkCreator.SUBFORMATS;

    /** The descriptor with the random CID blanked out. */
    private static String descriptorText(Path p) throws Exception {
        byte[] b = Files.readAllBytes(p);
        int at = b.length > 4 && b[0] == 'K' ? 512 : 0;
        int end = at;
        while (end < b.length && b[end] != 0) end++;
        return new String(b, at, end - at, StandardCharsets.ISO_8859_1).replaceFirst("(?m)^CID=[0-9a-f]+", "CID=x");
    }

    /** Each file qemu-img create writes, and ours: same names, sizes, descriptor (but the CID) and sparse metadata. */
    @TestFactory
    Stream<DynamicTest> createsWhatQemuCreates() {
        List<DynamicTest> tests = new ArrayList<>();
        String[][] cases = {
                {"monolithicSparse", ""}, {"monolithicSparse", "zeroed_grain=on,adapter_type=lsilogic"},
                {"monolithicFlat", "adapter_type=buslogic,hwversion=7"}, {"twoGbMaxExtentSparse", "toolsversion=1234"},
                {"twoGbMaxExtentFlat", "adapter_type=legacyESX"}, {"streamOptimized", "compat6=on"},
        };
        for (String[] c : cases) {
            tests.add(DynamicTest.dynamicTest(c[0] + " " + c[1], () -> {
                Path ours = Files.createDirectories(dir.resolve("ours-" + tests.size()));
                Path theirs = Files.createDirectories(dir.resolve("qemu-" + tests.size()));
                String opts = "subformat=" + c[0] + (c[1].isEmpty() ? "" : "," + c[1]);
                long size = c[0].startsWith("twoGb") ? (2L << 30) + (3 << 20) : 5 << 20;
                Tools.check("qemu-img", "create", "-q", "-f", "vmdk", "-o", opts, theirs.resolve("d.vmdk").toString(), Long.toString(size));
                Create.create(ours.resolve("d.vmdk"), new VmdkFormat(), size, org.vdiskload.image.CreateOptions.parse(opts, ours), null, null);
                List<String> names;
                try (Stream<Path> s = Files.list(theirs)) {
                    names = s.map(p -> p.getFileName().toString()).sorted().toList();
                }
                try (Stream<Path> s = Files.list(ours)) {
                    assertEquals(names, s.map(p -> p.getFileName().toString()).sorted().toList());
                }
                assertEquals(descriptorText(theirs.resolve("d.vmdk")), descriptorText(ours.resolve("d.vmdk")));
                for (String n : names) {
                    boolean textDescriptor = n.equals("d.vmdk") && !Files.readString(ours.resolve(n), StandardCharsets.ISO_8859_1).startsWith("KDMV");
                    // qemu writes its random CID with as many digits as it has; ours always has 8
                    if (!textDescriptor) assertEquals(Files.size(theirs.resolve(n)), Files.size(ours.resolve(n)), n + ": size");
                    if (Files.size(ours.resolve(n)) < (64 << 20) && Files.readString(ours.resolve(n), StandardCharsets.ISO_8859_1).startsWith("KDMV")) {
                        // sparse: header and everything past the descriptor area
                        byte[] a = Files.readAllBytes(theirs.resolve(n));
                        byte[] b = Files.readAllBytes(ours.resolve(n));
                        assertArrayEquals(java.util.Arrays.copyOf(a, 512), java.util.Arrays.copyOf(b, 512), n + ": header");
                        assertArrayEquals(java.util.Arrays.copyOfRange(a, 21 * 512, a.length), java.util.Arrays.copyOfRange(b, 21 * 512, b.length),
                                n + ": grain directories and tables");
                    }
                }
                Tools.check("qemu-img", "check", "-q", ours.resolve("d.vmdk").toString());
            }));
        }
        return tests.stream();
    }

    /** Every test image converted into every subformat: qemu-img check clean, qemu-img compare identical. */
    @TestFactory
    Stream<DynamicTest> convertsEveryTestImageIntoEverySubformat() throws Exception {
        Path images = Files.createDirectories(dir.resolve("images"));
        List<DynamicTest> tests = new ArrayList<>();
        for (Tools.GeneratedImage img : Tools.generate("vmdk.sh", images)) {
            for (String sub : SUBFORMATS) {
                tests.add(DynamicTest.dynamicTest(img.path().getFileName() + " -> " + sub, () -> {
                    Path out = Files.createDirectories(dir.resolve("out-" + tests.hashCode() + "-" + System.nanoTime())).resolve("o.vmdk");
                    try (DiskImage src = Images.open(img.path(), QemuOracle.options(img))) {
                        Convert.convert(src, new Convert.Target(out, new VmdkFormat(), Map.of("subformat", sub), false, false), f -> { });
                    }
                    Tools.check("qemu-img", "check", "-q", "-f", "vmdk", out.toString());
                    Tools.check("qemu-img", "compare", "-q", "-f", img.format(), "-F", "vmdk", img.path().toString(), out.toString());
                    if (sub.equals("streamOptimized")) {
                        assertTrue(Tools.check("vmdkinfo", out.toString()).contains("Stream optimized"));
                    }
                }));
            }
        }
        return tests.stream();
    }

    @Test
    void convertCompressedIntoStreamOptimized() throws Exception {
        Path src = dir.resolve("src.raw");
        Tools.check("qemu-img", "create", "-q", "-f", "raw", src.toString(), "3M");
        Tools.check("qemu-io", "-f", "raw", "-c", "write -P 0x5a 10k 200k", "-c", "write -P 0x11 3000k 72k", src.toString());
        Path out = dir.resolve("c.vmdk");
        try (DiskImage s = Images.open(src, OpenOptions.DEFAULTS.withFormat("raw"))) {
            Convert.convert(s, new Convert.Target(out, new VmdkFormat(), Map.of("subformat", "streamOptimized"), true, false), f -> { });
        }
        Tools.check("qemu-img", "check", "-q", out.toString());
        Tools.check("qemu-img", "compare", "-q", "-F", "vmdk", src.toString(), out.toString());
        String info = Tools.check("vmdkinfo", out.toString());
        assertTrue(info.contains("Stream optimized") && info.contains("(3145728 bytes)"), info);
    }

    /** Grains are compressed on several threads, but the stream holds them in disk order, as qemu writes it. */
    @Test
    void compressedConvertKeepsTheStreamInDiskOrder() throws Exception {
        Path src = dir.resolve("random.raw");
        byte[] data = new byte[4 << 20];
        new java.util.Random(7).nextBytes(data);
        java.util.Arrays.fill(data, 1 << 20, 2 << 20, (byte) 0); // a hole: grains 16-31 are not written
        Files.write(src, data);
        Path out = dir.resolve("ordered.vmdk");
        try (DiskImage s = Images.open(src, OpenOptions.DEFAULTS.withFormat("raw"))) {
            Convert.convert(s, new Convert.Target(out, new VmdkFormat(), Map.of("subformat", "streamOptimized"), true, false), f -> { });
        }
        Tools.check("qemu-img", "compare", "-q", "-F", "vmdk", src.toString(), out.toString());
        // The stream after the header: grain markers {LBA, size > 0, data} and metadata markers
        // {sectors, 0, type}, each padded to 512 bytes, up to the end of the file or of the stream (type 0).
        java.nio.ByteBuffer f = java.nio.ByteBuffer.wrap(Files.readAllBytes(out)).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        List<Long> grains = new ArrayList<>();
        for (long at = f.getLong(64) * 512; at < f.limit(); ) {
            long value = f.getLong((int) at);
            int size = f.getInt((int) at + 8);
            if (size > 0) {
                grains.add(value / 128); // 64 KiB grains: 128 sectors each
                at += (12 + size + 511) / 512 * 512;
            } else if (f.getInt((int) at + 12) == 0) {
                break;
            } else {
                at += 512 + value * 512;
            }
        }
        List<Long> expected = new ArrayList<>();
        for (long g = 0; g < 64; g++) if (g < 16 || g >= 32) expected.add(g);
        assertEquals(expected, grains);
    }

    @Test
    void backingFileMustBeVmdk() throws Exception {
        Path raw = dir.resolve("p.raw");
        Files.write(raw, new byte[1 << 20]);
        Path child = dir.resolve("c.vmdk");
        ImageException e = assertThrows(ImageException.class,
                () -> Create.create(child, new VmdkFormat(), -1, Map.of(), "p.raw", "raw"));
        assertTrue(e.getMessage().contains("must be a VMDK image"), e.getMessage());
        assertFalse(Files.exists(child));
    }

    /** Bad options: one line, nothing written. */
    @Test
    void refusesBadOptionsBeforeWritingAnything() throws Exception {
        Path parent = dir.resolve("p.vmdk");
        Create.create(parent, new VmdkFormat(), 1 << 20, Map.of(), null, null);
        Object[][] cases = {
                {Map.of("subformat", "monolithicSparsy"), null, "invalid value 'monolithicSparsy' for option subformat"},
                {Map.of("adapter_type", "scsi"), null, "for option adapter_type"},
                {Map.of("cluster_size", "64k"), null, "unknown option 'cluster_size'"},
                {Map.of("zeroed_grain", "maybe"), null, "for option zeroed_grain"},
                {Map.of("compat6", "on", "hwversion", "7"), null, "compat6 cannot be enabled with hwversion set"},
                {Map.of("hwversion", "7\"x"), null, "for option hwversion"},
                {Map.of("subformat", "monolithicFlat"), "p.vmdk", "flat VMDK images cannot have a backing file"},
                {Map.of("subformat", "twoGbMaxExtentFlat", "zeroed_grain", "on"), null, "cannot enable zeroed grains"},
        };
        for (Object[] c : cases) {
            @SuppressWarnings("unchecked") Map<String, String> opts = (Map<String, String>) c[0];
            Path target = dir.resolve("bad.vmdk");
            ImageException e = assertThrows(ImageException.class,
                    () -> Create.create(target, new VmdkFormat(), 4 << 20, opts, (String) c[1], c[1] == null ? null : "vmdk"), opts.toString());
            assertTrue(e.getMessage().contains((String) c[2]) && !e.getMessage().contains("\n"), e.getMessage());
            try (Stream<Path> s = Files.list(dir)) {
                assertEquals(List.of("p.vmdk"), s.map(p -> p.getFileName().toString()).toList(), opts.toString());
            }
        }
        ImageException e = assertThrows(ImageException.class, () -> Create.create(dir.resolve("z.vmdk"), new VmdkFormat(), 0, Map.of(), null, null));
        assertTrue(e.getMessage().contains("size above 0"), e.getMessage());
    }
}
