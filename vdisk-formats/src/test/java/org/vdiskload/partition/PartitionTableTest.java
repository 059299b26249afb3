package org.vdiskload.partition;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.testing.Tools;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Partition tables made by sgdisk, sfdisk and fdisk, read as sfdisk reads them and numbered as Linux numbers them. */
class PartitionTableTest {
    static final String LINUX_FS = "0fc63daf-8483-4772-8e79-3d69d8477de4";

    @TempDir
    Path dir;

    static PartitionTable read(Path file, String format) throws IOException {
        return assertTimeoutPreemptively(Duration.ofSeconds(10), () -> {
            try (DiskImage d = Images.open(file, OpenOptions.DEFAULTS.withFormat(format))) {
                return PartitionTable.read(d);
            }
        });
    }

    static ImageException corrupt(Path raw, String field) {
        ImageException e = assertThrows(ImageException.class, () -> read(raw, "raw"));
        assertEquals(ImageException.Kind.CORRUPT, e.kind(), e.getMessage());
        assertEquals(raw, e.path(), e.getMessage());
        assertEquals(field, e.field(), e.getMessage());
        assertTrue(e.getMessage().startsWith(raw.toString()), e.getMessage());
        return e;
    }

    /** 16 MiB GPT: partitions 1, 3 (bootable, non-ASCII name), 4; partition 2 deleted so the numbers have a gap. */
    static Path gptDisk(Path dir) throws Exception {
        Path raw = dir.resolve("gpt.raw");
        Tools.check("truncate", "-s", "16M", raw.toString());
        Tools.check("sgdisk", "-n", "1:2048:+2M", "-c", "1:alpha", "-n", "2:0:+1M", "-c", "2:beta", "-t", "2:ef00",
                "-n", "3:0:+3M", "-c", "3:gamma é", "-A", "3:set:2", "-n", "4:0:+1M", "-t", "4:8200",
                "-c", "4:a name of thirty-six characters max", raw.toString());
        Tools.check("sgdisk", "-d", "2", raw.toString());
        return raw;
    }

    /** 16 MiB MBR: three primaries (1 bootable), extended 4 with logicals 5, 6, 7. */
    static Path mbrDisk(Path dir) throws Exception {
        Path raw = dir.resolve("mbr.raw");
        Tools.check("truncate", "-s", "16M", raw.toString());
        Path script = dir.resolve("mbr.sfdisk");
        Files.writeString(script, """
                label: dos
                start=2048, size=2048, type=83, bootable
                start=4096, size=2048, type=c
                start=6144, size=2048, type=82
                start=8192, type=5
                start=10240, size=2048, type=83
                start=14336, size=2048, type=7
                start=18432, size=4096, type=83
                """);
        List<String> cmd = List.of("sh", "-c", "sfdisk -q \"$0\" < \"$1\"", raw.toString(), script.toString());
        Tools.run(cmd, null).requireSuccess(cmd);
        return raw;
    }

    /** What sfdisk --json says the partitions are, in this API's terms. */
    static List<Partition> sfdisk(Path raw) throws Exception {
        JsonNode table = new ObjectMapper().readTree(Tools.check("sfdisk", "--json", raw.toString())).get("partitiontable");
        long ss = table.get("sectorsize").asLong();
        boolean gpt = table.get("label").asText().equals("gpt");
        List<Partition> parts = new ArrayList<>();
        for (JsonNode p : table.get("partitions")) {
            int number = Integer.parseInt(p.get("node").asText().substring(raw.toString().length()));
            String type = p.get("type").asText().toLowerCase(Locale.ROOT);
            boolean bootable = gpt ? p.path("attrs").asText().contains("LegacyBIOSBootable") : p.path("bootable").asBoolean();
            parts.add(new Partition(number, p.get("start").asLong() * ss, p.get("size").asLong() * ss,
                    gpt ? type : String.format("%2s", type).replace(' ', '0'), p.path("name").asText(""), bootable));
        }
        return parts;
    }

