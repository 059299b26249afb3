package org.vdiskload.image;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.format.qcow2.Qcow2Format;
import org.vdiskload.format.vdi.VdiFormat;
import org.vdiskload.format.vhd.VhdFormat;
import org.vdiskload.format.vhdx.VhdxFormat;
import org.vdiskload.format.vmdk.VmdkFormat;
import org.vdiskload.ops.Create;
import org.vdiskload.testing.CrashTest;
import org.vdiskload.testing.PowerCut;
import org.vdiskload.testing.Tools;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Metadata write-through ({@link DiskImage#setMetadataWriteThrough}), per format: a writer killed with SIGKILL
 * at random instants, never flushing, keeps every write that had returned (and qemu-img check finds no
 * corruption, leaks allowed); power cuts leave what they leave without it, and a kill at any point of the
 * recorded writes keeps every operation that had returned. (qcow, which nothing can check: QcowCrashTest.)
 */
class WriteThroughTest {
    private static final long MB = 1 << 20;

    @TempDir
    Path dir;

    private static Path qcow2(Path p, Map<String, String> options) throws Exception {
        Create.create(p, new Qcow2Format(), 48 * MB, options, null, null);
        return p;
    }

    @Test
    void qcow2Killed() throws Exception {
        CrashTest.runWriteThrough(dir, "qcow2", p -> qcow2(p, Map.of()), 41, false, true);
    }

    @Test
    void qcow2ExtendedL2Killed() throws Exception {
        CrashTest.runWriteThrough(dir, "qcow2", p -> qcow2(p, Map.of("extended_l2", "on")), 42, false, true);
    }

    @Test
    void qcow2PowerCuts() throws Exception {
        PowerCut.runWriteThrough(dir, "qcow2", p -> qcow2(p, Map.of()), 43, false);
    }

    @Test
    void qcow2LazyRefcountsPowerCuts() throws Exception {
        PowerCut.runWriteThrough(dir, "qcow2", p -> qcow2(p, Map.of("lazy_refcounts", "on")), 44, false);
    }

    @Test
    void vmdkKilled() throws Exception {
        CrashTest.runWriteThrough(dir, "vmdk", p -> Create.create(p, new VmdkFormat(), 32 * MB, Map.of(), null, null), 46, false, true);
    }

    @Test
    void vmdkPowerCuts() throws Exception {
        PowerCut.runWriteThrough(dir, "vmdk", p -> Create.create(p, new VmdkFormat(), 32 * MB, Map.of(), null, null), 47, false);
    }

    @Test
    void vdiKilled() throws Exception {
        CrashTest.runWriteThrough(dir, "vdi", p -> Create.create(p, new VdiFormat(), 64 * MB, Map.of(), null, null), 48, false, true);
    }

    @Test
    void vdiPowerCuts() throws Exception {
        PowerCut.runWriteThrough(dir, "vdi", p -> Create.create(p, new VdiFormat(), 64 * MB, Map.of(), null, null), 49, false);
    }

    /** VHD and VHDX write their metadata before a write returns anyway: the option changes nothing there. */
    @Test
    void vhdKilled() throws Exception {
        CrashTest.runWriteThrough(dir, "vpc", p -> Create.create(p, new VhdFormat(), 24 * MB, Map.of(), null, null), 50, false, true);
    }

    @Test
    void vhdxKilled() throws Exception {
        CrashTest.runWriteThrough(dir, "vhdx", p -> Create.create(p, new VhdxFormat(), 32 * MB, Map.of("block_size", "1M"), null, null),
                51, true, true);
    }

    /** Without the option the entries wait in memory: a kill loses them (which is what the option is for). */
    @Test
    void withoutItTheEntriesWaitForTheFlush() throws Exception {
        for (String format : new String[] {"qcow2", "vmdk", "vdi", "qcow"}) {
            Path p = dir.resolve("a." + format);
            Create.create(p, Images.byName(format).orElseThrow(), 8 * MB, Map.of(), null, null);
            try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS.withWritable(true))) {
                d.write(ByteBuffer.wrap(new byte[] {1}), MB);
                assertEquals(0, readRaw(p, format), format + ": the entry is not in the file before the flush");
                d.setMetadataWriteThrough(true); // writes what waits
                assertEquals(1, readRaw(p, format), format + ": switching write-through on wrote what waited");
                d.write(ByteBuffer.wrap(new byte[] {2}), 3 * MB);
                assertArrayEquals(new byte[] {2}, readRaw(p, format, 3 * MB), format + ": written through");
            }
        }
    }

    private static int readRaw(Path p, String format) throws Exception {
        return readRaw(p, format, MB)[0];
    }

    /** The byte at {@code pos} as qemu reads the file now (our writer still open): what a kill would leave. */
    private static byte[] readRaw(Path p, String format, long pos) throws Exception {
        Tools.Result r = Tools.run(List.of("qemu-io", "-r", "-U", "-f", format, "-c", "read -v " + pos + " 1", p.toString()), null);
        String out = r.stdout(); // "00100000:  07  ."
        int at = out.indexOf(':');
        assertEquals(0, r.exit(), out + r.stderr());
        return new byte[] {(byte) Integer.parseInt(out.substring(at + 3, at + 5), 16)};
    }
}
