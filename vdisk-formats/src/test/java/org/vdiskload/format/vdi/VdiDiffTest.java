package org.vdiskload.format.vdi;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.check.CheckReport;
import org.vdiskload.check.RepairMode;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Extent;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.ReferencePolicy;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.image.error.RefusedReference;
import org.vdiskload.ops.Check;
import org.vdiskload.ops.Create;
import org.vdiskload.testing.CrashTest;
import org.vdiskload.testing.Tools;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Differencing VDIs: the chains testdata/vdi_diff.py writes per VirtualBox's VDICore.h read back against the
 * bytes its model expects, their extent maps, the parent searches (directory above, media registry) under the
 * reference rule, the bad parents refused in one line, and chains vdiskload creates and writes.
 */
class VdiDiffTest {
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

    private static Path snapshot(String top, int id) {
        return data.resolve(top).resolve(String.format("Snapshots/{00000000-0000-0000-0000-%012x}.vdi", id));
    }

    private static OpenOptions allowing(Path... dirs) throws ImageException {
        return OpenOptions.DEFAULTS.withRefs(ReferencePolicy.allowing(List.of(dirs)));
    }

    private static byte[] readAll(DiskImage disk) throws Exception {
        ByteBuffer b = ByteBuffer.allocate((int) disk.size());
        disk.read(b, 0);
        return b.array();
    }

    @Test
    void aChainOfThreeReadsAsTheScriptsModel() throws Exception {
        Path chain = data.resolve("chain");
        try (DiskImage b = Images.open(snapshot("chain", 0x3001), allowing(chain));
             DiskImage a = Images.open(snapshot("chain", 0x2001), allowing(chain))) {
            assertArrayEquals(Files.readAllBytes(chain.resolve("expected-B.raw")), readAll(b));
            assertArrayEquals(Files.readAllBytes(chain.resolve("expected-A.raw")), readAll(a));
        }
    }

    /** Each block maps to the file of the layer that holds it, at that block's place in its data area. */
    @Test
    void theExtentMapPointsIntoEachLayersFile() throws Exception {
        Path chain = data.resolve("chain");
        try (DiskImage b = Images.open(snapshot("chain", 0x3001), allowing(chain))) {
            List<Extent> map = b.map(0, b.size());
            assertEquals(4, map.size(), map.toString());
            // block 0: base.vdi's data block 0 (map of 4 entries padded to 512: data at 1024)
            assertData(map.get(0), 0, 2, chain.resolve("base.vdi"), 1024);
            assertData(map.get(1), MIB, 1, snapshot("chain", 0x2001), 1024);
            assertData(map.get(2), 2 * MIB, 0, snapshot("chain", 0x3001), 1024);
            assertEquals(Extent.Kind.ZERO, map.get(3).kind()); // A's discarded block hides base's block 3
            assertEquals(1, map.get(3).depth());
            assertFalse(map.get(1).inPlace() || map.get(0).inPlace(), "the parents are never written");
        }
    }

    private static void assertData(Extent e, long start, int depth, Path file, long offset) throws Exception {
        assertEquals(start, e.start(), e.toString());
        assertEquals(Extent.Kind.DATA, e.kind(), e.toString());
        assertEquals(depth, e.depth(), e.toString());
        assertEquals(file.toRealPath(), e.file().path().toRealPath(), e.toString());
        assertEquals(offset, e.fileOffset(), e.toString());
    }

    @Test
    void theDirectoryAboveIsLookedInOnlyWhenAllowed() throws Exception {
        Path a = snapshot("chain", 0x2001);
        ImageException e = assertThrows(ImageException.class, () -> Images.open(a, OpenOptions.DEFAULTS).close());
        assertEquals(a.toString() + ": parent VDI {00000000-0000-0000-0000-000000001001} not found: no VDI with that UUID in "
                + a.getParent() + "; the directory above, " + data.resolve("chain") + ", was not looked in: it is outside the"
                + " image's directory; allow it with --allow-refs " + data.resolve("chain") + " (or VDISKLOAD_ALLOW_REFS)", e.getMessage());
    }

