package org.vdiskload.format.vhdx;

import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;
import org.vdiskload.io.LruCache;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

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
    /** Pages this session changed, by page number: always consulted first, so a change is never lost to the cache. */
    private final Map<Long, long[]> changed = new ConcurrentHashMap<>();

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

    /** The 4 KiB page of the table holding entry {@code index}: its file offset. */
    long pageOffset(long index) {
        return region.fileOffset() + index / PAGE_ENTRIES * PAGE;
    }

    /** A copy of the page holding entry {@code index} as raw entries, for building a change. */
    long[] pageCopy(long index) throws IOException {
        return page(index / PAGE_ENTRIES).clone();
    }

    /** Index of {@code index}'s entry inside its page. */
    static int inPage(long index) {
        return (int) (index % PAGE_ENTRIES);
    }

    /** Encodes a page of raw entries as the bytes to write. */
    static byte[] encode(long[] page) {
        ByteBuffer b = ByteBuffer.allocate(PAGE).order(ByteOrder.LITTLE_ENDIAN);
        b.asLongBuffer().put(page);
        return b.array();
    }

    /** Makes the page at {@code pageOffset} read as {@code page} from now on (it was written to the file). */
    void install(long pageOffset, long[] page) {
        changed.put((pageOffset - region.fileOffset()) / PAGE, page);
    }

    /** The raw entry at {@code index}. */
    long raw(long index) throws IOException {
        return page(index / PAGE_ENTRIES)[inPage(index)];
    }

    private BatEntry entry(long index) throws IOException {
        return BatEntry.decode(raw(index));
    }

    private long[] page(long page) throws IOException {
        long[] c = changed.get(page);
        if (c != null) return c;
        return pages.get(page, p -> {
            ByteBuffer b = view.readStruct(region.fileOffset() + p * PAGE, PAGE, "BAT");
            long[] e = new long[PAGE_ENTRIES];
            b.asLongBuffer().get(e);
            return e;
        });
    }
}
