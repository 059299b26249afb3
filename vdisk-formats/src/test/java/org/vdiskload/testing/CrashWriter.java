package org.vdiskload.testing;

import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;

import java.nio.ByteBuffer;
import java.nio.file.Path;

/**
 * The child process of {@link CrashTest}: writes {@link CrashPlan} operations into an image and prints
 * {@code FLUSHED k} after each completed flush, until it is killed.
 *   java ... CrashWriter IMAGE FORMAT SEED
 */
public final class CrashWriter {
    private CrashWriter() {}

    public static void main(String[] args) throws Exception {
        Path image = Path.of(args[0]);
        CrashPlan plan = new CrashPlan(Long.parseLong(args[2]));
        try (DiskImage d = Images.open(image, OpenOptions.DEFAULTS.withFormat(args[1]).withWritable(true))) {
            int blocks = plan.blocks(d.size());
            for (int k = 0; k < blocks; k++) {
                CrashPlan.Op op = plan.op(k, d.size());
                if (op.zero()) d.writeZeroes(op.pos(), op.length(), op.mayUnmap());
                else d.write(ByteBuffer.wrap(op.data()), op.pos());
                if (k % 4 == 3) {
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
