package org.vdiskload.format.vhd;

import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The 1024-byte dynamic disk header ("cxsparse", big-endian) of dynamic and differencing disks: where
 * the block allocation table is, how big blocks are, and (differencing) who the parent is.
 *
 * @param at              file offset of the header (the footer's data offset)
 * @param tableOffset     file offset of the BAT
 * @param maxTableEntries BAT entries
 * @param blockSize       bytes of data per block (a power of two)
 * @param parentName      the parent's file name (UTF-16BE in the header), "" if none
 * @param locators        the parent locator entries in use (platform code not zero)
 */
public record VhdDynamicHeader(long at, long tableOffset, long headerVersion, long maxTableEntries, long blockSize,
                               byte[] parentUniqueId, long parentTimestamp, String parentName,
                               List<VhdParentLocator> locators) {

    public static final int SIZE = 1024;
    static final byte[] COOKIE = "cxsparse".getBytes(StandardCharsets.US_ASCII);
    static final int TABLE_OFFSET = 16;
    static final int MAX_TABLE_ENTRIES_OFFSET = 28;
    static final int BLOCK_SIZE_OFFSET = 32;
    static final int PARENT_NAME_OFFSET = 64;
    static final int LOCATORS_OFFSET = 576;
    static final int LOCATOR_SIZE = 24;
    /**
     * qemu's "Max Table Entries too large" limit: the whole BAT must fit in memory as 32-bit entries.
     * The BAT must also lie inside the file, so it costs at most what the file holds.
     */
    static final long MAX_TABLE_ENTRIES = Integer.MAX_VALUE / 4;
    /**
     * Below 4 KiB a block's sector bitmap is under one byte: the specification pads it to a sector,
     * qemu computes it as 0 bytes and reads the bitmap as data. Refused rather than guessed.
     */
    static final long MIN_BLOCK_SIZE = 4096;

    /** Parses and validates the header in {@code buf} (1024 bytes) read from {@code at}. */
    public static VhdDynamicHeader parse(ImageFile file, long at, ByteBuffer buf) throws ImageException {
        ByteBuffer b = buf.duplicate().order(ByteOrder.BIG_ENDIAN);
        for (int i = 0; i < COOKIE.length; i++) {
            if (b.get(i) != COOKIE[i]) {
                throw ImageException.corrupt(file.path(), at, "dynamic header cookie",
                        "bad dynamic disk header cookie (expected 'cxsparse')");
            }
        }
        // The header checksum is not verified: qemu ignores it, and nothing below trusts a value
        // without its own check.
        long tableOffset = b.getLong(TABLE_OFFSET);
        long maxEntries = Integer.toUnsignedLong(b.getInt(MAX_TABLE_ENTRIES_OFFSET));
        long blockSize = Integer.toUnsignedLong(b.getInt(BLOCK_SIZE_OFFSET));
        if (blockSize < 512 || Long.bitCount(blockSize) != 1) {
            throw ImageException.corrupt(file.path(), at + BLOCK_SIZE_OFFSET, "block size",
                    "block size " + blockSize + " is not a power of two of at least 512");
        }
        if (blockSize < MIN_BLOCK_SIZE) {
            throw new ImageException(ImageException.Kind.UNSUPPORTED, file.path(), at + BLOCK_SIZE_OFFSET, "block size",
                    "block size " + blockSize + " is below 4096: its sector bitmap size is ambiguous (qemu and the specification disagree)");
        }
        if (maxEntries > MAX_TABLE_ENTRIES) {
            throw ImageException.corrupt(file.path(), at + MAX_TABLE_ENTRIES_OFFSET, "max table entries",
                    "max table entries " + maxEntries + " is too large (limit " + MAX_TABLE_ENTRIES + ")");
        }
        if (tableOffset < 0) {
            throw ImageException.corrupt(file.path(), at + TABLE_OFFSET, "table offset",
                    "BAT offset " + Long.toUnsignedString(tableOffset) + " is past the end of the file");
        }
        byte[] parentUid = new byte[16];
        b.get(40, parentUid);
        List<VhdParentLocator> locators = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            int o = LOCATORS_OFFSET + i * LOCATOR_SIZE;
            int code = b.getInt(o);
            if (code == 0) continue;
            locators.add(new VhdParentLocator(i, code, Integer.toUnsignedLong(b.getInt(o + 4)),
                    Integer.toUnsignedLong(b.getInt(o + 8)), b.getLong(o + 16), at + o));
        }
        return new VhdDynamicHeader(at, tableOffset, Integer.toUnsignedLong(b.getInt(24)), maxEntries, blockSize,
                parentUid, Integer.toUnsignedLong(b.getInt(56)), utf16beName(b), List.copyOf(locators));
    }

    private static String utf16beName(ByteBuffer b) {
        byte[] raw = new byte[512];
        b.get(PARENT_NAME_OFFSET, raw);
        int len = 0;
        while (len + 1 < raw.length && (raw[len] != 0 || raw[len + 1] != 0)) len += 2;
        return new String(raw, 0, len, StandardCharsets.UTF_16BE);
    }

    /** Bytes of the sector bitmap in front of each block: one bit per sector, padded to a sector. */
    public long bitmapSize() {
        return ((blockSize / 512 / 8) + 511) & ~511L;
    }
}
