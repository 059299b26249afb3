package org.vdiskload.format.vmdk;

import org.vdiskload.image.LayerRun;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Map;

/** One extent of a VMDK disk. Positions are relative to the extent's start in the virtual disk. */
sealed interface VmdkExtent permits FlatExtent, ZeroExtent, SparseExtent {

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
