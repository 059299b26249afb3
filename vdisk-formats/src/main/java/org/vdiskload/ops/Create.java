package org.vdiskload.ops;

import org.vdiskload.image.CreateOptions;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.ImageFormat;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenContext;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.ReferencePolicy;
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
        return create(target, format, size, options, backingFile, backingFormat, ReferencePolicy.IMAGE_DIRECTORY);
    }

    /**
     * {@link #create(Path, ImageFormat, long, Map, String, String)}, the backing file's own references (its
     * extents) following {@code refs}. The backing file itself is the user's to name: it is not judged here
     * (see {@link #outsideItsDirectory}).
     */
    public static List<Path> create(Path target, ImageFormat format, long size, Map<String, String> options,
                                    String backingFile, String backingFormat, ReferencePolicy refs) throws IOException {
        if (backingFile != null) {
            if (backingFormat == null) backingFormat = format.onlyBackingFormat();
            // The backing file must open (in the format named, never a guessed one) before we write anything.
            // Only the file itself: its own chain is its business, and may name formats this call does not know.
            Path resolved = OpenContext.resolve(target, backingFile, "backing file");
            OpenOptions o = OpenOptions.DEFAULTS.withFormat(backingFormat).withBacking(false).withRefs(refs);
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

    /**
     * Why the image {@code target} needs its backing file allowed to open ({@code --allow-refs}): the backing
     * file lies outside its directory; null if it lies inside (or is not there).
     */
    public static String outsideItsDirectory(Path target, String backingFile) throws IOException {
        ReferencePolicy.Target t = ReferencePolicy.resolve(target, backingFile, "backing file");
        String why = t.real() == null ? null : ReferencePolicy.IMAGE_DIRECTORY.refusal(target, t.real());
        return why == null ? null : "backing file \"" + ReferencePolicy.printable(backingFile) + "\" " + why;
    }
}
