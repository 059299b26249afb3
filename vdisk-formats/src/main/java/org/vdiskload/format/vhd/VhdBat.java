package org.vdiskload.format.vhd;

import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.Checked;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteOrder;
import java.nio.IntBuffer;
import java.util.concurrent.atomic.AtomicIntegerArray;

/**
 * The block allocation table: for each block, the sector where its bitmap starts (the block's data
 * follows the bitmap), or 0xFFFFFFFF if the block is not allocated. Loaded whole, as qemu does;
 * immutable once loaded.
 */
public final class VhdBat {
    public static final int UNALLOCATED = 0xffffffff;

    private final AtomicIntegerArray entries;
    private final long tableOffset;
    private final long blockSize;
    private final long bitmapSize;

    private VhdBat(AtomicIntegerArray entries, long tableOffset, long blockSize, long bitmapSize) {
        this.entries = entries;
        this.tableOffset = tableOffset;
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
        IntBuffer table = file.readStruct(h.tableOffset(), len, ByteOrder.BIG_ENDIAN, "BAT").asIntBuffer();
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
        int[] copy = new int[table.limit()];
        table.get(copy);
        return new VhdBat(new AtomicIntegerArray(copy), h.tableOffset(), h.blockSize(), h.bitmapSize());
    }

    public long blockSize() {
        return blockSize;
    }

    public long bitmapSize() {
        return bitmapSize;
    }

    public int entryCount() {
        return entries.length();
    }

    /** File offset of block {@code index}'s sector bitmap, or -1 if the block is not allocated. */
    public long bitmapOffset(long index) {
        int e = entries.get((int) index);
        return e == UNALLOCATED ? -1 : Integer.toUnsignedLong(e) * 512;
    }

    /** Bitmap, then data: the bytes one allocated block takes in the file. */
    public long blockSpan() {
        return bitmapSize + blockSize;
    }

    /** File offset of entry {@code index} in the table. */
    public long entryOffset(long index) {
        return tableOffset + 4 * index;
    }

    /** Bytes of the table in the file. */
    public long tableLength() {
        return 4L * entries.length();
    }

    public long tableOffset() {
        return tableOffset;
    }

    /** Records that block {@code index} now starts at {@code bitmapOffset} (a multiple of 512). */
    void set(long index, long bitmapOffset) {
        entries.set((int) index, (int) (bitmapOffset / 512));
    }

    /** File offset of block {@code index}'s data; the block must be allocated. */
    public long dataOffset(long index) {
        return bitmapOffset(index) + bitmapSize;
    }
}
