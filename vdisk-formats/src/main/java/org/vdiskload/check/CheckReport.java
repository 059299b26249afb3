package org.vdiskload.check;

import java.util.List;

/**
 * The outcome of checking one image, with qemu-img check's counts. Counts are after any repair:
 * a repaired leak is in {@code leaksFixed}, not in {@code leaks}.
 *
 * @param messages            one line per problem found or fixed, for the user
 * @param imageEndOffset      the offset just past the last used byte of the file, or null
 * @param totalClusters       clusters of the virtual disk, or null where the format has none
 * @param allocatedClusters   clusters allocated in this layer, or null
 * @param fragmentedClusters  allocated clusters not following their predecessor, or null
 * @param compressedClusters  compressed clusters, or null
 */
public record CheckReport(String format, long corruptions, long leaks, long checkErrors,
                          long corruptionsFixed, long leaksFixed, List<String> messages,
                          Long imageEndOffset, Long totalClusters, Long allocatedClusters,
                          Long fragmentedClusters, Long compressedClusters) {

    public boolean clean() {
        return corruptions == 0 && leaks == 0 && checkErrors == 0;
    }

    /** qemu-img check's exit status: 0 clean, 1 check not completed, 2 corruptions, 3 leaks only. */
    public int exitCode() {
        if (checkErrors > 0) return 1;
        if (corruptions > 0) return 2;
        if (leaks > 0) return 3;
        return 0;
    }
}
