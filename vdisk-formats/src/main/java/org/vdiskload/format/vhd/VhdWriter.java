package org.vdiskload.format.vhd;

import org.vdiskload.image.Beneath;
import org.vdiskload.image.MapChangeListener;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.List;

/**
 * Writes into a dynamic or differencing disk. Sectors whose bitmap bit is set are overwritten in
 * place with no lock. Everything else (allocating a block, setting bitmap bits) happens under one
 * lock per layer, data first:
 * <ol>
 * <li>a new block (its bitmap, then its data) is written where the tail footer is, the footer
 *     after it, and the file synced; only then its BAT entry: a crash leaves an unreferenced block
 *     and a lost tail footer at worst (the copy at offset 0, which readers use, never changes);</li>
 * <li>in an allocated block, sectors are written before their bits are set: a crash leaves them
 *     unused.</li>
 * </ol>
 * A dynamic disk's new block gets every bit set, as qemu does, so qemu (which ignores the bitmap)
 * and the bitmap agree; its unwritten sectors lie past the old end of the file and read as zeros.
 * A differencing disk's new block gets bits for the written sectors only; partly written sectors
 * are completed from the parent.
 */
final class VhdWriter {
    private static final long MAX_BLOCK_SECTOR = 0xfffffffeL;

    private final ImageFile file;
    private final VhdBlockMap blocks;
    private final VhdBat bat;
    private final ByteBuffer footer;
    private final boolean fullBitmaps;
    private final Object lock = new Object();
    /** Where the tail footer is written: the next block goes there. Guarded by {@link #lock}. */
    private long tailAt;
    /** The metadata other than the BAT: a damaged or hostile BAT may lie on it, and then its entries there are not written. */
    private final List<VhdLayout.Region> besideTheBat;
    /** Told of every block allocated and every run of sectors whose bits are set. */
    private volatile MapChangeListener listener = MapChangeListener.NONE;

    /**
     * @param footer      the footer copy at offset 0, written as the tail footer
     * @param fullBitmaps whether new blocks get every bitmap bit (dynamic disks)
     */
    VhdWriter(ImageFile file, VhdBlockMap blocks, ByteBuffer footer, boolean fullBitmaps, long tailAt, List<VhdLayout.Region> besideTheBat) {
        this.file = file;
        this.blocks = blocks;
        this.bat = blocks.bat();
        this.footer = footer.asReadOnlyBuffer();
        this.fullBitmaps = fullBitmaps;
        this.tailAt = tailAt;
        this.besideTheBat = List.copyOf(besideTheBat);
    }

    /** Where the next block goes: after every structure, and over the footer of a file ending in one. */
    static long tailOf(VhdDynamicHeader header, VhdBat bat, long fileSize) {
        return Math.max(VhdLayout.end(header, bat, fileSize), VhdLayout.roundUp(fileSize - VhdFooter.SIZE));
    }

    void setMapChangeListener(MapChangeListener l) {
        listener = l;
    }

    /** Runs {@code action} with allocation stopped, then resumes at the tail it returns (for repairs). */
    long exclusive(Repair action) throws IOException {
        synchronized (lock) {
            tailAt = action.run(tailAt);
            return tailAt;
        }
    }

    @FunctionalInterface
    interface Repair {
        long run(long tailAt) throws IOException;
    }

    void write(ByteBuffer src, long pos, Beneath beneath) throws IOException {
        long blockSize = bat.blockSize();
        while (src.hasRemaining()) {
            long index = pos / blockSize;
            int inBlock = (int) (pos % blockSize);
            int n = (int) Math.min(src.remaining(), blockSize - inBlock);
            writeInBlock(src.slice(src.position(), n), index, inBlock, beneath);
            src.position(src.position() + n);
            pos += n;
        }
    }

    private void writeInBlock(ByteBuffer part, long index, int inBlock, Beneath beneath) throws IOException {
        String overlap = blocks.overlaps(index);
        if (overlap != null) {
            throw ImageException.corrupt(file.path(), bat.entryOffset(index), "BAT entry " + index, "refusing to write into block "
                    + index + " at offset " + bat.bitmapOffset(index) + ": it overlaps " + overlap);
        }
        if (bat.bitmapOffset(index) >= 0 && allSet(blocks.bitmap(index), inBlock, part.remaining())) {
            file.writeFully(part, bat.dataOffset(index) + inBlock);
            return;
        }
        synchronized (lock) {
            if (bat.bitmapOffset(index) < 0) allocate(part, index, inBlock, beneath);
            else writeUnset(part, index, inBlock, beneath);
        }
    }

    private static boolean allSet(byte[] bits, int inBlock, int length) {
        for (int s = inBlock / 512, last = (inBlock + length - 1) / 512; s <= last; s++) {
            if (!VhdBlockMap.bit(bits, s)) return false;
        }
        return true;
    }

