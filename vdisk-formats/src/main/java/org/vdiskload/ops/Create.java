package org.vdiskload.ops;

import org.vdiskload.image.CreateOptions;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.ImageFormat;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenContext;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.error.ImageException;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/** qemu-img create: a new empty image, optionally over a backing file (whose size it takes when none is given). */
public final class Create {
    private Create() {}

    /** @param size the virtual size, or -1 to take the backing file's */
    public static List<Path> create(Path target, ImageFormat format, long size, Map<String, String> options,
                                    String backingFile, String backingFormat) throws IOException {
        if (backingFile != null) {
            // The backing file must open (in the format named, never a guessed one) before we write anything.
            // Only the file itself: its own chain is its business, and may name formats this call does not know.
            Path resolved = OpenContext.resolve(target, backingFile, "backing file");
            OpenOptions o = OpenOptions.DEFAULTS.withFormat(backingFormat).withBacking(false);
            try (DiskImage backing = Images.open(resolved, o)) {
                if (backingFormat == null && !backing.formatName().equals("raw")) {
                    throw ImageException.invalid(target, "backing file " + backingFile + " is a " + backing.formatName()
                            + " image: name its format with -F " + backing.formatName());
                }
                if (backingFormat == null) backingFormat = "raw";
                if (size < 0) size = backing.size();
            }
        }
        if (size < 0) throw ImageException.invalid(target, "a size is required (no backing file to take it from)");
        ImageFormat f = format;
        return f.creator().orElseThrow(() -> ImageException.unsupported(target, "creating " + f.name() + " images is not supported"))
                .create(size, new CreateOptions(target, options, backingFile, backingFormat));
    }
}
