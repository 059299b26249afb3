package org.vdiskload.format.qcow2;

import java.util.Arrays;

/**
 * A set of cluster offsets for lookups on every map and write without a lock or a boxed number: a sorted
 * array, replaced whole when the set changes, which is rare (an L2 table or refcount block comes or goes).
 */
final class ClusterSet {
    private volatile long[] sorted = new long[0];

    boolean contains(long clusterOffset) {
        return Arrays.binarySearch(sorted, clusterOffset) >= 0;
    }

    /** The smallest member in {@code [from, to)}, or -1: one search, however long the range. */
    long firstIn(long from, long to) {
        long[] s = sorted;
        int i = Arrays.binarySearch(s, from);
        if (i < 0) i = -i - 1;
        return i < s.length && s[i] < to ? s[i] : -1;
    }

    /** Changes happen under the owner's lock, one at a time. */
    synchronized void add(long clusterOffset) {
        long[] s = sorted;
        int i = Arrays.binarySearch(s, clusterOffset);
        if (i >= 0) return;
        i = -i - 1;
        long[] grown = new long[s.length + 1];
        System.arraycopy(s, 0, grown, 0, i);
        grown[i] = clusterOffset;
        System.arraycopy(s, i, grown, i + 1, s.length - i);
        sorted = grown;
    }

    synchronized void remove(long clusterOffset) {
        long[] s = sorted;
        int i = Arrays.binarySearch(s, clusterOffset);
        if (i < 0) return;
        long[] shrunk = new long[s.length - 1];
        System.arraycopy(s, 0, shrunk, 0, i);
        System.arraycopy(s, i + 1, shrunk, i, s.length - i - 1);
        sorted = shrunk;
    }

    /** Replaces the whole set with the non-zero values of {@code offsets}. */
    synchronized void replaceWith(long[] offsets) {
        sorted = Arrays.stream(offsets).filter(o -> o != 0).sorted().distinct().toArray();
    }
}
