package org.vdiskload.format.vmdk;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.Images;
import org.vdiskload.image.LayerRun;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.testing.Tools;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** Run merging, the bounded grain-table cache and concurrent reads. */
class VmdkLayerTest {
    @TempDir
    static Path dir;

    @BeforeAll
    static void generate() throws Exception {
        Tools.generate("vmdk.sh", dir);
    }

    private static byte[] readAll(Path p, OpenOptions o) throws Exception {
        try (DiskImage d = Images.open(p, o)) {
            ByteBuffer b = ByteBuffer.allocate((int) d.size());
            d.read(b, 0);
            return b.array();
        }
    }

    @Test
    void contiguousGrainsMapAsOneRun() throws Exception {
        try (DiskImage d = Images.open(dir.resolve("monolithicSparse.vmdk"), OpenOptions.DEFAULTS)) {
            ImageLayer layer = d.layers().get(0);
            // qemu-io wrote 192 KiB at 1 MiB in one request: three grains, allocated one after the other
            LayerRun run = layer.map(1 << 20, d.size() - (1 << 20));
            assertEquals(LayerRun.Status.DATA, run.status());
            assertEquals(192 << 10, run.length());
            // a run starting inside a grain ends where the merged grains end, and never beyond maxLength
            assertEquals((192 << 10) - 512, layer.map((1 << 20) + 512, 1 << 20).length());
            assertEquals(4096, layer.map(1 << 20, 4096).length());
        }
    }

    @Test
    void scatteredGrainsMapOneByOne() throws Exception {
        try (DiskImage d = Images.open(dir.resolve("scattered.vmdk"), OpenOptions.DEFAULTS)) {
            LayerRun run = d.layers().get(0).map(0, d.size());
            assertEquals(LayerRun.Status.DATA, run.status());
            assertEquals(8192, run.length(), "one 16-sector grain: the next one is elsewhere in the file");
        }
    }

    @Test
    void compressedGrainsMapAsOneEncodedRun() throws Exception {
        try (DiskImage d = Images.open(dir.resolve("vmware-stream.vmdk"), OpenOptions.DEFAULTS)) {
            LayerRun run = d.layers().get(0).map(1 << 20, 1 << 20);
            assertEquals(LayerRun.Status.ENCODED, run.status());
            assertEquals(192 << 10, run.length());
        }
    }

    @Test
    void tinyCacheReadsTheSame() throws Exception {
        for (String name : List.of("small-grains.vmdk", "vmware-stream.vmdk", "split.vmdk", "cowd.vmdk")) {
            Path p = dir.resolve(name);
            assertArrayEquals(readAll(p, OpenOptions.DEFAULTS), readAll(p, OpenOptions.DEFAULTS.withCacheBytes(1)), name);
        }
    }

    @Test
    void concurrentReadsAgree() throws Exception {
        for (String name : List.of("vmware-stream.vmdk", "small-grains.vmdk", "chain-top.vmdk")) {
            Path p = dir.resolve(name);
            byte[] expected = readAll(p, OpenOptions.DEFAULTS);
            ExecutorService pool = Executors.newFixedThreadPool(4);
            try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS.withCacheBytes(4096))) {
                List<Future<byte[]>> results = new ArrayList<>();
                for (int t = 0; t < 8; t++) {
                    results.add(pool.submit(() -> {
                        byte[] out = new byte[expected.length];
                        // 4 KiB pieces in a scattered order, so threads share and evict cache entries
                        for (int i = 0; i < out.length / 4096; i++) {
                            int piece = (int) ((i * 7919L) % (out.length / 4096));
                            ByteBuffer b = ByteBuffer.wrap(out, piece * 4096, 4096).slice();
                            d.read(b, piece * 4096L);
                        }
                        return out;
                    }));
                }
                for (Future<byte[]> f : results) assertArrayEquals(expected, f.get(), name);
            } finally {
                pool.shutdownNow();
            }
        }
    }
}
