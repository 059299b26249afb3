package org.vdiskload.nbd;

/**
 * An export's size constraints (NBD_INFO_BLOCK_SIZE): requests must be aligned to {@code minimum},
 * are efficient at multiples of {@code preferred}, and carry at most {@code maxPayload} bytes.
 */
public record BlockSizes(int minimum, int preferred, int maxPayload) {
    /** Byte-granular access, 4 KiB preferred, 32 MiB requests: the protocol's defaults. */
    public static final BlockSizes DEFAULT = new BlockSizes(1, 4096, 32 << 20);

    public BlockSizes {
        if (Integer.bitCount(minimum) != 1 || minimum > 65536) {
            throw new IllegalArgumentException("minimum block size " + minimum + " is not a power of 2 up to 65536");
        }
        if (Integer.bitCount(preferred) != 1 || preferred < Math.max(minimum, 512)) {
            throw new IllegalArgumentException("preferred block size " + preferred + " is not a power of 2 of at least max(minimum, 512)");
        }
        if (maxPayload < preferred) throw new IllegalArgumentException("maximum payload " + maxPayload + " is below the preferred block size");
    }

    public BlockSizes withMinimum(int min) {
        return new BlockSizes(min, Math.max(preferred, min), maxPayload);
    }
}
