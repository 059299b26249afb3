package org.vdiskload.format.qcow2;

/**
 * One L2 entry as the image holds it: the cluster descriptor and, where L2 entries are extended, the
 * subcluster bitmap that follows it (docs/interop/qcow2.txt, "Cluster mapping"). The one reading and making
 * of their bits, for the map, the writer and the check alike; {@link ClusterMap#validated} is the one place
 * that decides whether an entry read from a file may be used.
 *
 * @param descriptor flags and the host offset (for a compressed cluster: its offset and sector count)
 * @param bitmap     bits 0-31: subclusters allocated, bits 32-63: subclusters reading as zeros; 0 where
 *                   entries are standard
 */
record L2Entry(long descriptor, long bitmap) {
    static final long COPIED = 1L << 63;
    static final long COMPRESSED = 1L << 62;
    /** Standard entries of version 3 images: the cluster reads as zeros (its offset may stay, preallocated). */
    static final long ZERO = 1L;
    static final long OFFSET_MASK = 0x00fffffffffffe00L;
    /** Bits 1-8 and 56-61 of a standard descriptor. */
    static final long RESERVED = 0x3f000000000001feL;
    static final int SUBCLUSTERS = 32;
    static final long ALL_SUBCLUSTERS = 0xffffffffL;

    /** What a cluster, or a subcluster of an extended entry, holds. */
    enum Kind { UNALLOCATED, ZERO, DATA, COMPRESSED }

    static final L2Entry UNALLOCATED = new L2Entry(0, 0);

    /** Entry {@code index} of an L2 table whose entries take {@code stride} longs (2 when extended). */
    static L2Entry of(long[] table, int index, int stride) {
        return new L2Entry(table[index * stride], stride == 2 ? table[index * 2 + 1] : 0);
    }

    /** A plain cluster at {@code hostCluster}, this image's alone (the copied flag), and its subclusters' state. */
    static L2Entry owned(long hostCluster, long allocatedSubclusters, long zeroSubclusters) {
        return new L2Entry(hostCluster | COPIED, allocatedSubclusters | zeroSubclusters << 32);
    }

    /**
     * A compressed cluster whose data starts at {@code hostOffset} and takes {@code length} bytes: x = 62 -
     * (cluster_bits - 8) bits of offset, then the count of 512-byte sectors it reaches into past the first.
     */
    static L2Entry compressed(long hostOffset, int length, int clusterBits) {
        int x = 62 - (clusterBits - 8);
        long sectors = ((hostOffset + length - 1) >>> 9) - (hostOffset >>> 9);
        return new L2Entry(COMPRESSED | hostOffset | sectors << x, 0);
    }

    boolean isCompressed() {
        return (descriptor & COMPRESSED) != 0;
    }

    /** This image holds the cluster alone (refcount 1): it may be written in place. */
    boolean isCopied() {
        return (descriptor & COPIED) != 0;
    }

    /** The standard entry's zero flag. */
    boolean isZeroFlagged() {
        return (descriptor & ZERO) != 0;
    }

    /** The host cluster of an entry that is not compressed; 0 where it has none. */
    long hostCluster() {
        return descriptor & OFFSET_MASK;
    }

    long allocatedSubclusters() {
        return bitmap & ALL_SUBCLUSTERS;
    }

    long zeroSubclusters() {
        return bitmap >>> 32;
    }

    /** Where a compressed cluster's data starts. */
    long compressedOffset(int clusterBits) {
        return descriptor & ((1L << (62 - (clusterBits - 8))) - 1);
    }

    /** How many 512-byte sectors a compressed cluster's data reaches into, the first included. */
    long compressedSectors(int clusterBits) {
        int x = 62 - (clusterBits - 8);
        return ((descriptor >>> x) & ((1L << (clusterBits - 8)) - 1)) + 1;
    }

    /** What unit {@code unit} holds: subcluster {@code unit} of an extended entry, or the cluster (unit 0). */
    Kind kind(int unit, boolean extended) {
        if (isCompressed()) return Kind.COMPRESSED;
        if (extended) {
            if ((zeroSubclusters() >>> unit & 1) != 0) return Kind.ZERO;
            return (allocatedSubclusters() >>> unit & 1) != 0 ? Kind.DATA : Kind.UNALLOCATED;
        }
        if (isZeroFlagged()) return Kind.ZERO;
        return hostCluster() != 0 ? Kind.DATA : Kind.UNALLOCATED;
    }
}
