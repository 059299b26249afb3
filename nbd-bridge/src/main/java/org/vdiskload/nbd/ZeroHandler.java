package org.vdiskload.nbd;

import org.vdiskload.image.DiskImage;
import org.vdiskload.serving.FastZeroing;

import java.io.IOException;

/**
 * NBD_CMD_WRITE_ZEROES. Without NBD_CMD_FLAG_NO_HOLE the image may free the range (a discard);
 * with it the range stays allocated. With NBD_CMD_FLAG_FAST_ZERO the request is answered ENOTSUP
 * at once, changing nothing, unless zeroing can be done without writing data ({@link #isFast}).
 */
final class ZeroHandler implements CommandHandler {
    private final DiskImage disk;

    ZeroHandler(Export export) {
        this.disk = export.image();
    }

    @Override
    public void handle(Request r, ReplyWriter out) throws IOException {
        boolean mayUnmap = !r.has(Nbd.CMD_FLAG_NO_HOLE);
        if (r.has(Nbd.CMD_FLAG_FAST_ZERO) && !isFast(disk, r.offset(), r.length(), mayUnmap)) {
            out.error(r, Nbd.ENOTSUP, "zeroing this range would write data");
            return;
        }
        disk.writeZeroes(r.offset(), r.length(), mayUnmap);
        WriteHandler.finish(disk, r, out);
    }

    /**
     * Whether zeroing {@code [pos, pos+length)} needs no data written, decided from what the image
     * is, without looking at its content (a fast-zero answer must itself be fast):
     * <ul>
     * <li>an image that says so itself ({@link FastZeroing}: the --snapshot overlay);</li>
     * <li>a raw image with no backing file when the range may be freed: the library punches a hole
     *     (fallocate), which touches metadata only on every file system that has holes (ext4, xfs,
     *     btrfs, tmpfs). With NO_HOLE the library writes the zeros: slow.</li>
     * </ul>
     * Everything else is slow until its format's writer can show otherwise: a "no" only makes the
     * client write the zeros it needs itself, while a wrong "yes" would cost it a full pass.
     */
    static boolean isFast(DiskImage disk, long pos, long length, boolean mayUnmap) {
        if (disk instanceof FastZeroing f) return f.zeroesFast(pos, length, mayUnmap);
        return mayUnmap && disk.layers().size() == 1 && disk.formatName().equals("raw");
    }
}
