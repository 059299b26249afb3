package org.vdiskload.nbd;

import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Extent;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * NBD_CMD_BLOCK_STATUS for base:allocation, from the disk's extent map. The range is mapped in
 * windows, and the reply stops after {@link #MAX_DESCRIPTORS} descriptors (the client asks again
 * from where it ends); with NBD_CMD_FLAG_REQ_ONE, one descriptor.
 */
final class BlockStatusHandler implements CommandHandler {
    static final long WINDOW = 1L << 30;
    static final int MAX_DESCRIPTORS = 1 << 16;

    private final DiskImage disk;
    private final int minBlock;
    private final Session session;

    BlockStatusHandler(Export export, Session session) {
        this.disk = export.image();
        this.minBlock = export.sizes().minimum();
        this.session = session;
    }

    @Override
    public void handle(Request r, ReplyWriter out) throws IOException {
        boolean one = r.has(Nbd.CMD_FLAG_REQ_ONE);
        long end = r.offset() + r.length();
        StatusDescriptors d = new StatusDescriptors(minBlock);
        for (long pos = r.offset(); pos < end && d.count() <= MAX_DESCRIPTORS; ) {
            long n = Math.min(WINDOW, end - pos);
            for (Extent e : disk.map(pos, n)) d.add(e);
            pos += n;
            if (one && d.count() > 0) break;
        }
        d.finish();
        int count = one ? 1 : Math.min(d.count(), MAX_DESCRIPTORS);
        ByteBuffer payload;
        if (session.extendedHeaders) {
            payload = ByteBuffer.allocate(8 + 16 * count).putInt(Handshake.BASE_ALLOCATION_ID).putInt(count);
            for (int i = 0; i < count; i++) payload.putLong(d.length(i)).putLong(d.flags(i));
        } else {
            payload = ByteBuffer.allocate(4 + 8 * count).putInt(Handshake.BASE_ALLOCATION_ID);
            // Compact requests are at most 4 GiB - 1 long, so each descriptor fits 32 bits.
            for (int i = 0; i < count; i++) payload.putInt((int) d.length(i)).putInt(d.flags(i));
        }
        out.chunk(r, Nbd.REPLY_FLAG_DONE, session.extendedHeaders ? Nbd.REPLY_TYPE_BLOCK_STATUS_EXT : Nbd.REPLY_TYPE_BLOCK_STATUS, payload.flip());
    }
}
