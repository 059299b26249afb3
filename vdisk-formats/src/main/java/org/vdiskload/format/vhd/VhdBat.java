package org.vdiskload.format.vhd;

import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.Checked;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteOrder;
import java.nio.IntBuffer;

/**
 * The block allocation table: for each block, the sector where its bitmap starts (the block's data
 * follows the bitmap), or 0xFFFFFFFF if the block is not allocated. Loaded whole, as qemu does;
 * immutable once loaded.
 */
public final class VhdBat {
    public static final int UNALLOCATED = 0xffffffff;

    private final IntBuffer entries;
    private final long blockSize;
    private final long bitmapSize;

    private VhdBat(IntBuffer entries, long blockSize, long bitmapSize) {
        this.entries = entries;
        this.blockSize = blockSize;
        this.bitmapSize = bitmapSize;
    }

    /**
     * Reads and validates the BAT of a disk of {@code virtualSize} bytes: it must cover the disk and lie
     * inside the file, and every allocated block (bitmap and data) must lie inside the file, which is
     * what qemu checks ("free_data_block_offset points after the end of file").
     */
    public static VhdBat load(ImageFile file, VhdDynamicHeader h, long virtualSize) throws IOException {
        long covered = Checked.mul(file, h.at() + VhdDynamicHeader.MAX_TABLE_ENTRIES_OFFSET, "max table entries",
                h.maxTableEntries(), h.blockSize());
        if (covered < virtualSize) {
            throw ImageException.corrupt(file.path(), h.at() + VhdDynamicHeader.MAX_TABLE_ENTRIES_OFFSET, "max table entries",
                    "BAT of " + h.maxTableEntries() + " entries of " + h.blockSize() + " bytes covers " + covered
                            + " bytes, less than the virtual size " + virtualSize);
        }
        long len = h.maxTableEntries() * 4;
        Checked.requireInFile(file, h.tableOffset(), len, "BAT");
        IntBuffer table = file.readStruct(h.tableOffset(), len, ByteOrder.BIG_ENDIAN, "BAT").asIntBuffer().asReadOnlyBuffer();
        long fileSize = file.size();
        long span = h.bitmapSize() + h.blockSize();
        for (int i = 0; i < table.limit(); i++) {
            int e = table.get(i);
            if (e == UNALLOCATED) continue;
            long start = Integer.toUnsignedLong(e) * 512;
            if (start + span > fileSize) {
                throw ImageException.corrupt(file.path(), h.tableOffset() + 4L * i, "BAT entry " + i,
                        "block " + i + " at offset " + start + " ends at " + (start + span)
                                + ", past the end of the file (" + fileSize + " bytes): the image is truncated");
            }
        }
        return new VhdBat(table, h.blockSize(), h.bitmapSize());
    }

    public long blockSize() {
        return blockSize;
    }

    public long bitmapSize() {
        return bitmapSize;
    }

    public int entryCount() {
        return entries.limit();
    }

    /** File offset of block {@code index}'s sector bitmap, or -1 if the block is not allocated. */
    public long bitmapOffset(long index) {
        int e = entries.get((int) index);
        return e == UNALLOCATED ? -1 : Integer.toUnsignedLong(e) * 512;
    }

    /** File offset of block {@code index}'s data; the block must be allocated. */
    public long dataOffset(long index) {
        return bitmapOffset(index) + bitmapSize;
    }
}
