package org.vdiskload.image;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.format.qcow.QcowFormat;
import org.vdiskload.format.qcow2.Qcow2Format;
import org.vdiskload.format.vdi.VdiFormat;
import org.vdiskload.format.vhd.VhdFormat;
import org.vdiskload.format.vhdx.VhdxFormat;
import org.vdiskload.format.vmdk.VmdkFormat;
import org.vdiskload.ops.Create;
import org.vdiskload.testing.PowerCut;
import org.vdiskload.testing.Tools;

import java.nio.file.Path;
import java.util.Map;

/**
 * Power cuts at random points of a writer's recorded writes and flushes ({@link PowerCut}), per format: what the
 * disk may hold afterwards must open, qemu-img check must find no corruption (leaks allowed), and every
 * operation before the last completed flush must read back.
 */
class PowerCutTest {
    private static final long MB = 1 << 20;

    @TempDir
    Path dir;

    @Test
    void qcow2() throws Exception {
        PowerCut.run(dir, "qcow2", p -> Create.create(p, new Qcow2Format(), 48 * MB, Map.of(), null, null), 31, 0, false);
    }

    @Test
    void qcow2LazyRefcounts() throws Exception {
        PowerCut.run(dir, "qcow2", p -> Create.create(p, new Qcow2Format(), 48 * MB, Map.of("lazy_refcounts", "on"), null, null),
                32, 0, false);
    }

    @Test
    void qcow() throws Exception {
        PowerCut.runUnchecked(dir, "qcow", p -> Create.create(p, new QcowFormat(), 32 * MB, Map.of(), null, null), 33);
    }

    @Test
    void vmdkMonolithicSparse() throws Exception {
        PowerCut.run(dir, "vmdk", p -> Create.create(p, new VmdkFormat(), 32 * MB, Map.of(), null, null), 34, 0, false);
    }

    @Test
    void vdi() throws Exception {
        PowerCut.run(dir, "vdi", p -> Create.create(p, new VdiFormat(), 64 * MB, Map.of(), null, null), 35, 0, false);
    }

    /** Blocks past 896 MiB: their map entries lie beyond the header's 4 KiB page. */
    @Test
    void vdiMapEntriesPastTheFirstPage() throws Exception {
        PowerCut.run(dir, "vdi", p -> Create.create(p, new VdiFormat(), 2048 * MB, Map.of(), null, null), 36, 1024 * MB, false);
    }

    @Test
    void vhd() throws Exception {
        PowerCut.run(dir, "vpc", p -> Create.create(p, new VhdFormat(), 24 * MB, Map.of(), null, null), 37, 0, false);
    }

    /** Over a qemu-made parent: partial blocks, their sector bitmaps and BAT entries (qemu cannot open the child). */
    @Test
    void vhdxDifferencing() throws Exception {
        PowerCut.runWithoutQemu(dir, "vhdx", p -> {
            Path parent = p.resolveSibling("parent.vhdx");
            Tools.check("qemu-img", "create", "-q", "-f", "vhdx", "-o", "block_size=1M", parent.toString(), "24M");
            Tools.check("qemu-io", "-f", "vhdx", "-c", "write -P 0x5c 0 24M", parent.toString());
            Create.create(p, new VhdxFormat(), -1, Map.of("block_size", "1M"), "parent.vhdx", "vhdx");
        }, 39);
    }

    @Test
    void vhdx() throws Exception {
        PowerCut.run(dir, "vhdx", p -> Create.create(p, new VhdxFormat(), 32 * MB, Map.of("block_size", "1M"), null, null), 38, 0, true);
    }
}
