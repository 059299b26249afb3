package org.vdiskload.ops;

import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;

import java.io.IOException;
import java.nio.file.Path;

/** qemu-img resize: changes an image's virtual size. */
public final class Resize {
    private Resize() {}

    public static void resize(Path path, String format, long newSize, boolean allowShrink) throws IOException {
        OpenOptions o = OpenOptions.DEFAULTS.withFormat(format).withBacking(false).withWritable(true);
        try (DiskImage image = Images.open(path, o)) {
            image.layers().get(0).resize(newSize, allowShrink);
        }
    }
}
