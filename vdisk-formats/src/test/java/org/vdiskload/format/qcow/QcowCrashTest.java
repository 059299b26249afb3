package org.vdiskload.format.qcow;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.ops.Create;
import org.vdiskload.testing.CrashPlan;
import org.vdiskload.testing.CrashTest;
import org.vdiskload.testing.CrashWriter;
import org.vdiskload.testing.Tools;
import org.vdiskload.testing.WriteTorture;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Crash safety for qcow, which qemu-img cannot check (CrashTest needs qemu-img check): a writer is
 * SIGKILLed mid-run; the image must open, every flushed operation must read back, and qemu must
 * read the whole image without error and exactly as we do.
 */
class QcowCrashTest {
    @TempDir
    Path dir;

    @Test
    void killedWritersLeaveImagesQemuReadsLikeUs() throws Exception {
        Path base = dir.resolve("base.raw");
        Tools.check("qemu-img", "create", "-q", "-f", "raw", base.toString(), "48M");
        Tools.check("qemu-io", "-f", "raw", "-c", "write -P 0x77 0 48M", base.toString());
        Random rnd = new Random(31);
        for (int i = 0; i < CrashTest.kills(); i++) {
            boolean backed = i % 2 == 1;
            Path img = dir.resolve("crash-" + i + ".qcow");
            Create.create(img, new QcowFormat(), 48 << 20, Map.of(), backed ? "base.raw" : null, backed ? "raw" : null);
            long seed = rnd.nextLong() & Long.MAX_VALUE;
            int flushed = killMidway(img, seed, 100 + rnd.nextInt(1200));
            verify(img, seed, flushed, "kill " + i + " (seed " + seed + ", backed " + backed + ")");
        }
    }

    private static int killMidway(Path image, long seed, long afterMillis) throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process p = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"), CrashWriter.class.getName(),
                image.toString(), "qcow", Long.toString(seed)).redirectErrorStream(true).start();
        AtomicInteger last = new AtomicInteger(-1);
        Thread reader = new Thread(() -> {
            try (BufferedReader in = new BufferedReader(new InputStreamReader(p.getInputStream()))) {
                for (String line; (line = in.readLine()) != null; ) {
                    if (line.startsWith("FLUSHED ")) last.set(Integer.parseInt(line.substring(8)));
                }
            } catch (Exception ignored) {
                // the stream ends when the child is killed
            }
        });
        reader.start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (last.get() < 0 && p.isAlive() && System.nanoTime() < deadline) Thread.sleep(5);
        Thread.sleep(afterMillis);
        p.destroyForcibly(); // SIGKILL
        p.waitFor(30, TimeUnit.SECONDS);
        reader.join(10_000);
        assertTrue(last.get() >= 0, "the writer never flushed");
        return last.get();
    }

    private void verify(Path image, long seed, int flushed, String what) throws Exception {
        CrashPlan plan = new CrashPlan(seed);
        byte[] ours;
        try (DiskImage d = Images.open(image, OpenOptions.DEFAULTS.withFormat("qcow"))) {
            for (int k = 0; k <= flushed; k++) {
                CrashPlan.Op op = plan.op(k, d.size());
                ByteBuffer got = ByteBuffer.allocate(op.length());
                d.read(got, op.pos());
                assertArrayEquals(op.zero() ? new byte[op.length()] : op.data(), got.array(), what + ": operation " + k + " (flushed) lost");
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
