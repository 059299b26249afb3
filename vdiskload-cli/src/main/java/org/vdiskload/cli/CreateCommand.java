package org.vdiskload.cli;

import org.vdiskload.image.CreateOptions;
import org.vdiskload.ops.Create;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code vdiskload create}: qemu-img create's options. */
@Command(name = "create", description = "Create a new, empty image (optionally over a backing file).")
final class CreateCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Option(names = "-f", paramLabel = "FMT", defaultValue = "raw", description = "Format (default: raw).")
    String format;

    @Option(names = "-o", paramLabel = "OPTIONS", description = "Format options, key=value[,key=value...].")
    String options;

    @Option(names = "-b", paramLabel = "BACKING", description = "Backing file (relative names are relative to FILE).")
    String backing;

    @Option(names = "-F", paramLabel = "BACKING_FMT", description = "Backing file format.")
    String backingFormat;

    @Option(names = "-q", description = "Quiet (accepted for qemu-img compatibility).")
    boolean quiet;

    @Parameters(index = "0", paramLabel = "FILE")
    Path file;

    @Mixin AllowRefs allowRefs;

    @Parameters(index = "1", paramLabel = "SIZE", arity = "0..1", description = "Virtual size (k, M, G, T suffixes); defaults to the backing file's.")
    String size;

    @Override
    public Integer call() throws IOException {
        long bytes = size == null ? -1 : Formats.size(spec.commandLine(), size);
        Create.create(file, Formats.require(spec.commandLine(), format), bytes, CreateOptions.parse(options, file), backing, backingFormat,
                allowRefs.policy());
        String outside = backing == null ? null : Create.outsideItsDirectory(file, backing);
        if (outside != null) {
            PrintWriter err = spec.commandLine().getErr();
            err.println("vdiskload: warning: " + file + ": opening it will need its backing file allowed: " + outside);
            err.flush();
        }
        return 0;
    }
}
