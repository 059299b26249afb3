package org.vdiskload.image;

import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.util.List;

/**
 * A disk-image format: adding one is adding a package and a line in the list of formats
 * ({@code org.vdiskload.formats.Formats}). Detection is by content only.
 */
public interface ImageFormat {
    /** A probe score for a sure match by magic number. */
    int MAGIC = 100;
    /** The score raw gives every file: anything is a raw image. */
    int FALLBACK = 1;

    /** qemu's name for the format ("qcow2", "vpc", ...). */
    String name();

    /** Other names users may type ({@code vhd} for {@code vpc}). */
    default List<String> aliases() {
        return List.of();
    }

    /** 0 if the bytes are not this format; higher is surer. Must not throw on any input. */
    int probe(ProbeData data);

    /** Opens one layer. The file was opened by the caller; on failure the caller closes it. */
    ImageLayer open(ImageFile file, OpenContext context) throws IOException;

    /**
     * A warning about {@code file}, which detection found to be {@code detected} (another format, or this one),
     * or null: what a user should know although nothing failed (a layout's JSON without its marker, read as raw).
     */
    default String probeWarning(ImageFile file, ImageFormat detected) throws IOException {
        return null;
    }

    /**
     * The one format a backing file of this format's images can have, or null where it may have several: a
     * differencing VDI's parent is a VDI, so {@code create -b} needs no {@code -F} for it.
     */
    default String onlyBackingFormat() {
        return null;
    }

    /** Makes new images of this format, if it can. */
    default java.util.Optional<ImageCreator> creator() {
        return java.util.Optional.empty();
    }
}
