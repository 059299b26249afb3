package org.vdiskload.testing.fuzz;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * A fuzz target's working directory for the life of the JVM: on tmpfs where there is one (a file is written
 * for every execution), removed at exit. Targets keep fixed companion files here (backing files, extents,
 * layout sources) beside the file each execution rewrites.
 */
public final class Sandbox {
    private final Path dir;

    private Sandbox(Path dir) {
        this.dir = dir;
    }

    /** A fresh directory named after the target. */
    public static Sandbox create(String name) {
        try {
            Path shm = Path.of("/dev/shm");
            Path base = Files.isDirectory(shm) && Files.isWritable(shm) ? shm : Path.of(System.getProperty("java.io.tmpdir"));
            Path dir = Files.createTempDirectory(base, "vdl-fuzz-" + name + "-");
            Runtime.getRuntime().addShutdownHook(new Thread(() -> delete(dir)));
            return new Sandbox(dir);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public Path dir() {
        return dir;
    }

    public Path path(String name) {
        return dir.resolve(name);
    }

    /** Writes a companion file. */
    public Path put(String name, byte[] content) throws IOException {
        Path p = dir.resolve(name);
        Files.createDirectories(p.getParent());
        Files.write(p, content);
        return p;
    }

    /** Removes everything but the names given (what an execution may have left behind). */
    public void clearExcept(java.util.Set<String> keep) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            for (Path p : (Iterable<Path>) s::iterator) {
                if (!keep.contains(p.getFileName().toString())) delete(p);
            }
        }
    }

    static void delete(Path root) {
        if (!Files.exists(root)) return;
        try (Stream<Path> s = Files.walk(root)) {
            s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException ignored) {
            // best effort at exit
        }
    }
}
