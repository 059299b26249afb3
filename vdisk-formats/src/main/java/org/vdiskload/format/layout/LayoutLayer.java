package org.vdiskload.format.layout;

import org.vdiskload.image.Beneath;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.LayerInfo;
import org.vdiskload.image.LayerRun;
import org.vdiskload.image.MapChangeListener;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.Bytes;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The assembled disk: the table sectors (built in memory, reported ENCODED), each partition mapped onto its
 * source's own extents (so DATA runs point into the source files and the disk's map spans them all), zeros
 * elsewhere. Writes inside a partition go to its source through {@code DiskImage.write}; the tables, the
 * gaps and a partition's tail past its source take only the bytes they already hold (zeros, the same table).
 */
final class LayoutLayer implements ImageLayer {
    /**
     * A range of the disk that is not a gap: table bytes, or a partition (with or without a source).
     * {@code encoded}: a partition written through the library alone, see {@link #servedEncoded}.
     */
    private record Region(long start, long end, Tables.Block table, DiskPlan.Placed part, PartitionSource source,
                          boolean encoded) {}

    private final ImageFile file;
    private final DiskPlan plan;
    private final List<PartitionSource> sources;
    private final List<Region> regions;
    private final boolean writable;

    LayoutLayer(ImageFile file, DiskPlan plan, List<PartitionSource> sources, List<Tables.Block> tables, boolean writable) {
        this.file = file;
        this.plan = plan;
        this.sources = sources;
        this.writable = writable;
        List<Region> r = new ArrayList<>();
        for (Tables.Block b : tables) r.add(new Region(b.offset(), b.end(), b, null, null, false));
        for (DiskPlan.Placed p : plan.parts) {
            PartitionSource source = sources.get(p.number() - 1);
            r.add(new Region(p.start(), p.end(), null, p, source, servedEncoded(p.start(), source)));
        }
        r.sort(Comparator.comparingLong(Region::start));
        this.regions = List.copyOf(r);
    }

    /**
     * Whether a partition maps as ENCODED rather than as its source's own map: when its source takes writes
     * but its start is not a multiple of the source's mapping unit. A write there would change the source's
     * map in units that straddle the disk's (no unit of the disk can line up with them), so the range is
     * left to the library, whose map of it never changes. Layouts align partitions to 1 MiB by default:
     * only sources with larger units (a VHDX's blocks) or a smaller alignment come to this.
     */
    private static boolean servedEncoded(long start, PartitionSource source) {
        return source != null && source.image.isWritable() && start % source.image.mappingUnit() != 0;
    }

    @Override
    public String formatName() {
        return LayoutFormat.NAME;
    }

    @Override
    public ImageFile file() {
        return file;
    }

    @Override
    public List<ImageFile> files() {
        List<ImageFile> all = new ArrayList<>();
        all.add(file);
        for (PartitionSource s : sources) if (s != null) all.addAll(s.files());
        return all;
    }

    @Override
    public long size() {
        return plan.diskSize;
    }

    /** The region holding {@code pos}, or null in a gap. */
    private Region at(long pos) {
        int i = indexAfter(pos) - 1;
        if (i >= 0 && pos < regions.get(i).end()) return regions.get(i);
        return null;
    }

    /** The index of the first region starting after {@code pos}. */
    private int indexAfter(long pos) {
        int lo = 0;
        int hi = regions.size();
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (regions.get(mid).start() <= pos) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }

    /** Bytes of a partition's own source at offset {@code off} in the partition (0 past the source's end). */
    private static long inSource(Region r, long off) {
        return r.source() == null ? 0 : Math.max(0, r.source().size() - off);
    }

    @Override
    public LayerRun map(long pos, long maxLength) throws IOException {
        Region r = at(pos);
        if (r == null) {
            int next = indexAfter(pos);
            long end = next < regions.size() ? regions.get(next).start() : size();
            return LayerRun.zero(Math.min(maxLength, end - pos));
        }
        long n = Math.min(maxLength, r.end() - pos);
        if (r.table() != null) return LayerRun.encoded(n);
        long off = pos - r.start();
        long src = inSource(r, off);
        if (src > 0) return r.encoded() ? LayerRun.encoded(Math.min(n, src)) : r.source().map(off, Math.min(n, src));
        return LayerRun.zero(n);
    }

    @Override
    public void readEncoded(ByteBuffer dst, long pos) throws IOException {
        Region r = at(pos);
        if (r.table() != null) {
            dst.put(r.table().bytes(), (int) (pos - r.start()), dst.remaining());
        } else {
            r.source().read(dst, pos - r.start());
        }
    }

    @Override
    public Optional<org.vdiskload.image.BackingRef> backing() {
        return Optional.empty();
    }

