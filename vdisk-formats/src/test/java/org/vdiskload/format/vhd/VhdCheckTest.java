package org.vdiskload.format.vhd;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.check.CheckReport;
import org.vdiskload.check.RepairMode;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.ops.Check;
import org.vdiskload.ops.Create;
import org.vdiskload.testing.Tools;

import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Our structural check (qemu-img check exits 63 on vpc, so there are no qemu counts to compare):
 * leaks an interrupted allocation leaves (-r leaks repairs them), overlapping blocks (corruption).
 */
class VhdCheckTest {
    private static final int BLOCK = 2 << 20;
    private static final long FIRST_BLOCK = 2048; // footer copy, header, one sector of BAT

    @TempDir
    Path dir;

    /** A dynamic disk of 3 blocks with blocks 0 and 1 allocated; qemu-img convert of it is saved as .raw. */
    private Path image() throws Exception {
        Path p = dir.resolve("c.vhd");
        Create.create(p, new VhdFormat(), 6 << 20, Map.of("force_size", "on"), null, null);
        try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS.withWritable(true))) {
            d.write(ByteBuffer.wrap(new byte[] {1, 2, 3}), 10);
            d.write(ByteBuffer.wrap(new byte[] {4, 5, 6}), BLOCK + 10);
        }
        Tools.check("qemu-img", "convert", "-f", "vpc", "-O", "raw", p.toString(), dir.resolve("c.raw").toString());
        return p;
    }

    private static void patch(Path p, long at, byte[] bytes) throws Exception {
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(bytes), at);
        }
    }

    private void sameContent(Path p) throws Exception {
        Tools.check("qemu-img", "compare", "-f", "vpc", "-F", "raw", p.toString(), dir.resolve("c.raw").toString());
    }

    @Test
    void cleanImageCounts() throws Exception {
        CheckReport r = Check.check(image(), "vpc", RepairMode.NONE);
        assertEquals(0, r.exitCode(), r.toString());
        assertEquals(3L, r.totalClusters());
        assertEquals(2L, r.allocatedClusters());
        assertEquals(0L, r.fragmentedClusters());
        assertEquals(FIRST_BLOCK + 2L * (BLOCK + 512) + 512, r.imageEndOffset());
    }

    /** What a kill after writing a new block but before its BAT entry leaves: an unreferenced block, no tail footer. */
    @Test
    void interruptedAllocationLeaksAndIsRepaired() throws Exception {
        Path p = image();
        long end = Files.size(p) - 512;
        patch(p, end, new byte[512 + 4096]); // a bitmap over the old footer, then some data
        CheckReport r = Check.check(p, "vpc", RepairMode.NONE);
        assertEquals(3, r.exitCode(), r.toString());
        assertEquals(0, r.corruptions());
        assertTrue(r.messages().stream().anyMatch(m -> m.contains("Leaked footer")), r.messages().toString());
        assertTrue(r.messages().stream().anyMatch(m -> m.contains("Leaked space: 4096 bytes")), r.messages().toString());
        sameContent(p);
        CheckReport fixed = Check.check(p, "vpc", RepairMode.LEAKS);
        assertEquals(0, fixed.exitCode(), fixed.toString());
        assertEquals(2, fixed.leaksFixed());
        assertEquals(end + 512, Files.size(p));
        assertEquals(0, Check.check(p, "vpc", RepairMode.NONE).exitCode());
        sameContent(p);
        try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS.withWritable(true))) { // and allocation resumes there
            d.write(ByteBuffer.wrap(new byte[] {7}), 2L * BLOCK);
        }
        assertEquals(end + (BLOCK + 512) + 512, Files.size(p)); // bitmap and data, footer
        assertEquals(0, Check.check(p, "vpc", RepairMode.NONE).exitCode());
    }

    @Test
    void staleTailFooterIsALeakRepairedFromTheCopy() throws Exception {
        Path p = image();
        patch(p, Files.size(p) - 512 + 40, new byte[] {9}); // original size
        CheckReport r = Check.check(p, "vpc", RepairMode.NONE);
        assertEquals(3, r.exitCode(), r.toString());
        assertEquals(1, r.leaks());
        assertEquals(0, Check.check(p, "vpc", RepairMode.ALL).exitCode());
        assertEquals(0, Check.check(p, "vpc", RepairMode.NONE).exitCode());
    }

    /** Two BAT entries naming the same block, and one naming the BAT: corruptions, named, not repairable. */
    @Test
    void overlapsAreCorruptions() throws Exception {
        Path p = image();
        patch(p, 1536 + 4, ByteBuffer.allocate(4).putInt((int) (FIRST_BLOCK / 512)).array());
        CheckReport r = Check.check(p, "vpc", RepairMode.NONE);
        assertEquals(2, r.exitCode(), r.toString());
        assertEquals(1, r.corruptions());
        assertTrue(r.messages().get(0).contains("block 1 at offset 2048 overlaps block 0"), r.messages().toString());
        assertEquals(2, Check.check(p, "vpc", RepairMode.ALL).exitCode());
        patch(p, 1536 + 4, ByteBuffer.allocate(4).putInt(3).array()); // sector 3: the BAT
        r = Check.check(p, "vpc", RepairMode.NONE);
        assertEquals(2, r.exitCode(), r.toString());
        assertTrue(r.messages().toString().contains("overlaps BAT"), r.messages().toString());
    }

    @Test
    void fixedDisksAreClean() throws Exception {
        Path p = dir.resolve("f.vhd");
        Create.create(p, new VhdFormat(), 1 << 20, Map.of("subformat", "fixed"), null, null);
        assertEquals(0, Check.check(p, "vpc", RepairMode.NONE).exitCode());
        assertEquals(63, Tools.run(List.of("qemu-img", "check", "-f", "vpc", p.toString()), null).exit());
    }
}
