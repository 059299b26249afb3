package org.vdiskload.format.layout;

import org.vdiskload.cli.CliRun;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.testing.Tools;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Layouts through the CLI: info, map, convert (baking), compare, and one line for each bad layout. */
class LayoutCliTest {
    private static final long MIB = 1 << 20;

    @TempDir
    Path dir;

    static CliRun cli(String... args) {
        return CliRun.run(Duration.ofSeconds(60), args);
    }

    private Path sources() throws Exception {
        Path a = dir.resolve("a.raw");
        Tools.check("qemu-img", "create", "-q", "-f", "raw", a.toString(), "2M");
        Tools.check("qemu-io", "-f", "raw", "-c", "write -P 0x41 0 64k", a.toString());
        Path b = dir.resolve("b.qcow2");
        Tools.check("qemu-img", "create", "-q", "-f", "qcow2", b.toString(), "3M");
        Tools.check("qemu-io", "-f", "qcow2", "-c", "write -P 0x42 1M 64k", b.toString());
        return Files.writeString(dir.resolve("layout.json"), """
                {
                  "vdiskload-layout": 1,
                  "table": "gpt",
                  "partitions": [
                    { "source": "a.raw", "type": "esp" },
                    { "source": "b.qcow2", "size": "4M" }
                  ]
                }
                """);
    }

    @Test
    void infoMapConvertAndCompare() throws Exception {
        Path l = sources();
        CliRun info = cli("info", "--output=json", l.toString());
        assertEquals(0, info.exit(), info.err());
        assertTrue(info.out().contains("\"format\" : \"vdisk-layout\"") || info.out().contains("\"format\": \"vdisk-layout\""), info.out());
        assertTrue(info.out().contains("\"virtual-size\" : " + 8 * MIB) || info.out().contains("\"virtual-size\": " + 8 * MIB), info.out());

        CliRun map = cli("map", l.toString());
        assertEquals(0, map.exit(), map.err());
        assertTrue(map.out().contains(dir.resolve("a.raw").toString()) && map.out().contains(dir.resolve("b.qcow2").toString()), map.out());

        Path baked = dir.resolve("baked.qcow2");
        CliRun convert = cli("convert", "-O", "qcow2", l.toString(), baked.toString());
        assertEquals(0, convert.exit(), convert.err());
        String verify = Tools.check("sh", "-c", "qemu-img convert -O raw " + baked + " " + dir.resolve("baked.raw") + " && sgdisk -v " + dir.resolve("baked.raw"));
        assertTrue(verify.contains("No problems found"), verify);
        CliRun compare = cli("compare", l.toString(), baked.toString());
        assertEquals(0, compare.exit(), compare.out() + compare.err());
    }

    private void oneLine(Path layout, String expected) {
        CliRun r = cli("info", layout.toString());
        assertEquals(1, r.err().lines().count(), "one line on stderr: " + r.err());
        assertTrue(r.exit() != 0, r.toString());
        assertTrue(r.err().startsWith("vdiskload: " + layout + ": "), r.err());
        assertTrue(r.err().contains(expected), r.err());
        assertFalse(r.err().contains("Exception") || r.err().contains("\tat "), r.err());
    }

    @Test
    void badLayoutsFailWithOneLineNamingTheJsonPath() throws Exception {
        sources();
        String head = "{ \"vdiskload-layout\": 1, \"table\": \"gpt\",\n  \"partitions\": [\n";
        List<String[]> bad = List.of(
                new String[] {head + "{ \"source\": \"gone.raw\" } ] }", "$.partitions[0].source (line 3): " + dir.resolve("gone.raw") + ": no such file"},
                new String[] {head + "{ \"source\": \"a.raw\", \"start\": \"1M\" },\n{ \"source\": \"a.raw\", \"start\": \"2M\" } ] }",
                        "$.partitions[1].start (line 4): partition 2 [2097152, 4194304) overlaps partition 1 [1048576, 3145728)"},
                new String[] {head + "{ \"source\": \"b.qcow2\", \"size\": \"1M\" } ] }", "$.partitions[0].size (line 3): smaller than its source (1048576 < 3145728 bytes of b.qcow2)"},
                new String[] {head + "{ \"source\": \"a.raw\", \"type\": \"ntfs-please\" } ] }", "$.partitions[0].type (line 3): unknown partition type 'ntfs-please'"},
                new String[] {head + "{ \"size\": \"1M\" },\n".repeat(129) + "{ \"size\": \"1M\" } ] }", "$.partitions[128] (line 131): a GPT holds at most 128 partitions; this layout has 130"},
                new String[] {head + "{ \"source\": \"a.raw\" ] }", "$.partitions[0].source (line 3, column 21): malformed JSON"},
                new String[] {head + "{ \"source\": \"a.raw\" } ], \"table\": \"mbr\" }", "malformed JSON: Duplicate field 'table'"});
        for (String[] b : bad) oneLine(Files.writeString(dir.resolve("bad.json"), b[0]), b[1]);
    }

    @Test
    void aVfatPartitionFromADirectoryFailsInOneLineWhenItCannotBeBuilt() throws Exception {
        Path tree = Files.createDirectories(dir.resolve("esp/EFI/BOOT"));
        Files.write(tree.resolve("BOOTX64.EFI"), new byte[2 * (int) MIB]);
        String head = "{ \"vdiskload-layout\": 1, \"table\": \"gpt\",\n  \"partitions\": [\n";
        String esp = "{ \"source\": \"esp\", \"filesystem\": \"vfat\", \"type\": \"esp\", \"size\": ";
        oneLine(Files.writeString(dir.resolve("small.json"), head + esp + "\"1M\" } ] }"),
                "$.partitions[0].source (line 3): " + dir.resolve("esp") + ": mcopy failed (is the partition size large enough?): Disk full");
        Files.createSymbolicLink(tree.resolve("current"), Path.of("BOOTX64.EFI"));
        oneLine(Files.writeString(dir.resolve("link.json"), head + esp + "\"8M\" } ] }"),
                "$.partitions[0].source (line 3): " + dir.resolve("esp") + ": vfat cannot hold the symbolic link EFI/BOOT/current");
    }

    @Test
    void aSourceCannotBeTheOutput() throws Exception {
        Path l = sources();
        byte[] before = Files.readAllBytes(dir.resolve("b.qcow2"));
        CliRun r = cli("convert", "-O", "qcow2", l.toString(), dir.resolve("b.qcow2").toString());
        assertTrue(r.exit() != 0, r.toString());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().contains("b.qcow2: is a file of the source image (" + l + "); refusing to overwrite it"), r.err());
        assertArrayEquals(before, Files.readAllBytes(dir.resolve("b.qcow2")), "the source is untouched");
        try (var files = Files.list(dir)) {
            assertEquals(List.of("a.raw", "b.qcow2", "layout.json"), files.map(p -> p.getFileName().toString()).sorted().toList(), "no partial output");
        }
    }
}
