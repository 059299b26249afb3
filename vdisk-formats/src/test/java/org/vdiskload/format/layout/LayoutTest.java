package org.vdiskload.format.layout;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Extent;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.testing.Tools;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Layouts against the partitioning tools: sgdisk, sfdisk, fdisk and nbdkit's partitioning plugin. */
class LayoutTest {
    private static final long MIB = 1 << 20;

    @TempDir
    Path cache;
    @TempDir
    Path dir;

    /** Each test its own cache (the methods of a class run one at a time; no other class sets it). */
    @BeforeEach
    void ownCache() {
        System.setProperty("vdiskload.cache.dir", cache.toString());
    }

    /** A raw source of {@code size} bytes with recognisable data here and there (and holes). */
    private Path raw(String name, long size, int pattern) throws Exception {
        Path p = dir.resolve(name);
        Tools.check("qemu-img", "create", "-q", "-f", "raw", p.toString(), Long.toString(size));
        Tools.check("qemu-io", "-f", "raw", "-c", "write -P " + pattern + " 4k 60k", "-c", "write -P " + (pattern + 1) + " " + (size - 4096) + " 4k", p.toString());
        return p;
    }

    private Path qcow2(String name, long size, int pattern) throws Exception {
        Path p = dir.resolve(name);
        Tools.check("qemu-img", "create", "-q", "-f", "qcow2", p.toString(), Long.toString(size));
        Tools.check("qemu-io", "-f", "qcow2", "-c", "write -P " + pattern + " 1M 128k", "-c", "write -z 1280k 64k", p.toString());
        return p;
    }

    private Path layout(String json) throws IOException {
        return Files.writeString(dir.resolve("layout-" + System.nanoTime() + ".json"), json);
    }

    /** The whole disk, baked into a raw file. */
    private static Path bake(Path layout, Path out) throws IOException {
        try (DiskImage d = Images.open(layout, OpenOptions.DEFAULTS)) {
            assertEquals(LayoutFormat.NAME, d.formatName());
            byte[] all = new byte[(int) d.size()];
            d.read(ByteBuffer.wrap(all), 0);
            return Files.write(out, all);
        }
    }

    /** The source's guest view (qemu-img's, not ours), as bytes. */
    private byte[] guestBytes(Path source) throws Exception {
        Path out = dir.resolve(source.getFileName() + ".guest");
        Tools.check("qemu-img", "convert", "-O", "raw", source.toString(), out.toString());
        return Files.readAllBytes(out);
    }

    private static byte[] slice(byte[] disk, long start, long length) {
        return Arrays.copyOfRange(disk, (int) start, (int) (start + length));
    }

    private static JsonNode sfdisk(Path disk) throws Exception {
        return new ObjectMapper().readTree(Tools.check("sfdisk", "--json", disk.toString())).get("partitiontable");
    }

    private static byte[] padded(byte[] b, long size) {
        return Arrays.copyOf(b, (int) size);
    }

    @Test
    void gptIsValidAlignedAndEachPartitionIsItsSource() throws Exception {
        Path a = raw("a.raw", 3 * MIB + 512, 0x11);
        Path b = qcow2("b.qcow2", 5 * MIB, 0x22);
        Path c = dir.resolve("c.vmdk");
        Tools.check("qemu-img", "convert", "-O", "vmdk", raw("c.raw", 2 * MIB, 0x33).toString(), c.toString());
        Path l = layout("""
                {
                  "vdiskload-layout": 1,
                  "table": "gpt",
                  "partitions": [
                    { "source": "a.raw", "type": "esp", "name": "EFI", "legacy-bios-bootable": true },
                    { "source": "b.qcow2", "size": "8M", "type": "linux-root-x86-64", "name": "root" },
                    { "source": "c.vmdk", "type": "swap", "read-only": true },
                    { "size": "1M", "type": "0FC63DAF-8483-4772-8E79-3D69D8477DE4" }
                  ]
                }""");
        Path disk = bake(l, dir.resolve("disk.raw"));
        String verify = Tools.check("sgdisk", "-v", disk.toString());
        assertTrue(verify.contains("No problems found"), verify);

        JsonNode t = sfdisk(disk);
        assertEquals("gpt", t.get("label").asText());
        JsonNode parts = t.get("partitions");
        assertEquals(4, parts.size());
        long[][] expect = {{1 * MIB, 3 * MIB + 512}, {5 * MIB, 8 * MIB}, {13 * MIB, 2 * MIB}, {15 * MIB, MIB}};
        String[] types = {"C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709",
                "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F", "0FC63DAF-8483-4772-8E79-3D69D8477DE4"};
        for (int i = 0; i < 4; i++) {
            assertEquals(expect[i][0] / 512, parts.get(i).get("start").asLong(), "start of partition " + (i + 1));
            assertEquals(expect[i][1] / 512, parts.get(i).get("size").asLong(), "size of partition " + (i + 1));
            assertEquals(types[i], parts.get(i).get("type").asText());
        }
        assertEquals("EFI", parts.get(0).get("name").asText());
        assertTrue(parts.get(0).get("attrs").asText().contains("LegacyBIOSBootable"), parts.get(0).toString());
        assertTrue(parts.get(2).get("attrs").asText().contains("60"), parts.get(2).toString());

        byte[] all = Files.readAllBytes(disk);
        Path[] sources = {a, b, c};
        for (int i = 0; i < 3; i++) {
            assertArrayEquals(padded(guestBytes(sources[i]), expect[i][1]), slice(all, expect[i][0], expect[i][1]), "partition " + (i + 1));
        }
        assertArrayEquals(new byte[(int) MIB], slice(all, 15 * MIB, MIB));
        // Built twice from the same layout: the same disk (GUIDs derive from the layout's content)
        assertArrayEquals(all, Files.readAllBytes(bake(l, dir.resolve("again.raw"))));
    }

