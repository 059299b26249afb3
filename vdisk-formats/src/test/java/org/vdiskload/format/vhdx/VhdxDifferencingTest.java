package org.vdiskload.format.vhdx;

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
import org.vdiskload.io.ImageFile;
import org.vdiskload.ops.Check;
import org.vdiskload.ops.Create;
import org.vdiskload.testing.CrashTest;
import org.vdiskload.testing.Tools;
import org.vdiskload.testing.WriteTorture;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Creating differencing VHDX images over a qemu-made parent and writing through them. qemu 7.2 cannot open a
 * differencing VHDX at all ("Operation not supported"), so the judges are libvhdi (vhdiinfo names the parent,
 * vhdimount reads the chain), our own reader and our check.
 */
class VhdxDifferencingTest {
    private static final long MB = 1 << 20;

    @TempDir
    Path dir;

    /** A qemu-made 1 MiB-block parent of {@code size} bytes with patterns qemu-io wrote. */
    private Path parent(String name, String size) throws Exception {
        Path p = dir.resolve(name);
        Tools.check("qemu-img", "create", "-q", "-f", "vhdx", "-o", "block_size=1M", p.toString(), size);
        Tools.check("qemu-io", "-f", "vhdx", "-c", "write -P 0x51 0 3M", "-c", "write -P 0x52 5M 1536K",
                "-c", "write -z 6M 512K", p.toString());
        return p;
    }

    private static byte[] qemuRaw(Path vhdx) throws Exception {
        Path raw = vhdx.resolveSibling(vhdx.getFileName() + ".raw");
        Tools.check("qemu-img", "convert", "-f", "vhdx", "-O", "raw", vhdx.toString(), raw.toString());
        try {
            return Files.readAllBytes(raw);
        } finally {
            Files.delete(raw);
        }
    }

    private static Path child(Path child, String backing, Map<String, String> options) throws IOException {
        Create.create(child, new VhdxFormat(), -1, options, backing, "vhdx");
        return child;
    }

    private static DiskImage open(Path p, boolean writable) throws IOException {
        return Images.open(p, OpenOptions.DEFAULTS.withFormat("vhdx").withWritable(writable));
    }

    private static VhdxHeader header(Path p) throws IOException {
        try (ImageFile f = ImageFile.open(p, false)) {
            return VhdxHeader.current(f);
        }
    }

    @Test
    void childReadsAsItsParentAndLibvhdiNamesIt() throws Exception {
        Path parent = parent("parent.vhdx", "12M");
        Path child = child(dir.resolve("child.vhdx"), "parent.vhdx", Map.of());
        byte[] want = qemuRaw(parent);
        try (DiskImage d = open(child, false)) {
            assertEquals(2, d.layers().size());
            assertEquals(12 * MB, d.size());
            assertArrayEquals(want, WriteTorture.readAll(d));
        }
        try (ImageFile f = ImageFile.open(child, false); VhdxLayer l = VhdxLayer.open(f, new org.vdiskload.image.OpenContext(null, 1 << 20, false))) {
            VhdxMetadata m = l.metadata();
            assertTrue(m.hasParent());
            assertFalse(m.leaveBlocksAllocated());
            assertEquals(2 * MB, m.blockSize(), "Hyper-V's differencing block size");
            assertEquals(header(parent).dataWriteGuid(), m.parent().linkage());
            assertEquals(".\\parent.vhdx", m.parent().entries().get("relative_path"));
            assertEquals(parent.toString().replace('/', '\\'), m.parent().entries().get("absolute_win32_path"));
            assertTrue(l.map(0, l.size()).status() == org.vdiskload.image.LayerRun.Status.UNALLOCATED);
        }
        String vhdi = Tools.check("vhdiinfo", child.toString());
        assertTrue(vhdi.contains("Disk type\t\t: Differential"), vhdi);
        assertTrue(vhdi.contains("(" + 12 * MB + " bytes)"), vhdi);
        assertTrue(vhdi.contains("Parent identifier\t: " + header(parent).dataWriteGuid()), vhdi);
        assertTrue(vhdi.contains("Parent filename\t\t: " + parent.toString().replace('/', '\\')), vhdi);
        assertArrayEquals(want, Tools.vhdimount(child, 2), "libvhdi reads the new child as the parent");
        CheckReport r = Check.check(child, "vhdx", RepairMode.NONE);
        assertTrue(r.clean(), r.toString());
        // qemu 7.2 refuses differencing VHDX images outright; if a later qemu reads them, use it here too.
        assertTrue(Tools.run(List.of("qemu-img", "info", "-f", "vhdx", child.toString()), null).stderr().contains("not supported"));
    }

