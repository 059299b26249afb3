package org.vdiskload.format.vhd;

import org.vdiskload.testing.Tools;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/** testdata/vhd.sh's images, generated once per test JVM for the test classes that only read them. */
final class VhdTestData {
    private static Path dir;

    private VhdTestData() {}

    static synchronized Path dir() throws IOException, InterruptedException {
        if (dir == null) {
            Path d = Files.createTempDirectory("vhd-testdata");
            Runtime.getRuntime().addShutdownHook(new Thread(() -> delete(d)));
            Tools.generate("vhd.sh", d);
            dir = d;
        }
        return dir;
    }

    private static void delete(Path d) {
        try (Stream<Path> s = Files.walk(d)) {
            s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            // best effort at exit
        }
    }
}
