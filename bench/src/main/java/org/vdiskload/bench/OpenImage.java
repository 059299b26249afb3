package org.vdiskload.bench;

import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The image every benchmark reads, opened once per trial and shared by all benchmark threads (reads
 * are positional and thread-safe). Which image: JMH's {@code -p image=PATH -p format=FMT}, else the
 * system properties {@code vdiskload.bench.image} and {@code vdiskload.bench.format}. An empty
 * format means "detect from content", as the CLI does without {@code -f}.
 */
@State(Scope.Benchmark)
public class OpenImage {
    public static final String IMAGE_PROPERTY = "vdiskload.bench.image";
    public static final String FORMAT_PROPERTY = "vdiskload.bench.format";

    @Param("")
    public String image;

    @Param("")
    public String format;

    DiskImage disk;

    @Setup(Level.Trial)
    public void open() throws IOException {
        String path = choose(image, IMAGE_PROPERTY);
        String fmt = choose(format, FORMAT_PROPERTY);
        if (path.isEmpty()) {
            throw new IllegalStateException("no image to read: pass -p image=PATH [-p format=FMT] to JMH, or -D"
                    + IMAGE_PROPERTY + "=PATH [-D" + FORMAT_PROPERTY + "=FMT] (bench/README.md)");
        }
        if (!Files.isRegularFile(Path.of(path))) throw new IllegalStateException(path + ": no such image file");
        if (!fmt.isEmpty() && Images.byName(fmt).isEmpty()) {
            throw new IllegalStateException("skipped: " + fmt + " reader not available");
        }
        disk = Images.open(Path.of(path), OpenOptions.DEFAULTS.withFormat(fmt.isEmpty() ? null : fmt));
    }

    @TearDown(Level.Trial)
    public void close() throws IOException {
        if (disk != null) disk.close();
    }

    private static String choose(String param, String property) {
        if (param != null && !param.isEmpty()) return param;
        return System.getProperty(property, "");
    }
}
