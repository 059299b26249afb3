package org.vdiskload.testing;

import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Extent;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.error.ImageException;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * A fuzz target for one parser: corrupts random bytes of a valid image in the regions its metadata
 * lives in, then opens, maps and reads it. The only acceptable failure is an {@link ImageException};
 * anything else (a RuntimeException, an OutOfMemoryError, a hang) fails the test with the seed and
 * iteration to reproduce it.
 */
public final class MutationFuzz {
    /** A byte range of the file to corrupt. */
    public record Region(long offset, int length) {}

    private MutationFuzz() {}

    public static void run(Path valid, String format, List<Region> regions, int iterations, long seed) throws IOException {
        Path work = Files.createTempFile(valid.getParent(), "fuzz", ".img");
        try {
            Random rnd = new Random(seed);
            for (int i = 0; i < iterations; i++) {
                Files.copy(valid, work, StandardCopyOption.REPLACE_EXISTING);
                int flips = 1 + rnd.nextInt(4);
                try (FileChannel ch = FileChannel.open(work, StandardOpenOption.WRITE)) {
                    for (int f = 0; f < flips; f++) {
                        Region r = regions.get(rnd.nextInt(regions.size()));
                        long at = r.offset() + rnd.nextInt(Math.max(1, r.length()));
                        byte b = (byte) (rnd.nextBoolean() ? rnd.nextInt(256) : (0xff));
                        ch.write(ByteBuffer.wrap(new byte[] {b}), at);
                    }
                }
                int iteration = i;
                try {
                    assertTimeoutPreemptively(Duration.ofSeconds(10), () -> exercise(work, format),
                            () -> "seed " + seed + " iteration " + iteration + ": hang");
                } catch (Throwable t) {
                    if (t instanceof ImageException) continue; // a clear refusal is right for a corrupt image
                    if (t instanceof AssertionError a && a.getMessage() != null && a.getMessage().contains("hang")) throw a;
                    fail("seed " + seed + " iteration " + iteration + " of " + valid.getFileName() + ": " + t, t);
                }
            }
        } finally {
            Files.deleteIfExists(work);
        }
    }

    private static void exercise(Path image, String format) throws IOException {
        try (DiskImage disk = Images.open(image, OpenOptions.DEFAULTS.withFormat(format).withBackingFormat("raw"))) {
            long size = disk.size();
            long step = Math.max(1, size / 64);
            ByteBuffer buf = ByteBuffer.allocate(64 << 10);
            for (long pos = 0; pos < size; pos += step) {
                long len = Math.min(buf.capacity(), size - pos);
                for (Extent e : disk.map(pos, len)) {
                    if (e.length() <= 0) fail("empty extent");
                }
                buf.clear().limit((int) len);
                disk.read(buf, pos);
            }
        }
    }
}