    /** sfdisk's partitions with an extended partition as Linux makes its device: 1 KiB (/proc/partitions shows 1 block). */
    static List<Partition> sfdiskAsLinux(Path raw) throws Exception {
        List<Partition> parts = new ArrayList<>();
        for (Partition p : sfdisk(raw))
            parts.add(p.type().equals("05") ? new Partition(p.number(), p.start(), 1024, "05", "", p.bootable()) : p);
        return parts;
    }

    @Test
    void gptAsSfdiskReadsIt() throws Exception {
        Path raw = gptDisk(dir);
        PartitionTable t = read(raw, "raw");
        assertEquals("gpt", t.kind());
        assertEquals(512, t.sectorSize());
        assertEquals(sfdisk(raw), t.partitions());
        assertEquals(List.of(1, 3, 4), t.partitions().stream().map(Partition::number).toList());
        assertEquals(new Partition(3, 4 << 20, 3 << 20, LINUX_FS, "gamma é", true), t.partitions().get(1));
    }

    @Test
    void mbrAsSfdiskReadsItWithTheExtendedPartitionAsLinuxShowsIt() throws Exception {
        Path raw = mbrDisk(dir);
        PartitionTable t = read(raw, "raw");
        assertEquals("mbr", t.kind());
        assertEquals(512, t.sectorSize());
        assertEquals(sfdiskAsLinux(raw), t.partitions());
        assertEquals(List.of(1, 2, 3, 4, 5, 6, 7), t.partitions().stream().map(Partition::number).toList());
        assertEquals(new Partition(7, 18432 * 512L, 4096 * 512L, "83", "", false), t.partitions().get(6));
        assertEquals("0c", t.partitions().get(1).type());
    }

