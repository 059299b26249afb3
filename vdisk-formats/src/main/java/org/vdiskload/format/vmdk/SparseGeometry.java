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
 */
record SparseGeometry(long capacity, long grainSize, int gtEntries, long gdOffset, int gdEntries,
                      boolean compressed, boolean markers, boolean zeroGrains) {

    /** Bytes of virtual disk one grain table covers. */
    long gtCoverage() {
        return grainSize * gtEntries;
    }
}
