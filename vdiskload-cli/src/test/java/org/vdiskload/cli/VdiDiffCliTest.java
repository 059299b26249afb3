package org.vdiskload.cli;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.ReferencePolicy;
import org.vdiskload.testing.Tools;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Differencing VDIs through the commands (issue 21): info and info --backing-chain, convert flattening a chain
 * (qemu cannot read one: the oracle is the bytes testdata/vdi_diff.py's model expects, and qemu-img for the
 * base), check and check -r, create -f vdi -b, and every bad parent refused in one line with exit 1.
 */
class VdiDiffCliTest {
    private static final Duration LIMIT = Duration.ofMinutes(2);
    private static final int MIB = 1 << 20;

    @TempDir
    static Path data;
    @TempDir
    Path dir;

    @BeforeAll
    static void generate() throws Exception {
        List<String> cmd = List.of("python3", Tools.repo().resolve("testdata/vdi_diff.py").toString(), data.toString());
        Tools.run(cmd, data).requireSuccess(cmd);
    }

    private static CliRun vdiskload(String... args) {
        return CliRun.run(LIMIT, args);
    }

    private static Path snapshot(int id) {
        return data.resolve(String.format("chain/Snapshots/{00000000-0000-0000-0000-%012x}.vdi", id));
    }

    @Test
    void infoShowsTheChainAndConvertFlattensIt() throws Exception {
        Path chain = data.resolve("chain");
        Path top = snapshot(0x3001);
        CliRun r = vdiskload("info", "--backing-chain", "--allow-refs", chain.toString(), top.toString());
        assertEquals(0, r.exit(), r.toString());
        List<String> images = r.out().lines().filter(l -> l.startsWith("image: ")).toList();
        assertEquals(List.of("image: " + top, "image: " + snapshot(0x2001), "image: " + chain.resolve("Snapshots/../base.vdi").normalize()),
                images, r.out());
        assertTrue(r.out().contains("backing file: {00000000-0000-0000-0000-000000002001}.vdi"), r.out());
        assertTrue(r.out().contains("backing file: ../base.vdi (actual path: " + chain.resolve("base.vdi") + ")"), r.out());

        // Without the machine folder allowed, info still shows the image and why its parent is out of reach.
        r = vdiskload("info", snapshot(0x2001).toString());
        assertEquals(0, r.exit(), r.toString());
        assertTrue(r.out().contains("backing file: {00000000-0000-0000-0000-000000001001}\n"), r.out());
        assertTrue(r.out().contains("backing file refused: parent VDI {00000000-0000-0000-0000-000000001001} not found"), r.out());

        Path out = dir.resolve("b.raw");
        r = vdiskload("convert", "--allow-refs", chain.toString(), "-O", "raw", top.toString(), out.toString());
        assertEquals(0, r.exit(), r.toString());
        assertArrayEquals(Files.readAllBytes(chain.resolve("expected-B.raw")), Files.readAllBytes(out));
        // The script's base as qemu reads it (qemu reads no differencing VDI): its blocks, the third unallocated.
        Path base = dir.resolve("base.raw");
        Tools.check("qemu-img", "convert", "-f", "vdi", "-O", "raw", chain.resolve("base.vdi").toString(), base.toString());
        byte[] b = Files.readAllBytes(base);
        byte[] expected = Files.readAllBytes(chain.resolve("expected-B.raw"));
        assertArrayEquals(Arrays.copyOfRange(expected, 0, MIB), Arrays.copyOfRange(b, 0, MIB));
        assertEquals(0x12, b[MIB + 9]);
        assertEquals(0, b[2 * MIB + 9]);
        assertEquals(0x14, b[3 * MIB + 9]);

        for (String mode : List.of("none", "leaks", "all")) {
            Path copy = dir.resolve(mode + ".vdi");
            Files.copy(top, copy);
            r = mode.equals("none") ? vdiskload("check", copy.toString()) : vdiskload("check", "-r", mode, copy.toString());
            assertEquals(0, r.exit(), mode + ": " + r);
            assertTrue(r.out().contains("No errors were found on the image."), r.out());
        }
    }

