package org.vdiskload.format.vhdx;

import org.vdiskload.check.CheckReport;
import org.vdiskload.check.RepairMode;
import org.vdiskload.image.BackingRef;
import org.vdiskload.image.Beneath;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.LayerInfo;
import org.vdiskload.image.LayerRun;
import org.vdiskload.image.MapChangeListener;
import org.vdiskload.image.OpenContext;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.Bytes;
import org.vdiskload.io.ImageFile;
import org.vdiskload.io.LruCache;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
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
    /** Bytes filled at a time when a block is allocated. */
    private static final int FILL_CHUNK = 1 << 20;

    /** The file, its region table and the BAT change only when resize moves the BAT, under the journal's lock. */
    private volatile ReplayedFile view;
    private final VhdxHeader header;
    private volatile RegionTable regions;
    /** Changes only by resize, under the journal's lock. */
    private volatile VhdxMetadata meta;
    private volatile Bat bat;
    private final long cacheBytes;
    private final VhdxLog.Replay replay;
    private final LruCache<byte[]> bitmapPages;
    /** Null when open read-only. */
    private final Journal journal;
    /** Log entries replayed into the file when it was opened for writing. */
    private final int replayedOnOpen;
    /** Where the sector bitmap blocks of a differencing image lie (1 MiB each): no payload block may lie on one. */
    private final java.util.concurrent.ConcurrentSkipListSet<Long> bitmapBlocks = new java.util.concurrent.ConcurrentSkipListSet<>();
    /** Told of every block whose BAT entry or sector bits a write changes. */
    private volatile MapChangeListener listener = MapChangeListener.NONE;

    private VhdxLayer(ReplayedFile view, VhdxHeader header, RegionTable regions, VhdxMetadata meta, Bat bat,
                      VhdxLog.Replay replay, long cacheBytes, Journal journal, int replayedOnOpen) {
        this.view = view;
        this.header = header;
        this.regions = regions;
        this.meta = meta;
        this.bat = bat;
        this.cacheBytes = cacheBytes;
        this.replay = replay;
        this.bitmapPages = new LruCache<>(LruCache.entriesFor(cacheBytes / 4, BITMAP_PAGE));
        this.journal = journal;
        this.replayedOnOpen = replayedOnOpen;
    }

    /** Notes where the sector bitmap blocks are (a differencing image has one per chunk of payload blocks). */
    private void findBitmapBlocks() throws IOException {
        if (!meta.hasParent()) return;
        for (long block = 0; block < meta.dataBlocks(); block += meta.chunkRatio()) {
            BatEntry e = bat.bitmap(block);
            if (e.state() == BatEntry.BITMAP_PRESENT && e.fileOffset() != 0) bitmapBlocks.add(e.fileOffset());
        }
    }

    static VhdxLayer open(ImageFile file, OpenContext context) throws IOException {
        if (context.snapshot() != null) throw ImageException.unsupported(file.path(), "VHDX images have no internal snapshots");
        boolean writable = context.writable() && file.isWritable();
        VhdxHeader header = VhdxHeader.current(file);
        VhdxLog.Replay replay = VhdxLog.replay(file, header);
        int replayedOnOpen = 0;
        if (writable && replay.dirty()) {
            // Writing needs the file itself current: the log is applied to it and emptied first.
            header = Journal.replayIntoFile(file, header, replay);
            replayedOnOpen = replay.entries();
            replay = VhdxLog.replay(file, header);
        }
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
        if (meta.hasParent() && meta.parent().hostPaths().isEmpty()) {
            throw ImageException.corrupt(file.path(), regions.metadata().fileOffset(), "parent locator",
                    "differencing VHDX names no parent path (relative_path, absolute_win32_path or volume_path)");
        }
        Bat bat = new Bat(view, regions.bat(), meta, batCache(context.cacheBytes()));
        Journal journal = writable ? new Journal(file, header) : null;
        VhdxLayer layer = new VhdxLayer(view, header, regions, meta, bat, replay, context.cacheBytes(), journal, replayedOnOpen);
        layer.findBitmapBlocks();
        return layer;
    }

    private static long batCache(long cacheBytes) {
        return cacheBytes / 2;
    }

    VhdxHeader header() {
        return journal != null ? journal.header() : header;
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
            run = new LayerRun(done, run.status(), run.file(), run.fileOffset(), run.inPlace() && next.inPlace());
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
            case BatEntry.FULLY_PRESENT -> journal != null ? inPlace(block, e, inBlock, max) : data(checkedBlock(block, e) + inBlock, max);
            case BatEntry.PARTIALLY_PRESENT -> partial(block, e, inBlock, max);
            default -> throw ImageException.corrupt(file().path(), bat.entryOffset(bat.payloadIndex(block)), "BAT entry State",
                    "payload block " + block + " has reserved state " + e.state());
        };
    }

    /**
     * A run the caller may write straight into the file. Such writes bypass {@link #write}, so the header's
     * write GUIDs are renewed before the first one is handed out (MS-VHDX: before the first data change).
     */
    private LayerRun inPlace(long block, BatEntry e, long inBlock, long max) throws IOException {
        long offset = checkedBlock(block, e) + inBlock;
        journal.beginChange();
        return LayerRun.dataInPlace(max, file(), offset);
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
    private long checkedBlock(long block, BatEntry e) throws IOException {
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

    private void checkPlacement(long offset, long length, long entryAt, String what) throws IOException {
        // Open for writing, the file grows as blocks are allocated (and has no log overlay): ask the file,
        // which answers from the length it knows without an fstat per write.
        boolean inside = offset >= VhdxHeader.MB && length <= Long.MAX_VALUE - offset
                && (journal != null ? file().reaches(offset + length) : offset + length <= view.size());
        if (!inside) {
            long size = journal != null ? file().size() : view.size();
            throw ImageException.corrupt(file().path(), entryAt, "BAT entry FileOffsetMB",
                    what + " at " + offset + "+" + length + " lies outside the file (" + size + " bytes) or in its header area");
        }
        RegionTable.Region log = new RegionTable.Region(header.logOffset(), header.logLength());
        for (RegionTable.Region r : List.of(regions.bat(), regions.metadata(), log)) {
            if (r.overlaps(offset, length)) {
                throw ImageException.corrupt(file().path(), entryAt, "BAT entry FileOffsetMB",
                        what + " at " + offset + " overlaps the metadata or log region at " + r.fileOffset());
            }
        }
        Long bitmapBlock = bitmapBlocks.floor(offset + length - 1);
        if (bitmapBlock != null && bitmapBlock + VhdxHeader.MB > offset && !what.startsWith("sector bitmap block")) {
            throw ImageException.corrupt(file().path(), entryAt, "BAT entry FileOffsetMB",
                    what + " at " + offset + " overlaps the sector bitmap block at " + bitmapBlock);
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
        return Optional.of(new BackingRef(meta.parent().hostPaths(), "vhdx"));
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

    // ---- Writing ----

    @Override
    public boolean writable() {
        return journal != null;
    }

    private Journal journal() throws ImageException {
        if (journal == null) throw ImageException.unsupported(file().path(), "the image is open read-only");
        return journal;
    }

    @Override
    public void write(ByteBuffer src, long pos, Beneath beneath) throws IOException {
        journal().beginChange();
        long bs = meta.blockSize();
        while (src.hasRemaining()) {
            int n = (int) Math.min(src.remaining(), bs - pos % bs);
            writeInBlock(pos / bs, pos % bs, src.slice(src.position(), n), beneath);
            src.position(src.position() + n);
            pos += n;
        }
    }

    /** Writes {@code part} inside one block: in place when the block is FULLY_PRESENT, else allocating it first. */
    private void writeInBlock(long block, long inBlock, ByteBuffer part, Beneath beneath) throws IOException {
        BatEntry e = bat.payload(block);
        if (e.state() != BatEntry.FULLY_PRESENT) {
            synchronized (journal.lock()) {
                e = bat.payload(block);
                if (e.state() != BatEntry.FULLY_PRESENT) {
                    makePresent(block, e, inBlock, part, beneath);
                    return;
                }
            }
        }
        file().writeFully(part, checkedBlock(block, e) + inBlock);
    }

    /**
     * Makes block {@code block} FULLY_PRESENT holding {@code part} at {@code skipFrom} and, around it, what the
     * block reads as now: zeros. All the data goes first, then the BAT entry changes through the log, so a
     * crash before leaves the block as it read. A new block goes at the end of the file; an UNMAPPED block
     * that kept its space is completed where it is. In a differencing image, a block that shows the parent
     * (in whole or in part) gets only the sectors written instead ({@link #writeSectors}).
     */
    private void makePresent(long block, BatEntry e, long skipFrom, ByteBuffer part, Beneath beneath) throws IOException {
        if (meta.hasParent() && (e.state() == BatEntry.NOT_PRESENT || e.state() == BatEntry.UNDEFINED
                || e.state() == BatEntry.PARTIALLY_PRESENT)) {
            writeSectors(block, e, skipFrom, part, beneath);
            return;
        }
        long skipLen = part.remaining();
        long bs = meta.blockSize();
        long start = block * bs;
        long bytes = Math.min(bs, meta.virtualSize() - start);
        long offset;
        boolean fresh = false;
        if (e.state() == BatEntry.UNMAPPED && e.fileOffset() != 0 && placementOk(e.fileOffset(), bs)) {
            offset = e.fileOffset();
        } else {
            offset = journal.allocate(bs);
            fresh = true;
        }
        fill(offset, start, 0, bytes, skipFrom, skipLen, null, fresh);
        if (fresh && file().size() < offset + bs) file().writeFully(ByteBuffer.allocate(1), offset + bs - 1);
        file().writeFully(part, offset + skipFrom);
        setEntries(Map.of(bat.payloadIndex(block), BatEntry.encode(BatEntry.FULLY_PRESENT, offset)));
        blockChanged(block);
    }

    /**
     * Differencing image: writes {@code part} into block {@code block} as PARTIALLY_PRESENT (MS-VHDX 2.5.1.1),
     * only the logical sectors it touches, the first and last completed with what they read as now. Each step
     * is durable before the next, so a crash leaves the block reading as before, or with the write: the
     * sectors (in a new block, at the end of the file); their bits in the sector bitmap block (for a new block,
     * its whole range of bits, as earlier attempts may have left bits there); then, for a new block, the BAT
     * entry through the log, with the sector bitmap block's entry where that block had to be made.
     */
    private void writeSectors(long block, BatEntry e, long inBlock, ByteBuffer part, Beneath beneath) throws IOException {
        long lss = meta.logicalSectorSize();
        long bs = meta.blockSize();
        long start = block * bs;
        long bytes = Math.min(bs, meta.virtualSize() - start);
        long from = inBlock / lss * lss;
        long to = Math.min(bytes, (inBlock + part.remaining() + lss - 1) / lss * lss);
        boolean fresh = e.state() != BatEntry.PARTIALLY_PRESENT;
        long offset = fresh ? journal.allocate(bs) : checkedBlock(block, e);
        Map<Long, Long> entries = new TreeMap<>();
        long bitmapOffset;
        if (bat.bitmap(block).state() == BatEntry.BITMAP_PRESENT) {
            bitmapOffset = checkedBitmap(block);
        } else {
            bitmapOffset = journal.allocate(VhdxHeader.MB); // past the end of the file: zeros
            entries.put(bat.bitmapIndex(block), BatEntry.encode(BatEntry.BITMAP_PRESENT, bitmapOffset));
            bitmapBlocks.add(bitmapOffset);
        }
        ByteBuffer sectors = ByteBuffer.allocate((int) (to - from));
        for (long edge : new long[] {from, to - lss}) {
            if (edge >= inBlock && edge + lss <= inBlock + part.remaining()) continue; // wholly written
            ByteBuffer now = sectors.slice((int) (edge - from), (int) lss);
            if (!fresh && partial(block, e, edge, lss).status() == LayerRun.Status.DATA) file().readPadded(now, offset + edge);
            else beneath.read(now, start + edge);
        }
        sectors.put((int) (inBlock - from), part, part.position(), part.remaining());
        long end = Math.max(offset + bs, bitmapOffset + VhdxHeader.MB);
        if (file().size() < end) file().writeFully(ByteBuffer.allocate(1), end - 1); // the new blocks lie in the file
        if (!(fresh && Bytes.isZero(sectors.duplicate()))) file().writeFully(sectors, offset + from); // fresh: zeros already
        file().force(false);
        setBits(block, bitmapOffset, from / lss, to / lss, fresh);
        file().force(false);
        invalidateBits(block, bitmapOffset);
        if (fresh) entries.put(bat.payloadIndex(block), BatEntry.encode(BatEntry.PARTIALLY_PRESENT, offset));
        if (!entries.isEmpty()) setEntries(entries);
        if (fresh) blockChanged(block);
        else listener.changed(start + from, to - from);
    }

    /**
     * Sets the bits of sectors {@code [first, end)} of block {@code block} (sector numbers within the block) in
     * the sector bitmap block at {@code bitmapOffset}; with {@code wholeRange}, writes the block's whole range of
     * bits, clearing the others.
     */
    private void setBits(long block, long bitmapOffset, long first, long end, boolean wholeRange) throws IOException {
        long perBlock = meta.blockSize() / meta.logicalSectorSize(); // a multiple of 8: blocks are at least 1 MiB
        long base = block % meta.chunkRatio() * perBlock;
        long lo = wholeRange ? base : base + first;
        long hi = wholeRange ? base + perBlock : base + end;
        long byteLo = lo / 8, byteHi = (hi + 7) / 8;
        byte[] bits = new byte[(int) (byteHi - byteLo)];
        if (!wholeRange) file().readFully(ByteBuffer.wrap(bits), bitmapOffset + byteLo, "sector bitmap block");
        for (long s = base + first; s < base + end; s++) bits[(int) (s / 8 - byteLo)] |= (byte) (1 << (s % 8));
        file().writeFully(ByteBuffer.wrap(bits), bitmapOffset + byteLo);
    }

    /** Drops the cached pages of the sector bitmap holding block {@code block}'s bits, after they changed. */
    private void invalidateBits(long block, long bitmapOffset) {
        long perBlock = meta.blockSize() / meta.logicalSectorSize();
        long base = block % meta.chunkRatio() * perBlock;
        for (long page = base / 8 / BITMAP_PAGE; page <= (base + perBlock - 1) / 8 / BITMAP_PAGE; page++) {
            bitmapPages.invalidate(bitmapOffset + page * BITMAP_PAGE);
        }
    }

    /**
     * Writes {@code [from, from+len)} of the block at {@code offset} (virtual {@code start}) from {@code source}
     * (null: zeros), leaving out {@code [skipFrom, skipFrom+skipLen)}. In a fresh block, beyond the old end of
     * the file, zeros need no writing.
     */
    private void fill(long offset, long start, long from, long len, long skipFrom, long skipLen, Beneath source,
                      boolean fresh) throws IOException {
        long[][] pieces = {{from, Math.min(from + len, skipFrom)}, {Math.max(from, skipFrom + skipLen), from + len}};
        ByteBuffer buf = null;
        for (long[] piece : pieces) {
            for (long at = piece[0]; at < piece[1]; ) {
                int n = (int) Math.min(FILL_CHUNK, piece[1] - at);
                if (source == null && fresh) break;
                if (buf == null) buf = ByteBuffer.allocate(FILL_CHUNK);
                buf.clear().limit(n);
                if (source != null) source.read(buf, start + at);
                else Bytes.fillZero(buf);
                buf.flip();
                if (!(fresh && Bytes.isZero(buf.duplicate()))) file().writeFully(buf, offset + at);
                at += n;
            }
        }
    }

    /** Whether a block's worth at {@code offset} lies in the file clear of the header area and regions. */
    private boolean placementOk(long offset, long length) throws IOException {
        try {
            checkPlacement(offset, length, 0, "block");
            return true;
        } catch (ImageException ex) {
            return false;
        }
    }

    /** Changes BAT entries (index to raw value) through the log, one entry per batch of pages. Caller holds the lock. */
    private void setEntries(Map<Long, Long> changes) throws IOException {
        TreeMap<Long, long[]> pages = new TreeMap<>();
        for (Map.Entry<Long, Long> c : new TreeMap<>(changes).entrySet()) {
            long index = c.getKey();
            long[] page = pages.get(bat.pageOffset(index));
            if (page == null) {
                page = bat.pageCopy(index);
                pages.put(bat.pageOffset(index), page);
            }
            page[Bat.inPage(index)] = c.getValue();
        }
        List<LogEntry.Sector> batch = new ArrayList<>();
        List<Map.Entry<Long, long[]>> done = new ArrayList<>();
        for (Map.Entry<Long, long[]> p : pages.entrySet()) {
            batch.add(new LogEntry.Sector(p.getKey(), Bat.encode(p.getValue())));
            done.add(p);
            if (batch.size() == journal.maxSectors()) {
                commit(batch, done);
            }
        }
        if (!batch.isEmpty()) commit(batch, done);
    }

    private void commit(List<LogEntry.Sector> batch, List<Map.Entry<Long, long[]>> pages) throws IOException {
        journal.commit(batch);
        for (Map.Entry<Long, long[]> p : pages) bat.install(p.getKey(), p.getValue());
        batch.clear();
        pages.clear();
    }

    /** A payload block: where the BAT and, in a differencing image, the sector bitmaps change. */
    @Override
    public long mappingUnit() {
        return meta.blockSize();
    }

    @Override
    public void setMapChangeListener(MapChangeListener l) {
        listener = l;
    }

    /** New write GUIDs; the map hands out in-place runs whenever, renewing them before the first ({@link #inPlace}). */
    @Override
    public void prepareForWrites() throws IOException {
        journal().beginChange();
    }

    private void blockChanged(long block) {
        listener.changed(block * meta.blockSize(), meta.blockSize());
    }

    @Override
    public void writeZeroes(long pos, long length, boolean mayUnmap, Beneath beneath) throws IOException {
        journal().beginChange();
        long bs = meta.blockSize();
        for (long end = pos + length; pos < end; ) {
            long block = pos / bs;
            long inBlock = pos % bs;
            long n = Math.min(end - pos, bs - inBlock);
            long blockBytes = Math.min(bs, meta.virtualSize() - block * bs);
            zeroInBlock(block, inBlock, n, inBlock == 0 && n == blockBytes, mayUnmap, beneath);
            pos += n;
        }
    }

    /**
     * Zeroes part of one block. Blocks that read as zeros already are left alone; a whole block gets the state
     * UNMAPPED, keeping its space so a later write reuses it, unless it must stay allocated (a fixed image, or no
     * unmapping allowed). A differencing image gets the zeros written instead: UNMAPPED may show the parent, and
     * libvhdi shows the parent for ZERO too, where MS-VHDX says zeros.
     */
    private void zeroInBlock(long block, long inBlock, long n, boolean whole, boolean mayUnmap, Beneath beneath) throws IOException {
        BatEntry e = bat.payload(block);
        boolean readsZero = e.state() == BatEntry.ZERO || e.state() == BatEntry.UNMAPPED
                || (!meta.hasParent() && (e.state() == BatEntry.NOT_PRESENT || e.state() == BatEntry.UNDEFINED));
        if (readsZero) return;
        boolean keep = e.state() == BatEntry.FULLY_PRESENT && (!mayUnmap || (meta.leaveBlocksAllocated() && !meta.hasParent()));
        if (whole && !keep && !meta.hasParent()) {
            synchronized (journal.lock()) {
                BatEntry now = bat.payload(block);
                long raw = now.state() == BatEntry.FULLY_PRESENT
                        ? BatEntry.encode(BatEntry.UNMAPPED, now.fileOffset())
                        : BatEntry.encode(BatEntry.ZERO, 0);
                setEntries(Map.of(bat.payloadIndex(block), raw));
                blockChanged(block);
            }
            return;
        }
        ByteBuffer zeros = ByteBuffer.allocate((int) Math.min(n, FILL_CHUNK));
        for (long done = 0; done < n; ) {
            int k = (int) Math.min(zeros.capacity(), n - done);
            writeInBlock(block, inBlock + done, zeros.clear().limit(k), beneath);
            done += k;
        }
    }

    @Override
    public void flush() throws IOException {
        if (journal != null) file().force(true);
    }

    /**
     * Grows the disk (shrinking is not supported). The grown part reads as zeros: the old last block's tail is
     * zeroed, a fixed image gets its new blocks allocated, a differencing one a zeroed sector bitmap per new
     * chunk. When the BAT region has room for the new entries (qemu sizes it to the disk, rounded up to 1 MiB),
     * they change in place and the new size goes through the log last; else see {@link #moveBat}.
     */
    @Override
    public void resize(long newSize, boolean allowShrink) throws IOException {
        Journal j = journal();
        VhdxMetadata m = meta;
        if (newSize < m.virtualSize()) {
            throw ImageException.unsupported(file().path(), "shrinking VHDX images is not supported");
        }
        if (newSize % m.logicalSectorSize() != 0 || newSize > VhdxMetadata.MAX_VIRTUAL_SIZE) {
            throw ImageException.invalid(file().path(), "the new size " + newSize + " is not a multiple of the "
                    + m.logicalSectorSize() + "-byte sector up to 64 TiB");
        }
        if (newSize == m.virtualSize()) return;
        VhdxMetadata grown = new VhdxMetadata(m.blockSize(), m.leaveBlocksAllocated(), m.hasParent(), newSize, m.page83(),
                m.logicalSectorSize(), m.physicalSectorSize(), m.parent());
        boolean move = grown.batEntries() > regions.bat().length() / 8;
        if (move && j.maxSectors() < 2 * RegionTable.SIZE / VhdxLog.SECTOR + 2) {
            throw ImageException.unsupported(file().path(), "the log (" + j.header().logLength()
                    + " bytes) is too small to move the BAT region in one entry");
        }
        long sizeItem = virtualSizeItemOffset();
        synchronized (j.lock()) {
            j.beginChange();
            long bs = m.blockSize();
            long oldBlocks = m.dataBlocks();
            long tail = m.virtualSize() % bs;
            if (tail != 0) {
                long last = oldBlocks - 1;
                BatEntry e = bat.payload(last);
                if (e.state() == BatEntry.FULLY_PRESENT) {
                    long upTo = Math.min(bs, newSize - last * bs);
                    writeZerosAt(checkedBlock(last, e) + tail, upTo - tail);
                }
            }
            List<LogEntry.Sector> change = sizeChange(sizeItem, newSize);
            if (move) {
                moveBat(m, grown, change);
            } else {
                Map<Long, Long> entries = new TreeMap<>();
                for (long index = firstNewIndex(m); index < grown.batEntries(); index++) {
                    long raw = grownEntry(index, m, grown);
                    if (raw != KEEP && raw != bat.raw(index)) entries.put(index, raw);
                }
                extendOverAllocated();
                if (!entries.isEmpty()) setEntries(entries);
                j.commit(change);
            }
            meta = grown;
        }
    }

    /** Marks an entry of an old chunk's sector bitmap, which growing leaves as it is. */
    private static final long KEEP = -1;

    /** The first BAT entry a grown disk may have to change: the first new payload block's. */
    private long firstNewIndex(VhdxMetadata m) {
        return m.dataBlocks() == 0 ? 0 : bat.payloadIndex(m.dataBlocks());
    }

    /**
     * The entry {@code index} (at or past {@link #firstNewIndex}) of the grown disk: a new payload block is
     * NOT_PRESENT, or allocated in a fixed image; a new chunk's sector bitmap is absent, or allocated (zeros) in
     * a differencing image, as the creator makes it; an old chunk's bitmap is {@link #KEEP}. Caller holds the lock.
     */
    private long grownEntry(long index, VhdxMetadata m, VhdxMetadata grown) throws IOException {
        long ratio = m.chunkRatio();
        if (index % (ratio + 1) == ratio) {
            long chunkFirst = index / (ratio + 1) * ratio;
            if (chunkFirst < m.dataBlocks()) return KEEP;
            if (!m.hasParent()) return 0;
            long at = journal.allocate(VhdxHeader.MB);
            bitmapBlocks.add(at);
            return BatEntry.encode(BatEntry.BITMAP_PRESENT, at);
        }
        long block = index - index / (ratio + 1);
        if (block >= grown.dataBlocks()) return 0;
        boolean fixed = m.leaveBlocksAllocated() && !m.hasParent();
        return fixed ? BatEntry.encode(BatEntry.FULLY_PRESENT, journal.allocate(m.blockSize())) : 0;
    }

    /**
     * Extends the file over everything allocated so far: a hole, reading zeros (one write, not one per block,
     * which would give every new block a page of real disk).
     */
    private void extendOverAllocated() throws IOException {
        long end = journal.allocated();
        if (file().size() < end) file().writeFully(ByteBuffer.allocate(1), end - 1);
    }

    /**
     * Moves the BAT to a new, larger region at the end of the file: the old entries are copied and the new
     * ones filled in there (the chunk ratio does not change with the size, so every entry keeps its index),
     * all before the switch; then one log entry rewrites both region tables and the virtual size together.
     * A crash before that entry is complete leaves the old disk (and unused space at the end of the file);
     * after, replay finishes the new one. The old region is left unused. Caller holds the lock.
     */
    private void moveBat(VhdxMetadata m, VhdxMetadata grown, List<LogEntry.Sector> change) throws IOException {
        long mb = VhdxHeader.MB;
        long length = Math.addExact(grown.batEntries() * 8, mb - 1) / mb * mb;
        RegionTable.Region moved = new RegionTable.Region(journal.allocate(length), length);
        long room = regions.bat().length() / 8;
        long firstNew = firstNewIndex(m);
        ByteBuffer chunk = ByteBuffer.allocate((int) mb).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (long index = 0; index < length / 8; ) {
            long chunkStart = index;
            chunk.clear();
            for (; chunk.hasRemaining(); index++) {
                long raw = index < firstNew ? bat.raw(index) : index < grown.batEntries() ? grownEntry(index, m, grown) : 0;
                if (raw == KEEP) raw = index < room ? bat.raw(index) : 0;
                chunk.putLong(raw);
            }
            chunk.flip();
            if (!Bytes.isZero(chunk.duplicate())) file().writeFully(chunk, moved.fileOffset() + chunkStart * 8);
        }
        extendOverAllocated();
        ByteBuffer table = RegionTable.withBat(view.readStruct(regions.offset(), RegionTable.SIZE, "region table"), moved);
        for (long copy : new long[] {RegionTable.TABLE1, RegionTable.TABLE2}) {
            for (int i = 0; i < RegionTable.SIZE / VhdxLog.SECTOR; i++) {
                byte[] data = new byte[VhdxLog.SECTOR];
                table.get(i * VhdxLog.SECTOR, data);
                change.add(new LogEntry.Sector(copy + (long) i * VhdxLog.SECTOR, data));
            }
        }
        journal.commit(change);
        ReplayedFile now = new ReplayedFile(file(), LogOverlay.EMPTY, file().size());
        view = now;
        regions = new RegionTable(regions.offset(), moved, regions.metadata());
        bat = new Bat(now, moved, grown, batCache(cacheBytes));
    }

    /** The log sectors that set the virtual disk size item at {@code sizeItem} to {@code newSize}. */
    private List<LogEntry.Sector> sizeChange(long sizeItem, long newSize) throws IOException {
        long sector = sizeItem / VhdxLog.SECTOR * VhdxLog.SECTOR;
        ByteBuffer page = file().readStruct(sector, 2L * VhdxLog.SECTOR, java.nio.ByteOrder.LITTLE_ENDIAN, "metadata region");
        page.putLong((int) (sizeItem - sector), newSize);
        List<LogEntry.Sector> change = new ArrayList<>();
        for (int i = 0; i * VhdxLog.SECTOR < sizeItem - sector + 8; i++) {
            byte[] data = new byte[VhdxLog.SECTOR];
            page.get(i * VhdxLog.SECTOR, data);
            change.add(new LogEntry.Sector(sector + (long) i * VhdxLog.SECTOR, data));
        }
        return change;
    }

    /** Where the virtual disk size item is in the file. */
    private long virtualSizeItemOffset() throws IOException {
        RegionTable.Region r = regions.metadata();
        for (MetadataTable.Entry e : MetadataTable.parse(file(), r.fileOffset(), r.length(),
                view.readStruct(r.fileOffset(), MetadataTable.SIZE, "metadata table"))) {
            if (!e.user() && e.id().equals(VhdxMetadata.VIRTUAL_DISK_SIZE)) return r.fileOffset() + e.offset();
        }
        throw ImageException.corrupt(file().path(), r.fileOffset(), "metadata table", "no virtual disk size item");
    }

    private void writeZerosAt(long offset, long length) throws IOException {
        ByteBuffer zeros = ByteBuffer.allocate((int) Math.min(length, FILL_CHUNK));
        for (long done = 0; done < length; ) {
            int k = (int) Math.min(zeros.capacity(), length - done);
            file().writeFully(zeros.clear().limit(k), offset + done);
            done += k;
        }
    }

    /**
     * qemu-img check's findings (see {@link VhdxCheck}). A log needing replay fails the check read-only, as in
     * qemu; any repair mode opens the image for writing, which replays it (counted as one fixed corruption,
     * as qemu counts it). Corruptions of the BAT are not repaired (qemu repairs none either).
     */
    @Override
    public CheckReport check(RepairMode mode) throws IOException {
        long fileSize = journal != null ? file().size() : view.size();
        return VhdxCheck.check(fileSize, header, regions, meta, bat, replayedOnOpen, replay.entries());
    }

    @Override
    public void close() throws IOException {
        view.file().close();
    }
}
