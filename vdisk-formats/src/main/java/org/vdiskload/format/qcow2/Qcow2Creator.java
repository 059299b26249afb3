package org.vdiskload.format.qcow2;

import org.vdiskload.image.CreateOptions;
import org.vdiskload.image.OpenContext;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

/**
 * qemu-img create -f qcow2 (block/qcow2.c, qcow2_co_create), with qemu's option names and checks:
 * the header cluster (header, backing format and feature name extensions, backing file name), an
 * all-zero L1 table, and a refcount structure covering them, laid out as
 * {@link Refcounts.Layout} plans it. Preallocation then goes through the writer.
 */
final class Qcow2Creator {
    private static final long DEFAULT_CLUSTER = 64 << 10;
    private static final int V3_HEADER_LENGTH = 112;

    /** The feature name table qemu writes: (type, bit, name). */
    private static final Object[][] FEATURES = {
            {0, 0, "dirty bit"}, {0, 1, "corrupt bit"}, {0, 2, "external data file"}, {0, 3, "compression type"},
            {0, 4, "extended L2 entries"}, {1, 0, "lazy refcounts"}, {2, 0, "bitmaps"}, {2, 1, "raw external data"}};

    /** The validated options. */
    private record Spec(int version, int clusterBits, int refcountOrder, boolean lazyRefcounts, boolean extendedL2,
                        int compressionType, String preallocation, String backingFile, String backingFormat) {}

    private Qcow2Creator() {}

    static List<Path> create(long size, CreateOptions options) throws IOException {
        Path target = options.target();
        Spec spec = parse(options);
        size = Math.addExact(size, 511) & ~511L;
        Qcow2Header shape = new Qcow2Header(spec.version, 0, 0, spec.clusterBits, size, 0, 0, 0, 0, 0, 0, 0,
                spec.extendedL2 ? Qcow2Header.INCOMPAT_EXTL2 : 0, 0, 0, spec.refcountOrder, 0, spec.compressionType);
        long l1Entries = Qcow2Header.l1EntriesFor(size, shape.bytesPerL1Entry());
        if (l1Entries * 8 > Qcow2Header.MAX_L1_BYTES) {
            throw ImageException.invalid(target, "image size " + size + " is too large for cluster size " + shape.clusterSize()
                    + " (the L1 table would exceed 32 MiB)");
        }
        byte[] header = header(spec, size, shape, (int) l1Entries, target);
        long cs = shape.clusterSize();
        long l1Clusters = (l1Entries * 8 + cs - 1) / cs;
        long[] counts = new long[(int) (1 + l1Clusters)];
        java.util.Arrays.fill(counts, 1);
        Refcounts.Layout layout = Refcounts.Layout.plan(target, counts, counts.length, 0, spec.clusterBits, spec.refcountOrder);
        ByteBuffer.wrap(header).putLong(40, l1Entries > 0 ? cs : 0)
                .putLong(48, layout.tableOffset()).putInt(56, layout.tableClusters());
        try (RandomAccessFile f = new RandomAccessFile(target.toFile(), "rw")) {
            f.setLength(0);
        } catch (java.io.FileNotFoundException e) {
            throw ImageException.invalid(target, "cannot create: " + e.getMessage());
        }
        try (ImageFile file = ImageFile.open(target, true)) {
            file.writeFully(ByteBuffer.wrap(header), 0);
            layout.write(file, counts);
        }
        if (!spec.preallocation.equals("off")) {
            try (ImageFile file = ImageFile.open(target, true);
                 Qcow2Layer layer = Qcow2Layer.open(file, new OpenContext(null, 1 << 20, true))) {
                layer.preallocate(spec.preallocation, spec.backingFile != null);
            }
        }
        return List.of(target);
    }

