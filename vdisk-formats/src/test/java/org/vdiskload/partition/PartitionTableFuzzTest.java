package org.vdiskload.partition;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.error.ImageException;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * In the style of {@link org.vdiskload.testing.MutationFuzz}: random bytes of valid tables are changed and the
 * table read again. The only acceptable failure is an {@link ImageException} (a hang fails through the loop's
 * timeout); a table that is read must keep its partitions on the disk and in number order.
 */
class PartitionTableFuzzTest {
    private static final int ITERATIONS = 1500;

    @TempDir
    Path dir;

    /** A byte range of the disk. */
    record Region(long offset, int length) {}

    /** Changes the disk at the start of an iteration. */
    interface Mutation {
        void apply(FileChannel ch, Random rnd) throws IOException;
    }

    @Test
    void gptHeadersAndEntries() throws Exception {
        Path raw = PartitionTableTest.gptDisk(dir);
        long size = Files.size(raw);
        Region primary = new Region(0, 34 * 512);
        Region backup = new Region(size - 33 * 512, 33 * 512);
        // Plain flips (mostly caught by the CRCs), and flips resealed with fresh CRCs so the checks behind them run too.
        Mutation flips = (ch, rnd) -> flip(ch, rnd, List.of(primary, backup));
        Mutation headerResealed = (ch, rnd) -> {
            flip(ch, rnd, List.of(new Region(512, 16), new Region(512 + 20, 72)));
            GptPatch.resealHeader(ch, 512, 1);
        };
        Mutation entriesResealed = (ch, rnd) -> GptPatch.patch(raw, 512, 1, a -> {
            for (int i = 1 + rnd.nextInt(4); i > 0; i--) a.put(rnd.nextInt(a.capacity()), (byte) rnd.nextInt(256));
        }, h -> {});
        fuzz(raw, List.of(primary, backup), List.of(flips, headerResealed, entriesResealed), 0x6a7);
    }

    @Test
    void mbrAndEbrs() throws Exception {
        Path raw = PartitionTableTest.mbrDisk(dir);
        List<Region> tables = new ArrayList<>(List.of(new Region(446, 66)));
        long ebr = 8192 * 512L;
        try (FileChannel ch = FileChannel.open(raw)) {
            for (int i = 0; i < 3; i++) {
                tables.add(new Region(ebr + 446, 66));
                ebr = (8192 + GptPatch.read(ch, ebr + 446 + 16 + 8, 4).getInt(0)) * 512L;
            }
        }
        fuzz(raw, tables, List.of((ch, rnd) -> flip(ch, rnd, tables)), 0xeb2);
    }

    private static void flip(FileChannel ch, Random rnd, List<Region> regions) throws IOException {
        for (int f = 1 + rnd.nextInt(4); f > 0; f--) {
            Region r = regions.get(rnd.nextInt(regions.size()));
            byte b = (byte) (rnd.nextBoolean() ? rnd.nextInt(256) : 0xff);
            ch.write(ByteBuffer.wrap(new byte[] {b}), r.offset + rnd.nextInt(r.length));
        }
    }

    /** Each iteration restores {@code restore} from the valid disk, applies one mutation and reads the table. */
    private static void fuzz(Path raw, List<Region> restore, List<Mutation> mutations, long seed) {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> fuzzLoop(raw, restore, mutations, seed), "seed " + seed + ": hang");
    }

    private static void fuzzLoop(Path raw, List<Region> restore, List<Mutation> mutations, long seed) throws Exception {
        List<byte[]> saved = new ArrayList<>();
        try (FileChannel ch = FileChannel.open(raw)) {
            for (Region r : restore) saved.add(GptPatch.read(ch, r.offset, r.length).array());
        }
        long size = Files.size(raw);
        Random rnd = new Random(seed);
        for (int i = 0; i < ITERATIONS; i++) {
            try (FileChannel ch = FileChannel.open(raw, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
                for (int r = 0; r < restore.size(); r++) ch.write(ByteBuffer.wrap(saved.get(r)), restore.get(r).offset);
                mutations.get(i % mutations.size()).apply(ch, rnd);
            }
            try {
                PartitionTable t;
                try (DiskImage d = Images.open(raw, OpenOptions.DEFAULTS.withFormat("raw"))) {
                    t = PartitionTable.read(d);
                }
                int last = 0;
                for (Partition p : t.partitions()) {
                    assertTrue(p.number() > last && p.start() >= 0 && p.length() > 0 && p.start() + p.length() <= size,
                            "seed " + seed + " iteration " + i + ": " + p);
                    last = p.number();
                }
            } catch (ImageException expected) {
                // a clear refusal is right for a corrupt table
            } catch (Throwable t) {
                if (t instanceof AssertionError a) throw a;
                fail("seed " + seed + " iteration " + i + ": " + t, t);
            }
        }
    }
}
