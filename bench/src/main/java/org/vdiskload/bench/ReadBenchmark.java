package org.vdiskload.bench;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * Guest reads through {@link org.vdiskload.image.DiskImage#read}, the path every backend uses.
 * Throughput mode: each operation is one read, so ops/s of {@link #sequentialRead1M} is MiB/s and
 * ops/s of {@link #randomRead4K} is IOPS. The image's file is in the page cache after the warm-up,
 * so this measures the library, not the disk.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(1)
public class ReadBenchmark {
    static final int SEQUENTIAL = 1 << 20;
    static final int RANDOM = 4096;

    /** Per-thread buffers and position: threads never share a cursor. */
    @State(Scope.Thread)
    public static class Cursor {
        ByteBuffer big;
        ByteBuffer small;
        long next;
        SplittableRandom random;

        @Setup
        public void setup() {
            big = ByteBuffer.allocateDirect(SEQUENTIAL);
            small = ByteBuffer.allocateDirect(RANDOM);
            random = new SplittableRandom(42);
        }
    }

    /** The next 1 MiB of the disk, front to back, starting over at the end. */
    @Benchmark
    public ByteBuffer sequentialRead1M(OpenImage img, Cursor c) throws IOException {
        long size = img.disk.size();
        if (c.next >= size) c.next = 0;
        int n = (int) Math.min(SEQUENTIAL, size - c.next);
        c.big.clear().limit(n);
        img.disk.read(c.big, c.next);
        c.next += n;
        return c.big;
    }

    /** 4 KiB at a random 4 KiB-aligned offset (the disk's last partial block excluded). */
    @Benchmark
    public ByteBuffer randomRead4K(OpenImage img, Cursor c) throws IOException {
        long blocks = img.disk.size() / RANDOM;
        if (blocks == 0) throw new IllegalStateException("image is smaller than " + RANDOM + " bytes");
        c.small.clear();
        img.disk.read(c.small, c.random.nextLong(blocks) * RANDOM);
        return c.small;
    }
}
