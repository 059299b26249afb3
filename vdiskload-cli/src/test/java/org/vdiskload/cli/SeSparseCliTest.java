package org.vdiskload.cli;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.testing.Tools;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vdiskload.cli.CliTest.assertOneLineError;

/**
 * An ESXi seSparse disk (testdata/sesparse_make.py) through the commands: info, map, convert, compare and check
 * read it; writing it (serve without -r, check -r) is refused in one line; a corrupt one fails in one line.
 */
class SeSparseCliTest {
    @TempDir
    static Path dir;
    private static Path se;

    @BeforeAll
    static void make() throws Exception {
        se = dir.resolve("se.vmdk");
        Tools.check("python3", Tools.repo().resolve("testdata/sesparse_make.py").toString(), se.toString(), "40", "--expected");
    }

    private static CliRun cli(String... args) {
        return CliRun.run(Duration.ofSeconds(60), args);
    }

    @Test
    void readOnlyCommandsWork() throws Exception {
        CliRun info = cli("info", se.toString());
        assertEquals(0, info.exit(), info.toString());
        assertTrue(info.out().contains("create type: seSparse") && info.out().contains("format: SESPARSE"), info.out());
        CliRun map = cli("map", "--output=json", se.toString());
        assertEquals(0, map.exit(), map.toString());
        assertTrue(map.out().contains("\"start\": 98304, \"length\": 32768, \"depth\": 0, \"present\": true, \"zero\": true, \"data\": false"), map.out());
        Path out = dir.resolve("out.raw");
        CliRun convert = cli("convert", "-O", "raw", se.toString(), out.toString());
        assertEquals(0, convert.exit(), convert.toString());
        assertArrayEquals(Files.readAllBytes(dir.resolve("se.expected.raw")), Files.readAllBytes(out));
        assertEquals(0, cli("compare", se.toString(), out.toString()).exit());
        CliRun check = cli("check", se.toString());
        assertEquals(0, check.exit(), check.toString());
        assertTrue(check.out().contains("No errors were found on the image."), check.out());
    }

    @Test
    void writingIsRefusedInOneLine() {
        String words = "is an ESXi seSparse extent, which can only be opened read-only";
        assertOneLineError(cli("check", "-r", "all", se.toString()), 1, words);
        assertOneLineError(cli("serve", "--socket", dir.resolve("s.sock").toString(), se.toString()), 1, words);
        assertOneLineError(cli("info", dir.resolve("se-sesparse.vmdk").toString()), 1, "an ESXi seSparse extent has no descriptor of its own");
    }

    @Test
    void corruptionFailsInOneLine() throws Exception {
        Path bad = dir.resolve("bad.vmdk");
        Files.writeString(bad, Files.readString(se).replace("se-sesparse.vmdk", "bad-sesparse.vmdk"));
        Path extent = dir.resolve("bad-sesparse.vmdk");
        Tools.check("cp", "--sparse=always", dir.resolve("se-sesparse.vmdk").toString(), extent.toString());
        // grain table 1, entry 5 (disk grain 5): type 4, which qemu rejects too
        try (FileChannel ch = FileChannel.open(extent, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 0x4000000000000000L), 16 * 512 + 32768 + 5 * 8);
        }
        assertOneLineError(cli("convert", "-O", "raw", bad.toString(), dir.resolve("bad.raw").toString()), 1,
                "grain table entry 0x4000000000000000 has unknown type 4");
        CliRun check = cli("check", bad.toString());
        assertEquals(1, check.exit(), check.toString());
        assertTrue(check.out().contains("ERROR: could not get cluster_offset for sector 40"), check.toString());
        // the const header's magic
        try (FileChannel ch = FileChannel.open(extent, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 0xdeadbeefL), 0);
        }
        assertOneLineError(cli("info", bad.toString()), 1, "bad-sesparse.vmdk: not a seSparse extent: bad const header magic 0x00000000deadbeef");
    }
}