    @Test
    void mapPointsIntoEachSourceFile() throws Exception {
        Path a = raw("a.raw", 2 * MIB, 0x44);
        Path b = qcow2("b.qcow2", 4 * MIB, 0x55);
        Path l = layout("""
                { "vdiskload-layout": 1, "table": "gpt", "partitions": [ { "source": "a.raw" }, { "source": "b.qcow2" } ] }""");
        try (DiskImage d = Images.open(l, OpenOptions.DEFAULTS)) {
            List<Extent> map = d.map(0, d.size());
            // a.raw's data at 4k lands at 1M + 4k; b.qcow2's cluster at 1M lands at 3M + 1M
            assertTrue(map.stream().anyMatch(e -> e.kind() == Extent.Kind.DATA && e.file().path().equals(a)
                    && e.start() <= MIB + 4096 && MIB + 4096 < e.end() && e.fileOffset() + (MIB + 4096 - e.start()) == 4096), map.toString());
            assertTrue(map.stream().anyMatch(e -> e.kind() == Extent.Kind.DATA && e.file().path().equals(b) && e.start() == 3 * MIB + MIB), map.toString());
            assertEquals(Extent.Kind.NEEDS_LIBRARY, map.get(0).kind(), "the tables are built in memory");
            assertEquals(Extent.Kind.NEEDS_LIBRARY, map.get(map.size() - 1).kind(), "the backup GPT");
            long covered = map.stream().mapToLong(Extent::length).sum();
            assertEquals(d.size(), covered);
        }
    }

    @Test
    void mbrWithSixPartitionsHasLogicalOnes() throws Exception {
        raw("a.raw", 2 * MIB, 0x61);
        qcow2("b.qcow2", 3 * MIB, 0x62);
        Path l = layout("""
                { "vdiskload-layout": 1, "table": "mbr", "mbr_signature": "0x1234abcd",
                  "partitions": [
                    { "source": "a.raw", "bootable": true }, { "source": "b.qcow2" }, { "size": "1M", "type": "swap" },
                    { "source": "a.raw" }, { "source": "b.qcow2", "type": "0x8e" }, { "source": "a.raw", "type": "basic-data" } ] }""");
        Path disk = bake(l, dir.resolve("mbr.raw"));
        String fdisk = Tools.check("fdisk", "-l", disk.toString());
        assertTrue(fdisk.contains("Disk identifier: 0x1234abcd"), fdisk);
        for (int i = 1; i <= 7; i++) assertTrue(fdisk.contains("mbr.raw" + i + " "), fdisk);
        assertTrue(fdisk.contains("Extended") || fdisk.contains("Ext'd"), fdisk);
        JsonNode parts = sfdisk(disk).get("partitions");
        assertEquals(7, parts.size(), parts.toString());
        // sfdisk lists primaries 1-3, the extended 4, then the logical partitions 5-7
        long[] starts = {1, 3, 6, -1, 8, 11, 15};
        String[] types = {"83", "83", "82", "f", "83", "8e", "7"};
        byte[] all = Files.readAllBytes(disk);
        byte[] a = guestBytes(dir.resolve("a.raw"));
        byte[] b = guestBytes(dir.resolve("b.qcow2"));
        byte[][] payload = {a, b, new byte[(int) MIB], null, a, b, a};
        for (int i = 0; i < 7; i++) {
            assertEquals(types[i], parts.get(i).get("type").asText(), parts.get(i).toString());
            if (i == 3) continue;
            assertEquals(starts[i] * MIB / 512, parts.get(i).get("start").asLong(), parts.get(i).toString());
            assertEquals(payload[i].length / 512, parts.get(i).get("size").asLong());
            assertArrayEquals(payload[i], slice(all, starts[i] * MIB, payload[i].length), "partition " + (i + 1));
        }
        assertTrue(parts.get(0).path("bootable").asBoolean(), parts.get(0).toString());
    }

