package org.vdiskload.testing;

import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * In-place write torture against a plain byte model: random writes, zero-writes and discards of random
 * sizes and alignments; after every batch the image is closed, reopened and compared with the model
 * whole; at the end {@code qemu-img check} must find it clean and {@code qemu-img compare} equal to
 * the model. Works through backing chains: the model starts as whatever the chain reads.
 */
public final class WriteTorture {
    /** A generous bound: models are held in memory. */
    private static final long MAX_SIZE = 256L << 20;
    /** Formats qemu-img check does not support (it exits 63): raw has no metadata, qcow v1 no check. */
    private static final java.util.Set<String> NO_QEMU_CHECK = java.util.Set.of("raw", "qcow");

    /**
     * @param unit the format's allocation unit (cluster, grain, block), so sizes straddle its edges
     */
    public record Plan(int ops, int batch, int unit, long seed) {}

    private WriteTorture() {}

    public static void run(Path image, String format, Plan plan) throws Exception {
        run(image, format, null, plan);
    }

    /** For formats that cannot record their backing file's format (qcow): the chain's {@code backingFormat}. */
    public static void run(Path image, String format, String backingFormat, Plan plan) throws Exception {
        OpenOptions rw = OpenOptions.DEFAULTS.withFormat(format).withBackingFormat(backingFormat).withWritable(true);
        byte[] model;
        try (DiskImage d = Images.open(image, rw)) {
            if (d.size() > MAX_SIZE) throw new IllegalArgumentException("torture images must be small: " + d.size());
            model = readAll(d);
        }
        Random rnd = new Random(plan.seed());
        int done = 0;
        while (done < plan.ops()) {
            try (DiskImage d = Images.open(image, rw)) {
                for (int i = 0; i < plan.batch() && done < plan.ops(); i++, done++) step(d, model, rnd, plan.unit(), done);
            }
            try (DiskImage d = Images.open(image, OpenOptions.DEFAULTS.withFormat(format).withBackingFormat(backingFormat))) {
                int m = Arrays.mismatch(readAll(d), model);
                if (m >= 0) fail(image.getFileName() + ": after " + done + " operations (seed " + plan.seed() + ") offset " + m
                        + " differs from the model");
            }
        }
        if (!NO_QEMU_CHECK.contains(format)) {
            Tools.Result check = Tools.run(List.of("qemu-img", "check", "-f", format, image.toString()), null);
            assertEquals(0, check.exit(), image.getFileName() + ": qemu-img check after torture: " + check.stdout() + check.stderr());
        }
        Path raw = Files.createTempFile(image.getParent(), "model", ".raw");
        try {
            Files.write(raw, model);
            Tools.Result cmp = Tools.run(List.of("qemu-img", "compare", "-f", format, "-F", "raw", image.toString(), raw.toString()), null);
            assertEquals(0, cmp.exit(), image.getFileName() + ": qemu-img compare with the model: " + cmp.stdout() + cmp.stderr());
        } finally {
            Files.deleteIfExists(raw);
        }
    }

    private static void step(DiskImage d, byte[] model, Random rnd, int unit, int index) throws IOException {
        long size = d.size();
        int len = length(rnd, unit, size);
        long pos = position(rnd, unit, size, len);
        int kind = rnd.nextInt(100);
        if (kind < 60) {
            byte[] data = new byte[len];
            if (rnd.nextInt(4) == 0) Arrays.fill(data, (byte) (index + 1));
            else rnd.nextBytes(data);
            d.write(ByteBuffer.wrap(data), pos);
            System.arraycopy(data, 0, model, (int) pos, len);
        } else if (kind < 80) {
            d.writeZeroes(pos, len, rnd.nextBoolean());
            Arrays.fill(model, (int) pos, (int) pos + len, (byte) 0);
        } else if (kind < 92) {
            d.discard(pos, len);
            Arrays.fill(model, (int) pos, (int) pos + len, (byte) 0);
        } else {
            d.flush();
        }
    }

    /** Mostly small and odd, sometimes unit-sized or several units, never past the disk. */
    private static int length(Random rnd, int unit, long size) {
        int len = switch (rnd.nextInt(5)) {
            case 0 -> 1 + rnd.nextInt(512);
            case 1 -> 512 * (1 + rnd.nextInt(16));
            case 2 -> unit;
            case 3 -> unit * (1 + rnd.nextInt(4)) + rnd.nextInt(unit);
            default -> 1 + rnd.nextInt(3 * unit);
        };
        return (int) Math.min(len, Math.min(size, 8 << 20));
    }

    /** Unaligned a third of the time, unit-aligned a third, sector-aligned otherwise; the last unit sometimes. */
    private static long position(Random rnd, int unit, long size, int len) {
        long max = size - len;
        long pos = switch (rnd.nextInt(3)) {
            case 0 -> (long) (rnd.nextDouble() * (max + 1));
            case 1 -> ((long) (rnd.nextDouble() * (max + 1)) / unit) * unit;
            default -> ((long) (rnd.nextDouble() * (max + 1)) / 512) * 512;
        };
        if (rnd.nextInt(10) == 0) pos = max;
        return Math.max(0, Math.min(pos, max));
    }

    public static byte[] readAll(DiskImage d) throws IOException {
        byte[] all = new byte[(int) d.size()];
        d.read(ByteBuffer.wrap(all), 0);
        return all;
    }
}
