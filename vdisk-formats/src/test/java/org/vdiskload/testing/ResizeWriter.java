package org.vdiskload.testing;

import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.ops.Resize;

import java.nio.file.Path;

/**
 * The child process of a resize crash test: grows an image through a list of sizes, printing
 * {@code START} (once its classes are loaded) before the first and {@code RESIZED i} after each completed resize, until it is killed.
 *   java ... ResizeWriter IMAGE FORMAT SIZE...
 */
public final class ResizeWriter {
    private ResizeWriter() {}

    public static void main(String[] args) throws Exception {
        Path image = Path.of(args[0]);
        // Load the classes first (a resize to the current size opens the image for writing and stops),
        // so the kill instants after START fall into the resizing itself.
        long size;
        try (DiskImage d = Images.open(image, OpenOptions.DEFAULTS.withFormat(args[1]))) {
            size = d.size();
        }
        Resize.resize(image, args[1], size, false);
        System.out.println("START");
        System.out.flush();
        for (int i = 2; i < args.length; i++) {
            Resize.resize(image, args[1], Long.parseLong(args[i]), false);
            System.out.println("RESIZED " + (i - 2));
            System.out.flush();
        }
        System.out.println("DONE");
        System.out.flush();
    }
}
