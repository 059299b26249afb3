package org.vdiskload.format.qcow2;

import org.vdiskload.check.CheckReport;
import org.vdiskload.check.RepairMode;
import org.vdiskload.image.BackingRef;
import org.vdiskload.image.CompressedUnit;
import org.vdiskload.image.Beneath;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.LayerInfo;
import org.vdiskload.image.LayerRun;
import org.vdiskload.image.MapChangeListener;
import org.vdiskload.image.OpenContext;
import org.vdiskload.image.SnapshotInfo;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;
import org.vdiskload.io.LruCache;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A qcow2 image (version 2 or 3): the active layer or one internal snapshot (read-only). Opened for
 * writing, the active layer is written through a {@link Qcow2Writer}.
 */
final class Qcow2Layer implements ImageLayer {
    /** Decompressed clusters kept: enough for sequential reads, bounded for 2 MiB clusters. */
    private static final int DECOMPRESSED_CACHE_CLUSTERS = 4;

    private final ImageFile file;
    private final Qcow2Header header;
    private final HeaderExtensions ext;
    private final BackingRef backing;
    private final List<Qcow2Snapshot> snapshots;
    private final ClusterMap clusters;
    private final LruCache<byte[]> decompressed;
    /** Null unless opened for writing. */
    private final Qcow2Writer writer;

    private Qcow2Layer(ImageFile file, Qcow2Header header, HeaderExtensions ext, BackingRef backing, List<Qcow2Snapshot> snapshots,
                       ClusterMap clusters, long cacheBytes, Qcow2Writer writer) {
        this.file = file;
        this.ext = ext;
        this.writer = writer;
        this.header = header;
        this.backing = backing;
        this.snapshots = snapshots;
        this.clusters = clusters;
        this.decompressed = new LruCache<>(Math.min(DECOMPRESSED_CACHE_CLUSTERS,
                LruCache.entriesFor(cacheBytes / 4, header.clusterSize())));
    }

    static Qcow2Layer open(ImageFile file, OpenContext context) throws IOException {
        Qcow2Header h = Qcow2Header.read(file);
        HeaderExtensions ext = HeaderExtensions.read(file, h);
        h.validate(file, ext);
        if (h.corrupt() && context.writable() && !context.repair()) {
            throw ImageException.unsupported(file.path(), "the image is marked corrupt (a write found its metadata inconsistent);"
                    + " it opens read-only until 'vdiskload check -r all' (or 'qemu-img check -r all') repairs it");
        }
        if (context.snapshot() != null && context.writable()) {
            throw ImageException.unsupported(file.path(), "internal snapshots can only be opened read-only");
        }
        BackingRef backing = null;
        if (h.backingFileOffset() != 0 && h.backingFileSize() != 0) {
            ByteBuffer name = file.readStruct(h.backingFileOffset(), h.backingFileSize(), ByteOrder.BIG_ENDIAN, "backing file name");
            backing = new BackingRef(StandardCharsets.UTF_8.decode(name).toString(), ext.backingFormat());
        }
        List<Qcow2Snapshot> snapshots = Qcow2Snapshot.readTable(file, h);
        long l1Offset = h.l1TableOffset();
        int l1Size = h.l1Size();
        if (context.snapshot() != null) {
            Qcow2Snapshot s = Qcow2Snapshot.find(snapshots, context.snapshot());
            if (s == null) throw ImageException.invalid(file.path(), "no snapshot with id or name '" + context.snapshot() + "'");
            l1Offset = s.l1TableOffset();
            l1Size = s.l1Size();
        }
        boolean writable = context.writable() && file.isWritable();
        ClusterMap clusters = ClusterMap.load(file, h, l1Offset, l1Size, context.cacheBytes());
        Refcounts refcounts = writable ? Refcounts.load(file, h) : null;
        Qcow2Writer writer = writable ? new Qcow2Writer(file, h, clusters, refcounts, Bitmaps.extents(file, h, ext, h.autoclearFeatures())) : null;
        long snapshotTableBytes = snapshots.stream().mapToLong(Qcow2Snapshot::entryBytes).sum();
        HostRange bitmapDirectory = ext.bitmaps() && (h.autoclearFeatures() & Bitmaps.AUTOCLEAR_BITMAPS) != 0 && ext.bitmapCount() > 0
                ? new HostRange(ext.bitmapDirectoryOffset(), ext.bitmapDirectorySize()) : null;
        MetadataOverlap overlap = new MetadataOverlap(h, snapshots, snapshotTableBytes, clusters, refcounts,
                context.fullOverlapCheck() ? MetadataOverlap.snapshotL2Tables(file, h, snapshots) : new long[0],
                writer != null ? writer::bitmapDirectory : () -> bitmapDirectory);
        clusters.useOverlapCheck(overlap);
        if (writer != null) writer.useOverlapCheck(overlap);
        Qcow2Layer layer = new Qcow2Layer(file, h, ext, backing, snapshots, clusters, context.cacheBytes(), writer);
        if (writer != null && writer.dirty()) {
            // A dirty image (lazy refcounts, not closed cleanly): refcounts are rebuilt before any write, as qemu does.
            layer.check(RepairMode.ALL);
            writer.markClean();
        }
        return layer;
    }

    @Override
    public String formatName() {
        return "qcow2";
    }

    @Override
    public ImageFile file() {
        return file;
    }

    @Override
    public long size() {
        return writer != null ? writer.size() : header.size();
    }

    @Override
    public LayerRun map(long pos, long maxLength) throws IOException {
        return clusters.map(pos, maxLength);
    }