    @Override
    public LayerInfo info() {
        Map<String, Object> specific = new LinkedHashMap<>();
        specific.put("table", plan.isGpt() ? "gpt" : "mbr");
        specific.put("sector-size", plan.spec.sectorSize());
        List<Map<String, Object>> parts = new ArrayList<>();
        for (DiskPlan.Placed p : plan.parts) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("number", p.number());
            m.put("start", p.start());
            m.put("size", p.size());
            if (p.spec().source() != null) {
                m.put("source", p.spec().source());
                m.put("source-format", sources.get(p.number() - 1).image.formatName());
            }
            parts.add(m);
        }
        specific.put("partitions", parts);
        return new LayerInfo(LayoutFormat.NAME, size(), null, null, List.of(), specific);
    }

    // ---- Writing ----

    @Override
    public boolean writable() {
        return writable;
    }

    /** One piece of a write: a range inside one region (or gap). */
    private record Piece(long pos, int length, Region region) {}

    private List<Piece> pieces(long pos, long length) {
        List<Piece> out = new ArrayList<>();
        long end = pos + length;
        while (pos < end) {
            Region r = at(pos);
            long stop;
            if (r != null) {
                long off = pos - r.start();
                long src = inSource(r, off);
                stop = src > 0 ? pos + src : r.end();
            } else {
                int next = indexAfter(pos);
                stop = next < regions.size() ? regions.get(next).start() : size();
            }
            int n = (int) Math.min(Math.min(end, stop) - pos, Integer.MAX_VALUE);
            out.add(new Piece(pos, n, r));
            pos += n;
        }
        return out;
    }

    private boolean toSource(Piece p) {
        return p.region() != null && p.region().source() != null && inSource(p.region(), p.pos() - p.region().start()) > 0;
    }

    /** Refuses the whole write before any of it is done if one piece cannot take it. */
    private void check(Piece p, ByteBuffer data) throws IOException {
        Region r = p.region();
        if (toSource(p)) {
            String why = r.source().readOnlyReason;
            if (why != null) throw ImageException.readOnly(file.path(), "partition " + r.part().number() + ": its source " + r.part().spec().source() + " " + why);
            return;
        }
        boolean fits;
        if (r == null || r.table() == null) {
            fits = data == null || Bytes.isZero(data); // a gap or a partition's tail: zeros
        } else {
            ByteBuffer current = ByteBuffer.wrap(r.table().bytes(), (int) (p.pos() - r.start()), p.length());
            fits = data == null ? Bytes.isZero(current) : data.equals(current);
        }
        if (!fits) {
            String what = r == null ? "the space between partitions"
                    : r.table() != null ? "the partition table (change the layout file instead)"
                    : r.source() == null ? "partition " + r.part().number() + " (it has no source)"
                    : "partition " + r.part().number() + " past the end of its source";
            throw ImageException.readOnly(file.path(), "cannot write at offset " + p.pos() + ": " + what + " holds fixed bytes");
        }
    }

    @Override
    public void write(ByteBuffer src, long pos, Beneath beneath) throws IOException {
        List<Piece> pieces = pieces(pos, src.remaining());
        for (Piece p : pieces) check(p, src.slice(src.position() + (int) (p.pos() - pos), p.length()));
        for (Piece p : pieces) {
            if (!toSource(p)) continue;
            Region r = p.region();
            r.source().image.write(src.slice(src.position() + (int) (p.pos() - pos), p.length()), p.pos() - r.start());
            r.source().invalidate();
        }
        src.position(src.limit());
    }

    @Override
    public void writeZeroes(long pos, long length, boolean mayUnmap, Beneath beneath) throws IOException {
        List<Piece> pieces = pieces(pos, length);
        for (Piece p : pieces) check(p, null);
        for (Piece p : pieces) {
            if (!toSource(p)) continue;
            Region r = p.region();
            r.source().image.writeZeroes(p.pos() - r.start(), p.length(), mayUnmap);
            r.source().invalidate();
        }
    }

    /** The largest of the partitions' units whose maps pass through; the tables and gaps never change. */
    @Override
    public long mappingUnit() {
        long unit = 512;
        for (Region r : regions) {
            if (r.source() != null && r.source().image.isWritable() && !r.encoded()) unit = Math.max(unit, r.source().image.mappingUnit());
        }
        return unit;
    }

    /** Each partition's reports, moved to where the partition lies and clipped to its source's part of it. */
    @Override
    public void setMapChangeListener(MapChangeListener listener) {
        for (Region r : regions) {
            if (r.source() == null || !r.source().image.isWritable()) continue;
            long start = r.start();
            long end = Math.min(r.end(), start + r.source().size());
            PartitionSource source = r.source();
            source.image.setMapChangeListener(listener == MapChangeListener.NONE || r.encoded() ? null : (pos, length) -> {
                source.invalidate(); // the window of the source's map this layer answers from
                long n = Math.min(length, end - start - pos);
                if (n > 0) listener.changed(start + pos, n);
            });
        }
    }

    @Override
    public void prepareForWrites() throws IOException {
        for (PartitionSource s : sources) if (s != null && s.image.isWritable()) s.image.prepareForWrites();
    }

    @Override
    public void setMetadataWriteThrough(boolean on) throws IOException {
        for (PartitionSource s : sources) if (s != null && s.image.isWritable()) s.image.setMetadataWriteThrough(on);
    }

    @Override
    public void flush() throws IOException {
        for (PartitionSource s : sources) if (s != null && s.image.isWritable()) s.image.flush();
    }

    @Override
    public void close() throws IOException {
        try {
            LayoutFormat.closeAll(sources);
        } finally {
            file.close();
        }
    }
}
