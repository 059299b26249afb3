package org.vdiskload.format.qcow;

/**
 * One decoded L2 entry. Bit 63 marks a compressed cluster; its byte count then sits in the
 * {@code cluster_bits} bits below it and the host offset in the bits below those (qcow.c's
 * cluster_offset_mask). An uncompressed entry is the plain host offset; 0 means unallocated.
 *
 * @param kind           what the cluster holds
 * @param hostOffset     where its bytes start in the file (DATA, COMPRESSED), else 0
 * @param compressedSize bytes of raw deflate data (COMPRESSED), else 0
 */
public record QcowCluster(Kind kind, long hostOffset, int compressedSize) {

    public enum Kind { UNALLOCATED, DATA, COMPRESSED }

    static final long COMPRESSED_FLAG = 1L << 63;
    static final QcowCluster UNALLOCATED = new QcowCluster(Kind.UNALLOCATED, 0, 0);

    public static QcowCluster decode(long entry, int clusterBits) {
        if (entry == 0) return UNALLOCATED;
        if ((entry & COMPRESSED_FLAG) == 0) return new QcowCluster(Kind.DATA, entry, 0);
        int sizeShift = 63 - clusterBits;
        long offset = entry & ((1L << sizeShift) - 1);
        int size = (int) ((entry >>> sizeShift) & ((1L << clusterBits) - 1));
        return new QcowCluster(Kind.COMPRESSED, offset, size);
    }
}
