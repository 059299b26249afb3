package org.vdiskload.format.qcow2;

import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.Checked;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The qcow2 header (docs/interop/qcow2.txt, big-endian), validated: every rule qemu applies when it
 * opens an image, and the bounds of every table against the file.
 */
record Qcow2Header(int version, long backingFileOffset, int backingFileSize, int clusterBits, long size,
                   int cryptMethod, int l1Size, long l1TableOffset, long refcountTableOffset,
                   int refcountTableClusters, int nbSnapshots, long snapshotsOffset,
                   long incompatibleFeatures, long compatibleFeatures, long autoclearFeatures,
                   int refcountOrder, int headerLength, int compressionType) {

    static final byte[] MAGIC = {'Q', 'F', 'I', (byte) 0xfb};
    static final int V2_HEADER_LENGTH = 72;
    static final int V3_MIN_HEADER_LENGTH = 104;
    /** How much of the header this parser reads: the v3 fields plus the compression type byte. */
    static final int READ_LENGTH = 112;

    static final long INCOMPAT_DIRTY = 1;
    static final long INCOMPAT_CORRUPT = 1 << 1;
    static final long INCOMPAT_DATA_FILE = 1 << 2;
    static final long INCOMPAT_COMPRESSION = 1 << 3;
    static final long INCOMPAT_EXTL2 = 1 << 4;
    static final long INCOMPAT_KNOWN = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2;
    static final long COMPAT_LAZY_REFCOUNTS = 1;

    /** Offsets of the header fields a writer updates. */
    static final int SIZE_FIELD = 24;
    static final int L1_SIZE_FIELD = 36;
    static final int REFCOUNT_TABLE_OFFSET_FIELD = 48;
    static final int INCOMPATIBLE_FIELD = 72;
    static final int AUTOCLEAR_FIELD = 88;

    static final int COMPRESSION_ZLIB = 0;
    static final int COMPRESSION_ZSTD = 1;

    /** qemu's limits (block/qcow2.h): beyond them qemu refuses the image, and so do we. */
    static final int MIN_CLUSTER_BITS = 9;
    static final int MAX_CLUSTER_BITS = 21;
    static final long MAX_L1_BYTES = 32L << 20;
    static final long MAX_REFTABLE_BYTES = 8L << 20;
    static final int MAX_SNAPSHOTS = 65536;
    static final int MAX_BACKING_NAME = 1023;
    static final int MAX_REFCOUNT_ORDER = 6;

    long clusterSize() { return 1L << clusterBits; }
    boolean extendedL2() { return (incompatibleFeatures & INCOMPAT_EXTL2) != 0; }
    boolean dirty() { return (incompatibleFeatures & INCOMPAT_DIRTY) != 0; }
    boolean corrupt() { return (incompatibleFeatures & INCOMPAT_CORRUPT) != 0; }
    boolean lazyRefcounts() { return (compatibleFeatures & COMPAT_LAZY_REFCOUNTS) != 0; }
    boolean hasDataFile() { return (incompatibleFeatures & INCOMPAT_DATA_FILE) != 0; }
    /** Bytes of one L2 entry: 8, or 16 with extended L2 entries (entry + subcluster bitmap). */
    int l2EntryBytes() { return extendedL2() ? 16 : 8; }
    /** log2 of the entries per L2 table (an L2 table is one cluster). */
    int l2Bits() { return clusterBits - (extendedL2() ? 4 : 3); }
    /** Guest bytes one L1 entry covers. */
    long bytesPerL1Entry() { return 1L << (clusterBits + l2Bits()); }
    /** Where the header extensions start. */
    int extensionsStart() { return version == 2 ? V2_HEADER_LENGTH : headerLength; }
    int refcountBits() { return 1 << refcountOrder; }

    /** L1 entries needed to cover {@code virtualSize}. */
    static long l1EntriesFor(long virtualSize, long bytesPerL1Entry) {
        return virtualSize / bytesPerL1Entry + (virtualSize % bytesPerL1Entry != 0 ? 1 : 0);
    }

    static boolean hasMagic(ByteBuffer b) {
        if (b.remaining() < 4) return false;
        for (int i = 0; i < 4; i++) if (b.get(b.position() + i) != MAGIC[i]) return false;
        return true;
    }

    /**
     * Reads the header of {@code file} and checks its structure (magic, version, lengths, cluster
     * size): enough to find the header extensions. {@link #validate} does the rest.
     */
    static Qcow2Header read(ImageFile file) throws IOException {
        long fileSize = file.size();
        if (fileSize < V2_HEADER_LENGTH) {
            throw ImageException.corrupt(file.path(), 0, "header",
                    "truncated: a qcow2 header needs " + V2_HEADER_LENGTH + " bytes but the file has " + fileSize);
        }
        ByteBuffer b = file.readStruct(0, Math.min(READ_LENGTH, fileSize), ByteOrder.BIG_ENDIAN, "header");
        return parse(file, b);
    }

    /** The remaining checks, once the extensions are known (their feature names make clearer messages). */
    void validate(ImageFile file, HeaderExtensions ext) throws IOException {
        validateFeatures(file, ext);
        validateFields(file);
        validateAgainstFile(file);
    }

    private void validateFeatures(ImageFile file, HeaderExtensions ext) throws ImageException {
        var path = file.path();
        long unknown = incompatibleFeatures & ~INCOMPAT_KNOWN;
        if (unknown != 0) {
            StringBuilder bits = new StringBuilder();
            for (int bit = 0; bit < 64; bit++) if ((unknown >>> bit & 1) != 0) {
                bits.append(bits.isEmpty() ? "" : ", ").append(bit);
                String name = ext.incompatibleNames().get(bit);
                if (name != null) bits.append(" (").append(name).append(')');
            }
            throw ImageException.unsupported(path, "unsupported qcow2 incompatible feature bit(s) " + bits);
        }
        if (cryptMethod != 0) {
            throw ImageException.unsupported(path, "encrypted qcow2 images are not supported (crypt_method "
                    + Integer.toUnsignedString(cryptMethod) + (cryptMethod == 1 ? ", AES" : cryptMethod == 2 ? ", LUKS" : "") + ")");
        }
        if (hasDataFile() || ext.dataFile() != null) {
            throw ImageException.unsupported(path, "qcow2 images with an external data file are not supported"
                    + (ext.dataFile() != null ? " (data file '" + ext.dataFile() + "')" : ""));
        }
        if (ext.encryption()) {
            throw ImageException.unsupported(path, "encrypted qcow2 images are not supported (full disk encryption header)");
        }
    }

    /** Parses the header fields from {@code b} (at least 72 bytes) and applies the checks that need no file. */
    static Qcow2Header parse(ImageFile file, ByteBuffer b) throws ImageException {
        if (!hasMagic(b)) throw ImageException.corrupt(file.path(), 0, "magic", "not a qcow2 image (bad magic)");
        int version = b.getInt(4);
        if (version != 2 && version != 3) {
            throw ImageException.unsupported(file.path(), "qcow2 version " + Integer.toUnsignedString(version)
                    + " is not supported (only versions 2 and 3 exist)");
        }
        long incompat = 0, compat = 0, autoclear = 0;
        int refcountOrder = 4, headerLength = V2_HEADER_LENGTH, compressionType = COMPRESSION_ZLIB;
        if (version == 3) {
            if (b.limit() < V3_MIN_HEADER_LENGTH) {
                throw ImageException.corrupt(file.path(), 0, "header", "truncated: a version 3 header needs "
                        + V3_MIN_HEADER_LENGTH + " bytes but the file has " + b.limit());
            }
            incompat = b.getLong(72);
            compat = b.getLong(80);
            autoclear = b.getLong(88);
            refcountOrder = b.getInt(96);
            headerLength = b.getInt(100);
            if (Integer.compareUnsigned(headerLength, V3_MIN_HEADER_LENGTH) < 0) {
                throw ImageException.corrupt(file.path(), 100, "header_length",
                        "header length " + Integer.toUnsignedString(headerLength) + " is shorter than " + V3_MIN_HEADER_LENGTH);
            }
            if (headerLength % 8 != 0) {
                throw ImageException.corrupt(file.path(), 100, "header_length", "header length " + Integer.toUnsignedString(headerLength) + " is not a multiple of 8");
            }
            if (headerLength > V3_MIN_HEADER_LENGTH) {
                if (b.limit() <= V3_MIN_HEADER_LENGTH) {
                    throw ImageException.corrupt(file.path(), 0, "header", "truncated: header length is " + headerLength
                            + " but the file has " + b.limit() + " bytes");
                }
                compressionType = Byte.toUnsignedInt(b.get(104));
            }
        }
        Qcow2Header h = new Qcow2Header(version, b.getLong(8), b.getInt(16), b.getInt(20), b.getLong(24), b.getInt(32),
                b.getInt(36), b.getLong(40), b.getLong(48), b.getInt(56), b.getInt(60), b.getLong(64),
                incompat, compat, autoclear, refcountOrder, headerLength, compressionType);
        h.validateStructure(file);
        return h;
    }

    private void validateStructure(ImageFile file) throws ImageException {
        var path = file.path();
        if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) {
            throw ImageException.corrupt(path, 20, "cluster_bits", "cluster bits " + Integer.toUnsignedString(clusterBits)
                    + " is outside " + MIN_CLUSTER_BITS + ".." + MAX_CLUSTER_BITS + " (512 B to 2 MiB clusters)");
        }
        if (Integer.toUnsignedLong(headerLength) > clusterSize()) {
            throw ImageException.corrupt(path, 100, "header_length", "header length " + Integer.toUnsignedString(headerLength) + " exceeds the cluster size");
        }
    }

    private void validateFields(ImageFile file) throws ImageException {
        var path = file.path();
        if (Integer.compareUnsigned(refcountOrder, MAX_REFCOUNT_ORDER) > 0) {
            throw ImageException.corrupt(path, 96, "refcount_order", "refcount order " + Integer.toUnsignedString(refcountOrder)
                    + " is larger than " + MAX_REFCOUNT_ORDER + " (64-bit refcounts)");
        }
        if (compressionType != COMPRESSION_ZLIB && compressionType != COMPRESSION_ZSTD) {
            throw ImageException.unsupported(path, "unknown qcow2 compression type " + compressionType);
        }
        if (compressionType != COMPRESSION_ZLIB && (incompatibleFeatures & INCOMPAT_COMPRESSION) == 0) {
            throw ImageException.corrupt(path, 104, "compression_type",
                    "compression type " + compressionType + " is set but the compression-type feature bit is not");
        }
        if (extendedL2() && clusterBits < 14) {
            throw ImageException.corrupt(path, 20, "cluster_bits",
                    "extended L2 entries need clusters of at least 16 KiB (subclusters of 512 bytes), cluster size is " + clusterSize());
        }
        if (backingFileOffset != 0) {
            if (backingFileOffset < 0 || backingFileOffset >= clusterSize()) {
                throw ImageException.corrupt(path, 8, "backing_file_offset",
                        "backing file name offset " + Long.toUnsignedString(backingFileOffset) + " is outside the header cluster");
            }
            if (Integer.compareUnsigned(backingFileSize, MAX_BACKING_NAME) > 0 || backingFileSize > clusterSize() - backingFileOffset) {
                throw ImageException.corrupt(path, 16, "backing_file_size",
                        "backing file name of " + Integer.toUnsignedString(backingFileSize) + " bytes is too long");
            }
        }
        if (size < 0) {
            throw ImageException.corrupt(path, 24, "size", "virtual size " + Long.toUnsignedString(size) + " is too large");
        }
        long needed = l1EntriesFor(size, bytesPerL1Entry());
        if (needed > Integer.MAX_VALUE) {
            throw ImageException.corrupt(path, 24, "size", "virtual size " + size + " is too large for the cluster size");
        }
        if (Integer.toUnsignedLong(l1Size) > MAX_L1_BYTES / 8) {
            throw ImageException.corrupt(path, 36, "l1_size", "L1 table of " + Integer.toUnsignedString(l1Size) + " entries is too large");
        }
        if (l1Size < needed) {
            throw ImageException.corrupt(path, 36, "l1_size", "L1 table of " + l1Size + " entries is too small for the virtual size "
                    + size + " (needs " + needed + ")");
        }
        if (Integer.toUnsignedLong(refcountTableClusters) * clusterSize() > MAX_REFTABLE_BYTES) {
            throw ImageException.corrupt(path, 56, "refcount_table_clusters",
                    "refcount table of " + Integer.toUnsignedString(refcountTableClusters) + " clusters is too large");
        }
        if (refcountTableClusters == 0) {
            throw ImageException.corrupt(path, 56, "refcount_table_clusters", "the image has no refcount table");
        }
        if (Integer.compareUnsigned(nbSnapshots, MAX_SNAPSHOTS) > 0) {
            throw ImageException.corrupt(path, 60, "nb_snapshots", "too many snapshots (" + Integer.toUnsignedString(nbSnapshots) + ")");
        }
    }

    /** Every table must be cluster-aligned, inside the file, clear of the header cluster and of each other. */
    private void validateAgainstFile(ImageFile file) throws IOException {
        long l1Bytes = (long) l1Size * 8;
        long refcountBytes = refcountTableClusters * clusterSize();
        validateTable(file, 40, "l1_table_offset", l1TableOffset, l1Bytes, "L1 table");
        validateTable(file, 48, "refcount_table_offset", refcountTableOffset, refcountBytes, "refcount table");
        if (l1Bytes > 0 && l1TableOffset < refcountTableOffset + refcountBytes && refcountTableOffset < l1TableOffset + l1Bytes) {
            throw ImageException.corrupt(file.path(), 40, "l1_table_offset", "L1 table overlaps the refcount table");
        }
        if (nbSnapshots > 0) {
            // Entries are variable-sized; the table is at least 40 bytes per snapshot (checked in full when read).
            validateTable(file, 64, "snapshots_offset", snapshotsOffset, (long) nbSnapshots * Qcow2Snapshot.FIXED_BYTES, "snapshot table");
        }
    }

    private void validateTable(ImageFile file, long at, String field, long offset, long bytes, String what) throws IOException {
        if (bytes == 0) return;
        if (offset < 0) throw ImageException.corrupt(file.path(), at, field, what + " offset " + Long.toUnsignedString(offset) + " is too large");
        Checked.requireAligned(file, at, field, offset, clusterSize());
        if (offset < clusterSize()) throw ImageException.corrupt(file.path(), at, field, what + " overlaps the header cluster");
        Checked.requireInFile(file, offset, bytes, field);
    }
}
