package org.vdiskload.bench;

import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Random 4 KiB in-place writes through the library, for bench/random-writes-vs-qemu.sh:
 *
 * <pre>
 *   RandomWrites IMAGE FORMAT COUNT SEED [write-through]   write COUNT blocks into IMAGE, then flush
 *                                                          (with metadata write-through)
 *   RandomWrites --qemu-io-commands SIZE COUNT SEED   print the same writes as qemu-io commands
 * </pre>
 *
 * Both modes draw the same sequence: write {@code i} goes to a 4 KiB-aligned offset chosen uniformly in
 * the disk (SplittableRandom with SEED) and fills the block with the byte {@code i % 255 + 1}, so later
 * writes may overwrite earlier ones and the final content depends on the order, which both tools keep.
 */
public final class RandomWrites {
    static final int BLOCK = 4096;

    private RandomWrites() {
    }

    public static void main(String[] args) throws IOException {
        if (args.length == 4 && args[0].equals("--qemu-io-commands")) {
            printQemuIoCommands(Long.parseLong(args[1]), Integer.parseInt(args[2]), Long.parseLong(args[3]), System.out);
        } else if (args.length == 4 || args.length == 5 && args[4].equals("write-through")) {
            write(Path.of(args[0]), args[1], Integer.parseInt(args[2]), Long.parseLong(args[3]), args.length == 5);
        } else {
            System.err.println("usage: RandomWrites IMAGE FORMAT COUNT SEED [write-through] | --qemu-io-commands SIZE COUNT SEED");
            System.exit(2);
        }
    }

    static void write(Path image, String format, int count, long seed, boolean writeThrough) throws IOException {
        try (DiskImage disk = Images.open(image, OpenOptions.DEFAULTS.withFormat(format).withWritable(true))) {
            if (writeThrough) disk.setMetadataWriteThrough(true);
            Writes writes = new Writes(disk.size(), seed);
            ByteBuffer block = ByteBuffer.allocateDirect(BLOCK);
            byte[] fill = new byte[BLOCK];
            for (int i = 0; i < count; i++) {
                long offset = writes.nextOffset();
                // One bulk copy, as qemu-io's memset: a put per byte was a fifth of the run under C1.
                Arrays.fill(fill, pattern(i));
                block.clear().put(fill).flip();
                disk.write(block, offset);
            }
            disk.flush();
        }
    }

    static void printQemuIoCommands(long size, int count, long seed, PrintStream out) {
        Writes writes = new Writes(size, seed);
        StringBuilder commands = new StringBuilder(count * 32);
        for (int i = 0; i < count; i++) {
            commands.append("write -P ").append(pattern(i) & 0xff).append(' ').append(writes.nextOffset()).append(" 4k\n");
        }
        commands.append("flush\n");
        out.print(commands);
        out.flush();
    }

    static byte pattern(int i) {
        return (byte) (i % 255 + 1);
    }

    /** The offsets, from the seed: uniform over the disk's whole 4 KiB blocks. */
    static final class Writes {
        private final SplittableRandom random;
        private final long blocks;

        Writes(long size, long seed) {
            if (size < BLOCK) throw new IllegalArgumentException("disk smaller than one 4 KiB block: " + size);
            this.random = new SplittableRandom(seed);
            this.blocks = size / BLOCK;
        }

        long nextOffset() {
            return random.nextLong(blocks) * BLOCK;
        }
    }
}
