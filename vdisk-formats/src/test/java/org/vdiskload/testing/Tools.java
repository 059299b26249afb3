package org.vdiskload.testing;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Runs the independent tools (qemu-img, libvhdi's vhdiinfo, testdata scripts) the tests compare against. */
public final class Tools {
    private Tools() {}

    /** The repository root (set by the build; falls back to walking up from the working directory). */
    public static Path repo() {
        String p = System.getProperty("vdiskload.repo");
        if (p != null && Files.isDirectory(Path.of(p, "testdata"))) return Path.of(p);
        Path cwd = Path.of("").toAbsolutePath();
        for (Path d = cwd; d != null; d = d.getParent()) if (Files.isDirectory(d.resolve("testdata"))) return d;
        throw new IllegalStateException("cannot find the repository root from " + cwd);
    }

    /** Whether the long suites were asked for (-Dvdiskload.long=true, VDISKLOAD_LONG=1 ./run-tests). */
    public static boolean longRun() {
        return Boolean.getBoolean("vdiskload.long");
    }

    public record Result(int exit, String stdout, String stderr) {
        public Result requireSuccess(List<String> cmd) {
            if (exit != 0) throw new AssertionError(String.join(" ", cmd) + " failed (exit " + exit + "): " + stderr + stdout);
            return this;
        }
    }

    /** Runs a command, failing the test if it does not finish within 10 minutes. */
    public static Result run(List<String> cmd, Path workDir) throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder(cmd);
        if (workDir != null) pb.directory(workDir.toFile());
        Path out = Files.createTempFile("vdl-out", ".txt");
        Path err = Files.createTempFile("vdl-err", ".txt");
        try {
            pb.redirectOutput(out.toFile()).redirectError(err.toFile()).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
            Process p = pb.start();
            if (!p.waitFor(10, TimeUnit.MINUTES)) {
                p.destroyForcibly();
                throw new AssertionError(String.join(" ", cmd) + " did not finish in 10 minutes");
            }
            return new Result(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8), Files.readString(err, StandardCharsets.UTF_8));
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
        }
    }

    /** Runs a command that must succeed; returns its stdout. */
    public static String check(String... cmd) throws IOException, InterruptedException {
        return run(List.of(cmd), null).requireSuccess(List.of(cmd)).stdout();
    }

    /**
     * Unmounts {@code mountPoint}, retrying for a few seconds while it is busy: tests run in parallel in
     * one JVM, and a process another test spawns holds copies of every open descriptor — a file just
     * written on this mount included — until it execs and closes them.
     */
    public static void umount(Path mountPoint) throws IOException, InterruptedException {
        List<String> cmd = List.of("umount", mountPoint.toString());
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        Result r;
        while ((r = run(cmd, null)).exit() != 0 && r.stderr().contains("target is busy") && System.nanoTime() < deadline) {
            Thread.sleep(100);
        }
        r.requireSuccess(cmd);
    }

    /** What libvhdi's vhdimount shows for {@code image}, the top of a chain of {@code depth} files. */
    public static byte[] vhdimount(Path image, int depth) throws Exception {
        return vhdimount(image, depth, -1);
    }

    /** The first {@code length} bytes (all of them if negative) vhdimount shows for {@code image}, the top of a chain of {@code depth} files. */
    public static byte[] vhdimount(Path image, int depth, long length) throws Exception {
        Path mnt = Files.createTempDirectory("vhdimount");
        try {
            check("vhdimount", image.toString(), mnt.toString());
            try (FileChannel ch = FileChannel.open(mnt.resolve("vhdi" + depth))) {
                ByteBuffer b = ByteBuffer.allocate((int) (length < 0 ? ch.size() : length));
                while (b.hasRemaining() && ch.read(b, b.position()) >= 0) { }
                return b.array();
            } finally {
                umount(mnt);
            }
        } finally {
            Files.delete(mnt);
        }
    }

    /**
     * Runs {@code testdata/SCRIPT DIR}; the script writes its images into DIR and lists them in
     * DIR/images.txt, one per line: {@code FILE FORMAT [FLAGS...]} (FILE relative to DIR).
     */
    public static List<GeneratedImage> generate(String script, Path dir) throws IOException, InterruptedException {
        List<String> cmd = List.of("sh", repo().resolve("testdata").resolve(script).toString(), dir.toString());
        run(cmd, dir).requireSuccess(cmd);
        List<GeneratedImage> images = new ArrayList<>();
        for (String line : Files.readAllLines(dir.resolve("images.txt"))) {
            line = line.trim();
            if (line.isEmpty() || line.startsWith("#")) continue;
            String[] f = line.split("\\s+");
            images.add(new GeneratedImage(dir.resolve(f[0]), f[1], List.of(f).subList(2, f.length)));
        }
        return images;
    }

    /**
     * One generated image. Flags: {@code no-map} (qemu reports no block status for it: skip the map
     * comparison), {@code backing-format=FMT} (open with that backing format option),
     * {@code snapshot=NAME} (read that internal snapshot; qemu's -l is the oracle).
     */
    public record GeneratedImage(Path path, String format, List<String> flags) {
        public boolean has(String flag) {
            return flags.contains(flag);
        }

        public String flag(String key) {
            for (String f : flags) if (f.startsWith(key + "=")) return f.substring(key.length() + 1);
            return null;
        }

        @Override
        public String toString() {
            return path.getFileName() + (flags.isEmpty() ? "" : " " + flags);
        }
    }
}
