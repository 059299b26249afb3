package org.vdiskload.partition;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.testing.Tools;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * testdata/disks.sh, the disks attach mounts: through {@link PartitionTable} every image has the table
 * disks.txt names, with the partitions sfdisk finds in its raw original, and the named partition (or the
 * whole disk) is a clean ext4 file system holding the listed files with the listed sha256.
 */
class DisksScriptTest {
    @TempDir
    Path dir;

    /** One line of disks.txt. */
    record Holds(String table, String partition, String fsFile, String sha256) {}

    @TestFactory
    Stream<DynamicTest> eachDiskHoldsItsFiles() throws Exception {
        Path images = Files.createDirectories(dir.resolve("images"));
        Path scratch = Files.createDirectories(dir.resolve("scratch"));
        List<Tools.GeneratedImage> generated = Tools.generate("disks.sh", images);
        Map<String, List<Holds>> holds = new LinkedHashMap<>();
        for (String line : Files.readAllLines(images.resolve("disks.txt"))) {
            String[] f = line.trim().split("\\s+");
            holds.computeIfAbsent(f[0], k -> new ArrayList<>()).add(new Holds(f[2], f[3], f[4], f[5]));
        }
        assertEquals(generated.stream().map(g -> g.path().getFileName().toString()).toList(), List.copyOf(holds.keySet()));
        assertEquals(10, generated.size(), "7 GPT formats, 2 MBR, 1 without a table");
        List<DynamicTest> tests = new ArrayList<>();
        for (Tools.GeneratedImage img : generated) {
            List<Holds> files = holds.get(img.path().getFileName().toString());
            tests.add(DynamicTest.dynamicTest(img.toString(), () ->
                    assertTimeoutPreemptively(Duration.ofMinutes(2), () -> check(img, files, scratch))));
        }
        return tests.stream();
    }

    private static void check(Tools.GeneratedImage img, List<Holds> files, Path scratch) throws Exception {
        String name = img.path().getFileName().toString();
        Path fs = scratch.resolve(name + ".ext4");
        Holds first = files.get(0);
        try (DiskImage disk = Images.open(img.path(), OpenOptions.DEFAULTS.withFormat(img.format()))) {
            PartitionTable t = PartitionTable.read(disk);
            assertEquals(first.table(), t.kind(), name);
            long start = 0;
            long length = disk.size();
            if (first.partition().equals("-")) {
                assertEquals(List.of(), t.partitions());
            } else {
                Path raw = img.path().resolveSibling(name.substring(0, name.indexOf('.')) + ".raw");
                assertEquals(PartitionTableTest.sfdiskAsLinux(raw), t.partitions(), name);
                int number = Integer.parseInt(first.partition());
                Partition p = t.partitions().stream().filter(x -> x.number() == number).findFirst().orElseThrow();
                start = p.start();
                length = p.length();
            }
            extract(disk, start, length, fs);
        }
        Tools.check("e2fsck", "-fn", fs.toString());
        for (Holds h : files) {
            Path out = scratch.resolve(name + ".out");
            Files.deleteIfExists(out);
            Tools.check("debugfs", "-R", "dump " + h.fsFile() + " " + out, fs.toString());
            assertTrue(Files.exists(out), "debugfs found no " + h.fsFile() + " in " + name);
            assertEquals(h.sha256(), sha256(out), name + ": " + h.fsFile());
            Files.delete(out);
        }
        Files.delete(fs);
    }

    /** Copies {@code [start, start+length)} of the disk into a file, through DiskImage.read. */
    private static void extract(DiskImage disk, long start, long length, Path to) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(1 << 20);
        try (FileChannel out = FileChannel.open(to, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE)) {
            for (long done = 0; done < length; done += buf.capacity()) {
                buf.clear().limit((int) Math.min(buf.capacity(), length - done));
                disk.read(buf, start + done);
                buf.flip();
                while (buf.hasRemaining()) out.write(buf);
            }
        }
        assertFalse(length == 0);
    }

    private static String sha256(Path file) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
    }
}