    /** Writes into an allocated block whose bits are not all set: runs of set sectors in place, the others then their bits. */
    private void writeUnset(ByteBuffer part, long index, int inBlock, Beneath beneath) throws IOException {
        byte[] bits = blocks.bitmap(index);
        byte[] updated = bits.clone();
        long dataAt = bat.dataOffset(index);
        long blockPos = index * bat.blockSize();
        int end = inBlock + part.remaining();
        int first = inBlock / 512;
        int last = (end - 1) / 512;
        for (int s = first; s <= last; ) {
            boolean set = VhdBlockMap.bit(bits, s);
            int e = s;
            while (e < last && VhdBlockMap.bit(bits, e + 1) == set) e++;
            int from = Math.max(inBlock, s * 512);
            int to = Math.min(end, (e + 1) * 512);
            ByteBuffer run = part.slice(from - inBlock, to - from);
            if (set) {
                file.writeFully(run, dataAt + from);
            } else {
                file.writeFully(wholeSectors(run, blockPos, from, s, e, beneath), dataAt + s * 512L);
                setBits(updated, s, e);
            }
            s = e + 1;
        }
        if (!Arrays.equals(bits, updated)) {
            long bitmapAt = bat.bitmapOffset(index);
            int b0 = first / 8;
            int b1 = last / 8 + 1;
            file.writeFully(ByteBuffer.wrap(updated, b0, b1 - b0), bitmapAt + b0);
            blocks.replaceBitmap(bitmapAt, updated);
            listener.changed(blockPos + first * 512L, (last - first + 1) * 512L);
        }
    }

    /** Allocates block {@code index} at the tail with {@code part} written into it (see the class comment for the order). */
    private void allocate(ByteBuffer part, long index, int inBlock, Beneath beneath) throws IOException {
        long entryAt = bat.entryOffset(index);
        for (VhdLayout.Region r : besideTheBat) {
            if (r.start() < entryAt + 4 && r.end() > entryAt) {
                throw ImageException.corrupt(file.path(), entryAt, "BAT entry " + index, "refusing to allocate block " + index
                        + ": its BAT entry at " + entryAt + " overlaps the " + r.name() + " at offset " + r.start());
            }
        }
        long at = tailAt;
        if (at / 512 > MAX_BLOCK_SECTOR) {
            throw ImageException.unsupported(file.path(), "the file is too large for another block (BAT entries address sectors with 32 bits)");
        }
        byte[] bitmap = new byte[(int) bat.bitmapSize()];
        long dataAt = at + bat.bitmapSize();
        ByteBuffer data;
        long dataPos;
        if (fullBitmaps) {
            Arrays.fill(bitmap, (byte) 0xff);
            data = part;
            dataPos = dataAt + inBlock;
        } else {
            int s = inBlock / 512;
            int e = (inBlock + part.remaining() - 1) / 512;
            data = wholeSectors(part, index * bat.blockSize(), inBlock, s, e, beneath);
            dataPos = dataAt + s * 512L;
            setBits(bitmap, s, e);
        }
        file.writeFully(ByteBuffer.wrap(bitmap), at);
        file.writeFully(data, dataPos);
        file.writeFully(footer.duplicate(), at + bat.blockSpan());
        file.force(false);
        ByteBuffer entry = ByteBuffer.allocate(4).order(ByteOrder.BIG_ENDIAN).putInt(0, (int) (at / 512));
        file.writeFully(entry, entryAt);
        blocks.replaceBitmap(at, Arrays.copyOf(bitmap, blocks.bitmapBytes()));
        bat.set(index, at);
        listener.changed(index * bat.blockSize(), bat.blockSize());
        tailAt = at + bat.blockSpan();
    }

    /**
     * {@code run} (at {@code from} in the block) widened to whole sectors {@code s..e}: the bytes
     * around it come from beneath, since these sectors' bits are clear.
     */
    private static ByteBuffer wholeSectors(ByteBuffer run, long blockPos, int from, int s, int e, Beneath beneath) throws IOException {
        int start = s * 512;
        int len = (e - s + 1) * 512;
        ByteBuffer out = ByteBuffer.allocate(len);
        int head = from - start;
        int tail = len - head - run.remaining();
        if (head > 0) beneath.read(out.slice(0, head), blockPos + start);
        if (tail > 0) beneath.read(out.slice(len - tail, tail), blockPos + start + len - tail);
        out.put(head, run.duplicate(), run.position(), run.remaining());
        return out;
    }

    private static void setBits(byte[] bits, int s, int e) {
        for (int i = s; i <= e; i++) bits[i >>> 3] |= (byte) (0x80 >>> (i & 7));
    }
}