    @Test
    void payloadsMatchNbdkitPartitioning() throws Exception {
        Path a = raw("a.raw", 3 * MIB, 0x71);
        Path b = raw("b.raw", 5 * MIB, 0x72);
        Path sock = dir.resolve("nbd.sock");
        Path theirs = dir.resolve("nbdkit.raw");
        Process nbdkit = new ProcessBuilder("nbdkit", "-f", "-U", sock.toString(), "partitioning", a.toString(), b.toString())
                .redirectErrorStream(true).redirectOutput(dir.resolve("nbdkit.log").toFile()).start();
        try {
            assertTimeoutPreemptively(Duration.ofSeconds(30), () -> {
                while (!Files.exists(sock)) Thread.sleep(50);
            });
            Tools.check("qemu-img", "convert", "-f", "raw", "-O", "raw", "nbd+unix:///?socket=" + sock, theirs.toString());
        } finally {
            nbdkit.destroy();
            nbdkit.waitFor();
        }
        Path ours = bake(layout("""
                { "vdiskload-layout": 1, "table": "gpt", "partitions": [ { "source": "a.raw" }, { "source": "b.raw" } ] }"""),
                dir.resolve("ours.raw"));
        JsonNode pt = sfdisk(theirs).get("partitions");
        JsonNode po = sfdisk(ours).get("partitions");
        byte[] t = Files.readAllBytes(theirs);
        byte[] o = Files.readAllBytes(ours);
        long[] sizes = {3 * MIB, 5 * MIB};
        for (int i = 0; i < 2; i++) {
            assertArrayEquals(slice(t, pt.get(i).get("start").asLong() * 512, sizes[i]), slice(o, po.get(i).get("start").asLong() * 512, sizes[i]),
                    "partition " + (i + 1) + " payload");
        }
    }

    @Test
    void compressedSourcesReadAsTheirOriginalsAndTheCacheIsReused() throws Exception {
        Path original = raw("orig.raw", 3 * MIB, 0x7a);
        byte[] want = Files.readAllBytes(original);
        String[][] tools = {{"gzip", "-c"}, {"xz", "-c"}, {"bzip2", "-c"}, {"zstd", "-q", "-c"}, {"lz4", "-q", "-c"}};
        List<String> entries = new ArrayList<>();
        for (String[] tool : tools) {
            Path out = dir.resolve("part." + tool[0]); // the name says nothing the code looks at
            List<String> cmd = new ArrayList<>(List.of(tool));
            cmd.add(original.toString());
            Process p = new ProcessBuilder(cmd).redirectOutput(out.toFile()).start();
            assertTrue(p.waitFor(60, java.util.concurrent.TimeUnit.SECONDS) && p.exitValue() == 0, String.join(" ", cmd));
            entries.add("{ \"source\": \"" + out.getFileName() + "\" }");
        }
        Path l = layout("{ \"vdiskload-layout\": 1, \"table\": \"gpt\", \"partitions\": [" + String.join(",", entries) + "] }");
        byte[] all = Files.readAllBytes(bake(l, dir.resolve("c.raw")));
        for (int i = 0; i < tools.length; i++) assertArrayEquals(want, slice(all, (1 + 3L * i) * MIB, want.length), tools[i][0]);

        List<Path> cached;
        try (var s = Files.list(cache)) {
            cached = s.filter(p -> p.getFileName().toString().matches("[0-9a-f]{64}\\.raw")).sorted().toList();
        }
        assertEquals(tools.length, cached.size(), cached.toString());
        long allocated = Long.parseLong(Tools.check("stat", "-c", "%b", cached.get(0).toString()).trim()) * 512;
        assertTrue(allocated < want.length, "the cache keeps holes: " + allocated + " bytes allocated");
        List<Object> before = new ArrayList<>();
        for (Path c : cached) before.add(Files.readAttributes(c, BasicFileAttributes.class).lastModifiedTime());
        assertArrayEquals(all, Files.readAllBytes(bake(l, dir.resolve("c2.raw"))));
        for (int i = 0; i < cached.size(); i++) {
            assertEquals(before.get(i), Files.readAttributes(cached.get(i), BasicFileAttributes.class).lastModifiedTime(), "reused " + cached.get(i));
        }
    }

    @Test
    void writesGoToTheSourcesAndFixedBytesRefuseChange() throws Exception {
        Path a = raw("a.raw", 2 * MIB, 0x01);
        Path b = qcow2("b.qcow2", 2 * MIB, 0x02);
        Files.write(dir.resolve("z.gz"), gzip(new byte[(int) MIB]));
        raw("r.raw", MIB, 0x05);
        Path l = layout("""
                { "vdiskload-layout": 1, "table": "gpt", "partitions": [
                  { "source": "a.raw" }, { "source": "b.qcow2", "size": "3M" }, { "source": "z.gz" }, { "source": "r.raw", "read-only": true } ] }""");
        byte[] hello = "written through the layout".getBytes();
        try (DiskImage d = Images.open(l, OpenOptions.DEFAULTS.withWritable(true))) {
            d.write(ByteBuffer.wrap(hello), MIB + 8192);
            d.write(ByteBuffer.wrap(hello), 3 * MIB + 100);
            d.writeZeroes(MIB, 4096, true);
            byte[] table = new byte[512];
            d.read(ByteBuffer.wrap(table), 512);
            d.write(ByteBuffer.wrap(table), 512); // the same bytes: accepted
            table[100] ^= 1;
            ImageException t = assertThrows(ImageException.class, () -> d.write(ByteBuffer.wrap(table), 512));
            assertTrue(t.getMessage().contains("partition table"), t.getMessage());
            ImageException tail = assertThrows(ImageException.class, () -> d.write(ByteBuffer.wrap(hello), 5 * MIB + 100));
            assertTrue(tail.getMessage().contains("past the end of its source"), tail.getMessage());
            ImageException gz = assertThrows(ImageException.class, () -> d.write(ByteBuffer.wrap(hello), 6 * MIB));
            assertTrue(gz.getMessage().contains("compressed"), gz.getMessage());
            ImageException ro = assertThrows(ImageException.class, () -> d.write(ByteBuffer.wrap(hello), 7 * MIB));
            assertTrue(ro.getMessage().contains("read-only in the layout"), ro.getMessage());
            for (ImageException refused : List.of(t, tail, gz, ro)) {
                assertEquals(ImageException.Kind.READ_ONLY, refused.kind(), "served, the refusal is EROFS: " + refused.getMessage());
            }
        }
        byte[] ra = Files.readAllBytes(a);
        assertArrayEquals(hello, slice(ra, 8192, hello.length));
        assertArrayEquals(new byte[4096], slice(ra, 0, 4096));
        assertArrayEquals(hello, slice(guestBytes(b), 100, hello.length));
        Tools.check("qemu-img", "check", b.toString()); // fails the test on any error in b.qcow2
    }

