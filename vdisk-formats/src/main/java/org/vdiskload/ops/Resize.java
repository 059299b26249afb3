package org.vdiskload.ops;

import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.ReferencePolicy;

import java.io.IOException;
import java.nio.file.Path;

/** qemu-img resize: changes an image's virtual size. */
public final class Resize {
    private Resize() {}

    public static void resize(Path path, String format, long newSize, boolean allowShrink) throws IOException {
        resize(path, format, newSize, allowShrink, ReferencePolicy.IMAGE_DIRECTORY);
    }

    /** {@link #resize(Path, String, long, boolean)}, the image's own references (extents) following {@code refs}. */
    public static void resize(Path path, String format, long newSize, boolean allowShrink, ReferencePolicy refs) throws IOException {
        OpenOptions o = OpenOptions.DEFAULTS.withFormat(format).withBacking(false).withWritable(true).withRefs(refs);
        try (DiskImage image = Images.open(path, o)) {
            image.layers().get(0).resize(newSize, allowShrink);
        }
    }
}
