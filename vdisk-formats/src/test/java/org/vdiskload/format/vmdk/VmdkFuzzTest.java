package org.vdiskload.format.vmdk;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.testing.MutationFuzz;
import org.vdiskload.testing.MutationFuzz.Region;
import org.vdiskload.testing.Tools;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** Mutation fuzzing of the sparse header, embedded and separate descriptors, GD/GT, stream markers and footer. */
class VmdkFuzzTest {
    private static final int ITERATIONS = 300;

    @TempDir
    static Path dir;

    @BeforeAll
    static void generate() throws Exception {
        Tools.generate("vmdk.sh", dir);
    }

    private static long u64(Path p, long at) throws IOException {
        try (FileChannel ch = FileChannel.open(p)) {
            ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            ch.read(b, at);
            return b.getLong(0);
        }
    }

    /** Header, embedded descriptor and everything up to the first grain (redundant GD, GD, GTs). */
    private static List<Region> sparseMetadata(Path p) throws IOException {
        long overhead = u64(p, 64) * 512;
        return List.of(new Region(0, 80), new Region(512, 512), new Region(1024, (int) (overhead - 1024)));
    }

    @Test
    void monolithicSparse() throws IOException {
        Path p = dir.resolve("monolithicSparse.vmdk");
        MutationFuzz.run(p, "vmdk", sparseMetadata(p), ITERATIONS, 0x5eed1L);
    }

    @Test
    void zeroedGrainsWithSmallTables() throws IOException {
        Path p = dir.resolve("small-grains.vmdk");
        MutationFuzz.run(p, "vmdk", sparseMetadata(p), ITERATIONS, 0x5eed2L);
    }

    @Test
    void qemuStreamOptimized() throws IOException {
        Path p = dir.resolve("streamOptimized.vmdk");
        long overhead = u64(p, 64) * 512;
        // metadata, then the first compressed grain's marker and zlib header
        MutationFuzz.run(p, "vmdk", List.of(new Region(0, 80), new Region(1024, (int) (overhead - 1024)),
                new Region(overhead, 32)), ITERATIONS, 0x5eed3L);
    }

    @Test
    void vmwareStreamWithFooter() throws IOException {
        Path p = dir.resolve("vmware-stream.vmdk");
        long size = Files.size(p);
        long overhead = u64(p, 64) * 512;
        // header, first grain marker, and the tail: grain table marker + table, directory marker + directory, footer, end of stream
        MutationFuzz.run(p, "vmdk", List.of(new Region(0, 80), new Region(overhead, 32),
                new Region(size - 6 * 512 - 2048, 6 * 512 + 2048)), ITERATIONS, 0x5eed4L);
    }

    @Test
    void descriptorFile() throws IOException {
        Path p = dir.resolve("mixed.vmdk");
        MutationFuzz.run(p, "vmdk", List.of(new Region(0, (int) Files.size(p))), ITERATIONS, 0x5eed5L);
    }

    @Test
    void deltaDescriptor() throws IOException {
        Path p = dir.resolve("chain-top.vmdk");
        MutationFuzz.run(p, "vmdk", List.of(new Region(0, 80), new Region(512, 1024)), ITERATIONS, 0x5eed6L);
    }
}