    /**
     * A child moved away from its parent: relative_path names nothing any more, and absolute_win32_path (a path
     * here, as this library records it) finds the parent, under the reference rule: refused while the parent's
     * directory is not allowed, read once it is.
     */
    @Test
    void aChildMovedAwayFindsItsParentByTheAbsolutePath() throws Exception {
        Path parent = parent("moved-base.vhdx", "8M");
        Path made = child(dir.resolve("moved.vhdx"), "moved-base.vhdx", Map.of());
        Path child = Files.move(made, Files.createDirectories(dir.resolve("elsewhere")).resolve("moved.vhdx"));
        RefusedReference refused = assertThrows(RefusedReference.class, () -> open(child, false).close());
        assertTrue(refused.getMessage().contains("\"" + parent + "\" resolves to " + parent.toRealPath()), refused.getMessage());
        try (DiskImage d = Images.open(child, OpenOptions.DEFAULTS.withRefs(ReferencePolicy.allowing(List.of(dir))))) {
            assertEquals(parent, d.layers().get(1).file().path());
            assertArrayEquals(qemuRaw(parent), WriteTorture.readAll(d));
        }
    }

    /** Positional writes through the library, then libvhdi and our reader both read the model. */
    @Test
    void writesThroughTheChildReadBackAsTheModel() throws Exception {
        Path parent = parent("base.vhdx", "12M");
        Path child = child(dir.resolve("top.vhdx"), "base.vhdx", Map.of("block_size", "1M"));
        WriteTorture.run(child, "vhdx", new WriteTorture.Plan(600, 150, (int) MB, 31), (image, format, model) -> {
            CheckReport r = Check.check(image, format, RepairMode.NONE);
            assertTrue(r.clean(), r.toString());
            assertTrue(Tools.check("vhdiinfo", image.toString()).contains("Differential"));
            assertTrue(Arrays.equals(model, Tools.vhdimount(image, 2)), "vhdimount reads the chain as the model");
        });
        byte[] before = qemuRaw(parent);
        try (DiskImage d = open(parent, false)) {
            assertArrayEquals(before, WriteTorture.readAll(d), "the parent is untouched");
        }
    }

    /**
     * A write into a block the child does not hold yet stores only the sectors it touches (PARTIALLY_PRESENT with
     * their sector bitmap bits), the edge sectors completed from the parent; the rest of the block still shows the
     * parent, for our reader and for libvhdi. A second write into that block adds sectors to it.
     */
    @Test
    void writesStoreOnlyTheirSectorsAndTheRestShowsTheParent() throws Exception {
        Path parent = parent("pp.vhdx", "12M");
        Path child = child(dir.resolve("pc.vhdx"), "pp.vhdx", Map.of("block_size", "1M"));
        byte[] want = qemuRaw(parent);
        writeThrough(child, want, MB + 1000, 3000, 0x61); // sectors 1..7 of block 1, the parent's 0x51 around it
        writeThrough(child, want, MB + 3500, 700, 0x62); // overlaps sector 7, adds sector 8
        writeThrough(child, want, 5 * MB + 8192, 4096, 0x63);
        writeThrough(child, want, 12 * MB - 512, 512, 0x64); // the disk's last sector
        try (DiskImage d = open(child, false)) {
            assertArrayEquals(want, WriteTorture.readAll(d));
            org.vdiskload.image.ImageLayer top = d.layers().get(0);
            org.vdiskload.image.LayerRun head = top.map(MB, MB);
            assertEquals(org.vdiskload.image.LayerRun.Status.UNALLOCATED, head.status(), "sector 0 of block 1 shows the parent");
            assertEquals(512, head.length());
            org.vdiskload.image.LayerRun written = top.map(MB + 512, MB - 512);
            assertEquals(org.vdiskload.image.LayerRun.Status.DATA, written.status());
            assertEquals(8 * 512, written.length(), "sectors 1..8 are in the child");
            assertEquals(org.vdiskload.image.LayerRun.Status.UNALLOCATED, top.map(MB + 9 * 512, MB - 9 * 512).status());
            assertEquals(org.vdiskload.image.LayerRun.Status.UNALLOCATED, top.map(5 * MB, 8192).status());
        }
        assertArrayEquals(want, Tools.vhdimount(child, 2), "libvhdi reads the partial blocks as we do");
        CheckReport r = Check.check(child, "vhdx", RepairMode.NONE);
        assertTrue(r.clean(), r.toString());
    }

