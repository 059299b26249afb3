package org.vdiskload.cli;

import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.ReferencePolicy;
import org.vdiskload.ops.Resize;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code vdiskload resize FILE [+|-]SIZE}, as qemu-img resize. */
@Command(name = "resize", description = "Change an image's virtual size: SIZE, +SIZE or -SIZE. Shrinking needs --shrink.")
final class ResizeCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Option(names = "-f", paramLabel = "FMT", description = "Image format; detected from content when not given.")
    String format;

    @Option(names = "--shrink", description = "Allow shrinking (only an unallocated tail may be cut off).")
    boolean shrink;

    @Parameters(index = "0", paramLabel = "FILE")
    Path file;

    @Parameters(index = "1", paramLabel = "SIZE")
    String size;

    @Mixin AllowRefs allowRefs;

    @Override
    public Integer call() throws IOException {
        ReferencePolicy refs = allowRefs.policy();
        long newSize;
        if (size.startsWith("+") || size.startsWith("-")) {
            long current;
            try (DiskImage d = Images.open(file, OpenOptions.DEFAULTS.withFormat(format).withBacking(false).withRefs(refs))) {
                current = d.size();
            }
            long delta = Formats.size(spec.commandLine(), size.substring(1));
            newSize = size.startsWith("+") ? Math.addExact(current, delta) : current - delta;
            if (newSize < 0) throw new picocli.CommandLine.ParameterException(spec.commandLine(), "the new size would be negative");
        } else {
            newSize = Formats.size(spec.commandLine(), size);
        }
        Resize.resize(file, format, newSize, shrink, refs);
        Main.out(spec).println("Image resized.");
        return 0;
    }
}
