package org.vdiskload.format.vhd;

import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Set;

/**
 * The 512-byte hard disk footer (big-endian). Every VHD ends with one; dynamic and differencing disks
 * also start with a copy, which is the one read (as qemu does).
 *
 * @param creatorApp  four bytes naming the program that made the image ("vpc ", "win ", "qemu"...)
 * @param currentSize the size in bytes the footer states; see {@link #virtualSize()} for the one used
 */
public record VhdFooter(long features, long formatVersion, long dataOffset, long timestamp, String creatorApp,
                        long creatorVersion, String creatorOs, long originalSize, long currentSize,
                        int cylinders, int heads, int sectorsPerTrack, int diskType, long checksum,
                        byte[] uniqueId, boolean savedState) {

    public static final int SIZE = 512;
    public static final int TYPE_FIXED = 2;
    public static final int TYPE_DYNAMIC = 3;
    public static final int TYPE_DIFFERENCING = 4;
    static final byte[] COOKIE = "conectix".getBytes(StandardCharsets.US_ASCII);
    static final int DISK_TYPE_OFFSET = 60;
    static final int CHECKSUM_OFFSET = 64;

    /** qemu's largest disk: 2040 GiB, in sectors. */
    static final long MAX_SECTORS = 0xff000000L;
    /** The largest CHS geometry: images too big for CHS store it and rely on the current size. */
    static final long MAX_GEOMETRY_SECTORS = 65535L * 16 * 255;
    /**
     * Creator applications whose images are sized by current size, not CHS geometry: Hyper-V,
     * qemu with force_size, Disk2vhd, XenConverter and XenServer ("tap" and a NUL). qemu 7.2 sizes
     * every other image by its geometry (Virtual PC reads the geometry and rounds down).
     */
    static final Set<String> CURRENT_SIZE_APPS = Set.of("win ", "qem2", "d2v ", "CTXS", "tap\0");

    /** Parses and validates the footer in {@code buf} (512 bytes) read from {@code at}. */
    public static VhdFooter parse(ImageFile file, long at, ByteBuffer buf) throws ImageException {
        ByteBuffer b = buf.duplicate().order(ByteOrder.BIG_ENDIAN);
        if (!hasCookie(b, 0)) {
            throw ImageException.corrupt(file.path(), at, "footer cookie", "bad VHD footer cookie (expected 'conectix')");
        }
        long stored = Integer.toUnsignedLong(b.getInt(CHECKSUM_OFFSET));
        long computed = checksum(b, CHECKSUM_OFFSET);
        if (stored != computed) {
            // qemu 7.2 refuses such an image too ("Incorrect header checksum").
            throw ImageException.corrupt(file.path(), at + CHECKSUM_OFFSET, "footer checksum",
                    String.format("footer checksum mismatch: stored 0x%08x, computed 0x%08x", stored, computed));
        }
        int type = b.getInt(DISK_TYPE_OFFSET);
        if (type != TYPE_FIXED && type != TYPE_DYNAMIC && type != TYPE_DIFFERENCING) {
            throw ImageException.corrupt(file.path(), at + DISK_TYPE_OFFSET, "footer disk type",
                    "unknown disk type " + Integer.toUnsignedString(type) + " (2 fixed, 3 dynamic, 4 differencing)");
        }
        byte[] uid = new byte[16];
        b.get(68, uid);
        return new VhdFooter(
                Integer.toUnsignedLong(b.getInt(8)),
                Integer.toUnsignedLong(b.getInt(12)),
                b.getLong(16),
                Integer.toUnsignedLong(b.getInt(24)),
                ascii(b, 28, 4),
                Integer.toUnsignedLong(b.getInt(32)),
                ascii(b, 36, 4),
                b.getLong(40),
                b.getLong(48),
                Short.toUnsignedInt(b.getShort(56)),
                Byte.toUnsignedInt(b.get(58)),
                Byte.toUnsignedInt(b.get(59)),
                type,
                stored,
                uid,
                b.get(84) != 0);
    }

    /** Whether {@code b} holds the footer cookie at {@code at}. */
    static boolean hasCookie(ByteBuffer b, int at) {
        if (at < 0 || b.limit() < at + COOKIE.length) return false;
        for (int i = 0; i < COOKIE.length; i++) if (b.get(at + i) != COOKIE[i]) return false;
        return true;
    }

    /** One's complement of the byte sum of a structure, its own checksum field counted as zero. */
    static long checksum(ByteBuffer b, int checksumOffset) {
        long sum = 0;
        for (int i = 0; i < b.limit(); i++) {
            if (i >= checksumOffset && i < checksumOffset + 4) continue;
            sum += Byte.toUnsignedInt(b.get(i));
        }
        return ~sum & 0xffffffffL;
    }

    private static String ascii(ByteBuffer b, int at, int len) {
        byte[] a = new byte[len];
        b.get(at, a);
        return new String(a, StandardCharsets.ISO_8859_1);
    }

    /** Sectors the CHS geometry covers. */
    public long geometrySectors() {
        return (long) cylinders * heads * sectorsPerTrack;
    }

    /** Whether the virtual size comes from the current-size field rather than the geometry (see qemu's vpc_open). */
    public boolean sizedByCurrentSize() {
        return CURRENT_SIZE_APPS.contains(creatorApp) || geometrySectors() == MAX_GEOMETRY_SECTORS;
    }

    /** The virtual size in sectors, as qemu 7.2 computes it: whole sectors, by creator application. */
    private long virtualSectors() {
        return sizedByCurrentSize() ? Long.divideUnsigned(currentSize, 512) : geometrySectors();
    }

    /** The virtual size in bytes; meaningful once {@link #requireSupportedSize} passed. */
    public long virtualSize() {
        return virtualSectors() * 512;
    }

    /** Checks the size limit; {@code at} is where the footer was read. */
    void requireSupportedSize(ImageFile file, long at) throws ImageException {
        if (virtualSectors() > MAX_SECTORS) {
            throw new ImageException(ImageException.Kind.UNSUPPORTED, file.path(), at + 48, "footer current size",
                    "disk of " + Long.toUnsignedString(currentSize) + " bytes is larger than 2040 GiB, the VHD limit qemu enforces");
        }
    }
}
