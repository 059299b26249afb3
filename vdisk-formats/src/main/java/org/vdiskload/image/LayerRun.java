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
 * @param inPlace    whether a write to this run may go straight to {@code file} at {@code fileOffset}
 *                   with no metadata change (an allocated, unshared, uncompressed cluster; a raw file's
 *                   hole). False for anything that needs allocation, copy-on-write, a bitmap update...
 *                   The kernel module and other fast paths rely on it: when in doubt, false.
 */
public record LayerRun(long length, Status status, ImageFile file, long fileOffset, boolean inPlace) {

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
        if (status == Status.DATA && file == null) throw new IllegalArgumentException("DATA needs a file");
        if (inPlace && file == null) throw new IllegalArgumentException("in-place needs a file");
        if (file != null && status != Status.DATA && !(status == Status.ZERO && inPlace)) {
            throw new IllegalArgumentException("a file only for DATA or in-place ZERO");
        }
    }

    /** A run not writable in place (the safe default). */
    public LayerRun(long length, Status status, ImageFile file, long fileOffset) {
        this(length, status, file, fileOffset, false);
    }

    public static LayerRun data(long length, ImageFile file, long fileOffset) {
        return new LayerRun(length, Status.DATA, file, fileOffset, false);
    }

    /** Data that may be overwritten in place: allocated, unshared, uncompressed. */
    public static LayerRun dataInPlace(long length, ImageFile file, long fileOffset) {
        return new LayerRun(length, Status.DATA, file, fileOffset, true);
    }

    public static LayerRun zero(long length) {
        return new LayerRun(length, Status.ZERO, null, -1, false);
    }

    /** Zeros that may be overwritten in place at {@code file}+{@code fileOffset} (a hole in a raw file). */
    public static LayerRun zeroInPlace(long length, ImageFile file, long fileOffset) {
        return new LayerRun(length, Status.ZERO, file, fileOffset, true);
    }

    public static LayerRun encoded(long length) {
        return new LayerRun(length, Status.ENCODED, null, -1, false);
    }

    public static LayerRun unallocated(long length) {
        return new LayerRun(length, Status.UNALLOCATED, null, -1, false);
    }
}