    @Test
    void theMachinesMediaRegistryPlacesAParentElsewhere() throws Exception {
        Path c = snapshot("registry/vm", 0x4001);
        try (DiskImage disk = Images.open(c, allowing(data.resolve("registry")))) {
            assertArrayEquals(Files.readAllBytes(data.resolve("chain/expected-A.raw")), readAll(disk));
            assertEquals(2, disk.map(0, MIB).get(0).depth() + 1);
        }
        // The machine folder allowed, the disks folder the registry names not: the rule's own one line.
        RefusedReference r = assertThrows(RefusedReference.class, () -> Images.open(c, allowing(data.resolve("registry/vm"))).close());
        assertTrue(r.getMessage().contains("resolves to " + data.resolve("registry/disks/base.vdi").toRealPath()), r.getMessage());
    }

    @Test
    void badParentsAreRefusedInOneLine() throws Exception {
        Path bad = data.resolve("bad");
        Map<String, String> expected = Map.of(
                "wrong-uuid/child.vdi", "parent VDI {00000000-0000-0000-0000-000000009999} not found: no VDI with that UUID in "
                        + bad.resolve("wrong-uuid") + " or " + bad,
                "modified/child.vdi", "parent " + bad.resolve("modified/base.vdi") + " has modification UUID "
                        + "{00000000-0000-0000-0000-000000001003} but this differencing image was made against "
                        + "{00000000-0000-0000-0000-000000001002} (uuidParentModify): the parent was written since",
                "missing/child.vdi", "parent VDI {00000000-0000-0000-0000-000000001001} not found",
                "cycle/x.vdi", "backing chain has a cycle",
                "device/child.vdi", "cannot open backing file /dev/zero: is not a regular file",
                "outside/vm/child.vdi", "backing file \"../elsewhere/base.vdi\" resolves to " + bad.resolve("outside/elsewhere/base.vdi").toRealPath()
                        + ", outside the image's directory");
        for (Map.Entry<String, String> c : expected.entrySet()) {
            Path child = bad.resolve(c.getKey());
            // Each allowed whatever it may reach (the rule's own refusal aside, which needs the default).
            OpenOptions o = c.getKey().startsWith("outside") ? OpenOptions.DEFAULTS : allowing(bad);
            ImageException e = assertThrows(ImageException.class, () -> Images.open(child, o).close(), c.getKey());
            String m = e.getMessage();
            assertTrue(m.contains(c.getValue()), c.getKey() + ": " + m);
            assertFalse(m.contains("\n"), m);
        }
        // The cycle's line names the image that appears twice.
        ImageException cycle = assertThrows(ImageException.class, () -> Images.open(bad.resolve("cycle/x.vdi"), allowing(bad)).close());
        assertTrue(cycle.getMessage().startsWith(bad.resolve("cycle/y.vdi") + ": "), cycle.getMessage());
    }

