package org.vdiskload.format.vhdx;

import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;
import org.vdiskload.io.LruCache;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * The block allocation table (MS-VHDX 2.5): payload block entries with a sector bitmap entry after every
 * chunk ratio of them. Read in 4 KiB pages through a bounded cache; entries are decoded, not yet validated
 * (the layer validates what it uses).
 */
final class Bat {
    private static final int PAGE = 4096;
    private static final int PAGE_ENTRIES = PAGE / 8;

    private final ReplayedFile view;
    private final RegionTable.Region region;
    private final long chunkRatio;
    private final LruCache<long[]> pages;

    Bat(ReplayedFile view, RegionTable.Region region, VhdxMetadata meta, long cacheBytes) throws ImageException {
        this.view = view;
        this.region = region;
        this.chunkRatio = meta.chunkRatio();
        long needed = meta.batEntries();
        if (needed > region.length() / 8) {
            ImageFile file = view.file();
            throw ImageException.corrupt(file.path(), region.fileOffset(), "BAT region Length",
                    "BAT region holds " + region.length() / 8 + " entries but a " + meta.virtualSize() + "-byte disk with "
                            + meta.blockSize() + "-byte blocks needs " + needed);
        }
        this.pages = new LruCache<>(LruCache.entriesFor(cacheBytes, PAGE));
    }

    /** The entry of payload block {@code block}. */
    BatEntry payload(long block) throws IOException {
        return entry(payloadIndex(block));
    }

    /** The entry of the sector bitmap block covering payload block {@code block}. */
    BatEntry bitmap(long block) throws IOException {
        return entry(bitmapIndex(block));
    }

    /** File offset of entry {@code index}, for messages. */
    long entryOffset(long index) {
        return region.fileOffset() + index * 8;
    }

    long payloadIndex(long block) {
        return block + block / chunkRatio;
    }

    long bitmapIndex(long block) {
        return block / chunkRatio * (chunkRatio + 1) + chunkRatio;
    }

    private BatEntry entry(long index) throws IOException {
        long page = index / PAGE_ENTRIES;
        long[] entries = pages.get(page, p -> {
            ByteBuffer b = view.readStruct(region.fileOffset() + p * PAGE, PAGE, "BAT");
            long[] e = new long[PAGE_ENTRIES];
            b.asLongBuffer().get(e);
            return e;
        });
        return BatEntry.decode(entries[(int) (index % PAGE_ENTRIES)]);
    }
}
