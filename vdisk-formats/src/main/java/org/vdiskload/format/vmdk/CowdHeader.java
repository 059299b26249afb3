package org.vdiskload.format.vmdk;

import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.Bytes;
import org.vdiskload.io.ImageFile;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The header of VMware's older sparse extent ("COWD", ESX 2 redo logs, qemu's VMDK3), little-endian,
 * at offset 0. Sizes and offsets are in sectors; its grain tables always hold 4096 entries.
 *
 * @param version      format version
 * @param flags        unused by readers
 * @param capacity     virtual size of the extent
 * @param grainSize    sectors per grain
 * @param gdOffset     grain directory ("l1dir") offset
 * @param gdEntries    grain directory entries
 */
record CowdHeader(long version, long flags, long capacity, long grainSize, long gdOffset, long gdEntries) {
    static final int SIZE = 44;
    static final byte[] MAGIC = {'C', 'O', 'W', 'D'};
    static final int GTES_PER_GT = 4096;

    static CowdHeader parse(ByteBuffer b, ImageFile f) throws ImageException {
        b = b.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < MAGIC.length; i++) {
            if (b.get(i) != MAGIC[i]) throw ImageException.corrupt(f.path(), 0, "magic", "not a COWD sparse extent (no COWD magic)");
        }
        CowdHeader h = new CowdHeader(Bytes.u32(b.getInt(4)), Bytes.u32(b.getInt(8)), Bytes.u32(b.getInt(12)),
                Bytes.u32(b.getInt(16)), Bytes.u32(b.getInt(20)), Bytes.u32(b.getInt(24)));
        if (h.grainSize == 0 || h.grainSize > SparseHeader.MAX_GRAIN_SECTORS) {
            throw ImageException.corrupt(f.path(), 16, "granularity",
                    "grain size of " + h.grainSize + " sectors is out of range (1.." + SparseHeader.MAX_GRAIN_SECTORS + ")");
        }
        if (h.gdOffset == 0) {
            throw ImageException.corrupt(f.path(), 20, "l1dir_offset", "grain directory offset 0 overlaps the header");
        }
        long coverage = GTES_PER_GT * h.grainSize;
        if (h.gdEntries < (h.capacity + coverage - 1) / coverage) {
            throw ImageException.corrupt(f.path(), 24, "l1dir_size",
                    "grain directory of " + h.gdEntries + " entries does not cover the capacity of " + h.capacity + " sectors");
        }
        return h;
    }
}
