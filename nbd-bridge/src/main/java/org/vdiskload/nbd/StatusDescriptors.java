package org.vdiskload.nbd;

import org.vdiskload.image.Extent;

/**
 * Builds base:allocation block-status descriptors from extents: a ZERO extent unallocated down the
 * whole chain is a hole that reads as zeros (HOLE|ZERO), an allocated ZERO extent reads as zeros
 * (ZERO), data and library-only extents are 0. Descriptors with equal status are merged, and every
 * descriptor is a multiple of the minimum block size: a block that straddles extents gets the
 * status all of them share (the AND of their flags), which never claims more than is true.
 * The range must start at a block boundary.
 */
final class StatusDescriptors {
    private final int minBlock;
    private long[] lengths = new long[16];
    private int[] flags = new int[16];
    private int count;
    /** A block begun but not yet complete: its length so far and the flags all its parts share. */
    private long partialLength;
    private int partialFlags;

    StatusDescriptors(int minBlock) {
        this.minBlock = minBlock;
    }

    static int flagsOf(Extent e) {
        if (e.kind() != Extent.Kind.ZERO) return 0;
        return e.allocated() ? Nbd.STATE_ZERO : Nbd.STATE_HOLE | Nbd.STATE_ZERO;
    }

    void add(Extent e) {
        add(e.length(), flagsOf(e));
    }

    void add(long length, int f) {
        if (partialLength > 0) {
            long n = Math.min(length, minBlock - partialLength);
            partialFlags &= f;
            partialLength += n;
            length -= n;
            if (partialLength == minBlock) {
                emit(minBlock, partialFlags);
                partialLength = 0;
            }
            if (length == 0) return;
        }
        long whole = length - length % minBlock;
        if (whole > 0) emit(whole, f);
        if (length > whole) {
            partialLength = length - whole;
            partialFlags = f;
        }
    }

    /** Ends the range: a block left incomplete (only at an export end that is not block aligned) as it is. */
    void finish() {
        if (partialLength > 0) emit(partialLength, partialFlags);
        partialLength = 0;
    }

    int count() {
        return count;
    }

    long length(int i) {
        return lengths[i];
    }

    int flags(int i) {
        return flags[i];
    }

    private void emit(long length, int f) {
        if (count > 0 && flags[count - 1] == f) {
            lengths[count - 1] += length;
            return;
        }
        if (count == lengths.length) {
            lengths = java.util.Arrays.copyOf(lengths, count * 2);
            flags = java.util.Arrays.copyOf(flags, count * 2);
        }
        lengths[count] = length;
        flags[count++] = f;
    }
}