    @Test
    void aSourceUsedTwiceIsNotOpenedForWriting() throws Exception {
        raw("a.raw", MIB, 0x03);
        qcow2("base.qcow2", 2 * MIB, 0x04);
        Tools.check("qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", dir.resolve("top.qcow2").toString());
        Path twice = layout("{ \"vdiskload-layout\": 1, \"table\": \"gpt\",\n\"partitions\": [ { \"source\": \"a.raw\" },\n{ \"source\": \"a.raw\" } ] }");
        ImageException e = assertThrows(ImageException.class, () -> Images.open(twice, OpenOptions.DEFAULTS.withWritable(true)).close());
        assertTrue(e.getMessage().contains("$.partitions[1].source (line 3): shares a file with partition 1's source"), e.getMessage());
        Images.open(twice, OpenOptions.DEFAULTS).close(); // read-only: fine
        // A base image beneath another source's overlay cannot be a written source either
        Path beneath = layout("{ \"vdiskload-layout\": 1, \"table\": \"gpt\", \"partitions\": [ { \"source\": \"top.qcow2\" }, { \"source\": \"base.qcow2\" } ] }");
        assertThrows(ImageException.class, () -> Images.open(beneath, OpenOptions.DEFAULTS.withWritable(true)).close());
        // Two overlays on one base share only a file neither writes
        Tools.check("qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", dir.resolve("top2.qcow2").toString());
        Path shared = layout("{ \"vdiskload-layout\": 1, \"table\": \"gpt\", \"partitions\": [ { \"source\": \"top.qcow2\" }, { \"source\": \"top2.qcow2\" } ] }");
        Images.open(shared, OpenOptions.DEFAULTS.withWritable(true)).close();
    }

    private static byte[] gzip(byte[] data) throws IOException {
        var bytes = new java.io.ByteArrayOutputStream();
        try (var z = new java.util.zip.GZIPOutputStream(bytes)) {
            z.write(data);
        }
        return bytes.toByteArray();
    }

    private void refused(String json, String expected) throws Exception {
        Path l = layout(json);
        ImageException e = assertThrows(ImageException.class, () -> Images.open(l, OpenOptions.DEFAULTS).close());
        assertTrue(e.getMessage().startsWith(l + ": "), e.getMessage());
        assertTrue(e.getMessage().contains(expected), e.getMessage());
        assertEquals(1, e.getMessage().lines().count(), e.getMessage());
    }

    @Test
    void badLayoutsAreRefusedNamingTheJsonPath() throws Exception {
        raw("a.raw", 2 * MIB, 0x09);
        String head = "{ \"vdiskload-layout\": 1, \"table\": \"gpt\",\n\"partitions\": [\n";
        refused(head + "{ \"source\": \"missing.raw\" } ] }", "$.partitions[0].source (line 3): " + dir.resolve("missing.raw") + ": no such file");
        refused(head + "{ \"source\": \"a.raw\", \"start\": \"1M\" },\n{ \"source\": \"a.raw\", \"start\": \"2M\" } ] }",
                "$.partitions[1].start (line 4): partition 2 [2097152, 4194304) overlaps partition 1");
        refused(head + "{ \"source\": \"a.raw\",\n\"size\": \"1M\" } ] }", "$.partitions[0].size (line 4): smaller than its source");
        refused(head + "{ \"source\": \"a.raw\", \"type\": \"no-such-type\" } ] }", "$.partitions[0].type (line 3): unknown partition type 'no-such-type'");
        refused(head + "{ \"source\": \"a.raw\" }\n{ \"source\": \"a.raw\" } ] }", "$.partitions[1] (line 4, column 1): malformed JSON");
        refused(head + "{ \"source\": \"a.raw\", \"colour\": \"red\" } ] }", "$.partitions[0] (line 3): property 'colour' is not defined");
        refused(head + "{ \"source\": \"a.raw\", \"size\": -5 } ] }", "$.partitions[0].size (line 3):");
        refused(head + "{ \"size\": \"1M\" },\n".repeat(129) + "{ \"size\": \"1M\" } ] }", "$.partitions[128] (line 131): a GPT holds at most 128 partitions");
        refused("{ \"vdiskload-layout\": 1, \"table\": \"mbr\", \"partitions\": [ { \"size\": \"1M\", \"type\": \"bios-boot\" } ] }",
                "$.partitions[0].type (line 1): unknown partition type 'bios-boot' for an MBR");
        Files.writeString(dir.resolve("inner.json"), "{ \"vdiskload-layout\": 1, \"table\": \"gpt\", \"partitions\": [ { \"source\": \"a.raw\" } ] }");
        refused(head + "{ \"source\": \"inner.json\" } ] }", "layouts do not nest");
    }

