package org.vdiskload.nbd;

import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Extent;
import org.vdiskload.io.Bytes;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * NBD_CMD_READ. With simple replies: one positional read of the whole range, sent behind the header.
 * With chunked replies: the range's map decides which parts are sent as OFFSET_HOLE chunks (zero
 * runs) and which are read (each extent from where the map says it lies) and sent as OFFSET_DATA;
 * with NBD_CMD_FLAG_DF, one OFFSET_DATA chunk. All data is read before the first chunk goes out, so a failing read is an
 * error reply, never a half-sent one.
 */
final class ReadHandler implements CommandHandler {
    /** Zero runs shorter than this travel as data: a hole chunk is not worth its header for less. */
    static final long MIN_HOLE = 4096;

    private final DiskImage disk;
    private final Session session;

    ReadHandler(Export export, Session session) {
        this.disk = export.image();
        this.session = session;
    }

    /** A piece of the reply: {@code [start, start+length)} of the export, a hole or data. */
    private record Span(long start, long length, boolean hole) {}

    @Override
    public void handle(Request r, ReplyWriter out) throws IOException {
        int length = (int) r.length();
        long offset = r.offset();
        if (!session.chunkedReplies()) {
            ByteBuffer b = Buffers.get(length);
            disk.read(b, offset);
            out.simple(r, 0, b.flip());
            return;
        }
        if (length == 0) {
            out.done(r);
            return;
        }
        ByteBuffer b = Buffers.get(length);
        List<Span> spans;
        if (r.has(Nbd.CMD_FLAG_DF)) {
            disk.read(b, offset);
            spans = List.of(new Span(offset, length, false));
        } else {
            List<Extent> extents = disk.map(offset, length);
            for (Extent e : extents) {
                if (!isHole(e)) read(e, b.slice((int) (e.start() - offset), (int) e.length()));
            }
            spans = spans(extents);
        }
        for (int i = 0; i < spans.size(); i++) {
            Span s = spans.get(i);
            int flags = i == spans.size() - 1 ? Nbd.REPLY_FLAG_DONE : 0;
            if (s.hole) {
                out.chunk(r, flags, Nbd.REPLY_TYPE_OFFSET_HOLE, ByteBuffer.allocate(12).putLong(s.start).putInt((int) s.length).flip());
            } else {
                out.chunk(r, flags, Nbd.REPLY_TYPE_OFFSET_DATA, ByteBuffer.allocate(8).putLong(s.start).flip(),
                        b.slice((int) (s.start - offset), (int) s.length));
            }
        }
    }

    private static boolean isHole(Extent e) {
        return e.kind() == Extent.Kind.ZERO && e.length() >= MIN_HOLE;
    }

    /**
     * The bytes of extent {@code e} into {@code dst}. Data stored verbatim is read straight from its file at
     * the offset the map gave, as the chain's own read would (no second walk of the layers' tables).
     */
    private void read(Extent e, ByteBuffer dst) throws IOException {
        switch (e.kind()) {
            case DATA -> e.file().readPadded(dst, e.fileOffset());
            case ZERO -> Bytes.fillZero(dst);
            case NEEDS_LIBRARY -> disk.read(dst, e.start());
        }
    }

    /** Holes for zero extents of at least {@link #MIN_HOLE} bytes; everything between them one data span. */
    private static List<Span> spans(List<Extent> extents) {
        List<Span> out = new ArrayList<>();
        for (Extent e : extents) {
            boolean hole = isHole(e);
            Span last = out.isEmpty() ? null : out.get(out.size() - 1);
            if (last != null && last.hole == hole) out.set(out.size() - 1, new Span(last.start, last.length + e.length(), hole));
            else out.add(new Span(e.start(), e.length(), hole));
        }
        return out;
    }
}
