package org.vdiskload.format.vmdk;

import org.vdiskload.image.Beneath;
import org.vdiskload.image.LayerRun;
import org.vdiskload.image.MapChangeListener;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Map;

/**
 * One extent of a VMDK disk. Positions are relative to the extent's start in the virtual disk; writers
 * also get {@code base}, that start, to read what lies beneath for copy-on-write.
 */
sealed interface VmdkExtent permits FlatExtent, ZeroExtent, SparseExtent, SeSparseExtent {

    /** Bytes of virtual disk this extent covers. */
    long size();

    /** The extent file, or null for a ZERO extent. */
    ImageFile file();

    /** The run at {@code pos}: {@code 0 <= pos}, {@code 0 < maxLength}, {@code pos + maxLength <= size()}. */
    LayerRun map(long pos, long maxLength) throws IOException;

    /** Bytes of an ENCODED run. */
    default void readEncoded(ByteBuffer dst, long pos) throws IOException {
        throw new UnsupportedOperationException("extent has no encoded runs");
    }

    /** Fails, before anything changes, where this extent cannot take writes at all. */
    default void requireWritable() throws ImageException {
    }

    /** Writes {@code src} at {@code pos}, all inside this extent. */
    void write(ByteBuffer src, long pos, Beneath beneath, long base) throws IOException;

    /** Makes {@code [pos, pos+length)}, inside this extent, read as zeros. */
    void writeZeroes(long pos, long length, boolean mayUnmap, Beneath beneath, long base) throws IOException;

    /** Where to report the ranges (offsets in this extent) whose map a write changes; extents without tables have none. */
    default void setMapChangeListener(MapChangeListener listener) {
    }

    /** Metadata write-through (see {@code DiskImage.setMetadataWriteThrough}); extents without tables have none to write. */
    default void setMetadataWriteThrough(boolean on) throws IOException {
    }

    /** Makes this extent's writes durable. */
    default void flush() throws IOException {
    }

    /**
     * qemu's check of this extent's tables (vmdk_co_check): the first problem found, or null. {@code base}
     * is the extent's disk offset. Extents without tables have nothing to check.
     */
    default String check(long base) throws IOException {
        return null;
    }

    /** One entry of qemu-img info's "extents" list. */
    Map<String, Object> info();

    /** Grain size in bytes, or 0 for extents without grains (FLAT, ZERO). */
    default long grainSize() {
        return 0;
    }

    default boolean compressed() {
        return false;
    }
}
