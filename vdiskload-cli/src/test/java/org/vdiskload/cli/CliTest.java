package org.vdiskload.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The CLI's contract: qemu-img's shapes, and every failure as one line on stderr with a non-zero exit. */
class CliTest {
    @TempDir
    Path dir;

    /** Bad input must fail promptly. */
    static CliRun cli(String... args) {
        return CliRun.run(Duration.ofSeconds(10), args);
    }

    /** Exactly one line, prefixed, containing {@code expected}, and no trace of a stack. */
    static void assertOneLineError(CliRun r, int exit, String expected) {
        assertEquals(exit, r.exit(), r.toString());
        assertEquals(1, r.err().lines().count(), "one line on stderr: " + r.err());
        assertTrue(r.err().startsWith("vdiskload: "), r.err());
        assertTrue(r.err().contains(expected), r.err());
        assertFalse(r.err().contains("Exception") || r.err().contains("\tat "), r.err());
    }

    private Path rawImage(String name, int size, int fill) throws Exception {
        byte[] b = new byte[size];
        Arrays.fill(b, (byte) fill);
        return Files.write(dir.resolve(name), b);
    }

    @Test
    void versionAndHelp() {
        CliRun v = cli("--version");
        assertEquals(0, v.exit());
        assertTrue(v.out().matches("vdiskload \\d+\\.\\d+\\.\\d+\\s*"), v.out());
        CliRun h = cli("--help");
        assertEquals(0, h.exit());
        for (String c : new String[] {"info", "map", "create", "convert", "check", "resize", "compare", "serve", "demo"}) assertTrue(h.out().contains(c), h.out());
    }

    @Test
    void everyCommandHasTheHelpItsErrorsPointTo() {
        for (String c : new String[] {"info", "map", "create", "convert", "check", "resize", "compare", "serve", "demo"}) {
            CliRun h = cli(c, "--help");
            assertEquals(0, h.exit(), c + ": " + h.err());
            assertTrue(h.out().startsWith("Usage: vdiskload " + c), h.out());
        }
        CliRun bad = cli("convert", "--no-such-flag");
        assertEquals(1, bad.exit());
        assertTrue(bad.err().contains("(see 'vdiskload convert --help')"), bad.err());
        assertEquals(0, cli("convert", "-h").exit());
    }

    @Test
    void infoJsonHasQemuKeys() throws Exception {
        Path img = rawImage("a.raw", 1 << 20, 7);
        CliRun r = cli("info", "--output=json", img.toString());
        assertEquals(0, r.exit(), r.err());
        JsonNode j = new ObjectMapper().readTree(r.out());
        assertEquals("raw", j.get("format").asText());
        assertEquals(1 << 20, j.get("virtual-size").asLong());
        assertEquals(img.toString(), j.get("filename").asText());
        assertTrue(j.has("actual-size"));
        CliRun human = cli("info", img.toString());
        assertTrue(human.out().contains("virtual size: 1 MiB (1048576 bytes)"), human.out());
    }

    @Test
    void mapJsonIsQemuShaped() throws Exception {
        Path img = rawImage("a.raw", 8192, 1);
        CliRun r = cli("map", "--output=json", img.toString());
        assertEquals(0, r.exit(), r.err());
        assertEquals("[{ \"start\": 0, \"length\": 8192, \"depth\": 0, \"present\": true, \"zero\": false, \"data\": true, \"offset\": 0}]\n", r.out());
    }

    @Test
    void convertToRawAndCompare() throws Exception {
        Path src = rawImage("a.raw", 65536, 3);
        Path dst = dir.resolve("b.raw");
        assertEquals(0, cli("convert", "-O", "raw", src.toString(), dst.toString()).exit());
        assertArrayEquals(Files.readAllBytes(src), Files.readAllBytes(dst));
        CliRun same = cli("compare", src.toString(), dst.toString());
        assertEquals(0, same.exit());
        assertTrue(same.out().contains("Images are identical."));
        Path other = rawImage("c.raw", 65536, 3);
        Files.write(other, new byte[] {9}, java.nio.file.StandardOpenOption.WRITE);
        CliRun diff = cli("compare", src.toString(), other.toString());
        assertEquals(1, diff.exit());
        assertTrue(diff.out().contains("Content mismatch at offset 0!"), diff.out());
    }

