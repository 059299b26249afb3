package org.vdiskload.nbd;

import org.vdiskload.image.DiskImage;

import java.io.IOException;

/**
 * NBD_CMD_WRITE: the payload goes to the image at the offset; with NBD_CMD_FLAG_FUA the image is
 * flushed before the reply, so the write is durable when the client hears of it.
 */
final class WriteHandler implements CommandHandler {
    private final DiskImage disk;

    WriteHandler(Export export) {
        this.disk = export.image();
    }

    @Override
    public void handle(Request r, ReplyWriter out) throws IOException {
        disk.write(r.lease().buffer(), r.offset());
        finish(disk, r, out);
    }

    /** The end of every change: flush for FUA, then the reply. */
    static void finish(DiskImage disk, Request r, ReplyWriter out) throws IOException {
        if (r.has(Nbd.CMD_FLAG_FUA)) disk.flush();
        out.done(r);
    }
}
