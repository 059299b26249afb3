package org.vdiskload.format.qcow;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.ops.Create;
import org.vdiskload.testing.CrashPlan;
import org.vdiskload.testing.CrashTest;
import org.vdiskload.testing.Tools;
import org.vdiskload.testing.WriteTorture;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Crash safety for qcow, which qemu-img cannot check (CrashTest needs qemu-img check): a writer is
 * SIGKILLed mid-run; the image must open, every flushed operation (with metadata write-through: every
 * operation that had returned) must read back, and qemu must read the whole image without error and
 * exactly as we do.
 */
class QcowCrashTest {
    @TempDir
    Path dir;

    @Test
    void killedWritersLeaveImagesQemuReadsLikeUs() throws Exception {
        kills(31, false);
    }

    /** With metadata write-through and no flush at all, every write that had returned survives the kill. */
    @Test
    void writeThroughKeepsEveryReturnedWrite() throws Exception {
        kills(32, true);
    }

    private void kills(long seed, boolean writeThrough) throws Exception {
        Path base = dir.resolve("base.raw");
        Tools.check("qemu-img", "create", "-q", "-f", "raw", base.toString(), "48M");
        Tools.check("qemu-io", "-f", "raw", "-c", "write -P 0x77 0 48M", base.toString());
        Random rnd = new Random(seed);
        for (int i = 0; i < CrashTest.kills(); i++) {
            boolean backed = i % 2 == 1;
            Path img = dir.resolve("crash-" + i + ".qcow");
            Files.deleteIfExists(img);
            Create.create(img, new QcowFormat(), 48 << 20, Map.of(), backed ? "base.raw" : null, backed ? "raw" : null);
            long runSeed = rnd.nextLong() & Long.MAX_VALUE;
            int last = CrashTest.killMidway(img, "qcow", runSeed, 100 + rnd.nextInt(1200), writeThrough);
            verify(img, runSeed, last, (writeThrough ? "write-through kill " : "kill ") + i + " (seed " + runSeed + ", backed " + backed + ")");
        }
    }

    private void verify(Path image, long seed, int flushed, String what) throws Exception {
        CrashPlan plan = new CrashPlan(seed);
        byte[] ours;
        try (DiskImage d = Images.open(image, OpenOptions.DEFAULTS.withFormat("qcow"))) {
            for (int k = 0; k <= flushed; k++) {
                CrashPlan.Op op = plan.op(k, d.size());
                ByteBuffer got = ByteBuffer.allocate(op.length());
                d.read(got, op.pos());
                assertArrayEquals(op.zero() ? new byte[op.length()] : op.data(), got.array(), what + ": operation " + k + " (completed before the crash) lost");
            }
            ours = WriteTorture.readAll(d);
        }
        Path raw = dir.resolve("qemu.raw");
        Tools.Result convert = Tools.run(List.of("qemu-img", "convert", "-f", "qcow", "-O", "raw", image.toString(), raw.toString()), dir);
        assertTrue(convert.exit() == 0, what + ": qemu-img convert: " + convert.stderr());
        assertArrayEquals(ours, Files.readAllBytes(raw), what + ": qemu reads the image differently");
        Files.delete(raw);
    }
}