    @Test
    void detectedByContentOnly() throws Exception {
        raw("a.raw", MIB, 0x19);
        Path disguised = Files.writeString(dir.resolve("disk.qcow2"),
                "\n  {\"vdiskload-layout\": 1, \"table\": \"mbr\", \"partitions\": [ { \"source\": \"a.raw\" } ] }\n");
        try (DiskImage d = Images.open(disguised, OpenOptions.DEFAULTS)) {
            assertEquals(LayoutFormat.NAME, d.formatName());
        }
        // The same text at the start of a disk larger than any layout: raw, so a guest cannot make its disk a layout
        Path big = dir.resolve("big.json");
        Files.copy(disguised, big);
        try (var ch = java.nio.channels.FileChannel.open(big, java.nio.file.StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(new byte[1]), 2 * MIB);
        }
        try (DiskImage d = Images.open(big, OpenOptions.DEFAULTS)) {
            assertEquals("raw", d.formatName());
        }
        Path other = Files.writeString(dir.resolve("other.json"), "{ \"name\": \"vdiskload-layout\" }");
        try (DiskImage d = Images.open(other, OpenOptions.DEFAULTS)) {
            assertEquals("raw", d.formatName());
        }
    }

    @Test
    void fourKiBSectors() throws Exception {
        raw("a.raw", 3 * MIB, 0x2a);
        qcow2("b.qcow2", 5 * MIB, 0x2b);
        Path disk = bake(layout("""
                { "vdiskload-layout": 1, "table": "gpt", "sector_size": 4096, "partitions": [ { "source": "a.raw" }, { "source": "b.qcow2" } ] }"""),
                dir.resolve("4k.raw"));
        // libfdisk checks both GPT headers' CRCs; a bad one shows as a warning or a missing table
        Tools.Result r = Tools.run(List.of("fdisk", "-b", "4096", "-l", disk.toString()), null);
        assertEquals(0, r.exit(), r.stderr());
        assertEquals("", r.stderr().trim());
        assertTrue(r.stdout().contains("Disklabel type: gpt"), r.stdout());
        assertTrue(r.stdout().matches("(?s).*4k\\.raw1 +256 +1023 +768 .*4k\\.raw2 +1024 +2303 +1280 .*"), r.stdout());
        byte[] all = Files.readAllBytes(disk);
        assertArrayEquals(guestBytes(dir.resolve("b.qcow2")), slice(all, 4 * MIB, 5 * MIB));
    }

    @Test
    void theSchemaExamplesAreValidLayouts() throws Exception {
        List<Path> examples;
        try (var s = Files.list(Tools.repo().resolve("disk-json-schema/examples"))) {
            examples = s.filter(p -> p.toString().endsWith(".json")).sorted().toList();
        }
        assertTrue(examples.size() >= 4, examples.toString());
        for (Path e : examples) {
            LayoutParser.Parsed parsed = LayoutParser.parse(e, Files.readAllBytes(e));
            assertTrue(parsed.spec().partitions().size() >= 2, e.toString());
        }
    }

    @Test
    void aDirectoryBecomesAnExt4PartitionBuiltOnce() throws Exception {
        Path tree = Files.createDirectories(dir.resolve("rootfs/etc"));
        Files.writeString(tree.resolve("hostname"), "layout-host\n");
        Files.createSymbolicLink(dir.resolve("rootfs/hostname"), Path.of("etc/hostname"));
        Path l = layout("""
                { "vdiskload-layout": 1, "table": "gpt", "partitions": [ { "source": "rootfs", "size": "8M", "type": "linux-root-x86-64" } ] }""");
        byte[] disk = Files.readAllBytes(bake(l, dir.resolve("fs.raw")));
        Path part = Files.write(dir.resolve("part.ext4"), slice(disk, MIB, 8 * MIB));
        Tools.check("e2fsck", "-fn", part.toString());
        assertEquals("layout-host\n", Tools.check("debugfs", "-R", "cat /etc/hostname", part.toString()));
        assertTrue(Tools.check("debugfs", "-R", "stat /hostname", part.toString()).contains("Fast link dest: \"etc/hostname\""));

        List<Path> built;
        try (var s = Files.list(cache)) {
            built = s.filter(p -> p.toString().endsWith(".ext4")).toList();
        }
        assertEquals(1, built.size(), built.toString());
        Object mtime = Files.getLastModifiedTime(built.get(0));
        assertArrayEquals(disk, Files.readAllBytes(bake(l, dir.resolve("fs2.raw"))), "rebuilt identically");
        assertEquals(mtime, Files.getLastModifiedTime(built.get(0)), "the cached file system is reused");

        Path noSize = layout("{ \"vdiskload-layout\": 1, \"table\": \"gpt\", \"partitions\": [ { \"source\": \"rootfs\" } ] }");
        ImageException e = assertThrows(ImageException.class, () -> Images.open(noSize, OpenOptions.DEFAULTS).close());
        assertTrue(e.getMessage().contains("$.partitions[0] (line 1): a directory source needs a size"), e.getMessage());
        try (DiskImage d = Images.open(l, OpenOptions.DEFAULTS.withWritable(true))) {
            ImageException w = assertThrows(ImageException.class, () -> d.write(ByteBuffer.wrap(new byte[] {1}), MIB));
            assertTrue(w.getMessage().contains("is built from a directory"), w.getMessage());
        }
    }

