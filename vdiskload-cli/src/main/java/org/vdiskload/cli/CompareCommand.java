package org.vdiskload.cli;

import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.ops.Compare;
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

/** {@code vdiskload compare}: qemu-img compare's messages and exit codes (0 same, 1 different, 2 error). */
@Command(name = "compare", description = "Compare two images' content. Exit 0 identical, 1 different, 2 error.")
final class CompareCommand implements Callable<Integer> {
    static final int EXIT_DIFFERENT = 1;
    static final int EXIT_ERROR = 2;

    @Spec CommandSpec spec;

    @Option(names = "-f", paramLabel = "FMT", description = "Format of the first image.")
    String formatA;

    @Option(names = "-F", paramLabel = "FMT", description = "Format of the second image.")
    String formatB;

    @Option(names = "-p", description = "Show progress.")
    boolean progress;

    @Mixin AllowRefs allowRefs;

    @Parameters(index = "0", paramLabel = "FILE1")
    Path a;

    @Parameters(index = "1", paramLabel = "FILE2")
    Path b;

    @Override
    public Integer call() throws IOException {
        PrintWriter out = Main.out(spec);
        ImageOptions optsA = new ImageOptions();
        optsA.format = formatA;
        optsA.allowRefs = allowRefs;
        ImageOptions optsB = new ImageOptions();
        optsB.format = formatB;
        optsB.allowRefs = allowRefs;
        try (DiskImage da = optsA.open(a); DiskImage db = Images.open(b, optsB.toOpenOptions())) {
            Compare.Result r = Compare.compare(da, db, ProgressBar.of(progress, out));
            if (r.sizesDiffer()) out.println("Warning: Image size mismatch!");
            if (r.identical()) {
                out.println("Images are identical.");
                out.flush();
                return 0;
            }
            out.println("Content mismatch at offset " + r.firstDifference().getAsLong() + "!");
            out.flush();
            return EXIT_DIFFERENT;
        }
    }
}