    /** Writes {@code length} bytes of {@code value} at {@code pos} through the child and into {@code want}. */
    private static void writeThrough(Path child, byte[] want, long pos, int length, int value) throws IOException {
        byte[] b = new byte[length];
        Arrays.fill(b, (byte) value);
        try (DiskImage d = open(child, true)) {
            d.write(ByteBuffer.wrap(b), pos);
        }
        System.arraycopy(b, 0, want, (int) pos, length);
    }

    /**
     * Growing a differencing child past its parent's size: the parent's data and the child's writes still read,
     * the new area reads zeros and takes writes; libvhdi reads the grown chain as we do, and our check is clean.
     */
    @Test
    void resizeGrowsAChildPastItsParent() throws Exception {
        Path parent = parent("rp.vhdx", "12M");
        Path child = child(dir.resolve("rc.vhdx"), "rp.vhdx", Map.of("block_size", "1M"));
        byte[] small = qemuRaw(parent);
        writeThrough(child, small, 2 * MB + 512, 1024, 0x71);
        org.vdiskload.ops.Resize.resize(child, "vhdx", 40 * MB, false);
        byte[] want = Arrays.copyOf(small, 40 * (int) MB);
        try (DiskImage d = open(child, false)) {
            assertEquals(40 * MB, d.size());
            assertArrayEquals(want, WriteTorture.readAll(d), "the parent's data, the child's write, zeros past the old size");
        }
        writeThrough(child, want, 39 * MB + 4096, 8192, 0x72);
        writeThrough(child, want, 12 * MB - 512, 1024, 0x73); // across the parent's end
        try (DiskImage d = open(child, false)) {
            assertArrayEquals(want, WriteTorture.readAll(d));
        }
        // libvhdi fails (EIO) reading a child past its parent's end; up to it, it must read as we do.
        assertArrayEquals(Arrays.copyOf(want, 12 * (int) MB), Tools.vhdimount(child, 2, 12 * MB), "libvhdi reads the grown child as we do");
        CheckReport r = Check.check(child, "vhdx", RepairMode.NONE);
        assertTrue(r.clean(), r.toString());
    }