    /** Writes a tar with python's tarfile, which records owners and device nodes without privileges. */
    private Path tar(String name, String entries) throws Exception {
        Path script = Files.writeString(dir.resolve(name + ".py"), """
                import io, sys, tarfile
                t = tarfile.open(sys.argv[1], "w:gz" if sys.argv[1].endswith(".gz") else "w")
                def add(name, kind, mode, uid=0, gid=0, data=b"", link="", major=0, minor=0):
                    i = tarfile.TarInfo(name); i.type = kind; i.mode = mode; i.uid = uid; i.gid = gid
                    i.size = len(data); i.linkname = link; i.devmajor = major; i.devminor = minor; i.mtime = 1700000000
                    t.addfile(i, io.BytesIO(data) if data else None)
                """ + entries + "\nt.close()\n");
        Path out = dir.resolve(name);
        Tools.check("python3", script.toString(), out.toString());
        return out;
    }

    private static String debugfs(Path fs, String cmd) throws Exception {
        return Tools.check("debugfs", "-R", cmd, fs.toString());
    }

    @Test
    void aTarRootFileSystemBecomesAnExt4PartitionWithItsOwnersAndDevices() throws Exception {
        tar("rootfs.tar.gz", """
                add("./", tarfile.DIRTYPE, 0o755)
                add("./etc", tarfile.DIRTYPE, 0o755)
                add("./etc/hostname", tarfile.REGTYPE, 0o644, data=b"from-a-tar\\n")
                add("./home/user", tarfile.DIRTYPE, 0o700, uid=1000, gid=1000)
                add("./home/user/notes", tarfile.REGTYPE, 0o600, uid=1000, gid=1000, data=b"mine")
                add("./bin/su", tarfile.REGTYPE, 0o4755, data=b"#!/bin/sh\\n")
                add("./bin/su2", tarfile.LNKTYPE, 0, link="bin/su")
                add("./hostname", tarfile.SYMTYPE, 0o777, link="etc/hostname")
                add("./dev/null", tarfile.CHRTYPE, 0o666, major=1, minor=3)
                add("./run/fifo", tarfile.FIFOTYPE, 0o600)
                """);
        Path l = layout("""
                { "vdiskload-layout": 1, "table": "gpt", "partitions": [ { "source": "rootfs.tar.gz", "size": "8M" } ] }""");
        byte[] disk = Files.readAllBytes(bake(l, dir.resolve("tar.raw")));
        Path fs = Files.write(dir.resolve("tar.ext4"), slice(disk, MIB, 8 * MIB));
        Tools.check("e2fsck", "-fn", fs.toString());
        assertEquals("from-a-tar\n", debugfs(fs, "cat /etc/hostname"));
        assertTrue(debugfs(fs, "stat /hostname").contains("Fast link dest: \"etc/hostname\""), debugfs(fs, "stat /hostname"));
        String notes = debugfs(fs, "stat /home/user/notes");
        assertTrue(notes.matches("(?s).*Mode: +0?600.*User: +1000 +Group: +1000.*"), notes);
        String su = debugfs(fs, "stat /bin/su");
        assertTrue(su.matches("(?s).*Mode: +0?4755.*User: +0 +Group: +0.*Links: 2.*"), su);
        assertTrue(debugfs(fs, "stat /dev/null").matches("(?s).*Type: character special.*Mode: +0?666.*"), debugfs(fs, "stat /dev/null"));
        assertTrue(debugfs(fs, "stat /run/fifo").contains("Type: FIFO"), debugfs(fs, "stat /run/fifo"));
        assertTrue(debugfs(fs, "stat /home/user").matches("(?s).*Mode: +0?700.*User: +1000.*"), debugfs(fs, "stat /home/user"));

        tar("climb.tar", "add(\"../escape\", tarfile.REGTYPE, 0o644, data=b\"x\")\n");
        tar("through.tar", "add(\"out\", tarfile.SYMTYPE, 0o777, link=\"/tmp\")\nadd(\"out/x\", tarfile.REGTYPE, 0o644, data=b\"x\")\n");
        refused("{ \"vdiskload-layout\": 1, \"table\": \"gpt\", \"partitions\": [ { \"source\": \"climb.tar\", \"size\": \"4M\" } ] }",
                "climbs out of the file system");
        refused("{ \"vdiskload-layout\": 1, \"table\": \"gpt\", \"partitions\": [ { \"source\": \"through.tar\", \"size\": \"4M\" } ] }",
                "goes through the symbolic link out");
        refused("{ \"vdiskload-layout\": 1, \"table\": \"gpt\", \"partitions\": [ { \"source\": \"rootfs.tar.gz\" } ] }",
                "is a tar archive: its partition needs a size");
    }

