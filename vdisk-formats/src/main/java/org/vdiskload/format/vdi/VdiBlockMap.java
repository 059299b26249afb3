package org.vdiskload.format.vdi;

import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.Checked;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteOrder;
import java.nio.IntBuffer;
import java.util.concurrent.atomic.AtomicIntegerArray;

/**
 * The block map: one little-endian u32 per 1 MiB block of the virtual disk, either the index of the
 * block in the data area or one of two markers. Read whole and validated entry by entry when opened,
 * so lookups cannot fail. A writer changes entries with {@link #set} after the data they point at
 * is written, so a concurrent reader sees either the old entry or a block that is complete.
 */
final class VdiBlockMap {
    /** Never written: reads as zeros (there is no backing file for qemu's vdi). */
    static final int UNALLOCATED = 0xffffffff;
    /** Discarded / known to be zero. */
    static final int ZERO = 0xfffffffe;

    private final AtomicIntegerArray entries;

    private VdiBlockMap(int[] entries) {
        this.entries = new AtomicIntegerArray(entries);
    }

    static VdiBlockMap read(ImageFile file, VdiHeader h) throws IOException {
        // The whole map must lie in the file, even entries past the virtual size we never look at.
        Checked.requireInFile(file, h.offsetBmap(), 4 * h.blocksInImage(), "block map");
        int used = h.blocksUsed();
        IntBuffer b = file.readStruct(h.offsetBmap(), 4L * used, ByteOrder.LITTLE_ENDIAN, "block map").asIntBuffer();
        int[] entries = new int[used];
        b.get(entries);
        long fileSize = file.size();
        for (int i = 0; i < used; i++) {
            int e = entries[i];
            if (e == UNALLOCATED || e == ZERO) continue;
            long index = Integer.toUnsignedLong(e);
            // Messages only on failure: a string built per entry cost a 1 GiB convert ~30 ms of start-up.
            if (index >= h.blocksAllocated()) {
                throw ImageException.corrupt(file.path(), h.offsetBmap() + 4L * i, "block map entry " + i,
                        "points to data block " + index + " but only " + h.blocksAllocated() + " are allocated");
            }
            // A block's tail may lie past EOF (it reads as zeros, as in qemu); its start may not.
            long offset = h.blockOffset(index);
            if (offset >= fileSize) {
                throw ImageException.corrupt(file.path(), h.offsetBmap() + 4L * i, "block map entry " + i,
                        "points to data block " + index + " at " + offset + ", past the end of the file (" + fileSize + " bytes)");
            }
        }
        return new VdiBlockMap(entries);
    }

    /** The raw entry for block {@code block}: an index, {@link #UNALLOCATED} or {@link #ZERO}. */
    int entry(int block) {
        return entries.get(block);
    }

    void set(int block, int entry) {
        entries.set(block, entry);
    }

    static boolean isData(int entry) {
        return entry != UNALLOCATED && entry != ZERO;
    }
}
