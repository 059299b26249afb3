package org.vdiskload.format.vdi;

import org.vdiskload.image.Beneath;
import org.vdiskload.io.Bytes;
import org.vdiskload.io.Holes;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Writes into a VDI image as qemu's block/vdi.c does: a new block goes to the next slot of the data
 * area (index {@code blocks_allocated}), written whole (data, the rest zeros) before the block map
 * entry and the header's {@code blocks_allocated} that make it part of the image. qemu-img check
 * counts a map that disagrees with {@code blocks_allocated} as corrupt, so the two change in one
 * write when they share the first 4 KiB page (maps of up to 896 blocks); otherwise the header goes
 * first, and a crash between leaves one unreferenced block that {@code check -r leaks} gives back.
 * Writes into allocated blocks go straight to the file without the allocation lock.
 */
final class VdiWriter {
    private static final int BLOCK = VdiHeader.BLOCK_SIZE;
    /** Writes inside one page of the page cache are never torn by a killed process. */
    private static final int PAGE = 4096;
    private static final int BLOCKS_ALLOCATED_AT = 0x184;

    private final ImageFile file;
    private final VdiHeader header;
    private final VdiBlockMap map;
    private final ReentrantLock allocation = new ReentrantLock();
    /** Guarded by {@link #allocation}. */
    private long blocksAllocated;

    VdiWriter(ImageFile file, VdiHeader header, VdiBlockMap map) {
        this.file = file;
        this.header = header;
        this.map = map;
        this.blocksAllocated = header.blocksAllocated();
    }

    void write(ByteBuffer src, long pos, Beneath beneath) throws IOException {
        while (src.hasRemaining()) {
            int block = (int) (pos / BLOCK);
            int inBlock = (int) (pos % BLOCK);
            ByteBuffer piece = Bytes.take(src, Math.min(src.remaining(), BLOCK - inBlock));
            int e = map.entry(block);
            if (VdiBlockMap.isData(e)) file.writeFully(piece, dataOffset(e, inBlock));
            else allocate(block, inBlock, piece, beneath);
            pos += piece.capacity();
        }
    }

    private long dataOffset(int entry, int inBlock) {
        return header.blockOffset(Integer.toUnsignedLong(entry)) + inBlock;
    }

    private void allocate(int block, int inBlock, ByteBuffer piece, Beneath beneath) throws IOException {
        allocation.lock();
        try {
            int e = map.entry(block);
            if (VdiBlockMap.isData(e)) { // allocated by a concurrent writer meanwhile
                file.writeFully(piece, dataOffset(e, inBlock));
                return;
            }
            ByteBuffer data;
            if (piece.remaining() == BLOCK) {
                data = piece; // the whole block: written as it is
            } else {
                data = ByteBuffer.allocate(BLOCK);
                long start = (long) block * BLOCK;
                if (e == VdiBlockMap.UNALLOCATED) {
                    ByteBuffer guest = data.slice(0, (int) Math.min(BLOCK, header.virtualSize() - start));
                    beneath.read(guest, start);
                }
                data.put(inBlock, piece, piece.position(), piece.remaining());
            }
            int index = (int) blocksAllocated;
            file.writeFully(data, header.blockOffset(index));
            writeMetadata(block, index, blocksAllocated + 1);
            blocksAllocated++;
            map.set(block, index);
        } finally {
            allocation.unlock();
        }
    }

    /**
     * Writes block map entry {@code block} and {@code blocks_allocated}, after what was written before
     * (a new block's data) is made durable: in one write when both lie in the first page; otherwise the
     * count first when it grows (a crash leaves a leaked block), the entry first when it shrinks
     * (likewise), with a flush between them, as after a power cut the page cache may have written back
     * either page without the other.
     */
    private void writeMetadata(int block, int entry, long newCount) throws IOException {
        long entryAt = header.offsetBmap() + 4L * block;
        if (entryAt + 4 <= PAGE) {
            int len = (int) (entryAt + 4 - BLOCKS_ALLOCATED_AT);
            ByteBuffer b = file.readStruct(BLOCKS_ALLOCATED_AT, len, ByteOrder.LITTLE_ENDIAN, "VDI header and block map");
            b.putInt(0, (int) newCount).putInt(len - 4, entry);
            file.force(false);
            file.writeFully(b, BLOCKS_ALLOCATED_AT);
        } else if (newCount > blocksAllocated) {
            writeInt(BLOCKS_ALLOCATED_AT, (int) newCount); // with the new block's data: unreferenced until the entry
            file.force(false);
            writeInt(entryAt, entry);
        } else {
            writeInt(entryAt, entry);
            file.force(false);
            writeInt(BLOCKS_ALLOCATED_AT, (int) newCount);
        }
    }

    private void writeInt(long at, int value) throws IOException {
        file.writeFully(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(0, value), at);
    }

    /**
     * Makes the range read as zeros. Unallocated and discarded blocks already do (VDI has no backing
     * file). Allocated blocks are zeroed in place, or with {@code mayUnmap} have a hole punched; a
     * whole block in the last slot of the data area is given back instead: marked discarded
     * (0xfffffffe) and {@code blocks_allocated} lowered, so qemu-img check still agrees. Any other
     * slot cannot be freed without moving blocks, which a crash must not interrupt; static images keep
     * every block.
     */
    void writeZeroes(long pos, long length, boolean mayUnmap) throws IOException {
        long stop = pos + length;
        while (pos < stop) {
            int block = (int) (pos / BLOCK);
            int inBlock = (int) (pos % BLOCK);
            long guestEnd = Math.min(header.virtualSize(), (block + 1L) * BLOCK);
            int n = (int) (Math.min(stop, guestEnd) - pos);
            int e = map.entry(block);
            if (VdiBlockMap.isData(e)) {
                boolean whole = inBlock == 0 && pos + n == guestEnd;
                if (!(whole && mayUnmap && discardLast(block))) zeroInPlace(dataOffset(e, inBlock), n, mayUnmap);
            }
            pos += n;
        }
    }

    private boolean discardLast(int block) throws IOException {
        allocation.lock();
        try {
            int e = map.entry(block);
            if (header.imageType() == VdiHeader.TYPE_STATIC) return false; // static images keep every block
            if (!VdiBlockMap.isData(e) || Integer.toUnsignedLong(e) != blocksAllocated - 1) return false;
            map.set(block, VdiBlockMap.ZERO);
            writeMetadata(block, VdiBlockMap.ZERO, blocksAllocated - 1);
            blocksAllocated--;
            long slot = header.blockOffset(blocksAllocated);
            if (file.size() > slot) file.truncate(slot);
            return true;
        } finally {
            allocation.unlock();
        }
    }

    private void zeroInPlace(long at, int n, boolean mayUnmap) throws IOException {
        if (mayUnmap && Holes.punchHole(file.path(), at, n)) return;
        ByteBuffer zeros = ByteBuffer.allocate(n);
        file.writeFully(zeros, at);
    }

    long blocksAllocated() {
        allocation.lock();
        try {
            return blocksAllocated;
        } finally {
            allocation.unlock();
        }
    }

    /** Sets the count after a repair moved blocks (see {@link VdiCheck}). */
    void repaired(long count) {
        allocation.lock();
        try {
            blocksAllocated = count;
        } finally {
            allocation.unlock();
        }
    }

    void flush() throws IOException {
        file.force(true);
    }
}
