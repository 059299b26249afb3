package org.vdiskload.image;

import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.file.Path;

/**
 * What a format needs while opening one layer: the options that apply to this layer and a safe way
 * to open the other files the layer refers to (VMDK extents, for instance).
 *
 * @param snapshot   the internal snapshot to open, or null for the active layer (set for the top layer only)
 * @param cacheBytes the metadata-cache budget for this layer
 * @param writable   whether the layer is opened for writing
 * @param flush      whether the files opened for it flush to the disk (see {@link OpenOptions#flush()})
 * @param refs       which files the layer's references may lead to
 * @param repair     opened to be repaired ({@link OpenOptions#repair()})
 * @param fullOverlapCheck  see {@link OpenOptions#fullOverlapCheck()}
 */
public record OpenContext(String snapshot, long cacheBytes, boolean writable, boolean flush, ReferencePolicy refs,
                          boolean repair, boolean fullOverlapCheck) {

    public OpenContext(String snapshot, long cacheBytes, boolean writable) {
        this(snapshot, cacheBytes, writable, true, ReferencePolicy.IMAGE_DIRECTORY, false, false);
    }

    /**
     * Opens a file named inside {@code from}, under {@link #refs}: relative names resolve against
     * {@code from}'s directory; only regular files are accepted. The caller (the layer) owns and closes the result.
     */
    public ImageFile openReference(ImageFile from, String name, String field) throws IOException {
        return refs.open(from.path(), name, field, writable, flush);
    }

    /** Resolves a file name stored in the image at {@code image} against that image's directory. */
    public static Path resolve(Path image, String name, String field) throws ImageException {
        if (name == null || name.isEmpty() || name.indexOf('\0') >= 0) {
            throw ImageException.corrupt(image, ImageException.NO_OFFSET, field, "empty or invalid file name");
        }
        try {
            Path p = Path.of(name);
            if (p.isAbsolute()) return p;
            Path dir = image.toAbsolutePath().getParent();
            return dir == null ? p : dir.resolve(p).normalize();
        } catch (java.nio.file.InvalidPathException e) {
            throw ImageException.corrupt(image, ImageException.NO_OFFSET, field, "invalid file name '" + ReferencePolicy.printable(name) + "'");
        }
    }
}
