package org.vdiskload.format.vhdx;

import org.vdiskload.image.BackingRef;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.LayerInfo;
import org.vdiskload.image.LayerRun;
import org.vdiskload.image.OpenContext;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;
import org.vdiskload.io.LruCache;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A VHDX image (fixed, dynamic or differencing), read through its replayed log. Payload blocks map by their
 * BAT state: FULLY_PRESENT is data in the file, ZERO and UNMAPPED read as zeros, NOT_PRESENT and UNDEFINED
 * are not in this file (the parent's, or zeros), PARTIALLY_PRESENT goes sector by sector by the sector bitmap.
 */
final class VhdxLayer implements ImageLayer {
    /** Blocks one map call looks at, to keep a call cheap on a huge disk. */
    private static final int MAX_BLOCKS_PER_MAP = 4096;
    private static final int BITMAP_PAGE = 4096;

    private final ReplayedFile view;
    private final VhdxHeader header;
    private final RegionTable regions;
    private final VhdxMetadata meta;
    private final Bat bat;
    private final VhdxLog.Replay replay;
    private final LruCache<byte[]> bitmapPages;

    private VhdxLayer(ReplayedFile view, VhdxHeader header, RegionTable regions, VhdxMetadata meta, Bat bat,
                      VhdxLog.Replay replay, long cacheBytes) {
        this.view = view;
        this.header = header;
        this.regions = regions;
        this.meta = meta;
        this.bat = bat;
        this.replay = replay;
        this.bitmapPages = new LruCache<>(LruCache.entriesFor(cacheBytes / 4, BITMAP_PAGE));
    }

    static VhdxLayer open(ImageFile file, OpenContext context) throws IOException {
        if (context.writable()) throw ImageException.unsupported(file.path(), "writing VHDX images is not supported yet");
        if (context.snapshot() != null) throw ImageException.unsupported(file.path(), "VHDX images have no internal snapshots");
        VhdxHeader header = VhdxHeader.current(file);
        VhdxLog.Replay replay = VhdxLog.replay(file, header);
        ReplayedFile view = new ReplayedFile(file, replay.overlay(), replay.size());
        RegionTable regions = RegionTable.read(view);
        if (header.logLength() > 0) {
            for (RegionTable.Region r : List.of(regions.bat(), regions.metadata())) {
                if (r.overlaps(header.logOffset(), header.logLength())) {
                    throw ImageException.corrupt(file.path(), regions.offset(), "region table",
                            "a region at " + r.fileOffset() + " overlaps the log at " + header.logOffset());
                }
            }
        }
        VhdxMetadata meta = VhdxMetadata.read(view, regions.metadata());
        if (meta.hasParent() && meta.parent().hostPath() == null) {
            throw ImageException.corrupt(file.path(), regions.metadata().fileOffset(), "parent locator",
                    "differencing VHDX names no parent path (relative_path, absolute_win32_path or volume_path)");
        }
        Bat bat = new Bat(view, regions.bat(), meta, context.cacheBytes() / 2);
        return new VhdxLayer(view, header, regions, meta, bat, replay, context.cacheBytes());
    }

    VhdxHeader header() {
        return header;
    }

    VhdxMetadata metadata() {
        return meta;
    }

    @Override
    public String formatName() {
        return "vhdx";
    }

    @Override
    public ImageFile file() {
        return view.file();
    }

    @Override
    public long size() {
        return meta.virtualSize();
    }

    @Override
    public LayerRun map(long pos, long maxLength) throws IOException {
        long bs = meta.blockSize();
        LayerRun run = blockRun(pos, Math.min(maxLength, bs - pos % bs));
        long done = run.length();
        // Merge following whole blocks of the same kind (data only where the file offsets continue).
        for (int n = 0; n < MAX_BLOCKS_PER_MAP && done < maxLength && (pos + done) % bs == 0
                && run.status() != LayerRun.Status.ENCODED; n++) {
            LayerRun next = blockRun(pos + done, Math.min(maxLength - done, bs));
            if (next.status() != run.status()) break;
            if (run.status() == LayerRun.Status.DATA && next.fileOffset() != run.fileOffset() + done) break;
            done += next.length();
            run = new LayerRun(done, run.status(), run.file(), run.fileOffset());
        }
        return run;
    }

    /** The run at {@code pos}, at most {@code max} bytes and inside one block. */
    private LayerRun blockRun(long pos, long max) throws IOException {
        long block = pos / meta.blockSize();
        long inBlock = pos % meta.blockSize();
        BatEntry e = bat.payload(block);
        return switch (e.state()) {
            case BatEntry.NOT_PRESENT, BatEntry.UNDEFINED -> LayerRun.unallocated(max);
            // UNMAPPED: the guest discarded the block; reading zeros is one of the behaviours MS-VHDX allows,
            // and unlike the parent's old data it is what the guest can expect after a discard.
            case BatEntry.ZERO, BatEntry.UNMAPPED -> LayerRun.zero(max);
            case BatEntry.FULLY_PRESENT -> data(checkedBlock(block, e) + inBlock, max);
            case BatEntry.PARTIALLY_PRESENT -> partial(block, e, inBlock, max);
            default -> throw ImageException.corrupt(file().path(), bat.entryOffset(bat.payloadIndex(block)), "BAT entry State",
                    "payload block " + block + " has reserved state " + e.state());
        };
    }

    /** A data run at {@code fileOffset}; where the replayed log changed those bytes, an encoded run instead. */
    private LayerRun data(long fileOffset, long max) {
        long end = fileOffset + max;
        long patched = view.nextPatched(fileOffset, end);
        if (patched > fileOffset) return LayerRun.data(patched - fileOffset, file(), fileOffset);
        return LayerRun.encoded(view.overlay().patchedUntil(fileOffset, end) - fileOffset);
    }

    private LayerRun partial(long block, BatEntry e, long inBlock, long max) throws IOException {
        if (!meta.hasParent()) {
            throw ImageException.corrupt(file().path(), bat.entryOffset(bat.payloadIndex(block)), "BAT entry State",
                    "payload block " + block + " is PARTIALLY_PRESENT in an image without a parent");
        }
        long blockOffset = checkedBlock(block, e);
        long bitmapOffset = checkedBitmap(block);
        long lss = meta.logicalSectorSize();
        long sectorsPerBlock = meta.blockSize() / lss;
        long first = (block % meta.chunkRatio()) * sectorsPerBlock + inBlock / lss;
        long limit = (block % meta.chunkRatio()) * sectorsPerBlock + (inBlock + max + lss - 1) / lss;
        boolean present = bit(bitmapPage(bitmapOffset, first), first);
        long s = first + 1;
        while (s < limit) {
            byte[] page = bitmapPage(bitmapOffset, s);
            long pageEnd = Math.min(limit, (s / 8 / BITMAP_PAGE + 1) * BITMAP_PAGE * 8);
            while (s < pageEnd && bit(page, s) == present) s++;
            if (s < pageEnd) break;
        }
        long length = Math.min(max, (s - first) * lss - inBlock % lss);
        return present ? data(blockOffset + inBlock, length) : LayerRun.unallocated(length);
    }

    /** The cached 4 KiB page of the sector bitmap block at {@code bitmapOffset} holding {@code sector}'s bit. */
    private byte[] bitmapPage(long bitmapOffset, long sector) throws IOException {
        long page = bitmapOffset + sector / 8 / BITMAP_PAGE * BITMAP_PAGE;
        return bitmapPages.get(page, p -> {
            byte[] a = new byte[BITMAP_PAGE];
            view.readStruct(p, BITMAP_PAGE, "sector bitmap block").get(a);
            return a;
        });
    }

    /** Bit {@code sector} (bit 0 of byte 0 is the first sector) in its page. */
    private static boolean bit(byte[] page, long sector) {
        return (page[(int) (sector / 8 % BITMAP_PAGE)] >> (sector % 8) & 1) != 0;
    }

    /** The file offset of payload block {@code block}, checked to lie in the file clear of the metadata. */
    private long checkedBlock(long block, BatEntry e) throws ImageException {
        long bytes = Math.min(meta.blockSize(), meta.virtualSize() - block * meta.blockSize());
        checkPlacement(e.fileOffset(), bytes, bat.entryOffset(bat.payloadIndex(block)), "payload block " + block);
        return e.fileOffset();
    }

    private long checkedBitmap(long block) throws IOException {
        long index = bat.bitmapIndex(block);
        BatEntry e = bat.bitmap(block);
        if (e.state() != BatEntry.BITMAP_PRESENT) {
            throw ImageException.corrupt(file().path(), bat.entryOffset(index), "BAT sector bitmap entry",
                    "payload block " + block + " is PARTIALLY_PRESENT but its sector bitmap block has state " + e.state());
        }
        checkPlacement(e.fileOffset(), VhdxHeader.MB, bat.entryOffset(index), "sector bitmap block for payload block " + block);
        return e.fileOffset();
    }

    private void checkPlacement(long offset, long length, long entryAt, String what) throws ImageException {
        if (offset < VhdxHeader.MB || offset > view.size() || length > view.size() - offset) {
            throw ImageException.corrupt(file().path(), entryAt, "BAT entry FileOffsetMB",
                    what + " at " + offset + "+" + length + " lies outside the file (" + view.size() + " bytes) or in its header area");
        }
        RegionTable.Region log = new RegionTable.Region(header.logOffset(), header.logLength());
        for (RegionTable.Region r : List.of(regions.bat(), regions.metadata(), log)) {
            if (r.overlaps(offset, length)) {
                throw ImageException.corrupt(file().path(), entryAt, "BAT entry FileOffsetMB",
                        what + " at " + offset + " overlaps the metadata or log region at " + r.fileOffset());
            }
        }
    }

    @Override
    public void readEncoded(ByteBuffer dst, long pos) throws IOException {
        // Encoded runs are data the replayed log changed: find the file offset again and read through the log.
        long block = pos / meta.blockSize();
        BatEntry e = bat.payload(block);
        long fileOffset = checkedBlock(block, e) + pos % meta.blockSize();
        view.read(dst, fileOffset);
    }

    @Override
    public Optional<BackingRef> backing() {
        if (!meta.hasParent()) return Optional.empty();
        return Optional.of(new BackingRef(meta.parent().hostPath(), "vhdx"));
    }

    @Override
    public void checkBacking(ImageLayer backing) throws ImageException {
        if (!(backing instanceof VhdxLayer parent)) {
            throw ImageException.unsupported(file().path(), "the parent of a differencing VHDX must be a VHDX image, not "
                    + backing.formatName());
        }
        Guid want = meta.parent().linkage();
        Guid want2 = meta.parent().linkage2();
        Guid have = parent.header().dataWriteGuid();
        if (!have.equals(want) && !have.equals(want2)) {
            throw ImageException.invalid(file().path(), "parent " + parent.file().path() + " has DataWriteGuid {" + have
                    + "} but this differencing image was made against {" + (want == null ? "?" : want)
                    + "} (parent_linkage): the parent was modified or is the wrong file");
        }
    }

    @Override
    public LayerInfo info() {
        return new LayerInfo("vhdx", meta.virtualSize(), meta.blockSize(), replay.dirty(), List.of(), Map.of());
    }

    @Override
    public void close() throws IOException {
        view.file().close();
    }
}
