package org.vdiskload.image;

import org.vdiskload.io.ImageFile;

/**
 * What one layer (one image file, without its backing chain) says about a run of bytes starting
 * at the position it was asked about. Formats answer with the longest run they can cheaply tell.
 *
 * @param length     bytes, greater than zero
 * @param status     what this layer holds there
 * @param file       for {@link Status#DATA}: the file holding the bytes
 * @param fileOffset for {@link Status#DATA}: where the run starts in {@code file}
 */
public record LayerRun(long length, Status status, ImageFile file, long fileOffset) {

    public enum Status {
        /** Stored verbatim in {@code file} at {@code fileOffset}. */
        DATA,
        /** This layer says: zeros (a zero cluster, a discarded block). */
        ZERO,
        /** This layer holds the bytes in a form only the layer can decode ({@link ImageLayer#readEncoded}). */
        ENCODED,
        /** Not in this layer: read from the backing file, or zeros where there is none. */
        UNALLOCATED
    }

    public LayerRun {
        if (length <= 0) throw new IllegalArgumentException("run length " + length);
        if ((status == Status.DATA) != (file != null)) throw new IllegalArgumentException("file iff DATA");
    }

    public static LayerRun data(long length, ImageFile file, long fileOffset) {
        return new LayerRun(length, Status.DATA, file, fileOffset);
    }

    public static LayerRun zero(long length) {
        return new LayerRun(length, Status.ZERO, null, -1);
    }

    public static LayerRun encoded(long length) {
        return new LayerRun(length, Status.ENCODED, null, -1);
    }

    public static LayerRun unallocated(long length) {
        return new LayerRun(length, Status.UNALLOCATED, null, -1);
    }
}
