package org.vdiskload.format.qcow;

import org.vdiskload.image.BackingRef;
import org.vdiskload.image.Beneath;
import org.vdiskload.image.CompressedUnit;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.LayerInfo;
import org.vdiskload.image.LayerRun;
import org.vdiskload.image.MapChangeListener;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;
import org.vdiskload.io.LruCache;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/** A qcow version 1 image: clusters through L1/L2 tables, optionally zlib-compressed, over an optional backing file. */
final class QcowLayer implements ImageLayer {
    /** Decompressed clusters kept for sequential reads of a compressed image. */
    private static final int DECOMPRESSED_CACHE_ENTRIES = 16;

    private final ImageFile file;
    private final QcowHeader header;
    private final QcowTables tables;
    private final BackingRef backing;
    private final LruCache<byte[]> decompressed = new LruCache<>(DECOMPRESSED_CACHE_ENTRIES);
    /** Null when the file is open read-only. */
    private final QcowWriter writer;

    QcowLayer(ImageFile file, QcowHeader header, QcowTables tables, BackingRef backing) throws IOException {
        this.file = file;
        this.header = header;
        this.tables = tables;
        this.backing = backing;
        this.writer = file.isWritable() ? new QcowWriter(file, header, tables, this::decompressCached) : null;
    }

    /** Reads the backing file name; qcow v1 records no backing format, so the chain probes it. */
    static BackingRef readBacking(ImageFile file, QcowHeader h) throws IOException {
        if (!h.hasBackingFile()) return null;
        ByteBuffer b = file.readStruct(h.backingFileOffset(), h.backingFileSize(), ByteOrder.BIG_ENDIAN, "backing file name");
        byte[] bytes = new byte[b.remaining()];
        b.get(bytes);
        int len = 0;
        while (len < bytes.length && bytes[len] != 0) len++; // qemu reads it as a C string
        if (len == 0) return null;
        return new BackingRef(new String(bytes, 0, len, StandardCharsets.UTF_8), null);
    }

    @Override
    public String formatName() {
        return "qcow";
    }

    @Override
    public ImageFile file() {
        return file;
    }

    @Override
    public long size() {
        return header.virtualSize();
    }

    @Override
    public LayerRun map(long pos, long maxLength) throws IOException {
        int bits = header.clusterBits();
        long clusterSize = header.clusterSize();
        long end = pos + maxLength;
        long cluster = pos >>> bits;
        QcowCluster first = tables.cluster(cluster);
        long runEnd = Math.min(end, (cluster + 1) << bits);
        // Extend over following clusters of the same kind (and, for data, contiguous in the file).
        long expectedHost = first.hostOffset() + clusterSize;
        while (runEnd < end) {
            long next = runEnd >>> bits;
            if (first.kind() == QcowCluster.Kind.UNALLOCATED && !tables.hasL2((int) (next >>> header.l2Bits()))) {
                runEnd = Math.min(end, ((next >>> header.l2Bits()) + 1) << header.l1Shift());
                continue;
            }
            QcowCluster c = tables.cluster(next);
            if (c.kind() != first.kind()) break;
            if (c.kind() == QcowCluster.Kind.DATA) {
                if (c.hostOffset() != expectedHost) break;
                expectedHost += clusterSize;
            }
            runEnd = Math.min(end, (next + 1) << bits);
        }
        long length = runEnd - pos;
        return switch (first.kind()) {
            case UNALLOCATED -> LayerRun.unallocated(length);
            case COMPRESSED -> LayerRun.encoded(length);
            // qcow has no refcounts: an allocated plain cluster belongs to this image alone.
            case DATA -> new LayerRun(length, LayerRun.Status.DATA, file, first.hostOffset() + (pos & (clusterSize - 1)), writer != null);
        };
    }

    @Override
    public void readEncoded(ByteBuffer dst, long pos) throws IOException {
        int bits = header.clusterBits();
        while (dst.hasRemaining()) {
            QcowCluster c = tables.cluster(pos >>> bits);
            if (c.kind() != QcowCluster.Kind.COMPRESSED) {
                throw new IllegalStateException("readEncoded at " + pos + " outside a compressed cluster");
            }
            byte[] data = decompressCached(c);
            int inCluster = (int) (pos & (header.clusterSize() - 1));
            int n = Math.min(dst.remaining(), data.length - inCluster);
            dst.put(data, inCluster, n);
            pos += n;
        }
    }

    private byte[] decompressCached(QcowCluster c) throws IOException {
        return decompressed.get(c.hostOffset(), off -> decompress(c));
    }

    /** Inflates one cluster; like qemu, the raw deflate stream must fill the cluster exactly. */
    private byte[] decompress(QcowCluster c) throws IOException {
        ByteBuffer in = file.readStruct(c.hostOffset(), c.compressedSize(), ByteOrder.BIG_ENDIAN, "compressed cluster");
        byte[] out = new byte[header.clusterSize()];
        Inflater inflater = new Inflater(true);
        try {
            inflater.setInput(in);
            int n = 0;
            while (n < out.length && !inflater.finished() && !inflater.needsInput() && !inflater.needsDictionary()) {
                n += inflater.inflate(out, n, out.length - n);
            }
            if (n != out.length) {
                throw ImageException.corrupt(file.path(), c.hostOffset(), "compressed cluster",
                        "decompresses to " + n + " bytes instead of the cluster size " + out.length);
            }
        } catch (DataFormatException e) {
            throw ImageException.corrupt(file.path(), c.hostOffset(), "compressed cluster", "invalid deflate data: " + e.getMessage());
        } finally {
            inflater.end();
        }
        return out;
    }

    @Override
    public Optional<BackingRef> backing() {
        return Optional.ofNullable(backing);
    }

    @Override
    public LayerInfo info() {
        return new LayerInfo("qcow", size(), (long) header.clusterSize(), null, List.of(), Map.of());
    }

    @Override
    public boolean writable() {
        return writer != null;
    }

    @Override
    public void write(ByteBuffer src, long pos, Beneath beneath) throws IOException {
        requireWriter().write(src, pos, beneath);
    }

    @Override
    public void writeZeroes(long pos, long length, boolean mayUnmap, Beneath beneath) throws IOException {
        requireWriter().writeZeroes(pos, length, mayUnmap, beneath);
    }

    @Override
    public void flush() throws IOException {
        if (writer != null) writer.flush();
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
    public void setMetadataWriteThrough(boolean on) throws IOException {
        requireWriter().setMetadataWriteThrough(on);
    }

    @Override
    public int compressionUnit() {
        return header.clusterSize();
    }

    @Override
    public CompressedUnit compress(ByteBuffer unit, long pos) throws IOException {
        return requireWriter().compress(unit, pos);
    }

    @Override
    public void writeCompressed(CompressedUnit unit) throws IOException {
        requireWriter().writeCompressed(unit, NOTHING_BENEATH);
    }

    /** A compressed write covers whole clusters, so nothing is ever read from beneath it. */
    private static final Beneath NOTHING_BENEATH = new Beneath() {
        @Override
        public void read(ByteBuffer dst, long pos) {
            org.vdiskload.io.Bytes.fillZero(dst);
        }

        @Override
        public boolean exists() {
            return false;
        }
    };

    private QcowWriter requireWriter() throws ImageException {
        if (writer == null) throw ImageException.invalid(file.path(), "image is open read-only");
        return writer;
    }

    @Override
    public void close() throws IOException {
        file.close();
    }
}
