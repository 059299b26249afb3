package org.vdiskload.cli;

import org.vdiskload.image.CreateOptions;
import org.vdiskload.image.DiskImage;
import org.vdiskload.ops.Convert;
import org.vdiskload.ops.RawExport;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code vdiskload convert}: copies an image's content into a new image, as qemu-img convert. */
@Command(name = "convert", description = "Convert an image (with its backing chain) into a new image of any format.")
final class ConvertCommand implements Callable<Integer> {
    @Spec CommandSpec spec;
    @Mixin ImageOptions image;

    @Option(names = "-O", paramLabel = "FMT", defaultValue = "raw", description = "Output format (default: raw).")
    String outputFormat;

    @Option(names = "-o", paramLabel = "OPTIONS", description = "Output format options, key=value[,key=value...].")
    String options;

    @Option(names = "-c", description = "Compress the output (qcow, qcow2; streamOptimized vmdk always is).")
    boolean compress;

    @Option(names = "-n", description = "Write into an existing image instead of creating one.")
    boolean reuse;

    @Option(names = "-p", description = "Show progress.")
    boolean progress;

    @Parameters(index = "0", paramLabel = "SRC")
    Path source;

    @Parameters(index = "1", paramLabel = "DST")
    Path target;

    @Override
    public Integer call() throws IOException {
        var format = Formats.require(spec.commandLine(), outputFormat);
        var opts = CreateOptions.parse(options, target);
        try (DiskImage disk = image.open(source)) {
            var bar = ProgressBar.of(progress, Main.out(spec));
            // Plain raw output has its own sparse fast path; everything else goes through the format's writer.
            if (format.name().equals("raw") && opts.isEmpty() && !compress && !reuse) RawExport.export(disk, target, bar);
            else Convert.convert(disk, new Convert.Target(target, format, opts, compress, reuse), bar);
        }
        return 0;
    }
}
