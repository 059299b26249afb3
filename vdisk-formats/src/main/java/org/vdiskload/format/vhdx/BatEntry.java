package org.vdiskload.format.vhdx;

/**
 * One 64-bit BAT entry (MS-VHDX 2.5.1): State in bits 0-2, FileOffsetMB in bits 20-63.
 *
 * @param state      the payload or sector bitmap block state
 * @param fileOffset FileOffsetMB in bytes
 */
record BatEntry(int state, long fileOffset) {
    static final int NOT_PRESENT = 0;
    static final int UNDEFINED = 1;
    static final int ZERO = 2;
    static final int UNMAPPED = 3;
    static final int FULLY_PRESENT = 6;
    static final int PARTIALLY_PRESENT = 7;
    /** The one state besides NOT_PRESENT a sector bitmap entry may have. */
    static final int BITMAP_PRESENT = 6;

    /** The raw 64-bit entry: {@code fileOffset} must be a multiple of 1 MiB. */
    static long encode(int state, long fileOffset) {
        return fileOffset | state;
    }

    static BatEntry decode(long raw) {
        return new BatEntry((int) (raw & 7), (raw >>> 20) << 20);
    }
}
