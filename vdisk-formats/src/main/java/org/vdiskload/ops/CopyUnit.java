package org.vdiskload.ops;

import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Extent;
import org.vdiskload.io.Bytes;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * A stretch of the disk that convert copies with one read and one pass of the zero check: at most
 * {@link #MAX} bytes of consecutive extents that begins and ends with data, small zero extents between
 * included. A raw source with many holes (or a sparse file full of short runs) maps as thousands of
 * short extents; copying each on its own cost one read and one write call per run.
 */
final class CopyUnit {
    /** The largest unit: large enough for sequential speed, small enough to keep memory flat. */
    static final int MAX = 2 << 20;
    private static final int PAGE = 4096;

    private final List<Extent> parts;
    private final long start;
    private final int length;

    private CopyUnit(List<Extent> parts) {
        this.parts = parts;
        this.start = parts.get(0).start();
        this.length = Math.toIntExact(parts.get(parts.size() - 1).end() - start);
    }

    /**
     * A buffer for one unit, starting on a page boundary. The kernel copies the page cache into it
     * with a string move, which is several times slower into a destination off the page's alignment
     * (allocateDirect's memory starts 16 bytes past one): reading 1 GiB to raw spent 0.36 s of system
     * time there against qemu-img's 0.13 s.
     */
    static ByteBuffer newBuffer() {
        return ByteBuffer.allocateDirect(MAX + PAGE - 1).alignedSlice(PAGE).slice(0, MAX);
    }

    long start() { return start; }

    int length() { return length; }

    /**
     * Reads the unit into {@code buf} (cleared first; flipped after). When every data part lies in one
     * file at the same distance from its disk offset, as in a raw file or a freshly converted image,
     * one read covers the whole unit and the zero parts between are blanked in memory afterwards
     * (the file's bytes there are a hole, or belong to something else); otherwise part by part.
     */
    void read(DiskImage image, ByteBuffer buf) throws IOException {
        buf.clear().limit(length);
        Extent first = parts.get(0);
        if (oneFileRun()) {
            first.file().readPadded(buf, first.fileOffset());
            for (Extent e : parts) {
                if (e.kind() == Extent.Kind.ZERO) Bytes.fillZero(buf.clear().limit((int) (e.end() - start)).position((int) (e.start() - start)));
            }
        } else {
            for (Extent e : parts) {
                ByteBuffer part = buf.duplicate().limit((int) (e.end() - start)).position((int) (e.start() - start));
                switch (e.kind()) {
                    case DATA -> e.file().readPadded(part, e.fileOffset());
                    case ZERO -> Bytes.fillZero(part);
                    case NEEDS_LIBRARY -> image.read(part, e.start());
                }
            }
        }
        buf.clear().limit(length);
    }

    private boolean oneFileRun() {
        Extent first = parts.get(0);
        long delta = first.fileOffset() - first.start();
        for (Extent e : parts) {
            if (e.kind() == Extent.Kind.ZERO) continue;
            if (e.kind() != Extent.Kind.DATA || e.file() != first.file() || e.fileOffset() - e.start() != delta) return false;
        }
        return true;
    }

    /** Receives the units and the zero extents between them, in disk order. */
    interface Visitor {
        void unit(CopyUnit unit) throws IOException;

        void zero(long start, long length) throws IOException;
    }

    /**
     * Walks {@code image}'s map and hands {@code v} its units and the zero extents left out of them.
     * A zero extent of {@code MAX} bytes or more ends a unit; a shorter one joins it when the next data
     * still fits.
     */
    static void plan(DiskImage image, Visitor v) throws IOException {
        Planner p = new Planner(v);
        ExtentWalker.walk(image, 0, image.size(), p::add);
        p.finish();
    }

    private static final class Planner {
        private final Visitor v;
        private final List<Extent> parts = new ArrayList<>();
        /** A zero extent seen after the current parts, not yet known to be inside the unit. */
        private Extent gap;

        Planner(Visitor v) { this.v = v; }

        void add(Extent e) throws IOException {
            if (e.kind() == Extent.Kind.ZERO) {
                if (parts.isEmpty()) {
                    v.zero(e.start(), e.length());
                    return;
                }
                // Zero extents from different layers of a chain arrive one after another.
                gap = gap == null ? e : Extent.zero(gap.start(), gap.length() + e.length(), gap.depth(), gap.allocated());
                if (gap.length() >= MAX) emit();
                return;
            }
            for (long off = 0; off < e.length(); ) {
                long room = parts.isEmpty() ? MAX : MAX - (e.start() + off - parts.get(0).start());
                if (room <= 0) {
                    emit();
                    continue;
                }
                long n = Math.min(room, e.length() - off);
                Extent piece = slice(e, off, n);
                if (gap != null) {
                    parts.add(gap);
                    gap = null;
                }
                parts.add(piece);
                off += n;
            }
        }

        /** Ends the current unit; a pending gap goes out as a zero extent of its own. */
        private void emit() throws IOException {
            if (!parts.isEmpty()) v.unit(new CopyUnit(List.copyOf(parts)));
            parts.clear();
            if (gap != null) {
                v.zero(gap.start(), gap.length());
                gap = null;
            }
        }

        void finish() throws IOException {
            emit();
        }

        private static Extent slice(Extent e, long off, long n) {
            if (off == 0 && n == e.length()) return e;
            long fileOffset = e.file() != null ? e.fileOffset() + off : -1;
            return new Extent(e.start() + off, n, e.kind(), e.depth(), e.allocated(), e.file(), fileOffset, e.inPlace());
        }
    }
}
