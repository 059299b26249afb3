package org.vdiskload.format.vhd;

import org.vdiskload.image.LayerRun;
import org.vdiskload.io.ImageFile;
import org.vdiskload.io.LruCache;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Map;

/**
 * Maps virtual offsets of a dynamic or differencing disk to the file. An unallocated block is
 * UNALLOCATED; in an allocated block each sector's bitmap bit (most significant bit first) tells
 * DATA (1) from UNALLOCATED (0: the parent's sector, or zeros without a parent).
 * qemu ignores the bitmap and reads allocated blocks whole; qemu sets every bit of the blocks it
 * allocates, so for its images the two readings agree.
 * Cached bitmaps are never changed in place: a writer replaces them ({@link #replaceBitmap}). Loads
 * and replacements are serialized, so a load that read the file before a replacement cannot put
 * the old bits back into the cache after it.
 */
final class VhdBlockMap {
    private final ImageFile file;
    private final VhdBat bat;
    private final LruCache<byte[]> bitmaps;
    private final boolean writable;
    private final Object bitmapLock = new Object();
    /**
     * Blocks lying on metadata or on another block, with what they overlap (found at open; new blocks go past
     * everything): their sectors map ENCODED, read by the library, and no write goes there.
     */
    private final Map<Long, String> overlapping;

    VhdBlockMap(ImageFile file, VhdBat bat, long cacheBytes, boolean writable, Map<Long, String> overlapping) {
        this.file = file;
        this.bat = bat;
        this.bitmaps = new LruCache<>(LruCache.entriesFor(cacheBytes, bat.bitmapSize()));
        this.writable = writable;
        this.overlapping = Map.copyOf(overlapping);
    }

    /** What block {@code index} overlaps, or null if it lies clear of metadata and other blocks. */
    String overlaps(long index) {
        return overlapping.isEmpty() ? null : overlapping.get(index);
    }

    VhdBat bat() {
        return bat;
    }

    /** Sectors whose bit is set may be written in place: they need no metadata change. */
    LayerRun map(long pos, long maxLength) throws IOException {
        long blockSize = bat.blockSize();
        long index = pos / blockSize;
        long inBlock = pos % blockSize;
        long bitmapAt = bat.bitmapOffset(index);
        if (bitmapAt < 0) {
            long run = blockSize - inBlock;
            for (long i = index + 1; run < maxLength && i < bat.entryCount() && bat.bitmapOffset(i) < 0; i++) run += blockSize;
            return LayerRun.unallocated(Math.min(run, maxLength));
        }
        byte[] bitmap = bitmap(index);
        long limit = Math.min(blockSize, inBlock + maxLength);
        int sector = (int) (inBlock / 512);
        boolean set = bit(bitmap, sector);
        long end = (sector + 1) * 512L;
        while (end < limit && bit(bitmap, (int) (end / 512)) == set) end += 512;
        long length = Math.min(end, limit) - inBlock;
        if (!set) return LayerRun.unallocated(length);
        long at = bat.dataOffset(index) + inBlock;
        if (overlaps(index) != null) return LayerRun.encoded(length);
        return writable ? LayerRun.dataInPlace(length, file, at) : LayerRun.data(length, file, at);
    }

    static boolean bit(byte[] bitmap, int sector) {
        return (bitmap[sector >>> 3] & (0x80 >>> (sector & 7))) != 0;
    }

    /** The bits of allocated block {@code index}: one per sector, as many bytes as the block needs. */
    byte[] bitmap(long index) throws IOException {
        long at = bat.bitmapOffset(index);
        synchronized (bitmapLock) {
            return bitmaps.get(at, k -> readBitmap(at));
        }
    }

    /** Installs the new bits of the block whose bitmap is at {@code bitmapAt}, once they are in the file. */
    void replaceBitmap(long bitmapAt, byte[] bits) throws IOException {
        synchronized (bitmapLock) {
            bitmaps.invalidate(bitmapAt);
            bitmaps.get(bitmapAt, k -> bits);
        }
    }

    /** Bytes of bitmap that carry bits; the rest of the bitmap's sector is padding. */
    int bitmapBytes() {
        return (int) (bat.blockSize() / 512 / 8);
    }

    private byte[] readBitmap(long at) throws IOException {
        int bytes = bitmapBytes();
        ByteBuffer b = file.readStruct(at, bytes, ByteOrder.BIG_ENDIAN, "sector bitmap");
        byte[] out = new byte[bytes];
        b.get(out);
        return out;
    }
}
