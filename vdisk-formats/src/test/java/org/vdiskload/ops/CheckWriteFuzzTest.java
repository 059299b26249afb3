package org.vdiskload.ops;

import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.vdiskload.check.RepairMode;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.testing.Tools;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * A fuzz target for the paths that change an image: corrupts random metadata bytes of a valid image,
 * then runs check, check -r leaks, check -r all and a few writes, flush and close on it. Corrupt input
 * may be refused (ImageException) or reported; anything else — a RuntimeException, an
 * OutOfMemoryError, a hang — fails with the seed and iteration that reproduce it.
 */
class CheckWriteFuzzTest {
    private static final int ITERATIONS = Tools.longRun() ? 1000 : 120;
    private static final int METADATA_BYTES = 256 << 10;

    @TempDir
    Path dir;

    @ParameterizedTest(name = "{0}")
    @CsvSource({
            "qcow2, -o cluster_size=4096",
            "vdi, ",
            "vpc, ",
            "vhdx, -o block_size=1M",
            "vmdk, ",
            "qcow, "})
    void corruptMetadataIsRefusedOrRepairedNeverCrashes(String format, String options) throws Exception {
        Path valid = dir.resolve("valid." + format);
        String o = options == null ? "" : options.replace("-o ", "");
        if (o.isEmpty()) Tools.check("qemu-img", "create", "-q", "-f", format, valid.toString(), "8M");
        else Tools.check("qemu-img", "create", "-q", "-f", format, "-o", o, valid.toString(), "8M");
        Tools.check("qemu-io", "-f", format, "-c", "write -P 0x11 0 64k", "-c", "write -P 0x22 3M 12k", "-c", "write -P 0x33 7M 4k", valid.toString());
        long size = Files.size(valid);
        Path work = dir.resolve("work." + format);
        long seed = format.hashCode();
        Random rnd = new Random(seed);
        for (int i = 0; i < ITERATIONS; i++) {
            Files.copy(valid, work, StandardCopyOption.REPLACE_EXISTING);
            try (FileChannel ch = FileChannel.open(work, StandardOpenOption.WRITE)) {
                for (int f = 1 + rnd.nextInt(4); f > 0; f--) {
                    // Headers and tables sit at the start; VHD's footer (and a VMDK footer) at the end.
                    long at = rnd.nextInt(4) == 0 ? Math.max(0, size - 1 - rnd.nextInt(1024)) : rnd.nextInt((int) Math.min(size, METADATA_BYTES));
                    ch.write(ByteBuffer.wrap(new byte[] {(byte) (rnd.nextBoolean() ? rnd.nextInt(256) : 0xff)}), at);
                }
            }
            int iteration = i;
            long writeSeed = rnd.nextLong();
            try {
                assertTimeoutPreemptively(Duration.ofSeconds(20), () -> exercise(work, format, writeSeed),
                        () -> format + " seed " + seed + " iteration " + iteration + ": hang");
            } catch (AssertionError e) {
                throw e;
            } catch (Throwable t) {
                fail(format + " seed " + seed + " iteration " + iteration + ": " + t, t);
            }
        }
    }

    /** Each step may refuse the image; none may fail otherwise. */
    private static void exercise(Path image, String format, long seed) throws IOException {
        for (RepairMode mode : RepairMode.values()) {
            try {
                Check.check(image, format, mode);
            } catch (ImageException refused) {
                // a clear refusal is right for a corrupt image
            }
        }
        try (DiskImage d = Images.open(image, OpenOptions.DEFAULTS.withFormat(format).withBacking(false).withWritable(true))) {
            Random rnd = new Random(seed);
            for (int w = 0; w < 4; w++) {
                long len = 512L * (1 + rnd.nextInt(128));
                long pos = 512L * rnd.nextInt((int) ((d.size() - len) / 512));
                byte[] data = new byte[(int) len];
                rnd.nextBytes(data);
                switch (rnd.nextInt(3)) {
                    case 0 -> d.write(ByteBuffer.wrap(data), pos);
                    case 1 -> d.writeZeroes(pos, len, rnd.nextBoolean());
                    default -> d.discard(pos, len);
                }
            }
            d.flush();
        } catch (ImageException refused) {
            // likewise
        }
    }
}
