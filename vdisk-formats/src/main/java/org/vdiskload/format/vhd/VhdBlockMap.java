package org.vdiskload.format.vhd;

import org.vdiskload.image.LayerRun;
import org.vdiskload.io.ImageFile;
import org.vdiskload.io.LruCache;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Maps virtual offsets of a dynamic or differencing disk to the file. An unallocated block is
 * UNALLOCATED; in an allocated block each sector's bitmap bit (most significant bit first) tells
 * DATA (1) from UNALLOCATED (0: the parent's sector, or zeros without a parent).
 * qemu ignores the bitmap and reads allocated blocks whole; qemu sets every bit of the blocks it
 * allocates, so for its images the two readings agree.
 */
final class VhdBlockMap {
    private final ImageFile file;
    private final VhdBat bat;
    private final LruCache<byte[]> bitmaps;

    VhdBlockMap(ImageFile file, VhdBat bat, long cacheBytes) {
        this.file = file;
        this.bat = bat;
        this.bitmaps = new LruCache<>(LruCache.entriesFor(cacheBytes, bat.bitmapSize()));
    }

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
        byte[] bitmap = bitmaps.get(index, k -> readBitmap(bitmapAt));
        long limit = Math.min(blockSize, inBlock + maxLength);
        int sector = (int) (inBlock / 512);
        boolean set = bit(bitmap, sector);
        long end = (sector + 1) * 512L;
        while (end < limit && bit(bitmap, (int) (end / 512)) == set) end += 512;
        long length = Math.min(end, limit) - inBlock;
        return set ? LayerRun.data(length, file, bat.dataOffset(index) + inBlock) : LayerRun.unallocated(length);
    }

    private static boolean bit(byte[] bitmap, int sector) {
        return (bitmap[sector >>> 3] & (0x80 >>> (sector & 7))) != 0;
    }

    private byte[] readBitmap(long at) throws IOException {
        // Only the bits for the block's sectors are needed; the rest of the bitmap's sector is padding.
        int bytes = (int) (bat.blockSize() / 512 / 8);
        ByteBuffer b = file.readStruct(at, bytes, ByteOrder.BIG_ENDIAN, "sector bitmap");
        byte[] out = new byte[bytes];
        b.get(out);
        return out;
    }
}