    /**
     * A child in another directory names its parent by a relative path that climbs, and opens where the
     * parent's directory is allowed (outside the child's own, it is refused by default).
     */
    @Test
    void parentInAnotherDirectoryIsFoundByItsRelativePath() throws Exception {
        Path parent = parent("p.vhdx", "8M");
        Path sub = Files.createDirectories(dir.resolve("sub"));
        Path child = child(sub.resolve("c.vhdx"), "../p.vhdx", Map.of());
        try (ImageFile f = ImageFile.open(child, false); VhdxLayer l = VhdxLayer.open(f, new org.vdiskload.image.OpenContext(null, 1 << 20, false))) {
            assertEquals("..\\p.vhdx", l.metadata().parent().entries().get("relative_path"));
        }
        RefusedReference refused = assertThrows(RefusedReference.class, () -> open(child, false).close());
        assertTrue(refused.getMessage().contains("\"../p.vhdx\" resolves to " + parent.toRealPath()), refused.getMessage());
        ReferencePolicy allowed = ReferencePolicy.allowing(List.of(dir));
        byte[] b = new byte[4096];
        Arrays.fill(b, (byte) 0x77);
        try (DiskImage d = Images.open(child, OpenOptions.DEFAULTS.withWritable(true).withRefs(allowed))) {
            d.write(ByteBuffer.wrap(b), 5 * MB - 2048);
        }
        byte[] want = qemuRaw(parent);
        System.arraycopy(b, 0, want, 5 * (int) MB - 2048, b.length);
        try (DiskImage d = Images.open(child, OpenOptions.DEFAULTS.withRefs(allowed))) {
            assertArrayEquals(want, WriteTorture.readAll(d));
            assertTrue(d.map(0, d.size()).stream().anyMatch(e -> e.kind() == Extent.Kind.DATA));
        }
    }

    /** Killed mid-write, a child over a qemu-made parent keeps every flushed write; qemu cannot judge it. */
    @Test
    void crashAtAnyInstantLeavesARecoverableChild() throws Exception {
        CrashTest.runWithoutQemu(dir, "vhdx", p -> {
            Path parent = p.resolveSibling(p.getFileName() + ".parent.vhdx");
            Tools.check("qemu-img", "create", "-q", "-f", "vhdx", "-o", "block_size=1M", parent.toString(), "24M");
            Tools.check("qemu-io", "-f", "vhdx", "-c", "write -P 0x5c 0 24M", parent.toString());
            child(p, parent.getFileName().toString(), Map.of("block_size", "1M"));
        }, 41);
    }

    @Test
    void writingTheParentAfterwardsDetachesTheChild() throws Exception {
        Path parent = parent("wp.vhdx", "8M");
        Path child = child(dir.resolve("wc.vhdx"), "wp.vhdx", Map.of());
        try (DiskImage d = open(parent, true)) {
            d.write(ByteBuffer.wrap(new byte[512]), 0);
        }
        ImageException e = assertThrows(ImageException.class, () -> open(child, false).close());
        assertTrue(e.getMessage().contains("parent_linkage"), e.getMessage());
    }

    @Test
    void badRequestsAreRefusedBeforeAnyFileIsWritten() throws Exception {
        parent("bp.vhdx", "8M");
        Files.write(dir.resolve("raw.img"), new byte[(int) MB]);
        Object[][] bad = {
            {Map.of("subformat", "fixed"), "bp.vhdx", "vhdx", -1L, "fixed"},
            {Map.of("block_state_zero", "on"), "bp.vhdx", "vhdx", -1L, "block_state_zero"},
            {Map.of(), "bp.vhdx", "vhdx", 16 * MB, "parent's size"},
            {Map.of(), "raw.img", "raw", -1L, "must be a VHDX"},
            {Map.of(), "missing.vhdx", "vhdx", 8 * MB, "missing.vhdx"},
        };
        for (Object[] b : bad) {
            Path p = dir.resolve("bad.vhdx");
            @SuppressWarnings("unchecked")
            Map<String, String> o = (Map<String, String>) b[0];
            ImageException e = assertThrows(ImageException.class,
                    () -> Create.create(p, new VhdxFormat(), (Long) b[3], o, (String) b[1], (String) b[2]), b[4].toString());
            assertTrue(e.getMessage().contains(b[4].toString()), e.getMessage());
            assertFalse(e.getMessage().contains("\n"), e.getMessage());
            assertFalse(Files.exists(p), b[4] + " left a file");
        }
        Path self = dir.resolve("bp.vhdx");
        long size = Files.size(self);
        assertThrows(ImageException.class, () -> Create.create(self, new VhdxFormat(), -1, Map.of(), "bp.vhdx", "vhdx"));
        assertEquals(size, Files.size(self), "the parent is not overwritten");
    }

}