    /** The FAT type a boot sector names: "FAT32" at byte 82, else "FAT12"/"FAT16" at byte 54 (mkfs.fat writes both labels). */
    private static String fatType(byte[] fs) {
        String fat32 = new String(fs, 82, 5, java.nio.charset.StandardCharsets.US_ASCII);
        return fat32.equals("FAT32") ? fat32 : new String(fs, 54, 5, java.nio.charset.StandardCharsets.US_ASCII);
    }

    private List<Path> cached(String suffix) throws IOException {
        try (var s = Files.list(cache)) {
            return s.filter(p -> p.getFileName().toString().endsWith(suffix)).toList();
        }
    }

    @Test
    void aDirectoryBecomesAVfatPartitionBuiltOnceAndApartFromItsExt4() throws Exception {
        Path tree = Files.createDirectories(dir.resolve("esp/EFI/BOOT"));
        Files.writeString(tree.resolve("BOOTX64.EFI"), "not really a boot loader\n");
        Path loader = Files.writeString(Files.createDirectories(dir.resolve("esp/loader/entries")).resolve("Débian 12 entry.conf"), "title Debian\n");
        Files.setLastModifiedTime(loader, java.nio.file.attribute.FileTime.fromMillis(86_400_000L)); // 1970: before FAT's first date
        Path l = layout("""
                { "vdiskload-layout": 1, "table": "gpt",
                  "partitions": [ { "source": "esp", "filesystem": "vfat", "type": "esp", "size": "40M" } ] }""");
        byte[] disk = Files.readAllBytes(bake(l, dir.resolve("esp.raw")));
        Path part = Files.write(dir.resolve("part.vfat"), slice(disk, MIB, 40 * MIB));
        Tools.check("fsck.fat", "-n", part.toString()); // fails the test on any error
        assertEquals("FAT32", fatType(Files.readAllBytes(part)), "40 MiB of 512-byte sectors is enough for FAT32");
        assertEquals("not really a boot loader\n", Tools.check("mtype", "-i", part.toString(), "::/EFI/BOOT/BOOTX64.EFI"));
        assertEquals("title Debian\n", Tools.check("mtype", "-i", part.toString(), "::/loader/entries/Débian 12 entry.conf"));
        String listing = Tools.check("mdir", "-i", part.toString(), "::/loader/entries");
        assertTrue(listing.contains("1980-01-01") && listing.contains("Débian 12 entry.conf"), listing);
        assertEquals("1970-01-02T00:00:00Z", Files.getLastModifiedTime(loader).toInstant().toString(), "the source tree is left alone");

        List<Path> built = cached(".vfat");
        assertEquals(1, built.size(), built.toString());
        Object mtime = Files.getLastModifiedTime(built.get(0));
        assertArrayEquals(disk, Files.readAllBytes(bake(l, dir.resolve("esp2.raw"))));
        assertEquals(mtime, Files.getLastModifiedTime(built.get(0)), "the cached file system is reused");
        Files.delete(built.get(0));
        Thread.sleep(1100); // a build stamping the clock would now differ
        assertArrayEquals(disk, Files.readAllBytes(bake(l, dir.resolve("esp3.raw"))), "built again, the same bytes");
        mtime = Files.getLastModifiedTime(built.get(0));

        // The same tree as ext4, and as a smaller (FAT16) vfat: each its own cache entry
        Path asExt4 = layout("""
                { "vdiskload-layout": 1, "table": "gpt", "partitions": [ { "source": "esp", "filesystem": "ext4", "size": "40M" } ] }""");
        byte[] ext4 = Files.readAllBytes(bake(asExt4, dir.resolve("ext4.raw")));
        Tools.check("e2fsck", "-fn", Files.write(dir.resolve("part.ext4"), slice(ext4, MIB, 40 * MIB)).toString());
        Path small = layout("""
                { "vdiskload-layout": 1, "table": "gpt", "partitions": [ { "source": "esp", "filesystem": "vfat", "size": "16M" } ] }""");
        byte[] fat16 = slice(Files.readAllBytes(bake(small, dir.resolve("small.raw"))), MIB, 16 * MIB);
        assertEquals("FAT16", fatType(fat16));
        assertEquals(1, cached(".ext4").size());
        assertEquals(2, cached(".vfat").size());
        assertEquals(mtime, Files.getLastModifiedTime(built.get(0)), "the 40M vfat entry is untouched");
    }

