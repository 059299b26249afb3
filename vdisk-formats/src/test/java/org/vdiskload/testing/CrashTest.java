package org.vdiskload.testing;

import org.vdiskload.check.CheckReport;
import org.vdiskload.check.RepairMode;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.ops.Check;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Crash safety: a child JVM ({@link CrashWriter}) writes and flushes; it is killed with SIGKILL at a
 * random instant. Afterwards qemu-img check must find no corruption (leaks are allowed), the library's
 * check -r leaks must leave it clean, and every operation before the last completed flush must read back.
 * Where qemu has no checks for the format (qemu-img check exits 63), the library's check must find no
 * corruption before the repair and none of any kind after it, and qemu must read the flushed operations too.
 */
public final class CrashTest {
    private CrashTest() {}

    /** Kills per format: a few in the quick run, 50 in the long run (VDISKLOAD_LONG=1). */
    public static int kills() {
        return Tools.longRun() ? 50 : 4;
    }

    /**
     * @param fresh makes a new empty (or backed) image at the path it is given, in {@code format}
     */
    public static void run(Path dir, String format, ImageFactory fresh, long seed) throws Exception {
        run(dir, format, fresh, seed, false);
    }

    /**
     * @param metadataLog the format journals its metadata (VHDX): a kill after a log entry is complete and
     *                    before it is applied leaves a log that must be replayed, which is the format's crash
     *                    recovery, not corruption. qemu refuses to open such an image read-only, so its check
     *                    runs on a copy with {@code -r all} (qemu replays the log), and that copy must read as
     *                    this library's own read-only replay does.
     */
    public static void run(Path dir, String format, ImageFactory fresh, long seed, boolean metadataLog) throws Exception {
        run(dir, format, fresh, seed, metadataLog, true);
    }

    /**
     * For images qemu cannot open at all (a differencing VHDX, in qemu 7.2): the library's check must find no
     * corruption after the kill and none of any kind after {@code check -r leaks}, and the flushed operations
     * must read back through the library.
     */
    public static void runWithoutQemu(Path dir, String format, ImageFactory fresh, long seed) throws Exception {
        run(dir, format, fresh, seed, false, false);
    }

    private static void run(Path dir, String format, ImageFactory fresh, long seed, boolean metadataLog, boolean qemuOpens)
            throws Exception {
        run(dir, format, fresh, seed, metadataLog, qemuOpens, false);
    }

    /**
     * With metadata write-through ({@code DiskImage.setMetadataWriteThrough}) and no flush at all: after the
     * kill, every operation that had returned must read back, and the image check as after any kill.
     * {@code metadataLog} and {@code qemuOpens} as in {@link #run(Path, String, ImageFactory, long, boolean)}.
     */
    public static void runWriteThrough(Path dir, String format, ImageFactory fresh, long seed, boolean metadataLog, boolean qemuOpens)
            throws Exception {
        run(dir, format, fresh, seed, metadataLog, qemuOpens, true);
    }

    private static void run(Path dir, String format, ImageFactory fresh, long seed, boolean metadataLog, boolean qemuOpens,
                            boolean writeThrough) throws Exception {
        Random rnd = new Random(seed);
        for (int i = 0; i < kills(); i++) {
            Path image = dir.resolve("crash-" + i + "." + format);
            fresh.make(image);
            long runSeed = rnd.nextLong() & Long.MAX_VALUE;
            int last = killMidway(image, format, runSeed, 100 + rnd.nextInt(1500), writeThrough);
            String what = (writeThrough ? "write-through kill " : "kill ") + i + " (seed " + runSeed + ", last "
                    + (writeThrough ? "written " : "flushed ") + last + ")";
            verify(image, format, new CrashPlan(runSeed), last, what, metadataLog, qemuOpens);
        }
    }

    @FunctionalInterface
    public interface ImageFactory {
        void make(Path image) throws Exception;
    }

    /** qemu-img check -r all on a copy (qemu replays the log); the copy must then read as our replay of the original. */
    private static Tools.Result checkReplayedByQemu(Path image, String format, String what) throws Exception {
        Path copy = image.resolveSibling(image.getFileName() + ".qemu-replayed");
        Path raw = image.resolveSibling(image.getFileName() + ".qemu-replayed.raw");
        try {
            Files.copy(image, copy, StandardCopyOption.REPLACE_EXISTING);
            Tools.Result replayed = Tools.run(List.of("qemu-img", "check", "-r", "all", "-f", format, copy.toString()), null);
            Tools.check("qemu-img", "convert", "-f", format, "-O", "raw", copy.toString(), raw.toString());
            try (DiskImage d = Images.open(image, OpenOptions.DEFAULTS.withFormat(format))) {
                assertArrayEquals(Files.readAllBytes(raw), WriteTorture.readAll(d), what + ": our replay of the log differs from qemu's");
            }
            return replayed;
        } finally {
            Files.deleteIfExists(copy);
            Files.deleteIfExists(raw);
        }
    }

