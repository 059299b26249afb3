package org.vdiskload.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.testing.Tools;
import org.vdiskload.text.Printable;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Text an image carries (a VMDK descriptor's extent names and disk database, a qcow2 backing file and snapshot
 * name, a layout's source paths) reaches the terminal escaped: ESC, CR, BEL, C1 controls and bidirectional
 * overrides never leave vdiskload raw, in human output, JSON or errors, and an error stays one line.
 */
class ImageTextTest {
    /** ESC [2J (clear screen), CR, BEL, the C1 CSI, a right-to-left override. */
    private static final String HOSTILE = "\u001b[2J\r\u0007\u009b31m\u202e";
    /** The same without CR, which no VMDK descriptor line can hold. */
    private static final String IN_NAME = HOSTILE.replace("\r", "");

    @TempDir
    Path dir;

    private static CliRun cli(String... args) {
        return CliRun.run(Duration.ofSeconds(60), args);
    }

    /** Every line of {@code text} holds only characters a terminal prints. */
    private static void assertPrintable(String text) {
        for (String line : text.split("\n", -1)) {
            for (int i = 0; i < line.length(); i++) {
                assertTrue(Printable.safe(line, i), "U+" + Integer.toHexString(line.charAt(i)) + " in: " + Printable.of(line));
            }
        }
    }

    private static void assertAscii(String text) {
        assertTrue(text.chars().allMatch(c -> c == '\n' || c >= 0x20 && c < 0x7f), "not pure ASCII: " + Printable.of(text));
    }

    private Path vmdk(String extentName, String ddbValue) throws Exception {
        Files.write(dir.resolve("flat" + IN_NAME + ".raw"), new byte[1 << 20]);
        String descriptor = "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n"
                + "RW 2048 FLAT \"" + extentName + "\" 0\n"
                + "ddb.adapterType = \"" + ddbValue + "\"\n";
        return Files.writeString(dir.resolve("disk.vmdk"), descriptor, StandardCharsets.UTF_8);
    }

    @Test
    void vmdkExtentNameAndDiskDatabaseInInfoAndMap() throws Exception {
        Path disk = vmdk("flat" + IN_NAME + ".raw", HOSTILE);
        CliRun info = cli("info", disk.toString());
        assertEquals(0, info.exit(), info.toString());
        assertPrintable(info.out());
        assertTrue(info.out().contains(Printable.of(HOSTILE)), info.out());

        CliRun json = cli("info", "--output=json", disk.toString());
        assertEquals(0, json.exit(), json.toString());
        assertAscii(json.out());
        JsonNode data = new ObjectMapper().readTree(json.out()).path("format-specific").path("data");
        assertEquals(HOSTILE, data.path("ddb").path("adapterType").asText(), "JSON keeps the text exactly: " + json.out());

        CliRun map = cli("map", disk.toString());
        assertEquals(0, map.exit(), map.toString());
        assertPrintable(map.out());
    }

    @Test
    void aMissingExtentIsOneEscapedLine() throws Exception {
        Path disk = vmdk("missing" + IN_NAME + ".raw", "x");
        CliRun r = cli("info", disk.toString());
        assertEquals(1, r.exit(), r.toString());
        assertEquals(1, r.err().lines().count(), r.err());
        assertPrintable(r.err());
    }

    @Test
    void qcow2BackingFileAndSnapshotName() throws Exception {
        Path top = dir.resolve("top.qcow2");
        Tools.check("qemu-img", "create", "-q", "-f", "qcow2", top.toString(), "1M");
        Tools.check("qemu-img", "snapshot", "-c", "snap" + HOSTILE, top.toString());
        Tools.check("qemu-img", "rebase", "-u", "-b", "base" + HOSTILE + "\n.raw", "-F", "raw", top.toString());
        CliRun info = cli("info", top.toString());
        assertEquals(0, info.exit(), info.toString());
        assertPrintable(info.out());
        assertTrue(info.out().contains("snap" + Printable.of(HOSTILE)), info.out());

        CliRun json = cli("info", "--output=json", top.toString());
        assertEquals(0, json.exit(), json.toString());
        assertAscii(json.out());
        assertEquals("snap" + HOSTILE, new ObjectMapper().readTree(json.out()).path("snapshots").path(0).path("name").asText());

        for (String[] args : new String[][] {{"map", top.toString()}, {"convert", "-O", "raw", top.toString(), dir.resolve("out.raw").toString()}}) {
            CliRun r = cli(args);
            assertEquals(1, r.exit(), r.toString());
            assertEquals(1, r.err().lines().count(), r.err());
            assertPrintable(r.err());
        }
    }

    /** A parent locator's name is the image's text (W2ru here), whether or not it names a file that is there. */
    @Test
    void vhdParentLocator() throws Exception {
        Path parent = dir.resolve("parent" + IN_NAME + ".vhd");
        Tools.check("qemu-img", "create", "-q", "-f", "vpc", parent.toString(), "1M");
        Tools.check("qemu-img", "convert", "-f", "vpc", "-O", "raw", parent.toString(), dir.resolve("parent.raw").toString());
        for (String name : new String[] {parent.getFileName().toString(), "missing" + IN_NAME + ".vhd"}) {
            Path child = dir.resolve("child.vhd");
            Files.deleteIfExists(child);
            Tools.check("python3", Tools.repo().resolve("testdata/vhdtool.py").toString(), "child", parent.toString(),
                    dir.resolve("parent.raw").toString(), child.toString(), dir.resolve("child.raw").toString(),
                    "--block-size", "65536", "--w2ru", ".\\" + name);
            assertParentNameEscaped(child, name, name.startsWith("parent"));
        }
    }

    @Test
    void vhdxParentLocator() throws Exception {
        Path parent = dir.resolve("parent.vhdx");
        Tools.check("qemu-img", "create", "-q", "-f", "vhdx", parent.toString(), "8M");
        Tools.check("qemu-img", "convert", "-f", "vhdx", "-O", "raw", parent.toString(), dir.resolve("parent.raw").toString());
        Path child = dir.resolve("child.vhdx");
        Tools.check("python3", Tools.repo().resolve("testdata/vhdx_make.py").toString(), "diff", parent.toString(),
                dir.resolve("parent.raw").toString(), child.toString(), dir.resolve("child.raw").toString(), "missing" + IN_NAME + ".vhdx");
        assertParentNameEscaped(child, "missing" + IN_NAME + ".vhdx", false);
    }

    /** info shows the parent's name escaped; where the parent is missing, map's error is one escaped line naming it. */
    private static void assertParentNameEscaped(Path child, String name, boolean found) {
        CliRun info = cli("info", child.toString());
        assertEquals(0, info.exit(), info.toString());
        assertPrintable(info.out());
        assertTrue(info.out().contains("backing file: " + Printable.of(name)), info.out());
        CliRun map = cli("map", child.toString());
        assertEquals(found ? 0 : 1, map.exit(), map.toString());
        assertPrintable(map.out() + map.err());
        if (!found) {
            assertEquals(1, map.err().lines().count(), map.err());
            assertTrue(map.err().contains(Printable.of(name)), map.err());
        }
    }

    @Test
    void layoutSourcePathInInfo() throws Exception {
        Files.write(dir.resolve("part" + HOSTILE + ".raw"), new byte[1 << 20]);
        String layout = "{ \"vdiskload-layout\": 1, \"table\": \"gpt\", \"partitions\": [ { \"source\": \"part\\u001b[2J\\r\\u0007\\u009b31m\\u202e.raw\" } ] }";
        Path file = Files.writeString(dir.resolve("disk.json"), layout);
        CliRun info = cli("info", file.toString());
        assertEquals(0, info.exit(), info.toString());
        assertPrintable(info.out());
        CliRun json = cli("info", "--output=json", file.toString());
        assertAscii(json.out());
    }
}
