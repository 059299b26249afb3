package org.vdiskload.format.qcow2;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.io.ImageFile;
import org.vdiskload.testing.MutationFuzz;
import org.vdiskload.testing.MutationFuzz.Region;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Mutation fuzzing of the header, L1, L2 and snapshot-table regions of several qcow2 variants. */
class Qcow2FuzzTest {
    private static final int ITERATIONS = 300;

    @TempDir
    Path dir;

    /** The metadata regions of {@code p}: header cluster start, L1 table, the first bytes of each L2 table, snapshot table. */
    static List<Region> regions(Path p) throws IOException {
        List<Region> out = new ArrayList<>();
        Qcow2Header h = TestImages.header(p);
        out.add(new Region(0, 512));
        out.add(new Region(h.l1TableOffset(), h.l1Size() * 8));
        try (ImageFile f = ImageFile.open(p, false)) {
            long[] l1 = new long[h.l1Size()];
            f.readStruct(h.l1TableOffset(), l1.length * 8L, java.nio.ByteOrder.BIG_ENDIAN, "L1").asLongBuffer().get(l1);
            for (long e : l1) {
                long l2 = e & ClusterMap.L1_OFFSET_MASK;
                if (l2 != 0) out.add(new Region(l2, (int) Math.min(h.clusterSize(), 2048)));
            }
        }
        if (h.nbSnapshots() > 0) out.add(new Region(h.snapshotsOffset(), 256));
        return out;
    }

    private void fuzz(Path p, long seed) throws IOException {
        MutationFuzz.run(p, "qcow2", regions(p), ITERATIONS, seed);
    }

    private Path make(String name, String options, String... io) throws Exception {
        return TestImages.make(dir, name, options, "1M", io);
    }

    @Test
    void plainWithSnapshot() throws Exception {
        Path p = make("plain.qcow2", "cluster_size=4k", "write -P 0x11 0 64k", "write -z 64k 8k", "write -P 0x12 900k 4k");
        org.vdiskload.testing.Tools.check("qemu-img", "snapshot", "-c", "snap", p.toString());
        fuzz(p, 1);
    }

    @Test
    void version2() throws Exception {
        fuzz(make("v2.qcow2", "compat=0.10,cluster_size=512", "write -P 0x21 0 8k", "write -P 0x22 512k 1k"), 2);
    }

    @Test
    void zlibCompressed() throws Exception {
        fuzz(make("zlib.qcow2", "cluster_size=4k", "write -c -P 0x31 0 16k", "write -P 0x32 16k 4k"), 3);
    }

    @Test
    void zstdCompressed() throws Exception {
        fuzz(make("zstd.qcow2", "cluster_size=4k,compression_type=zstd", "write -c -P 0x41 0 16k", "write -z 32k 4k"), 4);
    }

    @Test
    void extendedL2() throws Exception {
        fuzz(make("xl2.qcow2", "extended_l2=on,cluster_size=16k", "write -P 0x51 0 3k", "write -z 5k 2k", "write -c -P 0x52 32k 16k"), 5);
    }
}
