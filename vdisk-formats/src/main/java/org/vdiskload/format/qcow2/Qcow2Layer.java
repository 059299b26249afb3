package org.vdiskload.format.qcow2;

import org.vdiskload.image.BackingRef;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.LayerInfo;
import org.vdiskload.image.LayerRun;
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

/** A qcow2 image (version 2 or 3), read-only: the active layer or one internal snapshot. */
final class Qcow2Layer implements ImageLayer {
    /** Decompressed clusters kept: enough for sequential reads, bounded for 2 MiB clusters. */
    private static final int DECOMPRESSED_CACHE_CLUSTERS = 4;

    private final ImageFile file;
    private final Qcow2Header header;
    private final BackingRef backing;
    private final List<Qcow2Snapshot> snapshots;
    private final ClusterMap clusters;
    private final LruCache<byte[]> decompressed;

    private Qcow2Layer(ImageFile file, Qcow2Header header, BackingRef backing, List<Qcow2Snapshot> snapshots,
                       ClusterMap clusters, long cacheBytes) {
        this.file = file;
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
        if (h.corrupt() && context.writable()) {
            throw ImageException.unsupported(file.path(), "the image is marked corrupt; it can only be opened read-only");
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
        ClusterMap clusters = ClusterMap.load(file, h, l1Offset, l1Size, context.cacheBytes());
        return new Qcow2Layer(file, h, backing, snapshots, clusters, context.cacheBytes());
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
        return header.size();
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
            if (c == null) throw ImageException.invalid(file.path(), "offset " + pos + " is not in a compressed cluster");
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

    @Override
    public Optional<BackingRef> backing() {
        return Optional.ofNullable(backing);
    }

    @Override
    public LayerInfo info() {
        Map<String, Object> specific = new LinkedHashMap<>();
        specific.put("compat", header.version() == 2 ? "0.10" : "1.1");
        specific.put("compression-type", header.compressionType() == Qcow2Header.COMPRESSION_ZSTD ? "zstd" : "zlib");
        if (header.version() >= 3) specific.put("lazy-refcounts", header.lazyRefcounts());
        specific.put("refcount-bits", header.refcountBits());
        if (header.version() >= 3) {
            specific.put("corrupt", header.corrupt());
            specific.put("extended-l2", header.extendedL2());
        }
        List<SnapshotInfo> list = snapshots.stream().map(Qcow2Snapshot::info).toList();
        return new LayerInfo("qcow2", header.size(), header.clusterSize(), header.dirty(), list, specific);
    }

    @Override
    public void close() throws IOException {
        file.close();
    }
}
