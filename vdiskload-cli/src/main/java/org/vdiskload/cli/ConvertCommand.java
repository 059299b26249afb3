package org.vdiskload.cli;

import org.vdiskload.image.DiskImage;
import org.vdiskload.ops.RawExport;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code vdiskload convert}: copies an image's content into a new image. */
@Command(name = "convert", description = "Convert an image (with its backing chain) into a new image.")
final class ConvertCommand implements Callable<Integer> {
    @Spec CommandSpec spec;
    @Mixin ImageOptions image;

    @Option(names = "-O", paramLabel = "FMT", required = true, description = "Output format: raw.")
    String outputFormat;

    @Option(names = "-p", description = "Show progress.")
    boolean progress;

    @Parameters(index = "0", paramLabel = "SRC")
    Path source;

    @Parameters(index = "1", paramLabel = "DST")
    Path target;

    @Override
    public Integer call() throws IOException {
        if (!outputFormat.equals("raw")) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "output format '" + outputFormat + "' is not supported (supported: raw)");
        }
        try (DiskImage disk = image.open(source)) {
            RawExport.export(disk, target, ProgressBar.of(progress, Main.out(spec)));
        }
        return 0;
    }
}
