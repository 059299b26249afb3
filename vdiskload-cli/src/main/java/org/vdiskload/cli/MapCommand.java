package org.vdiskload.cli;

import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Extent;
import org.vdiskload.ops.ExtentWalker;
import org.vdiskload.text.Printable;
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

/** {@code vdiskload map}: where each byte of the disk lives, in qemu-img map's fields and JSON shape. */
@Command(name = "map", description = "Show which ranges are data (and where they are stored) and which read as zeros.")
final class MapCommand implements Callable<Integer> {
    @Spec CommandSpec spec;
    @Mixin ImageOptions image;

    @Option(names = "--output", paramLabel = "human|json", defaultValue = "human", description = "Output format.")
    OutputFormat output;

    @Parameters(paramLabel = "FILE")
    Path file;

    @Override
    public Integer call() throws IOException {
        PrintWriter out = Main.out(spec);
        try (DiskImage disk = image.open(file)) {
            if (output == OutputFormat.json) {
                boolean[] first = {true};
                ExtentWalker.walk(disk, 0, disk.size(), e -> {
                    out.print(first[0] ? "[" : ",\n");
                    first[0] = false;
                    out.print(json(e));
                });
                out.println(first[0] ? "[]" : "]");
            } else {
                out.printf("%-16s%-16s%-16s%s%n", "Offset", "Length", "Mapped to", "File");
                ExtentWalker.walk(disk, 0, disk.size(), e -> {
                    if (e.kind() == Extent.Kind.DATA) {
                        out.printf("%-16s%-16s%-16s%s%n", hex(e.start()), hex(e.length()), hex(e.fileOffset()), Printable.of(e.file().path().toString()));
                    }
                });
            }
        }
        out.flush();
        return 0;
    }

    /** One entry exactly as qemu-img map --output=json prints it. */
    static String json(Extent e) {
        boolean data = e.kind() != Extent.Kind.ZERO;
        StringBuilder sb = new StringBuilder();
        sb.append("{ \"start\": ").append(e.start())
          .append(", \"length\": ").append(e.length())
          .append(", \"depth\": ").append(e.depth())
          .append(", \"present\": ").append(e.allocated())
          .append(", \"zero\": ").append(!data)
          .append(", \"data\": ").append(data);
        if (e.kind() == Extent.Kind.DATA) sb.append(", \"offset\": ").append(e.fileOffset());
        return sb.append('}').toString();
    }

    private static String hex(long v) {
        return v == 0 ? "0" : "0x" + Long.toHexString(v);
    }
}
