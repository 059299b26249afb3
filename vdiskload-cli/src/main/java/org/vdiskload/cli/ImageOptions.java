package org.vdiskload.cli;

import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;

/** Options every command that opens an image shares. */
final class ImageOptions {
    @Option(names = {"-f", "--format"}, paramLabel = "FMT", description = "Image format; detected from content when not given.")
    String format;

    @Option(names = "--snapshot", paramLabel = "NAME|ID", description = "Read this internal snapshot instead of the active layer.")
    String snapshot;

    @Option(names = "--backing-format", paramLabel = "FMT",
            description = "Format of a backing file the image does not name a format for (old qcow2, qcow).")
    String backingFormat;

    @Mixin AllowRefs allowRefs = new AllowRefs();

    OpenOptions toOpenOptions() throws IOException {
        return OpenOptions.DEFAULTS.withFormat(format).withSnapshot(snapshot).withBackingFormat(backingFormat)
                .withRefs(allowRefs.policy());
    }

    DiskImage open(Path path) throws IOException {
        return Images.open(path, toOpenOptions());
    }
}