    /**
     * Runs a {@link CrashWriter} on {@code image} and kills it {@code afterMillis} after its first report;
     * returns the last operation it reported flushed (or, {@code writeThrough}, written).
     */
    public static int killMidway(Path image, String format, long seed, long afterMillis, boolean writeThrough) throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> command = new java.util.ArrayList<>(List.of(java, "-cp", System.getProperty("java.class.path"),
                CrashWriter.class.getName(), image.toString(), format, Long.toString(seed)));
        if (writeThrough) command.add("write-through");
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String mark = writeThrough ? "WROTE " : "FLUSHED ";
        AtomicInteger last = new AtomicInteger(-1);
        StringBuilder other = new StringBuilder();
        Thread reader = new Thread(() -> {
            try (BufferedReader in = new BufferedReader(new InputStreamReader(p.getInputStream()))) {
                for (String line; (line = in.readLine()) != null; ) {
                    if (line.startsWith(mark)) last.set(Integer.parseInt(line.substring(mark.length())));
                    else if (!line.equals("DONE")) other.append(line).append('\n');
                }
            } catch (Exception ignored) {
                // the stream ends when the child is killed
            }
        });
        reader.start();
        // Wait for the child to start writing, then let it run a random while.
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (last.get() < 0 && p.isAlive() && System.nanoTime() < deadline) Thread.sleep(5);
        Thread.sleep(afterMillis);
        p.destroyForcibly(); // SIGKILL
        p.waitFor(30, TimeUnit.SECONDS);
        reader.join(10_000);
        assertTrue(last.get() >= 0, "the writer never " + (writeThrough ? "wrote" : "flushed") + ": " + other);
        return last.get();
    }

    private static final java.util.regex.Pattern VDI_MISMATCH =
            java.util.regex.Pattern.compile("ERROR: allocated blocks mismatch, is (\\d+), should be (\\d+)");

    /**
     * A VDI whose blocks_allocated counts more blocks than its map names: what a crash between a new block's
     * count and its map entry leaves when they lie in different pages (VdiWriter). qemu's vdi check has no
     * notion of leaks and calls it a corruption; it is one only if our check finds more than those leaks.
     */
    private static boolean vdiLeak(Path image, String format, Tools.Result qemu) throws Exception {
        if (!format.equals("vdi") || qemu.exit() != 2) return false;
        String out = qemu.stdout() + qemu.stderr();
        java.util.regex.Matcher m = VDI_MISMATCH.matcher(out);
        if (!m.find() || out.split("ERROR", -1).length != 2) return false;
        long referenced = Long.parseLong(m.group(1)), allocated = Long.parseLong(m.group(2));
        CheckReport ours = Check.check(image, format, RepairMode.NONE);
        return referenced < allocated && ours.corruptions() == 0 && ours.leaks() == allocated - referenced;
    }

    /** qemu-img convert -O raw of the image holds every flushed operation. */
    private static void qemuReadsFlushed(Path image, String format, CrashPlan plan, int lastFlushed, String what) throws Exception {
        Path raw = Files.createTempFile(image.getParent(), "qemu", ".raw");
        try {
            Tools.check("qemu-img", "convert", "-f", format, "-O", "raw", image.toString(), raw.toString());
            try (FileChannel ch = FileChannel.open(raw)) {
                for (int k = 0; k <= lastFlushed; k++) {
                    CrashPlan.Op op = plan.op(k, ch.size());
                    ByteBuffer got = ByteBuffer.allocate(op.length());
                    while (got.hasRemaining() && ch.read(got, op.pos() + got.position()) >= 0) { }
                    byte[] want = op.zero() ? new byte[op.length()] : op.data();
                    assertArrayEquals(want, got.array(), what + ": operation " + k + " (completed before the crash) not read by qemu");
                }
            }
        } finally {
            Files.deleteIfExists(raw);
        }
    }

    /**
     * The checks after a kill (or a power cut, {@link PowerCut}): no corruption by qemu-img check or ours, clean
     * after check -r leaks, and operations 0..lastFlushed of {@code plan} read back.
     */
    static void verify(Path image, String format, CrashPlan plan, int lastFlushed, String what, boolean metadataLog,
                       boolean qemuOpens) throws Exception {
        boolean qemuChecks = false;
        if (qemuOpens) {
            Tools.Result before = Tools.run(List.of("qemu-img", "check", "-f", format, image.toString()), null);
            if (metadataLog && before.exit() == 1 && before.stderr().contains("needs to be replayed")) {
                before = checkReplayedByQemu(image, format, what);
            }
            qemuChecks = before.exit() != 63;
            if (qemuChecks && !vdiLeak(image, format, before)) {
                assertTrue(before.exit() == 0 || before.exit() == 3, what + ": qemu-img check after the kill found corruption: "
                        + before.stdout() + before.stderr());
            }
        }
        if (!qemuChecks) {
            CheckReport found = Check.check(image, format, RepairMode.NONE);
            assertEquals(0, found.corruptions(), what + ": vdiskload check after the kill: " + found);
        }
        CheckReport repaired = Check.check(image, format, RepairMode.LEAKS);
        assertEquals(0, repaired.corruptions(), what + ": vdiskload check -r leaks: " + repaired);
        if (qemuChecks) {
            Tools.Result after = Tools.run(List.of("qemu-img", "check", "-f", format, image.toString()), null);
            assertEquals(0, after.exit(), what + ": qemu-img check after check -r leaks: " + after.stdout() + after.stderr());
        } else {
            CheckReport again = Check.check(image, format, RepairMode.NONE);
            assertTrue(again.clean(), what + ": vdiskload check after check -r leaks: " + again);
            if (qemuOpens) qemuReadsFlushed(image, format, plan, lastFlushed, what);
        }
        try (DiskImage d = Images.open(image, OpenOptions.DEFAULTS.withFormat(format))) {
            for (int k = 0; k <= lastFlushed; k++) {
                CrashPlan.Op op = plan.op(k, d.size());
                ByteBuffer got = ByteBuffer.allocate(op.length());
                d.read(got, op.pos());
                byte[] want = op.zero() ? new byte[op.length()] : op.data();
                assertArrayEquals(want, got.array(), what + ": operation " + k + " (completed before the crash) lost");
            }
        }
    }
}
