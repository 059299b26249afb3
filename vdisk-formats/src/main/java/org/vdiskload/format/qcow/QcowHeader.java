package org.vdiskload.format.qcow;

import org.vdiskload.image.error.ImageException;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;

/**
 * The 48-byte qcow (version 1) header, big-endian, as qemu's block/qcow.c reads it. {@link #parse}
 * applies qemu's checks; where qemu tolerates hostile values by reading zeros past EOF (tables
 * outside the file), {@link QcowTables} refuses them instead.
 *
 * @param backingFileOffset where the backing file name is stored, 0 for none
 * @param backingFileSize   length of the backing file name in bytes
 * @param size              virtual size as stored (qemu uses it rounded down to 512 bytes)
 * @param clusterBits       log2 of the cluster size, 9..16
 * @param l2Bits            log2 of the entries per L2 table, 6..13 (a table is 512 bytes..64 KiB)
 * @param cryptMethod       0 none, 1 AES-CBC
 * @param l1TableOffset     file offset of the L1 table
 */
public record QcowHeader(long backingFileOffset, int backingFileSize, int mtime, long size,
                         int clusterBits, int l2Bits, int cryptMethod, long l1TableOffset) {

    public static final int MAGIC = 0x514649fb; // "QFI\xfb"
    public static final int VERSION = 1;
    public static final int LENGTH = 48;
    public static final int CRYPT_NONE = 0;
    public static final int CRYPT_AES = 1;
    /** qemu refuses longer backing file names. */
    public static final int MAX_BACKING_NAME = 1023;

    /** Parses and validates the header at the start of {@code b} (at least {@link #LENGTH} bytes). */
    public static QcowHeader parse(ByteBuffer b, Path path) throws ImageException {
        b = b.duplicate().order(ByteOrder.BIG_ENDIAN);
        int magic = b.getInt(0);
        if (magic != MAGIC) throw ImageException.corrupt(path, 0, "magic", "not a qcow image (bad magic)");
        int version = b.getInt(4);
        if (version != VERSION) {
            throw ImageException.unsupported(path, "qcow version " + Integer.toUnsignedString(version)
                    + " is not supported by the qcow (version 1) reader");
        }
        QcowHeader h = new QcowHeader(b.getLong(8), b.getInt(16), b.getInt(20), b.getLong(24),
                b.get(32) & 0xff, b.get(33) & 0xff, b.getInt(36), b.getLong(40));
        h.validate(path);
        return h;
    }

    private void validate(Path path) throws ImageException {
        // Unsigned compares: the fields are u64 on disk.
        if (Long.compareUnsigned(size, 1) <= 0) {
            throw ImageException.corrupt(path, 24, "size", "image size " + size + " is too small (must be at least 2 bytes)");
        }
        if (clusterBits < 9 || clusterBits > 16) {
            throw ImageException.corrupt(path, 32, "cluster_bits", "cluster size 2^" + clusterBits + " is not between 512 and 64k");
        }
        if (l2Bits < 6 || l2Bits > 13) {
            throw ImageException.corrupt(path, 33, "l2_bits", "L2 table size of 2^" + l2Bits + " entries is not between 512 bytes and 64k");
        }
        if (cryptMethod == CRYPT_AES) {
            throw ImageException.unsupported(path, "AES-encrypted qcow images are not supported");
        }
        if (cryptMethod != CRYPT_NONE) {
            throw ImageException.corrupt(path, 36, "crypt_method", "invalid encryption method " + Integer.toUnsignedString(cryptMethod));
        }
        // The L1 table needs ceil(size / bytes-per-L2-table) entries; qemu refuses more than INT_MAX / 8.
        if (size < 0 || l1Entries() > Integer.MAX_VALUE / 8) {
            throw ImageException.corrupt(path, 24, "size", "image size " + Long.toUnsignedString(size) + " is too large");
        }
        if (backingFileOffset != 0 && Integer.compareUnsigned(backingFileSize, MAX_BACKING_NAME) > 0) {
            throw ImageException.corrupt(path, 16, "backing_file_size",
                    "backing file name of " + Integer.toUnsignedString(backingFileSize) + " bytes is too long (max " + MAX_BACKING_NAME + ")");
        }
    }

    /** The header as qemu writes it (48 bytes, big-endian). */
    public ByteBuffer encode() {
        ByteBuffer b = ByteBuffer.allocate(LENGTH).order(ByteOrder.BIG_ENDIAN);
        b.putInt(MAGIC).putInt(VERSION).putLong(backingFileOffset).putInt(backingFileSize).putInt(mtime).putLong(size)
                .put((byte) clusterBits).put((byte) l2Bits).putShort((short) 0).putInt(cryptMethod).putLong(l1TableOffset);
        return b.flip();
    }

    public int clusterSize() {
        return 1 << clusterBits;
    }

    /** Entries in one L2 table. */
    public int l2Entries() {
        return 1 << l2Bits;
    }

    /** Guest bytes one L2 table covers (log2). */
    public int l1Shift() {
        return clusterBits + l2Bits;
    }

    /** Entries in the L1 table; call only with a non-negative size (validated). */
    public long l1Entries() {
        long span = 1L << l1Shift();
        return size / span + (size % span == 0 ? 0 : 1);
    }

    /** The virtual size qemu uses: whole 512-byte sectors only. */
    public long virtualSize() {
        return size & ~511L;
    }

    public boolean hasBackingFile() {
        return backingFileOffset != 0 && backingFileSize != 0;
    }
}
