package org.vdiskload.image;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/** Makes new, empty images of one format (qemu-img create). */
public interface ImageCreator {
    /**
     * Checks the options and writes a new image of {@code size} bytes reading as zeros (or as its
     * backing file), replacing {@code options.target()}. Options are validated before anything is
     * written. Returns every file it wrote (descriptor first), so a failed convert can remove them.
     */
    List<Path> create(long size, CreateOptions options) throws IOException;
}