    /** Made with create -b; a partial write into the child copies the parent's block around it first. */
    @Test
    void aChainVdiskloadMakesIsWrittenInPlaceAndReadBack() throws Exception {
        Path base = dir.resolve("base.vdi");
        Create.create(base, Images.byName("vdi").orElseThrow(), 3 * MIB, Map.of(), null, null);
        byte[] expected = new byte[3 * MIB];
        try (DiskImage d = Images.open(base, OpenOptions.DEFAULTS.withWritable(true))) {
            fill(d, expected, 0, 3 * MIB, (byte) 0x5a);
        }
        Files.createDirectory(dir.resolve("Snapshots"));
        Path child = dir.resolve("Snapshots/child.vdi");
        Create.create(child, Images.byName("vdi").orElseThrow(), -1, Map.of(), "../base.vdi", null);
        VdiHeader ph = header(base);
        VdiHeader ch = header(child);
        assertEquals(VdiHeader.TYPE_DIFF, ch.imageType());
        assertEquals(ph.uuidCreate(), ch.uuidLinkage());
        assertEquals(ph.uuidModify(), ch.uuidParentModify());
        assertFalse(ch.uuidCreate().equals(ph.uuidCreate()) || ch.uuidModify().equals(ph.uuidModify()), "fresh UUIDs");
        assertEquals(ph.diskSize(), ch.diskSize());
        assertEquals(0, ch.blocksAllocated());

        OpenOptions rw = allowing(dir).withWritable(true);
        try (DiskImage d = Images.open(child, rw)) {
            fill(d, expected, MIB + 4096, 512, (byte) 0x77);       // partial: block 1 copied from the parent first
            d.writeZeroes(2 * MIB, MIB, true);                      // whole block: marked discarded, hides the parent
            d.writeZeroes(100, 50, false);                          // partial: block 0 allocated, parent's data around
            Arrays.fill(expected, 2 * MIB, 3 * MIB, (byte) 0);
            Arrays.fill(expected, 100, 150, (byte) 0);
            assertArrayEquals(expected, readAll(d));
        }
        try (DiskImage d = Images.open(child, allowing(dir))) {
            assertArrayEquals(expected, readAll(d));
        }
        CheckReport report = Check.check(child, null, RepairMode.NONE);
        assertEquals(0, report.corruptions(), report.toString());
        assertEquals(0, report.leaks(), report.toString());
        assertEquals(2, header(child).blocksAllocated());
        ByteBuffer map = ByteBuffer.wrap(Files.readAllBytes(child), (int) ch.offsetBmap(), 12).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(List.of(1, 0, VdiBlockMap.ZERO), List.of(map.getInt(), map.getInt(), map.getInt()));
        try (DiskImage d = Images.open(base, OpenOptions.DEFAULTS)) { // the parent is untouched
            byte[] b = readAll(d);
            for (byte x : b) assertEquals((byte) 0x5a, x);
        }
    }

    /** As VirtualBox does: a write gives the image a new uuidModify, so its children made before are refused. */
    @Test
    void writingIntoAParentMakesItsChildrenRefused() throws Exception {
        Path base = dir.resolve("base.vdi");
        Create.create(base, Images.byName("vdi").orElseThrow(), MIB, Map.of(), null, null);
        Path child = dir.resolve("child.vdi");
        Create.create(child, Images.byName("vdi").orElseThrow(), -1, Map.of(), "base.vdi", null);
        try (DiskImage d = Images.open(child, OpenOptions.DEFAULTS)) {
            assertEquals(2, d.layers().size());
        }
        java.util.UUID before = header(base).uuidModify();
        try (DiskImage d = Images.open(base, OpenOptions.DEFAULTS.withWritable(true))) {
            d.write(ByteBuffer.wrap(new byte[] {1}), 0);
        }
        assertFalse(header(base).uuidModify().equals(before));
        ImageException e = assertThrows(ImageException.class, () -> Images.open(child, OpenOptions.DEFAULTS).close());
        assertTrue(e.getMessage().contains("(uuidParentModify): the parent was written since"), e.getMessage());
    }

    /** Killed mid-write, a child over a qemu-made parent keeps every flushed write; qemu cannot judge it. */
    @Test
    void crashAtAnyInstantLeavesARecoverableChild() throws Exception {
        CrashTest.runWithoutQemu(dir, "vdi", p -> {
            Path parent = p.resolveSibling(p.getFileName() + ".parent.vdi");
            Tools.check("qemu-img", "create", "-q", "-f", "vdi", parent.toString(), "24M");
            Tools.check("qemu-io", "-f", "vdi", "-c", "write -P 0x5c 0 24M", parent.toString());
            Create.create(p, Images.byName("vdi").orElseThrow(), -1, Map.of(), parent.getFileName().toString(), null);
        }, 43);
    }

