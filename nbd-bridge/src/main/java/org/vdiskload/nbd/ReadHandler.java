package org.vdiskload.nbd;

import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Extent;
import org.vdiskload.io.Bytes;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * NBD_CMD_READ. With chunked replies the range's map decides which parts are sent as OFFSET_HOLE chunks
 * (zero runs) and which as OFFSET_DATA (each extent read from where the map says it lies); with
 * NBD_CMD_FLAG_DF, or with simple replies, all of it is one piece of data.
 *
 * <p>On a read-only export over a plain socket, large runs of data stored verbatim are not read here at
 * all: the socket sends them straight from the image file ({@link PayloadPart.FileRange}, sendfile), which
 * saves copying them through this process. Nothing writes those files while the export is served, so the
 * bytes the kernel sends are the ones the map pointed at; on a writable export a cluster could be freed
 * and reused for other data before the kernel had sent it, so there everything is read first. Everything
 * else is read into memory before the first byte of the reply goes out, so a failing read is an error
 * reply; only a file range failing mid-send ends the connection instead (see {@link ReplyWriter}).
 */
final class ReadHandler implements CommandHandler {
    /** Zero runs shorter than this travel as data: a hole chunk is not worth its header for less. */
    static final long MIN_HOLE = 4096;
    /**
     * Data runs shorter than this are read into memory and written with the rest of the reply: for a small
     * run, sendfile's extra system calls (the bytes before it go out on their own, the JDK asks the file's
     * size) cost more than the copy they save.
     */
    static final long MIN_SENDFILE = 64 << 10;

    private final DiskImage disk;
    private final Session session;
    private final boolean sendFiles;

    /** {@code sendFiles}: whether verbatim data may be sent straight from its file (see above). */
    ReadHandler(Export export, Session session, boolean sendFiles) {
        this.disk = export.image();
        this.session = session;
        this.sendFiles = sendFiles;
    }

    /** A piece of a chunked reply: {@code [start, start+length)} of the export, a hole or data. */
    private record Span(long start, long length, boolean hole, List<PayloadPart> data) {}

    @Override
    public void handle(Request r, ReplyWriter out) throws IOException {
        int length = (int) r.length();
        long offset = r.offset();
        if (length == 0) {
            if (session.chunkedReplies()) out.done(r);
            else out.simpleRead(r, List.of());
            return;
        }
        reply(r, out, r.lease().buffer(), length, offset); // every reply is sent before it returns: the buffer is free after
    }

    private void reply(Request r, ReplyWriter out, ByteBuffer b, int length, long offset) throws IOException {
        boolean oneSpan = !session.chunkedReplies() || r.has(Nbd.CMD_FLAG_DF);
        if (oneSpan && !sendFiles) {
            disk.read(b, offset);
            List<PayloadPart> data = List.of(new PayloadPart.Bytes(b.flip()));
            if (session.chunkedReplies()) sendData(r, Nbd.REPLY_FLAG_DONE, offset, data, out);
            else out.simpleRead(r, data);
            return;
        }
        List<Span> spans = spans(disk.map(offset, length), offset, b, oneSpan);
        if (!session.chunkedReplies()) {
            out.simpleRead(r, spans.get(0).data);
            return;
        }
        for (int i = 0; i < spans.size(); i++) {
            Span s = spans.get(i);
            int flags = i == spans.size() - 1 ? Nbd.REPLY_FLAG_DONE : 0;
            if (s.hole) {
                out.chunk(r, flags, Nbd.REPLY_TYPE_OFFSET_HOLE, ByteBuffer.allocate(12).putLong(s.start).putInt((int) s.length).flip());
            } else {
                sendData(r, flags, s.start, s.data, out);
            }
        }
    }

    private static void sendData(Request r, int flags, long start, List<PayloadPart> data, ReplyWriter out) throws IOException {
        List<PayloadPart> payload = new ArrayList<>(data.size() + 1);
        payload.add(new PayloadPart.Bytes(ByteBuffer.allocate(8).putLong(start).flip()));
        payload.addAll(data);
        out.chunk(r, flags, Nbd.REPLY_TYPE_OFFSET_DATA, payload);
    }

    private static boolean isHole(Extent e) {
        return e.kind() == Extent.Kind.ZERO && e.length() >= MIN_HOLE;
    }

    private boolean sentFromFile(Extent e) {
        return sendFiles && e.kind() == Extent.Kind.DATA && e.length() >= MIN_SENDFILE;
    }

    /**
     * The reply's spans, every byte that is not sent from a file already read into {@code b} (which
     * holds the request's range, {@code offset} at its start). Holes for zero extents of at least
     * {@link #MIN_HOLE} bytes (none when {@code oneSpan}); everything between them one data span, whose
     * parts are slices of {@code b} and file ranges.
     */
    private List<Span> spans(List<Extent> extents, long offset, ByteBuffer b, boolean oneSpan) throws IOException {
        List<Span> out = new ArrayList<>();
        SpanBuilder span = null;
        for (Extent e : extents) {
            boolean hole = !oneSpan && isHole(e);
            if (span == null || span.hole != hole) {
                if (span != null) out.add(span.build());
                span = new SpanBuilder(e.start(), hole, b, offset);
            }
            span.end = e.end();
            if (hole) continue;
            if (sentFromFile(e)) {
                span.file(new PayloadPart.FileRange(e.file(), e.fileOffset(), e.length()));
            } else {
                read(e, b.slice((int) (e.start() - offset), (int) e.length()));
                span.bytes(e.start(), e.end());
            }
        }
        if (span != null) out.add(span.build());
        return out;
    }

    /** One span as it is put together: a run of bytes in {@code b} becomes one slice, file ranges go between runs. */
    private static final class SpanBuilder {
        final long start;
        final boolean hole;
        long end;
        private final ByteBuffer b;
        private final long offset;
        private final List<PayloadPart> parts = new ArrayList<>();
        /** Start of the run of bytes read into {@code b} and not yet a part, or -1. */
        private long runStart = -1;
        private long runEnd;

        SpanBuilder(long start, boolean hole, ByteBuffer b, long offset) {
            this.start = start;
            this.hole = hole;
            this.end = start;
            this.b = b;
            this.offset = offset;
        }

        void bytes(long from, long to) {
            if (runStart < 0) runStart = from;
            runEnd = to;
        }

        void file(PayloadPart.FileRange f) {
            endRun();
            parts.add(f);
        }

        Span build() {
            endRun();
            return new Span(start, end - start, hole, hole ? null : parts);
        }

        private void endRun() {
            if (runStart < 0) return;
            parts.add(new PayloadPart.Bytes(b.slice((int) (runStart - offset), (int) (runEnd - runStart))));
            runStart = -1;
        }
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
}