    @Test
    void readsThroughQcow2() throws Exception {
        for (Path raw : List.of(gptDisk(dir), mbrDisk(dir))) {
            Path qcow2 = dir.resolve(raw.getFileName() + ".qcow2");
            Tools.check("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw.toString(), qcow2.toString());
            PartitionTable fromRaw = read(raw, "raw");
            PartitionTable fromQcow2 = read(qcow2, "qcow2");
            assertEquals(fromRaw.kind(), fromQcow2.kind());
            assertEquals(fromRaw.partitions(), fromQcow2.partitions());
        }
    }

    @Test
    void gptWith4096ByteSectorsFromFdisk() throws Exception {
        Path raw = dir.resolve("gpt4k.raw");
        Tools.check("truncate", "-s", "32M", raw.toString());
        List<String> cmd = List.of("sh", "-c", "printf 'g\\nn\\n1\\n256\\n+2M\\nn\\n3\\n\\n+1M\\nw\\n' | fdisk -b 4096 \"$0\"", raw.toString());
        Tools.run(cmd, null).requireSuccess(cmd);
        PartitionTable t = read(raw, "raw");
        assertEquals("gpt", t.kind());
        assertEquals(4096, t.sectorSize());
        List<Partition> expected = List.of(new Partition(1, 256 * 4096L, 2 << 20, LINUX_FS, "", false),
                new Partition(3, 768 * 4096L, 1 << 20, LINUX_FS, "", false));
        assertEquals(expected, t.partitions());
        poke(raw, 4096 + 56, 0x42); // primary header CRC broken: the backup at the last 4096-byte LBA
        assertEquals(expected, read(raw, "raw").partitions());
        assertEquals(4096, read(raw, "raw").sectorSize());
    }

    /** A hybrid MBR (sgdisk -h: partition 1 also in the MBR, beside the 0xEE entry) is read as the GPT it guards. */
    @Test
    void hybridMbrIsReadAsGpt() throws Exception {
        Path raw = gptDisk(dir);
        List<Partition> gpt = read(raw, "raw").partitions();
        Tools.check("sgdisk", "-h", "1", raw.toString());
        byte[] mbr = Files.readAllBytes(raw); // MBR entries 1 (0xEE from LBA 1) and 2 (partition 1, type 0x83)
        assertEquals(List.of(0xee, 0x83), List.of(mbr[446 + 4] & 0xff, mbr[446 + 16 + 4] & 0xff), "sgdisk made no hybrid MBR");
        PartitionTable t = read(raw, "raw");
        assertEquals("gpt", t.kind());
        assertEquals(gpt, t.partitions());
    }

    /**
     * A GPT written field by field (UEFI spec tables 5-5 and 5-6), for 512- and 4096-byte sectors: checks
     * the header layout and the mixed-endian GUID text independently of the tools.
     */
    @Test
    void handWrittenGpt() throws Exception {
        for (int ss : new int[] {512, 4096}) {
            Path raw = dir.resolve("hand" + ss + ".raw");
            long sectors = 256;
            ByteBuffer disk = ByteBuffer.allocate((int) (sectors * ss)).order(ByteOrder.LITTLE_ENDIAN);
            // Protective MBR: one 0xEE entry from LBA 1 to the end.
            disk.put(446 + 4, (byte) 0xee).putInt(446 + 8, 1).putInt(446 + 12, (int) sectors - 1);
            disk.put(510, (byte) 0x55).put(511, (byte) 0xaa);
            // Entry array at LBA 2: entry 0 unused, entry 1 (partition 2) is an EFI system partition.
            ByteBuffer entries = ByteBuffer.allocate(4 * 128).order(ByteOrder.LITTLE_ENDIAN);
            entries.position(128).put(new byte[] {0x28, 0x73, 0x2a, (byte) 0xc1, 0x1f, (byte) 0xf8, (byte) 0xd2, 0x11, // c12a7328-f81f-11d2
                    (byte) 0xba, 0x4b, 0x00, (byte) 0xa0, (byte) 0xc9, 0x3e, (byte) 0xc9, 0x3b}); // ba4b-00a0c93ec93b
            entries.position(128 + 16).put(new byte[16]); // unique partition GUID (not read)
            entries.putLong(128 + 32, 10).putLong(128 + 40, 19).putLong(128 + 48, 4); // first LBA, last LBA, attributes (legacy bootable)
            entries.position(128 + 56).put("EFI\0junk".getBytes(StandardCharsets.UTF_16LE)); // name, NUL-terminated
            disk.put(2 * ss, entries.array());
            ByteBuffer h = ByteBuffer.allocate(92).order(ByteOrder.LITTLE_ENDIAN);
            h.put("EFI PART".getBytes(StandardCharsets.US_ASCII)); // signature
            h.putInt(8, 0x00010000).putInt(12, 92); // revision 1.0, header size
            h.putLong(24, 1).putLong(32, sectors - 1); // my LBA, alternate LBA (no backup written)
            h.putLong(40, 6).putLong(48, sectors - 6); // first and last usable LBA
            h.putLong(72, 2).putInt(80, 4).putInt(84, 128); // entry array LBA, entry count, entry size
            h.putInt(88, GptPatch.crc(entries, entries.capacity()));
            h.putInt(16, GptPatch.crc(h, 92)); // header CRC over header size bytes with the CRC field 0
            disk.put(ss, h.array());
            Files.write(raw, disk.array());
            PartitionTable t = read(raw, "raw");
            assertEquals(ss, t.sectorSize());
            assertEquals(List.of(new Partition(2, 10L * ss, 10L * ss, "c12a7328-f81f-11d2-ba4b-00a0c93ec93b", "EFI", true)), t.partitions());
        }
    }

    @Test
    void noTable() throws Exception {
        Path zeros = dir.resolve("zeros.raw");
        Tools.check("truncate", "-s", "1M", zeros.toString());
        Path tiny = dir.resolve("tiny.raw");
        Files.write(tiny, new byte[100]);
        Path ext4 = dir.resolve("ext4.raw");
        Tools.check("truncate", "-s", "8M", ext4.toString());
        Tools.check("mkfs.ext4", "-q", "-F", ext4.toString());
        // 0x55AA but a boot indicator that is neither 0 nor 0x80: a boot sector, not an MBR (Linux's test).
        Path bootSector = dir.resolve("boot.raw");
        byte[] b = new byte[1 << 20];
        b[446] = 0x33;
        b[446 + 4] = (byte) 0x83;
        b[446 + 12] = 8;
        b[510] = 0x55;
        b[511] = (byte) 0xaa;
        Files.write(bootSector, b);
        for (Path p : List.of(zeros, tiny, ext4, bootSector)) {
            PartitionTable t = read(p, "raw");
            assertEquals("none", t.kind(), p.toString());
            assertEquals(List.of(), t.partitions());
        }
    }

    @Test
    void badPrimaryHeaderFallsBackToTheBackup() throws Exception {
        Path raw = gptDisk(dir);
        List<Partition> good = read(raw, "raw").partitions();
        poke(raw, 512 + 56, 0x42); // the disk GUID: the header CRC no longer matches
        assertEquals(good, read(raw, "raw").partitions());
        poke(raw, 512, 'X'); // the signature too
        assertEquals(good, read(raw, "raw").partitions());
    }

    @Test
    void badPrimaryEntryArrayFallsBackToTheBackup() throws Exception {
        Path raw = gptDisk(dir);
        List<Partition> good = read(raw, "raw").partitions();
        poke(raw, 2 * 512 + 56, 'Z'); // partition 1's name: the entry array CRC no longer matches
        assertEquals(good, read(raw, "raw").partitions());
    }

    @Test
    void bothHeadersCorrupt() throws Exception {
        Path raw = gptDisk(dir);
        poke(raw, 512 + 56, 0x42);
        poke(raw, Files.size(raw) - 512 + 56, 0x42);
        ImageException e = corrupt(raw, "GPT header CRC32");
        assertEquals(512 + 16, e.offset());
        assertTrue(e.getMessage().contains("backup header: header checksum mismatch"), e.getMessage());
    }

    @Test
    void hugeEntryCount() throws Exception {
        Path raw = gptDisk(dir);
        patchBoth(raw, a -> {}, h -> h.putInt(GptPatch.ENTRY_COUNT, 1 << 30));
        corrupt(raw, "GPT number of partition entries");
    }

    @Test
    void entrySizeNotAMultipleOf8() throws Exception {
        Path raw = gptDisk(dir);
        patchBoth(raw, a -> {}, h -> h.putInt(GptPatch.ENTRY_SIZE, 130));
        corrupt(raw, "GPT partition entry size");
    }

    @Test
    void gptPartitionPastTheDiskEnd() throws Exception {
        Path raw = gptDisk(dir);
        patchBoth(raw, a -> a.putLong(128 * 3 + GptPatch.LAST_LBA, 40000), h -> {});
        ImageException e = corrupt(raw, "GPT partition 4 last LBA");
        assertTrue(e.getMessage().contains("LBA 40000 is past the last usable LBA"), e.getMessage());
    }

    @Test
    void gptPartitionEndingBeforeItStarts() throws Exception {
        Path raw = gptDisk(dir);
        patchBoth(raw, a -> a.putLong(GptPatch.LAST_LBA, 2000), h -> {});
        corrupt(raw, "GPT partition 1 first LBA");
    }

    @Test
    void truncatedGptDisk() throws Exception {
        Path raw = gptDisk(dir);
        try (FileChannel ch = FileChannel.open(raw, StandardOpenOption.WRITE)) {
            ch.truncate(8 << 20);
        }
        corrupt(raw, "GPT last usable LBA");
    }

    @Test
    void mbrPartitionPastTheDiskEnd() throws Exception {
        Path raw = mbrDisk(dir);
        putInt(raw, 446 + 16 + 12, 40000); // partition 2's sector count
        corrupt(raw, "MBR partition 2 start/size");
    }

    @Test
    void logicalPartitionPastTheDiskEnd() throws Exception {
        Path raw = mbrDisk(dir);
        putInt(raw, secondEbr(raw) + 446 + 12, 40000);
        corrupt(raw, "logical partition 6 start/size");
    }

    /** A link back to the first EBR: an error (not a truncated list), found on the first revisit. */
    @Test
    void ebrLoop() throws Exception {
        Path raw = mbrDisk(dir);
        putInt(raw, secondEbr(raw) + 446 + 16 + 8, 0); // EBR 2's link: relative to the extended start, so EBR 1
        ImageException e = corrupt(raw, "EBR link");
        assertTrue(e.getMessage().contains("loops back to sector 8192"), e.getMessage());
    }

    @Test
    void ebrLinkLeavingTheExtendedPartition() throws Exception {
        Path raw = mbrDisk(dir);
        putInt(raw, 8192 * 512 + 446 + 16 + 8, 30000); // EBR 1's link
        corrupt(raw, "EBR link");
    }

    /** 300 EBRs of 4 sectors each, every one with a 3-sector logical partition: refused past Linux's 256. */
    @Test
    void tooManyLogicalPartitions() throws Exception {
        Path raw = dir.resolve("many.raw");
        int ebrs = 300;
        ByteBuffer disk = ByteBuffer.allocate((2048 + ebrs * 4) * 512).order(ByteOrder.LITTLE_ENDIAN);
        disk.put(446 + 4, (byte) 0x05).putInt(446 + 8, 2048).putInt(446 + 12, ebrs * 4); // MBR entry 1: extended
        disk.put(510, (byte) 0x55).put(511, (byte) 0xaa);
        for (int i = 0; i < ebrs; i++) {
            int ebr = (2048 + i * 4) * 512;
            disk.put(ebr + 446 + 4, (byte) 0x83).putInt(ebr + 446 + 8, 1).putInt(ebr + 446 + 12, 3); // data: relative to this EBR
            if (i + 1 < ebrs) disk.put(ebr + 462 + 4, (byte) 0x05).putInt(ebr + 462 + 8, (i + 1) * 4).putInt(ebr + 462 + 12, 4); // link: relative to the extended start
            disk.put(ebr + 510, (byte) 0x55).put(ebr + 511, (byte) 0xaa);
        }
        Files.write(raw, disk.array());
        corrupt(raw, "EBR chain");
        // Cut to 10 EBRs, the same chain reads: logicals 5..14, each 1 sector after its EBR.
        putInt(raw, (2048 + 9 * 4) * 512 + 462 + 12, 0);
        List<Partition> parts = read(raw, "raw").partitions();
        assertEquals(11, parts.size());
        assertEquals(new Partition(14, (2048 + 9 * 4 + 1) * 512L, 3 * 512, "83", "", false), parts.get(10));
    }

    @Test
    void truncatedMbrDisk() throws Exception {
        Path raw = mbrDisk(dir);
        try (FileChannel ch = FileChannel.open(raw, StandardOpenOption.WRITE)) {
            ch.truncate(8 << 20);
        }
        corrupt(raw, "MBR partition 4 start/size");
    }

    /** The byte offset of the second EBR, from the first EBR's link (the extended partition starts at sector 8192). */
    static long secondEbr(Path raw) throws IOException {
        try (FileChannel ch = FileChannel.open(raw)) {
            return (8192 + GptPatch.read(ch, 8192 * 512 + 446 + 16 + 8, 4).getInt(0)) * 512L;
        }
    }

    static void patchBoth(Path raw, java.util.function.Consumer<ByteBuffer> entries, java.util.function.Consumer<ByteBuffer> header) throws IOException {
        long last = Files.size(raw) / 512 - 1;
        GptPatch.patch(raw, 512, 1, entries, header);
        GptPatch.patch(raw, 512, last, entries, header);
    }

    static void poke(Path raw, long at, int value) throws IOException {
        try (FileChannel ch = FileChannel.open(raw, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(new byte[] {(byte) value}), at);
        }
    }

    static void putInt(Path raw, long at, int value) throws IOException {
        try (FileChannel ch = FileChannel.open(raw, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(0, value), at);
        }
    }
}