    @Test
    void createMakesAChainThatIsWrittenAndReadBack() throws Exception {
        Path base = dir.resolve("disk.vdi");
        assertEquals(0, vdiskload("create", "-f", "vdi", base.toString(), "3M").exit());
        Tools.check("qemu-io", "-f", "vdi", "-c", "write -P 0x5a 0 3M", base.toString());
        Files.createDirectory(dir.resolve("Snapshots"));
        Path child = dir.resolve("Snapshots/child.vdi");
        CliRun r = vdiskload("create", "-f", "vdi", "-b", "../disk.vdi", child.toString());
        assertEquals(0, r.exit(), r.toString());
        assertTrue(r.err().contains("opening it will need its backing file allowed"), r.err()); // the directory above
        byte[] expected = new byte[3 * MIB];
        Arrays.fill(expected, (byte) 0x5a);
        OpenOptions rw = OpenOptions.DEFAULTS.withWritable(true).withRefs(ReferencePolicy.allowing(List.of(dir)));
        try (DiskImage d = Images.open(child, rw)) {
            write(d, expected, 4096, 8192, (byte) 0x21);
        }
        // The snapshot of the snapshot, made once the child is written (writing it later would detach it).
        Path grandchild = dir.resolve("Snapshots/grandchild.vdi");
        assertEquals(0, vdiskload("create", "-f", "vdi", "-b", "child.vdi", grandchild.toString()).exit());
        try (DiskImage d = Images.open(grandchild, rw)) {
            write(d, expected, 2 * MIB + 100, 10, (byte) 0x32);
        }
        Path out = dir.resolve("out.raw");
        r = vdiskload("convert", "--allow-refs", dir.toString(), "-O", "raw", grandchild.toString(), out.toString());
        assertEquals(0, r.exit(), r.toString());
        assertArrayEquals(expected, Files.readAllBytes(out));
        Path vdi = dir.resolve("flat.vdi");
        r = vdiskload("convert", "--allow-refs", dir.toString(), "-O", "vdi", grandchild.toString(), vdi.toString());
        assertEquals(0, r.exit(), r.toString());
        Tools.check("qemu-img", "compare", "-f", "vdi", "-F", "raw", vdi.toString(), out.toString()); // a flat VDI qemu reads
        r = vdiskload("info", "--backing-chain", "--allow-refs", dir.toString(), grandchild.toString());
        assertEquals(3, r.out().lines().filter(l -> l.startsWith("image: ")).count(), r.out());
        for (Path p : List.of(child, grandchild)) assertEquals(0, vdiskload("check", p.toString()).exit(), p.toString());
    }

    private static void write(DiskImage d, byte[] expected, int at, int n, byte value) throws Exception {
        byte[] b = new byte[n];
        Arrays.fill(b, value);
        d.write(ByteBuffer.wrap(b), at);
        System.arraycopy(b, 0, expected, at, n);
    }

    @Test
    void badParentsAreOneLineAndExitOne() throws Exception {
        Path bad = data.resolve("bad");
        for (String child : List.of("wrong-uuid/child.vdi", "modified/child.vdi", "missing/child.vdi", "cycle/x.vdi",
                "device/child.vdi", "outside/vm/child.vdi")) {
            Path out = dir.resolve("out.raw");
            CliRun r = vdiskload("convert", "-O", "raw", bad.resolve(child).toString(), out.toString());
            assertEquals(1, r.exit(), child + ": " + r);
            assertEquals(1, r.err().lines().count(), child + ": " + r.err());
            assertTrue(r.err().startsWith("vdiskload: " + bad.resolve(child).getParent()), child + ": " + r.err());
            assertFalse(r.err().contains("Exception") || r.err().contains("\tat "), r.err());
            assertFalse(Files.exists(out), child + ": nothing written");
            r = vdiskload("info", "--backing-chain", bad.resolve(child).toString());
            assertEquals(1, r.exit(), child + ": " + r);
            assertEquals(1, r.err().lines().count(), child + ": " + r.err());
        }
    }
}