    @Test
    void whatFatCannotHoldIsRefusedInOneLine() throws Exception {
        Path tree = Files.createDirectories(dir.resolve("tree"));
        Files.write(tree.resolve("big.bin"), new byte[3 * (int) MIB]);
        String head = "{ \"vdiskload-layout\": 1, \"table\": \"gpt\",\n\"partitions\": [\n";
        refused(head + "{ \"source\": \"tree\", \"filesystem\": \"vfat\", \"size\": \"1M\" } ] }",
                "$.partitions[0].source (line 3): " + tree + ": mcopy failed (is the partition size large enough?)");
        Files.createSymbolicLink(tree.resolve("link"), Path.of("big.bin"));
        refused(head + "{ \"source\": \"tree\", \"filesystem\": \"vfat\", \"size\": \"8M\" } ] }",
                "$.partitions[0].source (line 3): " + tree + ": vfat cannot hold the symbolic link link");
        Files.delete(tree.resolve("link"));
        Files.writeString(tree.resolve("a:b"), "x");
        refused(head + "{ \"source\": \"tree\", \"filesystem\": \"vfat\", \"size\": \"8M\" } ] }", "vfat cannot hold the name a:b");
        Files.delete(tree.resolve("a:b"));
        Files.writeString(tree.resolve("README"), "x");
        Files.writeString(tree.resolve("readme"), "y");
        refused(head + "{ \"source\": \"tree\", \"filesystem\": \"vfat\", \"size\": \"8M\" } ] }",
                "vfat cannot hold both README and readme: FAT names ignore case");
        assertEquals(List.of(), cached(".vfat"), "nothing half-built is cached");

        raw("a.raw", MIB, 0x44);
        refused(head + "{ \"source\": \"a.raw\", \"filesystem\": \"vfat\" } ] }",
                "$.partitions[0].filesystem (line 3): only a directory or tar source is built into a file system; a.raw is an image");
        refused(head + "{ \"size\": \"1M\", \"filesystem\": \"vfat\" } ] }", "$.partitions[0].filesystem (line 3): only a directory or tar source");
        refused(head + "{ \"source\": \"tree\", \"filesystem\": \"ntfs\", \"size\": \"8M\" } ] }", "$.partitions[0].filesystem (line 3):");
    }

    @Test
    void aTarGzBecomesAVfatPartition() throws Exception {
        tar("esp.tar.gz", """
                add("./", tarfile.DIRTYPE, 0o755)
                add("./EFI/BOOT", tarfile.DIRTYPE, 0o755)
                add("./EFI/BOOT/BOOTX64.EFI", tarfile.REGTYPE, 0o644, data=b"from a tar\\n")
                add("./EFI/BOOT/grubx64.efi", tarfile.LNKTYPE, 0, link="EFI/BOOT/BOOTX64.EFI")
                add("./owned", tarfile.REGTYPE, 0o600, uid=1000, gid=1000, data=b"mine")
                """);
        Path l = layout("""
                { "vdiskload-layout": 1, "table": "mbr", "partitions": [ { "source": "esp.tar.gz", "filesystem": "vfat", "type": "esp", "size": "8M" } ] }""");
        byte[] disk = Files.readAllBytes(bake(l, dir.resolve("tar.raw")));
        Path fs = Files.write(dir.resolve("tar.vfat"), slice(disk, MIB, 8 * MIB));
        Tools.check("fsck.fat", "-n", fs.toString());
        assertEquals("FAT12", fatType(Files.readAllBytes(fs)));
        assertEquals("from a tar\n", Tools.check("mtype", "-i", fs.toString(), "::/EFI/BOOT/BOOTX64.EFI"));
        assertEquals("from a tar\n", Tools.check("mtype", "-i", fs.toString(), "::/EFI/BOOT/grubx64.efi"), "a hard link becomes a copy");
        assertEquals("mine", Tools.check("mtype", "-i", fs.toString(), "::/owned"));
        String listing = Tools.check("mdir", "-i", fs.toString(), "::/EFI/BOOT");
        assertTrue(listing.matches("(?s).*BOOTX64 +EFI +11 2023-11-14 +22:13 .*"), listing); // the archive's time (1700000000), as UTC

        assertEquals(1, cached(".vfat").size());
        Object mtime = Files.getLastModifiedTime(cached(".vfat").get(0));
        assertArrayEquals(disk, Files.readAllBytes(bake(l, dir.resolve("tar2.raw"))));
        assertEquals(mtime, Files.getLastModifiedTime(cached(".vfat").get(0)), "the cached file system is reused");
        Files.delete(cached(".vfat").get(0));
        Thread.sleep(1100); // a build stamping the clock would now differ
        assertArrayEquals(disk, Files.readAllBytes(bake(l, dir.resolve("tar3.raw"))), "built again, the same bytes");

        tar("dev.tar", "add(\"./dev/null\", tarfile.CHRTYPE, 0o666, major=1, minor=3)\n");
        refused("{ \"vdiskload-layout\": 1, \"table\": \"gpt\", \"partitions\": [ { \"source\": \"dev.tar\", \"filesystem\": \"vfat\", \"size\": \"4M\" } ] }",
                "dev.tar: vfat cannot hold the device node or fifo ./dev/null");
        tar("link.tar", "add(\"./hostname\", tarfile.SYMTYPE, 0o777, link=\"etc/hostname\")\n");
        refused("{ \"vdiskload-layout\": 1, \"table\": \"gpt\", \"partitions\": [ { \"source\": \"link.tar\", \"filesystem\": \"vfat\", \"size\": \"4M\" } ] }",
                "link.tar: vfat cannot hold the symbolic link hostname");
    }
}
