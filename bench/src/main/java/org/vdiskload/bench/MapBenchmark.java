package org.vdiskload.bench;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Warmup;
import org.vdiskload.image.Extent;
import org.vdiskload.ops.ExtentWalker;

import java.io.IOException;
import java.util.concurrent.TimeUnit;

/**
 * The extent map of the whole disk, walked as {@code vdiskload map} and {@code convert} walk it
 * (bounded windows, extents joined across window edges). Time per whole-image map.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(1)
public class MapBenchmark {

    /** Returns the number of extents, so the walk cannot be optimised away. */
    @Benchmark
    public long mapWholeImage(OpenImage img) throws IOException {
        long[] extents = {0};
        ExtentWalker.walk(img.disk, 0, img.disk.size(), (Extent e) -> extents[0]++);
        return extents[0];
    }
}
