package org.vdiskload.format.vmdk;

import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.Bytes;
import org.vdiskload.io.ImageFile;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The header of a hosted sparse extent ("KDMV", VMware Virtual Disk Format 5.0 section "Hosted Sparse
 * Extent Header"), little-endian, in the first sector of the extent file and, for stream-optimized
 * files whose grain directory is written last, again in the footer. Sizes and offsets are in sectors.
 *
 * @param version           1, 2 or 3 (3 adds changed-block tracking, which readers may ignore)
 * @param flags             {@link #FLAG_NL_DETECT}, {@link #FLAG_RGD}, {@link #FLAG_ZERO_GRAIN},
 *                          {@link #FLAG_COMPRESSED}, {@link #FLAG_MARKERS}
 * @param capacity          virtual size of the extent
 * @param grainSize         sectors per grain
 * @param descriptorOffset  embedded descriptor, or 0
 * @param descriptorSize    embedded descriptor size
 * @param numGTEsPerGT      entries per grain table
 * @param rgdOffset         redundant grain directory (only used by writers)
 * @param gdOffset          grain directory, or {@link #GD_AT_END} (the footer holds the real one)
 * @param overhead          sectors of metadata before the first grain
 * @param compressAlgorithm 0 none, 1 deflate (zlib, RFC 1950)
 */
record SparseHeader(long version, long flags, long capacity, long grainSize, long descriptorOffset,
                    long descriptorSize, long numGTEsPerGT, long rgdOffset, long gdOffset, long overhead,
                    int compressAlgorithm) {

    static final int SIZE = 512;
    static final byte[] MAGIC = {'K', 'D', 'M', 'V'};
    static final long FLAG_NL_DETECT = 1L;
    static final long FLAG_RGD = 1L << 1;
    static final long FLAG_ZERO_GRAIN = 1L << 2;
    static final long FLAG_COMPRESSED = 1L << 16;
    static final long FLAG_MARKERS = 1L << 17;
    static final long GD_AT_END = -1L;
    static final int COMPRESSION_NONE = 0;
    static final int COMPRESSION_DEFLATE = 1;
    /** qemu refuses grains over 1 GiB ("Invalid granularity"). */
    static final long MAX_GRAIN_SECTORS = 0x200000;
    /** qemu's limit: grain tables hold at most 512 entries ("L2 table size too big"). */
    static final long MAX_GTES_PER_GT = 512;
    /** Newline bytes at offset 73: a file sent through a text-mode transfer has them rewritten. */
    private static final byte[] NL_CHECK = {'\n', ' ', '\r', '\n'};

    /** Parses and validates the header in {@code b} (at least 512 bytes, from the magic on), read at {@code at} of {@code f}. */
    static SparseHeader parse(ByteBuffer b, ImageFile f, long at) throws ImageException {
        b = b.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < MAGIC.length; i++) {
            if (b.get(i) != MAGIC[i]) throw ImageException.corrupt(f.path(), at, "magic", "not a VMDK sparse extent (no KDMV magic)");
        }
        SparseHeader h = new SparseHeader(Bytes.u32(b.getInt(4)), Bytes.u32(b.getInt(8)), b.getLong(12), b.getLong(20),
                b.getLong(28), b.getLong(36), Bytes.u32(b.getInt(44)), b.getLong(48), b.getLong(56), b.getLong(64),
                Short.toUnsignedInt(b.getShort(77)));
        if (h.version > 3) {
            throw new ImageException(ImageException.Kind.UNSUPPORTED, f.path(), at + 4, "version",
                    "unsupported VMDK sparse extent version " + h.version);
        }
        if ((h.flags & FLAG_NL_DETECT) != 0) {
            for (int i = 0; i < NL_CHECK.length; i++) {
                if (b.get(73 + i) != NL_CHECK[i]) {
                    throw ImageException.corrupt(f.path(), at + 73, "newline check bytes",
                            "newline check bytes are damaged (was the file copied in text mode?)");
                }
            }
        }
        if (h.compressAlgorithm != COMPRESSION_NONE && h.compressAlgorithm != COMPRESSION_DEFLATE) {
            throw new ImageException(ImageException.Kind.UNSUPPORTED, f.path(), at + 77, "compressAlgorithm",
                    "unknown compression algorithm " + h.compressAlgorithm);
        }
        if (h.grainSize <= 0 || h.grainSize > MAX_GRAIN_SECTORS) {
            throw ImageException.corrupt(f.path(), at + 20, "grainSize",
                    "grain size of " + h.grainSize + " sectors is out of range (1.." + MAX_GRAIN_SECTORS + ")");
        }
        if (h.numGTEsPerGT == 0 || h.numGTEsPerGT > MAX_GTES_PER_GT) {
            throw ImageException.corrupt(f.path(), at + 44, "numGTEsPerGT",
                    "grain tables of " + h.numGTEsPerGT + " entries are out of range (1.." + MAX_GTES_PER_GT + ")");
        }
        if (h.capacity < 0 || h.capacity > Long.MAX_VALUE >> 9) {
            throw ImageException.corrupt(f.path(), at + 12, "capacity", "capacity of " + Long.toUnsignedString(h.capacity) + " sectors is too large");
        }
        // A header of capacity 0 only carries a descriptor and may have no grain directory at all.
        boolean noDirectoryNeeded = h.capacity == 0 && h.gdOffset == 0;
        if (h.gdOffset != GD_AT_END && !noDirectoryNeeded && (h.gdOffset <= 0 || h.gdOffset > Long.MAX_VALUE >> 9)) {
            throw ImageException.corrupt(f.path(), at + 56, "gdOffset",
                    "grain directory offset " + Long.toUnsignedString(h.gdOffset) + " is outside the file or overlaps the header");
        }
        if (h.overhead < 0 || h.overhead > Long.MAX_VALUE >> 9) {
            throw ImageException.corrupt(f.path(), at + 64, "overHead", "overhead of " + Long.toUnsignedString(h.overhead) + " sectors is too large");
        }
        if (h.descriptorOffset < 0 || h.descriptorOffset > Long.MAX_VALUE >> 9 || h.descriptorSize < 0 || h.descriptorSize > Long.MAX_VALUE >> 9) {
            throw ImageException.corrupt(f.path(), at + 28, "descriptorOffset", "embedded descriptor location is out of range");
        }
        return h;
    }

    boolean compressed() {
        return compressAlgorithm == COMPRESSION_DEFLATE;
    }

    boolean hasMarkers() {
        return (flags & FLAG_MARKERS) != 0;
    }

    boolean zeroGrains() {
        return (flags & FLAG_ZERO_GRAIN) != 0;
    }
}
