package org.vdiskload.image;

import org.vdiskload.io.ImageFile;

/**
 * Where a range of the virtual disk lives. A map is a list of extents covering the asked range
 * completely, in order, without gaps. Every backend (NBD base:allocation, FUSE, the kernel
 * module's extent table) is built from these.
 *
 * @param start      virtual offset
 * @param length     bytes, greater than zero
 * @param kind       what the bytes are
 * @param depth      the layer of the backing chain that decided it: 0 is the image itself
 * @param allocated  whether some layer allocated the range (qemu's "present"); false for a range
 *                   unallocated all the way down the chain, which reads as zeros
 * @param file       for {@link Kind#DATA} (and in-place ZERO): the file holding the bytes; otherwise null
 * @param fileOffset for {@link Kind#DATA} (and in-place ZERO): the offset of {@code start} in {@code file}; otherwise -1
 * @param inPlace    a write here may go straight to {@code file} at {@code fileOffset}: the image is open
 *                   for writing, the range is in the top layer and needs no metadata change. Anything
 *                   else (allocation, copy-on-write from a backing file, compressed data) needs the library.
 */
public record Extent(long start, long length, Kind kind, int depth, boolean allocated, ImageFile file, long fileOffset,
                     boolean inPlace) {

    public enum Kind {
        /** The bytes are stored verbatim at {@code file} + {@code fileOffset}. */
        DATA,
        /** The range reads as zeros. */
        ZERO,
        /** Only the library can produce the bytes: compressed, encrypted, or assembled. */
        NEEDS_LIBRARY
    }

    public Extent {
        if (length <= 0) throw new IllegalArgumentException("extent length " + length);
        if (kind == Kind.DATA && file == null) throw new IllegalArgumentException("DATA needs a file");
        if (inPlace && file == null) throw new IllegalArgumentException("in-place needs a file");
    }

    public static Extent data(long start, long length, int depth, ImageFile file, long fileOffset) {
        return new Extent(start, length, Kind.DATA, depth, true, file, fileOffset, false);
    }

    public static Extent zero(long start, long length, int depth, boolean allocated) {
        return new Extent(start, length, Kind.ZERO, depth, allocated, null, -1, false);
    }

    public static Extent needsLibrary(long start, long length, int depth) {
        return new Extent(start, length, Kind.NEEDS_LIBRARY, depth, true, null, -1, false);
    }

    /** The extent for what layer {@code depth} reported; {@code writable} says whether that layer takes writes. */
    static Extent of(long start, long length, int depth, LayerRun run, boolean writable) {
        boolean inPlace = writable && run.inPlace();
        return switch (run.status()) {
            case DATA -> new Extent(start, length, Kind.DATA, depth, true, run.file(), run.fileOffset(), inPlace);
            case ZERO -> inPlace ? new Extent(start, length, Kind.ZERO, depth, true, run.file(), run.fileOffset(), true)
                    : zero(start, length, depth, true);
            case ENCODED -> needsLibrary(start, length, depth);
            case UNALLOCATED -> throw new IllegalArgumentException("unallocated runs are resolved by the chain");
        };
    }

    public long end() {
        return start + length;
    }

    /** Whether {@code next} continues this extent seamlessly, so the two can be reported as one. */
    public boolean joins(Extent next) {
        if (next.start != end() || next.kind != kind || next.depth != depth || next.allocated != allocated
                || next.inPlace != inPlace || next.file != file) return false;
        return file == null || next.fileOffset == fileOffset + length;
    }

    public Extent joinedWith(Extent next) {
        return new Extent(start, length + next.length, kind, depth, allocated, file, fileOffset, inPlace);
    }
}