    @Test
    void createRefusesAParentTheChildWouldNotFind() throws Exception {
        Path base = dir.resolve("far/away/base.vdi");
        Files.createDirectories(base.getParent());
        Create.create(base, Images.byName("vdi").orElseThrow(), MIB, Map.of(), null, null);
        ImageException e = assertThrows(ImageException.class, () -> Create.create(dir.resolve("child.vdi"),
                Images.byName("vdi").orElseThrow(), -1, Map.of(), "far/away/base.vdi", null));
        assertTrue(e.getMessage().contains("finds its parent by UUID in its own directory or the one above"), e.getMessage());
        assertFalse(Files.exists(dir.resolve("child.vdi")));
    }

    private static void fill(DiskImage d, byte[] expected, int at, int n, byte value) throws Exception {
        byte[] b = new byte[n];
        Arrays.fill(b, value);
        d.write(ByteBuffer.wrap(b), at);
        System.arraycopy(b, 0, expected, at, n);
    }

    private static VdiHeader header(Path p) throws Exception {
        byte[] b = Arrays.copyOf(Files.readAllBytes(p), VdiHeader.LENGTH);
        return VdiHeader.parse(ByteBuffer.wrap(b), p);
    }

    /** A machine file with a DOCTYPE (an external entity here) is not read: its registry places nothing. */
    @Test
    void aMachineFileWithADoctypeIsIgnored() throws Exception {
        Path vm = Files.createDirectories(dir.resolve("vm"));
        Files.copy(data.resolve("bad/outside/vm/child.vdi"), vm.resolve("child.vdi"));
        Path elsewhere = Files.createDirectories(dir.resolve("elsewhere"));
        Files.copy(data.resolve("bad/outside/elsewhere/base.vdi"), elsewhere.resolve("base.vdi"));
        Files.writeString(elsewhere.resolve("name"), "../elsewhere/base.vdi");
        Files.writeString(vm.resolve("machine.vbox"), "<?xml version=\"1.0\"?>\n<!DOCTYPE VirtualBox [<!ENTITY where SYSTEM \""
                + elsewhere.resolve("name").toUri() + "\">]>\n<VirtualBox><MediaRegistry><HardDisks>"
                + "<HardDisk uuid=\"{00000000-0000-0000-0000-000000001001}\" location=\"&where;\"/></HardDisks></MediaRegistry></VirtualBox>\n");
        ImageException e = assertThrows(ImageException.class, () -> Images.open(vm.resolve("child.vdi"), allowing(dir)).close());
        assertTrue(e.getMessage().contains("not found") && e.getMessage().contains("nor in the media registry of"), e.getMessage());
        // The same file without the DOCTYPE places the parent.
        Files.writeString(vm.resolve("machine.vbox"), "<VirtualBox><MediaRegistry><HardDisks><HardDisk"
                + " uuid=\"{00000000-0000-0000-0000-000000001001}\" location=\"../elsewhere/base.vdi\"/></HardDisks></MediaRegistry></VirtualBox>");
        try (DiskImage d = Images.open(vm.resolve("child.vdi"), allowing(dir))) {
            assertEquals(2, d.layers().size());
        }
    }

    @Test
    void aParentThatIsNotAVdiIsRefused() throws Exception {
        Path child = snapshot("chain", 0x2001);
        Path copy = dir.resolve("child.vdi");
        Files.copy(child, copy);
        Path raw = dir.resolve("base.vdi");
        Files.write(raw, new byte[MIB]); // a file beside it that is no VDI is not a candidate
        ImageException e = assertThrows(ImageException.class, () -> Images.open(copy, OpenOptions.DEFAULTS).close());
        assertInstanceOf(ImageException.class, e);
        assertTrue(e.getMessage().contains("not found"), e.getMessage());
    }
}
