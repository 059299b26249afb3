package org.vdiskload.cli;

import org.vdiskload.image.CreateOptions;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.ImageFormat;
import org.vdiskload.image.Images;
import org.vdiskload.ops.Convert;
import org.vdiskload.ops.RawExport;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
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
        return run(Formats.require(spec.commandLine(), outputFormat), Main.out(spec));
    }

    private int run(ImageFormat format, PrintWriter out) throws IOException {
        var opts = CreateOptions.parse(options, target);
        var open = image.toOpenOptions();
        try (DiskImage disk = Images.open(source, open)) {
            var bar = ProgressBar.of(progress, out);
            // Plain raw output has its own sparse fast path; everything else goes through the format's writer.
            if (format.name().equals("raw") && opts.isEmpty() && !compress && !reuse) RawExport.export(disk, target, bar);
            else Convert.convert(disk, new Convert.Target(target, format, opts, compress, reuse, open.refs()), bar);
        }
        return 0;
    }

    /**
     * Runs {@code convert} without picocli when {@code args} are in qemu-img's plain form: {@code convert},
     * then only {@code -f/--format, -O, -o, --snapshot, --backing-format} each with a separate value
     * and at most once, {@code --allow-refs} with a separate value any number of times, {@code -c, -n, -p}
     * on their own, and the two files. Building picocli's model
     * is a tenth of a second of CPU, a tenth of what qemu-img takes for a whole 1 GiB convert. Anything
     * else (help, an unknown, repeated or combined option, a missing value, an unknown output format,
     * an @argument file) gives null: picocli then parses and reports it as usual.
     */
    static Integer runPlain(String[] args, PrintWriter out, PrintWriter err) {
        ConvertCommand c = parsePlain(args);
        if (c == null) return null;
        try {
            return c.run(Images.byName(c.outputFormat).orElseThrow(), out);
        } catch (Exception e) {
            return Errors.report(e, err);
        }
    }

    /** The command {@code args} describe in the plain form (see {@link #runPlain}), or null. */
    static ConvertCommand parsePlain(String[] args) {
        if (args.length == 0 || !args[0].equals("convert")) return null;
        ConvertCommand c = new ConvertCommand();
        c.image = new ImageOptions();
        Set<String> seen = new HashSet<>();
        List<String> files = new ArrayList<>();
        for (int i = 1; i < args.length; i++) {
            String a = args[i];
            if (a.startsWith("@")) return null;
            if (!a.startsWith("-")) {
                files.add(a);
                continue;
            }
            String key = a.equals("--format") ? "-f" : a;
            if (key.equals("--allow-refs")) {
                if (++i == args.length || args[i].startsWith("-") || args[i].startsWith("@")) return null;
                try {
                    c.image.allowRefs.directories.add(Path.of(args[i]));
                } catch (InvalidPathException e) {
                    return null;
                }
                continue;
            }
            if (!seen.add(key)) return null;
            switch (key) {
                case "-c" -> c.compress = true;
                case "-n" -> c.reuse = true;
                case "-p" -> c.progress = true;
                case "-f", "-O", "-o", "--snapshot", "--backing-format" -> {
                    if (++i == args.length || args[i].startsWith("-") || args[i].startsWith("@")) return null;
                    String v = args[i];
                    switch (key) {
                        case "-f" -> c.image.format = v;
                        case "-O" -> c.outputFormat = v;
                        case "-o" -> c.options = v;
                        case "--snapshot" -> c.image.snapshot = v;
                        default -> c.image.backingFormat = v;
                    }
                }
                default -> {
                    return null;
                }
            }
        }
        if (c.outputFormat == null) c.outputFormat = "raw";
        if (files.size() != 2 || Images.byName(c.outputFormat).isEmpty()) return null;
        try {
            c.source = Path.of(files.get(0));
            c.target = Path.of(files.get(1));
        } catch (InvalidPathException e) {
            return null;
        }
        return c;
    }
}
