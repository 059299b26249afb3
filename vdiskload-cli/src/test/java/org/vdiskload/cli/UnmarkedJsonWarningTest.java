package org.vdiskload.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A JSON file without the layout marker is a raw disk (a guest's raw disk must never pass for a layout), but a
 * layout with a typo in its marker must not be attached silently as a tiny disk: one warning line says so.
 */
class UnmarkedJsonWarningTest {
    private static final Duration LIMIT = Duration.ofMinutes(1);

    @TempDir
    Path dir;

    @Test
    void aJsonObjectReadAsRawIsWarnedAbout() throws Exception {
        Path typo = Files.writeString(dir.resolve("typo.json"),
                "{ \"vdiskload-layuot\": 1, \"table\": \"gpt\", \"partitions\": [ { \"source\": \"a.raw\" } ] }\n");
        CliRun r = CliRun.run(LIMIT, "info", typo.toString());
        assertEquals(0, r.exit(), r.toString());
        assertTrue(r.out().contains("file format: raw"), r.out());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().startsWith("vdiskload: warning: " + typo + ": parses as JSON but has no \"vdiskload-layout\" marker"),
                r.err());
    }

    @Test
    void noWarningWhenRawIsAskedForOrTheFileIsNoJson() throws Exception {
        Path typo = Files.writeString(dir.resolve("typo.json"), "{ \"vdiskload-layuot\": 1 }");
        CliRun asked = CliRun.run(LIMIT, "info", "-f", "raw", typo.toString());
        assertEquals("", asked.err(), asked.toString());
        Path braces = Files.writeString(dir.resolve("disk.img"), "{ not json at all");
        CliRun plain = CliRun.run(LIMIT, "info", braces.toString());
        assertEquals("", plain.err(), plain.toString());
    }
}