    private static Spec parse(CreateOptions o) throws ImageException {
        Path target = o.target();
        String compat = o.takeChoice("compat", "1.1", "0.10", "1.1", "v2", "v3");
        int version = compat.equals("0.10") || compat.equals("v2") ? 2 : 3;
        long cluster = o.takeSize("cluster_size");
        if (cluster < 0) cluster = DEFAULT_CLUSTER;
        if (cluster < 512 || cluster > 2L << 20 || Long.bitCount(cluster) != 1) {
            throw ImageException.invalid(target, "cluster size must be a power of two between 512 and 2048k (not " + cluster + ")");
        }
        String bits = o.take("refcount_bits", "16");
        int refcountBits;
        try {
            refcountBits = Integer.parseInt(bits);
        } catch (NumberFormatException e) {
            refcountBits = -1;
        }
        if (refcountBits < 1 || refcountBits > 64 || Integer.bitCount(refcountBits) != 1) {
            throw ImageException.invalid(target, "refcount width must be a power of two and may not exceed 64 bits (not " + bits + ")");
        }
        boolean lazy = o.takeBoolean("lazy_refcounts", false);
        boolean extL2 = o.takeBoolean("extended_l2", false);
        String compression = o.takeChoice("compression_type", "zlib", "zlib", "zstd");
        String prealloc = o.takeChoice("preallocation", "off", "off", "metadata", "falloc", "full");
        o.requireAllTaken("qcow2");
        String needV3 = refcountBits != 16 ? "refcount widths other than 16 bits" : lazy ? "lazy refcounts"
                : extL2 ? "extended L2 entries" : compression.equals("zstd") ? "compression type zstd" : null;
        if (version == 2 && needV3 != null) {
            throw ImageException.invalid(target, needV3 + " need compatibility level 1.1 (compat=1.1)");
        }
        if (extL2 && cluster < 16 << 10) {
            throw ImageException.invalid(target, "extended L2 entries need a cluster size of at least 16384 bytes (not " + cluster + ")");
        }
        String backing = o.backingFile();
        if (backing != null && !prealloc.equals("off") && !extL2) {
            throw ImageException.invalid(target, "a backing file and preallocation can only be used together with extended_l2=on");
        }
        if (backing != null && backing.getBytes(StandardCharsets.UTF_8).length > Qcow2Header.MAX_BACKING_NAME) {
            throw ImageException.invalid(target, "backing file name is longer than " + Qcow2Header.MAX_BACKING_NAME + " bytes");
        }
        String format = o.backingFormat();
        if (format != null && format.length() > HeaderExtensions.MAX_BACKING_FORMAT) {
            throw ImageException.invalid(target, "backing format name '" + format + "' is too long");
        }
        return new Spec(version, Long.numberOfTrailingZeros(cluster), Integer.numberOfTrailingZeros(refcountBits), lazy, extL2,
                compression.equals("zstd") ? Qcow2Header.COMPRESSION_ZSTD : Qcow2Header.COMPRESSION_ZLIB,
                prealloc, backing, backing == null ? null : format);
    }

    /** The header cluster, without the table offsets (filled in once the layout is known). */
    private static byte[] header(Spec spec, long size, Qcow2Header shape, int l1Entries, Path target) throws ImageException {
        int cs = (int) shape.clusterSize();
        ByteBuffer b = ByteBuffer.allocate(cs);
        b.put(Qcow2Header.MAGIC).putInt(spec.version);
        b.putInt(20, spec.clusterBits).putLong(24, size).putInt(36, l1Entries);
        int pos = Qcow2Header.V2_HEADER_LENGTH;
        if (spec.version == 3) {
            long incompat = (spec.extendedL2 ? Qcow2Header.INCOMPAT_EXTL2 : 0)
                    | (spec.compressionType != Qcow2Header.COMPRESSION_ZLIB ? Qcow2Header.INCOMPAT_COMPRESSION : 0);
            b.putLong(72, incompat).putLong(80, spec.lazyRefcounts ? Qcow2Header.COMPAT_LAZY_REFCOUNTS : 0)
                    .putInt(96, spec.refcountOrder).putInt(100, V3_HEADER_LENGTH).put(104, (byte) spec.compressionType);
            pos = V3_HEADER_LENGTH;
        }
        byte[] name = spec.backingFile == null ? new byte[0] : spec.backingFile.getBytes(StandardCharsets.UTF_8);
        if (spec.backingFormat != null) pos = extension(b, pos, HeaderExtensions.BACKING_FORMAT, spec.backingFormat.getBytes(StandardCharsets.UTF_8));
        int featureBytes = FEATURES.length * HeaderExtensions.FEATURE_ENTRY_BYTES;
        if (spec.version == 3 && pos + 8 + featureBytes + 8 + name.length <= cs) {
            byte[] table = new byte[featureBytes];
            for (int i = 0; i < FEATURES.length; i++) {
                int at = i * HeaderExtensions.FEATURE_ENTRY_BYTES;
                table[at] = (byte) (int) FEATURES[i][0];
                table[at + 1] = (byte) (int) FEATURES[i][1];
                byte[] n = ((String) FEATURES[i][2]).getBytes(StandardCharsets.US_ASCII);
                System.arraycopy(n, 0, table, at + 2, n.length);
            }
            pos = extension(b, pos, HeaderExtensions.FEATURE_TABLE, table);
        }
        pos += 8; // end of extensions
        if (name.length > 0) {
            if (pos + name.length > cs) throw ImageException.invalid(target, "backing file name does not fit in the header cluster");
            b.put(pos, name).putLong(8, pos).putInt(16, name.length);
            pos += name.length;
        }
        return java.util.Arrays.copyOf(b.array(), pos);
    }

    private static int extension(ByteBuffer b, int pos, int type, byte[] data) {
        b.putInt(pos, type).putInt(pos + 4, data.length).put(pos + 8, data);
        return pos + 8 + ((data.length + 7) & ~7);
    }
}
