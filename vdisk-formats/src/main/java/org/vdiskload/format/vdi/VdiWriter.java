package org.vdiskload.format.vdi;

import org.vdiskload.image.Beneath;
import org.vdiskload.image.MapChangeListener;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.Bytes;
import org.vdiskload.io.Holes;
import org.vdiskload.io.ImageFile;
import org.vdiskload.io.WriteBack;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.BitSet;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Writes into a VDI image as qemu's block/vdi.c does: a new block goes to the next slot of the data
 * area (index {@code blocks_allocated}), written whole (data, the rest zeros; past the end of the
 * file, where a hole reads as zeros, the data alone) before the block map
 * entry and the header's {@code blocks_allocated} that make it part of the image. Those two wait in
 * memory until a commit ({@link WriteBack}: at {@link #flush}, when many blocks wait, or with metadata
 * write-through before each write returns), which forces the new blocks first and then writes them: one
 * flush orders many allocations, and a power cut never leaves an entry naming a block that is not on the disk. qemu-img check counts a map that disagrees with {@code blocks_allocated} as
 * corrupt, so the two change in one write when they share the first 4 KiB page (maps of up to 896
 * blocks); otherwise the count goes first and a flush, and a crash between leaves unreferenced blocks
 * that {@code check -r leaks} gives back. Writes into allocated blocks go straight to the file without
 * the allocation lock.
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
    /** Blocks whose map entry changed in memory but not yet in the file; guarded by {@link #allocation}. */
    private final BitSet unwritten = new BitSet();
    /** Where a partly written new block is completed ({@link #completed}); guarded by {@link #allocation}. */
    private ByteBuffer blockBuffer;
    /** {@code blocks_allocated} as the file has it; guarded by {@link #allocation}. */
    private long writtenCount;
    /** New blocks that may wait for their metadata before it is written anyway (1 GiB of data). */
    private static final int MAX_UNWRITTEN = 1024;

    /** Told of every block whose map entry changes. */
    private final MapChangeListener listener;
    /** Commits the map entries and count; counts each change (under {@link #allocation}). */
    private final WriteBack writeBack;

    VdiWriter(ImageFile file, VdiHeader header, VdiBlockMap map, MapChangeListener listener) {
        this.file = file;
        this.header = header;
        this.map = map;
        this.listener = listener;
        this.blocksAllocated = header.blocksAllocated();
        this.writtenCount = blocksAllocated;
        this.writeBack = new WriteBack(file, WriteBack.FormatLock.of(allocation), this::unwritten);
    }

    void setMetadataWriteThrough(boolean on) throws IOException {
        writeBack.setWriteThrough(on);
    }

    private void blockChanged(int block) {
        listener.changed((long) block * BLOCK, BLOCK);
    }

    void write(ByteBuffer src, long pos, Beneath beneath) throws IOException {
        long ticket = 0;
        while (src.hasRemaining()) {
            int block = (int) (pos / BLOCK);
            int inBlock = (int) (pos % BLOCK);
            ByteBuffer piece = Bytes.take(src, Math.min(src.remaining(), BLOCK - inBlock));
            int e = map.entry(block);
            if (VdiBlockMap.isData(e)) file.writeFully(piece, checkedDataOffset(block, e, inBlock));
            else ticket = Math.max(ticket, allocate(block, inBlock, piece, beneath));
            pos += piece.capacity();
        }
        writeBack.settle(ticket);
    }

    private long dataOffset(int entry, int inBlock) {
        return header.blockOffset(Integer.toUnsignedLong(entry)) + inBlock;
    }

    /** {@link #dataOffset}, refusing a block whose slot lies on the header or the block map. */
    private long checkedDataOffset(int block, int entry, int inBlock) throws ImageException {
        long slot = Integer.toUnsignedLong(entry);
        if (header.slotHoldsMetadata(slot)) {
            throw ImageException.corrupt(file.path(), header.offsetBmap() + 4L * block, "block map entry " + block,
                    "refusing to write into data slot " + slot + " at " + header.blockOffset(slot)
                            + ": it overlaps the header or the block map (" + header.offsetBmap() + ".." + header.bmapEnd() + ")");
        }
        return dataOffset(entry, inBlock);
    }

    /** Writes {@code piece} into a block without data, allocating it; returns the commit ticket of the change, or 0. */
    private long allocate(int block, int inBlock, ByteBuffer piece, Beneath beneath) throws IOException {
        boolean full;
        long ticket;
        allocation.lock();
        try {
            int e = map.entry(block);
            if (VdiBlockMap.isData(e)) { // allocated by a concurrent writer meanwhile
                file.writeFully(piece, checkedDataOffset(block, e, inBlock));
                return 0;
            }
            int index = (int) blocksAllocated;
            if (header.slotHoldsMetadata(index)) {
                throw ImageException.corrupt(file.path(), 0x184, "blocks_allocated", "refusing to allocate data slot " + index
                        + ": it overlaps the header or the block map (" + header.offsetBmap() + ".." + header.bmapEnd() + ")");
            }
            long at = header.blockOffset(index);
            boolean zerosAround = e != VdiBlockMap.UNALLOCATED || !beneath.exists();
            if (piece.remaining() < BLOCK && zerosAround && !file.reaches(at + 1)) {
                // Past the end of the file the new block reads as zeros already: the piece alone, and the
                // file made to reach the block's end (a random 4 KiB write writes 4 KiB, not 1 MiB).
                file.writeFully(piece, at + inBlock);
                if (!file.reaches(at + BLOCK)) file.writeFully(ByteBuffer.allocate(1), at + BLOCK - 1);
            } else {
                file.writeFully(piece.remaining() == BLOCK ? piece : completed(block, inBlock, piece, e, beneath), at);
            }
            blocksAllocated++;
            map.set(block, index);
            blockChanged(block);
            unwritten.set(block);
            writeBack.changed();
            ticket = writeBack.ticket();
            full = unwritten.cardinality() >= MAX_UNWRITTEN;
        } finally {
            allocation.unlock();
        }
        if (full) writeBack.commit(true);
        return ticket;
    }

    /**
     * The whole block for a write of {@code piece} into a block without data: the piece, and around it what
     * the block reads as now (the backing chain's content for an unallocated block, else zeros). Built in
     * one reused, page-aligned direct buffer: a heap buffer would be zeroed whole, then copied once more by
     * the JDK into a direct one for the write (a partial first write into most blocks of a convert: about
     * a sixth of its CPU). Under the allocation lock.
     */
    private ByteBuffer completed(int block, int inBlock, ByteBuffer piece, int entry, Beneath beneath) throws IOException {
        if (blockBuffer == null) blockBuffer = ByteBuffer.allocateDirect(BLOCK + PAGE).alignedSlice(PAGE).slice(0, BLOCK);
        ByteBuffer data = blockBuffer.clear();
        int end = inBlock + piece.remaining();
        long start = (long) block * BLOCK;
        int guest = (int) Math.min(BLOCK, header.virtualSize() - start);
        if (entry == VdiBlockMap.UNALLOCATED && beneath.exists()) {
            beneath.read(data.slice(0, guest), start);
            Bytes.fillZero(data.slice(guest, BLOCK - guest));
        } else {
            Bytes.fillZero(data.slice(0, inBlock));
            Bytes.fillZero(data.slice(end, BLOCK - end));
        }
        data.put(inBlock, piece, piece.position(), piece.remaining());
        return data;
    }

    /**
     * What waits in memory, copied for a commit (under the allocation lock). The commit forces the blocks it
     * points to, then writes the count with the entries in the header's first page in one write; then, after
     * a flush (a power cut may keep either page without the other: the count alone is a leak, an entry alone
     * a corruption), the entries past that page.
     */
    private WriteBack.Batch unwritten(boolean all) {
        if (unwritten.isEmpty() && writtenCount == blocksAllocated) return null;
        BitSet blocks = (BitSet) unwritten.clone();
        long count = blocksAllocated;
        boolean countChanged = writtenCount != count;
        int firstPageEntries = (int) Math.max(0, (PAGE - header.offsetBmap()) / 4);
        int lastInPage = blocks.previousSetBit(firstPageEntries - 1);
        int[] inPage = new int[lastInPage + 1];
        for (int k = blocks.nextSetBit(0); k >= 0 && k <= lastInPage; k = blocks.nextSetBit(k + 1)) inPage[k] = map.entry(k);
        // Past the first page, a run of entries written as it is now: those not waiting hold what the file has.
        int first = blocks.nextSetBit(firstPageEntries);
        int[] past = first < 0 ? new int[0] : new int[blocks.length() - first];
        for (int k = 0; k < past.length; k++) past[k] = map.entry(first + k);
        return new WriteBack.Batch() {
            @Override
            public void write() throws IOException {
                if (lastInPage >= 0 || countChanged) {
                    long end = lastInPage >= 0 ? header.offsetBmap() + 4L * (lastInPage + 1) : BLOCKS_ALLOCATED_AT + 4;
                    ByteBuffer b = file.readStruct(BLOCKS_ALLOCATED_AT, end - BLOCKS_ALLOCATED_AT, ByteOrder.LITTLE_ENDIAN,
                            "VDI header and block map");
                    b.putInt(0, (int) count);
                    for (int k = blocks.nextSetBit(0); k >= 0 && k <= lastInPage; k = blocks.nextSetBit(k + 1)) {
                        b.putInt((int) (header.offsetBmap() + 4L * k - BLOCKS_ALLOCATED_AT), inPage[k]);
                    }
                    file.writeFully(b, BLOCKS_ALLOCATED_AT);
                }
                if (past.length > 0) {
                    file.force(false);
                    ByteBuffer b = ByteBuffer.allocate(4 * past.length).order(ByteOrder.LITTLE_ENDIAN);
                    b.asIntBuffer().put(past);
                    file.writeFully(b, header.offsetBmap() + 4L * first);
                }
            }

            @Override
            public void written() {
                unwritten.andNot(blocks);
                writtenCount = count;
            }
        };
    }

    /**
     * Writes block map entry {@code block} and a lower {@code blocks_allocated} (a block given back),
     * the entry first: a crash between leaves a leaked block.
     */
    private void writeReleased(int block, int entry, long newCount) throws IOException {
        long entryAt = header.offsetBmap() + 4L * block;
        if (entryAt + 4 <= PAGE) {
            int len = (int) (entryAt + 4 - BLOCKS_ALLOCATED_AT);
            ByteBuffer b = file.readStruct(BLOCKS_ALLOCATED_AT, len, ByteOrder.LITTLE_ENDIAN, "VDI header and block map");
            b.putInt(0, (int) newCount).putInt(len - 4, entry);
            file.writeFully(b, BLOCKS_ALLOCATED_AT);
        } else {
            writeInt(entryAt, entry);
            file.force(false);
            writeInt(BLOCKS_ALLOCATED_AT, (int) newCount);
        }
        writtenCount = newCount;
    }

    private void writeInt(long at, int value) throws IOException {
        file.writeFully(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(0, value), at);
    }

    /**
     * Makes the range read as zeros. Unallocated blocks of an image without a parent and discarded blocks
     * already do. A differencing image's unallocated block shows its parent: whole, it is marked discarded
     * (0xfffffffe, zeros in VirtualBox too); in part, it is allocated with the parent's data and the zeros.
     * Allocated blocks are zeroed in place, or with {@code mayUnmap} have a hole punched; a
     * whole block in the last slot of the data area is given back instead: marked discarded
     * and {@code blocks_allocated} lowered, so qemu-img check still agrees. Any other
     * slot cannot be freed without moving blocks, which a crash must not interrupt; static images keep
     * every block.
     */
    void writeZeroes(long pos, long length, boolean mayUnmap, Beneath beneath) throws IOException {
        long stop = pos + length;
        long ticket = 0;
        while (pos < stop) {
            int block = (int) (pos / BLOCK);
            int inBlock = (int) (pos % BLOCK);
            long guestEnd = Math.min(header.virtualSize(), (block + 1L) * BLOCK);
            int n = (int) (Math.min(stop, guestEnd) - pos);
            int e = map.entry(block);
            boolean whole = inBlock == 0 && pos + n == guestEnd;
            if (VdiBlockMap.isData(e)) {
                if (!(whole && mayUnmap && discardLast(block))) zeroInPlace(checkedDataOffset(block, e, inBlock), n, mayUnmap);
            } else if (e == VdiBlockMap.UNALLOCATED && beneath.exists()) {
                ticket = Math.max(ticket, whole ? markZero(block) : allocate(block, inBlock, ByteBuffer.allocate(n), beneath));
            }
            pos += n;
        }
        writeBack.settle(ticket);
    }

    /** Marks an unallocated block discarded (it reads as zeros, not as the parent); returns the commit ticket, or 0. */
    private long markZero(int block) {
        allocation.lock();
        try {
            if (map.entry(block) != VdiBlockMap.UNALLOCATED) return 0; // allocated by a concurrent writer meanwhile
            map.set(block, VdiBlockMap.ZERO);
            blockChanged(block);
            unwritten.set(block);
            writeBack.changed();
            return writeBack.ticket();
        } finally {
            allocation.unlock();
        }
    }

    private boolean discardLast(int block) throws IOException {
        if (header.imageType() == VdiHeader.TYPE_STATIC) return false; // static images keep every block
        boolean[] done = {false};
        // Between commits, after what waits: the count written next is the one in memory.
        writeBack.exclusive(() -> {
            allocation.lock();
            try {
                int e = map.entry(block);
                if (!VdiBlockMap.isData(e) || Integer.toUnsignedLong(e) != blocksAllocated - 1) return;
                map.set(block, VdiBlockMap.ZERO);
                blockChanged(block);
                writeReleased(block, VdiBlockMap.ZERO, blocksAllocated - 1);
                blocksAllocated--;
                long slot = header.blockOffset(blocksAllocated);
                if (file.size() > slot) file.truncate(slot);
                done[0] = true;
            } finally {
                allocation.unlock();
            }
        });
        return done[0];
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
            writtenCount = count;
        } finally {
            allocation.unlock();
        }
    }

    void flush() throws IOException {
        writeBack.commit(true);
        file.force(true);
    }
}
