package org.vdiskload.testing;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * Runs {@link ResizeWriter} on an image and kills it with SIGKILL a given time after it starts resizing.
 * {@link #uninterrupted} measures how long the whole run takes, so kill instants can be spread over it.
 */
public final class ResizeCrash {
    private ResizeCrash() {}

    /** What the killed child got done. */
    public record Outcome(int lastResized, long resizingNanos, boolean finished) {}

    /** Runs the child to the end: how long it spent resizing (START to DONE). */
    public static long uninterrupted(Path image, String format, long... sizes) throws Exception {
        Outcome o = run(image, format, -1, sizes);
        if (!o.finished()) throw new AssertionError("the resizing child did not finish");
        return o.resizingNanos();
    }

    /**
     * @param killAfterNanos SIGKILL this long after the child printed START; negative: let it finish
     * @return the index of the last size the child reported done (-1: none)
     */
    public static Outcome run(Path image, String format, long killAfterNanos, long... sizes) throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> cmd = new ArrayList<>(List.of(java, "-cp", System.getProperty("java.class.path"),
                ResizeWriter.class.getName(), image.toString(), format));
        for (long s : sizes) cmd.add(Long.toString(s));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        AtomicLong started = new AtomicLong(-1);
        AtomicLong done = new AtomicLong(-1);
        AtomicInteger last = new AtomicInteger(-1);
        StringBuilder other = new StringBuilder();
        Thread reader = new Thread(() -> {
            try (BufferedReader in = new BufferedReader(new InputStreamReader(p.getInputStream()))) {
                for (String line; (line = in.readLine()) != null; ) {
                    if (line.equals("START")) started.set(System.nanoTime());
                    else if (line.startsWith("RESIZED ")) last.set(Integer.parseInt(line.substring(8)));
                    else if (line.equals("DONE")) done.set(System.nanoTime());
                    else other.append(line).append('\n');
                }
            } catch (Exception ignored) {
                // the stream ends when the child is killed
            }
        });
        reader.start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (started.get() < 0 && p.isAlive() && System.nanoTime() < deadline) LockSupport.parkNanos(100_000);
        if (started.get() < 0) throw new AssertionError("the resizing child never started: " + other);
        if (killAfterNanos >= 0) {
            long at = started.get() + killAfterNanos;
            while (System.nanoTime() < at && p.isAlive()) LockSupport.parkNanos(Math.min(200_000, at - System.nanoTime()));
            p.destroyForcibly(); // SIGKILL
        }
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("the resizing child did not end");
        }
        reader.join(10_000);
        boolean finished = done.get() >= 0;
        if (killAfterNanos < 0 && (!finished || p.exitValue() != 0)) throw new AssertionError("resizing failed: " + other);
        return new Outcome(last.get(), finished ? done.get() - started.get() : -1, finished);
    }
}