    @Test
    void compareTreatsAZeroTailAsIdenticalAndErrorsExitTwo() throws Exception {
        Path a = rawImage("a.raw", 4096, 0);
        Path b = rawImage("b.raw", 8192, 0);
        CliRun r = cli("compare", a.toString(), b.toString());
        assertEquals(0, r.exit(), r.toString());
        assertTrue(r.out().contains("Warning: Image size mismatch!"));
        assertOneLineError(cli("compare", a.toString(), dir.resolve("missing").toString()), 2, "no such file");
        assertOneLineError(cli("compare", a.toString()), 2, "Missing required parameter");
    }

    @Test
    void badInputGivesOneLine() throws Exception {
        assertOneLineError(cli("info", dir.resolve("missing.qcow2").toString()), 1, "missing.qcow2: no such file");
        assertOneLineError(cli("info", dir.toString()), 1, "is a directory");
        Path empty = Files.createFile(dir.resolve("empty.img"));
        assertOneLineError(cli("info", empty.toString()), 1, "empty.img: is empty");
        assertOneLineError(cli("map", "-f", "nosuch", empty.toString()), 1, "unknown image format 'nosuch'");
        assertOneLineError(cli("info", "--bogus", empty.toString()), 1, "Unknown option: '--bogus'");
        assertOneLineError(cli("nosuchcommand"), 1, "nosuchcommand: no such file or command");
        assertOneLineError(cli("info", "--output=xml", empty.toString()), 1, "--output");
    }

    @Test
    void convertRefusesToOverwriteItsSourceAndLeavesNoPartialOutput() throws Exception {
        Path src = rawImage("a.raw", 65536, 5);
        byte[] before = Files.readAllBytes(src);
        assertOneLineError(cli("convert", "-O", "raw", src.toString(), src.toString()), 1, "is a file of the source image");
        assertArrayEquals(before, Files.readAllBytes(src));
        Path dst = dir.resolve("out.img");
        assertOneLineError(cli("convert", "-O", "nosuch", src.toString(), dst.toString()), 1, "unknown image format 'nosuch'");
        assertFalse(Files.exists(dst));
        assertOneLineError(cli("convert", "-O", "raw", "-o", "cluster_size=3000", src.toString(), dst.toString()), 1,
                "unknown option 'cluster_size' for format raw");
        assertFalse(Files.exists(dst));
        assertOneLineError(cli("convert", "-O", "raw", "-o", "preallocation=sometimes", src.toString(), dst.toString()), 1,
                "invalid value 'sometimes' for option preallocation");
        assertFalse(Files.exists(dst));
        assertOneLineError(cli("convert", "-O", "raw", src.toString(), dir.resolve("no/such/dir/x.raw").toString()), 1, "cannot create");
    }

    @Test
    void createCheckResizeAndConvertThroughTheFormatWriter() throws Exception {
        Path img = dir.resolve("new.raw");
        assertEquals(0, cli("create", "-f", "raw", img.toString(), "1M").exit());
        assertEquals(1 << 20, Files.size(img));
        CliRun check = cli("check", img.toString());
        assertOneLineError(check, CheckCommand.EXIT_UNSUPPORTED, "does not support checks");
        assertEquals(0, cli("resize", img.toString(), "+1M").exit());
        assertEquals(2 << 20, Files.size(img));
        assertOneLineError(cli("resize", img.toString(), "1M"), 1, "--shrink");
        assertEquals(0, cli("resize", "--shrink", img.toString(), "-512k").exit(), "a negative relative size, as qemu-img takes it");
        assertEquals(1536 << 10, Files.size(img));
        assertEquals(0, cli("resize", "--shrink", img.toString(), "1M").exit());
        Path full = dir.resolve("full.raw");
        assertEquals(0, cli("convert", "-O", "raw", "-o", "preallocation=full", img.toString(), full.toString()).exit());
        assertArrayEquals(Files.readAllBytes(img), Files.readAllBytes(full));
        assertOneLineError(cli("create", "-f", "raw", dir.resolve("y.raw").toString(), "12Q"), 1, "invalid size '12Q'");
        assertOneLineError(cli("create", "-f", "raw", dir.resolve("y.raw").toString()), 1, "a size is required");
        assertFalse(Files.exists(dir.resolve("y.raw")));
    }
}
