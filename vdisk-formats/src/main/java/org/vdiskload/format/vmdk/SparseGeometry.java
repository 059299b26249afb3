package org.vdiskload.format.vmdk;

/**
 * What the grain lookup of a sparse extent needs, from either header kind. Byte units.
 *
 * @param capacity    virtual size of the extent
 * @param grainSize   bytes per grain
 * @param gtEntries   entries per grain table
 * @param gdOffset    where the grain directory starts
 * @param gdEntries   grain directory entries
 * @param compressed  grains are deflate-compressed (stream-optimized)
 * @param markers     each compressed grain starts with a grain marker (lba u64, size u32)
 * @param zeroGrains  a grain table entry of 1 means "zeroed grain"
 * @param rgdOffset   where the redundant grain directory starts, or 0 where there is none
 * @param gdAtEnd     the header's directory offset was {@link SparseHeader#GD_AT_END} (a stream written once)
 * @param headerBytes the bytes at the start of the file that hold the header and any embedded descriptor
 */
record SparseGeometry(long capacity, long grainSize, int gtEntries, long gdOffset, int gdEntries,
                      boolean compressed, boolean markers, boolean zeroGrains, long rgdOffset, boolean gdAtEnd, long headerBytes) {

    /** Bytes of virtual disk one grain table covers. */
    long gtCoverage() {
        return grainSize * gtEntries;
    }
}
