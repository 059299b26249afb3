package org.vdiskload.testing;

import java.util.Random;

/**
 * The deterministic operations of a crash run. Operation k writes (or zeroes) part of its own block
 * k of {@link #BLOCK} bytes, in a shuffled order, so no later operation touches what an earlier one
 * wrote: whatever was flushed must read back exactly, whatever the kill interrupted.
 */
public final class CrashPlan {
    public static final int BLOCK = 192 << 10;

    private final long seed;
    /** Where the operations' blocks start on the disk. */
    private final long base;

    public record Op(long pos, int length, boolean zero, boolean mayUnmap, byte[] data) {}

    public CrashPlan(long seed) {
        this(seed, 0);
    }

    /** Operations in the blocks from {@code base} on (far into a disk whose metadata is laid out by offset). */
    public CrashPlan(long seed, long base) {
        this.seed = seed;
        this.base = base;
    }

    public int blocks(long size) {
        return (int) Math.min(4096, (size - base) / BLOCK);
    }

    /** The block operation k uses: a fixed permutation, so allocations land out of order. */
    private long block(int k, int blocks) {
        long stride = 7919 % blocks == 0 ? 1 : 7919;
        return (k * stride + seed) % blocks;
    }

    public Op op(int k, long size) {
        int blocks = blocks(size);
        Random r = new Random(seed * 1_000_003L + k);
        int len = 1 + r.nextInt(BLOCK - 1);
        int at = r.nextInt(BLOCK - len + 1);
        if (r.nextInt(3) > 0) at &= ~511;
        long pos = base + block(k, blocks) * BLOCK + at;
        boolean zero = r.nextInt(8) == 0;
        byte[] data = null;
        if (!zero) {
            data = new byte[len];
            r.nextBytes(data);
            data[0] = (byte) (k | 1); // never all zero: a lost write must show
        }
        return new Op(pos, len, zero, r.nextBoolean(), data);
    }
}
