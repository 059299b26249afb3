package org.vdiskload.testing;

import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;

import java.nio.ByteBuffer;
import java.nio.file.Path;

/**
 * The child process of {@link CrashTest}: writes {@link CrashPlan} operations into an image and prints
 * {@code FLUSHED k} after each completed flush, until it is killed. With {@code write-through}, it opens the
 * image with metadata write-through, never flushes, and prints {@code WROTE k} after each operation returns.
 *   java ... CrashWriter IMAGE FORMAT SEED [write-through]
 */
public final class CrashWriter {
    private CrashWriter() {}

    public static void main(String[] args) throws Exception {
        Path image = Path.of(args[0]);
        CrashPlan plan = new CrashPlan(Long.parseLong(args[2]));
        boolean writeThrough = args.length > 3 && args[3].equals("write-through");
        OpenOptions options = OpenOptions.DEFAULTS.withFormat(args[1]).withWritable(true).withMetadataWriteThrough(writeThrough);
        try (DiskImage d = Images.open(image, options)) {
            int blocks = plan.blocks(d.size());
            for (int k = 0; k < blocks; k++) {
                CrashPlan.Op op = plan.op(k, d.size());
                if (op.zero()) d.writeZeroes(op.pos(), op.length(), op.mayUnmap());
                else d.write(ByteBuffer.wrap(op.data()), op.pos());
                if (writeThrough) {
                    System.out.println("WROTE " + k);
                    System.out.flush();
                } else if (k % 4 == 3) {
                    d.flush();
                    System.out.println("FLUSHED " + k);
                    System.out.flush();
                }
            }
            System.out.println("DONE");
            System.out.flush();
            Thread.sleep(Long.MAX_VALUE);
        }
    }
}
