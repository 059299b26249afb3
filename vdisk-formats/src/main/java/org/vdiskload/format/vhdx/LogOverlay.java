package org.vdiskload.format.vhdx;

import org.vdiskload.io.Bytes;

import java.nio.ByteBuffer;
import java.util.Map;
import java.util.TreeMap;

/**
 * What replaying the log writes over the file, kept in memory: non-overlapping byte ranges that hold
 * either a 4 KiB data sector or zeros. Later writes replace earlier ones where they overlap, so applying
 * the log entries in sequence order gives the replayed file. Immutable once built.
 */
final class LogOverlay {
    static final LogOverlay EMPTY = new LogOverlay();

    /** {@code [start, end)} reads as {@code data} (null: zeros). */
    private record Patch(long start, long end, byte[] data) {}

    private final TreeMap<Long, Patch> patches = new TreeMap<>();

    boolean isEmpty() {
        return patches.isEmpty();
    }

    /** Records that {@code [start, start+length)} reads as {@code data} (its first {@code length} bytes), or zeros if null. */
    void put(long start, long length, byte[] data) {
        long end = start + length;
        Map.Entry<Long, Patch> before = patches.lowerEntry(start);
        if (before != null && before.getValue().end() > start) {
            Patch p = before.getValue();
            patches.put(p.start(), slice(p, p.start(), start));
            if (p.end() > end) patches.put(end, slice(p, end, p.end()));
        }
        for (Map.Entry<Long, Patch> e = patches.ceilingEntry(start); e != null && e.getKey() < end; e = patches.ceilingEntry(start)) {
            Patch p = patches.remove(e.getKey());
            if (p.end() > end) patches.put(end, slice(p, end, p.end()));
        }
        patches.put(start, new Patch(start, end, data));
    }

    private static Patch slice(Patch p, long from, long to) {
        if (p.data() == null) return new Patch(from, to, null);
        byte[] d = new byte[(int) (to - from)];
        System.arraycopy(p.data(), (int) (from - p.start()), d, 0, d.length);
        return new Patch(from, to, d);
    }

    /** One replayed write, for applying the overlay to the file: {@code data} is null for zeros. */
    interface PatchSink {
        void write(long start, long length, byte[] data) throws java.io.IOException;
    }

    /** Hands every patch to {@code sink}, in file order. */
    void forEach(PatchSink sink) throws java.io.IOException {
        for (Patch p : patches.values()) sink.write(p.start(), p.end() - p.start(), p.data());
    }

    /** The first patched offset in {@code [pos, end)}, or {@code end} if none. */
    long nextPatched(long pos, long end) {
        Map.Entry<Long, Patch> before = patches.floorEntry(pos);
        if (before != null && before.getValue().end() > pos) return pos;
        Long next = patches.ceilingKey(pos);
        return next == null || next >= end ? end : next;
    }

    /** The end of the patched stretch starting at {@code pos} (which must be patched), at most {@code end}. */
    long patchedUntil(long pos, long end) {
        long at = pos;
        while (at < end) {
            Map.Entry<Long, Patch> e = patches.floorEntry(at);
            if (e == null || e.getValue().end() <= at) break;
            at = e.getValue().end();
        }
        return Math.min(at, end);
    }

    /** Writes the patched bytes over {@code dst}, which holds the file's bytes from {@code pos}; position unchanged. */
    void apply(ByteBuffer dst, long pos) {
        long end = pos + dst.remaining();
        Map.Entry<Long, Patch> first = patches.floorEntry(pos);
        Long from = first != null && first.getValue().end() > pos ? first.getKey() : pos;
        for (Patch p : patches.subMap(from, true, end, false).values()) {
            long s = Math.max(p.start(), pos);
            long e = Math.min(p.end(), end);
            if (s >= e) continue;
            int at = dst.position() + (int) (s - pos);
            int n = (int) (e - s);
            if (p.data() == null) Bytes.fillZero(dst.slice(at, n));
            else dst.put(at, p.data(), (int) (s - p.start()), n);
        }
    }
}