    @Override
    public void readEncoded(ByteBuffer dst, long pos) throws IOException {
        int clusterSize = (int) header.clusterSize();
        while (dst.hasRemaining()) {
            ClusterMap.Compressed c = clusters.compressed(pos);
            if (c == null) {
                pos += readDataOverMetadata(dst, pos);
                continue;
            }
            byte[] data = decompressed.get(c.hostOffset(), key -> {
                ByteBuffer in = ByteBuffer.allocate(c.length());
                file.readPadded(in, c.hostOffset());
                return Compression.decompress(header.compressionType(), in.array(), clusterSize, file, c.hostOffset());
            });
            int at = (int) (pos & (clusterSize - 1));
            int n = Math.min(dst.remaining(), clusterSize - at);
            dst.put(data, at, n);
            pos += n;
        }
    }

    /**
     * Reads guest data lying on metadata, which the map reports ENCODED (so that no backend writes there
     * itself): the bytes are read as qemu reads them, up to the end of the cluster. Returns how many.
     */
    private int readDataOverMetadata(ByteBuffer dst, long pos) throws IOException {
        long host = clusters.dataOverMetadata(pos);
        if (host < 0) throw ImageException.invalid(file.path(), "offset " + pos + " is not in an encoded cluster");
        long clusterSize = header.clusterSize();
        int n = (int) Math.min(dst.remaining(), clusterSize - (pos & (clusterSize - 1)));
        file.readPadded(dst.slice(dst.position(), n), host);
        dst.position(dst.position() + n);
        return n;
    }

    @Override
    public Optional<BackingRef> backing() {
        return Optional.ofNullable(backing);
    }

    @Override
    public LayerInfo info() throws IOException {
        Map<String, Object> specific = new LinkedHashMap<>();
        specific.put("compat", header.version() == 2 ? "0.10" : "1.1");
        specific.put("compression-type", header.compressionType() == Qcow2Header.COMPRESSION_ZSTD ? "zstd" : "zlib");
        if (header.version() >= 3) specific.put("lazy-refcounts", header.lazyRefcounts());
        List<Map<String, Object>> bitmaps = Bitmaps.describe(file, header, ext);
        if (!bitmaps.isEmpty()) specific.put("bitmaps", bitmaps);
        specific.put("refcount-bits", header.refcountBits());
        if (header.version() >= 3) {
            specific.put("corrupt", header.corrupt());
            specific.put("extended-l2", header.extendedL2());
        }
        List<SnapshotInfo> list = snapshots.stream().map(Qcow2Snapshot::info).toList();
        boolean dirty = writer != null ? writer.dirty() : header.dirty();
        return new LayerInfo("qcow2", size(), header.clusterSize(), dirty, list, specific);
    }

    // ---- Writing ----

    @Override
    public boolean writable() {
        return writer != null;
    }

    private Qcow2Writer writer() throws ImageException {
        if (writer == null) throw ImageException.invalid(file.path(), "image is open read-only");
        return writer;
    }

    @Override
    public void write(ByteBuffer src, long pos, Beneath beneath) throws IOException {
        writer().write(src, pos, beneath);
    }

    @Override
    public void writeZeroes(long pos, long length, boolean mayUnmap, Beneath beneath) throws IOException {
        writer().writeZeroes(pos, length, mayUnmap, beneath);
    }

    @Override
    public void flush() throws IOException {
        if (writer != null) writer.flush();
    }

    @Override
    public int allocationUnit() {
        // With extended L2 entries only the subclusters written are allocated.
        return writer == null ? 0 : (int) (header.extendedL2() ? header.clusterSize() / L2Entry.SUBCLUSTERS : header.clusterSize());
    }

    @Override
    public long mappingUnit() {
        return header.clusterSize();
    }

    @Override
    public void setMapChangeListener(MapChangeListener listener) {
        if (writer != null) writer.setMapChangeListener(listener);
    }

    @Override
    public void prepareForWrites() throws IOException {
        writer().prepareForWrites();
    }

    @Override
    public void setMetadataWriteThrough(boolean on) throws IOException {
        writer().setMetadataWriteThrough(on);
    }

    @Override
    public int compressionUnit() {
        return (int) header.clusterSize();
    }

    @Override
    public CompressedUnit compress(ByteBuffer unit, long pos) throws IOException {
        return writer().compress(unit, pos);
    }

    @Override
    public void writeCompressed(CompressedUnit unit) throws IOException {
        writer().writeCompressed(unit);
    }

    @Override
    public void resize(long newSize, boolean allowShrink) throws IOException {
        writer().resize(newSize, allowShrink);
    }

    /** preallocation=metadata|falloc|full, right after create. */
    void preallocate(String mode, boolean backing) throws IOException {
        writer().preallocate(mode, backing);
    }

    @Override
    public CheckReport check(RepairMode mode) throws IOException {
        if (mode != RepairMode.NONE && writer == null) {
            throw ImageException.invalid(file.path(), "repairing needs the image opened for writing");
        }
        if (writer == null) {
            return new Qcow2Check(file, header, size(), snapshots, clusters, Refcounts.load(file, header),
                    Bitmaps.extents(file, header, ext, header.autoclearFeatures())).run(mode);
        }
        writer.flush(); // what waits in memory, in its order: the check reads and repairs the file
        CheckReport report;
        synchronized (writer.lock()) {
            report = new Qcow2Check(file, header, size(), snapshots, clusters, writer.refcounts(), writer.bitmaps()).run(mode);
        }
        // As qemu: a repair that leaves no corruption clears the corrupt bit a write set.
        if (mode != RepairMode.NONE && report.corruptions() == 0) writer.markConsistent();
        return report;
    }

    @Override
    public void close() throws IOException {
        try {
            if (writer != null) writer.close();
        } finally {
            file.close();
        }
    }
}
