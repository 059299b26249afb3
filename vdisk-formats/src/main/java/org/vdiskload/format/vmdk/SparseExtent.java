package org.vdiskload.format.vmdk;

import org.vdiskload.image.LayerRun;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.Bytes;
import org.vdiskload.io.Checked;
import org.vdiskload.io.ImageFile;
import org.vdiskload.io.LruCache;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * A sparse extent (KDMV or COWD): a grain directory of grain-table sector offsets, grain tables of
 * grain sector offsets. Entry 0 is unallocated; 1 is a zeroed grain where the header enables them;
 * otherwise the grain's sector, holding the data or, compressed, a grain marker and zlib data.
 * Grain tables are read on demand through a bounded cache.
 */
final class SparseExtent implements VmdkExtent {
    /** Compressed grains are inflated into a grain-sized buffer: refuse absurd grain sizes for them. */
    static final long MAX_COMPRESSED_GRAIN = 16L << 20;
    private static final int GRAIN_MARKER_SIZE = 12;

    private final ImageFile file;
    private final long fileSize;
    private final SparseGeometry g;
    private final String type;
    private final int[] directory;
    private final LruCache<int[]> tables;
    private final LruCache<byte[]> grains;

    private SparseExtent(ImageFile file, long fileSize, SparseGeometry g, String type, int[] directory, long cacheBytes) {
        this.file = file;
        this.fileSize = fileSize;
        this.g = g;
        this.type = type;
        this.directory = directory;
        this.tables = new LruCache<>(LruCache.entriesFor(cacheBytes, g.gtEntries() * 4L));
        this.grains = new LruCache<>(LruCache.entriesFor(Math.min(cacheBytes / 4, 8L << 20), g.grainSize()));
    }

    /** Reads and checks the grain directory. {@code type} is the descriptor's extent type ("" for a monolithic file). */
    static SparseExtent open(ImageFile file, SparseGeometry g, String type, long cacheBytes) throws IOException {
        if (g.compressed() && g.grainSize() > MAX_COMPRESSED_GRAIN) {
            throw ImageException.unsupported(file.path(), "compressed grains of " + g.grainSize() + " bytes are over the "
                    + MAX_COMPRESSED_GRAIN + "-byte limit");
        }
        ByteBuffer b = file.readStruct(g.gdOffset(), g.gdEntries() * 4L, ByteOrder.LITTLE_ENDIAN, "grain directory");
        int[] directory = new int[g.gdEntries()];
        b.asIntBuffer().get(directory);
        return new SparseExtent(file, file.size(), g, type, directory, cacheBytes);
    }

    @Override
    public long size() {
        return g.capacity();
    }

    @Override
    public ImageFile file() {
        return file;
    }

    @Override
    public long grainSize() {
        return g.grainSize();
    }

    @Override
    public boolean compressed() {
        return g.compressed();
    }

    private enum Kind { UNALLOCATED, ZERO, GRAIN }

    private Kind kind(long entry) {
        if (entry == 0) return Kind.UNALLOCATED;
        if (entry == 1 && g.zeroGrains()) return Kind.ZERO;
        return Kind.GRAIN;
    }

    /** The grain table covering {@code pos}, or null where the directory has none. */
    private int[] table(long pos) throws IOException {
        int gdIndex = (int) (pos / g.gtCoverage());
        long sector = Bytes.u32(directory[gdIndex]);
        if (sector == 0) return null;
        String field = "grain table (grain directory entry " + gdIndex + ")";
        return tables.get(sector, s -> {
            ByteBuffer b = file.readStruct(s * 512, g.gtEntries() * 4L, ByteOrder.LITTLE_ENDIAN, field);
            int[] t = new int[g.gtEntries()];
            b.asIntBuffer().get(t);
            return t;
        });
    }

    /** The host offset of a grain, checked to start inside the file. */
    private long grainOffset(long entry, long pos) throws ImageException {
        long host = entry * 512;
        if (host >= fileSize) {
            throw ImageException.corrupt(file.path(), host, "grain table entry for offset " + pos,
                    "grain at " + host + " is past the end of the file (" + fileSize + " bytes)");
        }
        return host;
    }

    @Override
    public LayerRun map(long pos, long maxLength) throws IOException {
        long coverage = g.gtCoverage();
        long limit = Math.min(pos + maxLength, pos - pos % coverage + coverage);
        int[] table = table(pos);
        if (table == null) return LayerRun.unallocated(limit - pos);
        long grain = g.grainSize();
        int index = (int) (pos % coverage / grain);
        long entry = Bytes.u32(table[index]);
        Kind kind = kind(entry);
        long host = kind == Kind.GRAIN ? grainOffset(entry, pos) : -1;
        long end = pos - pos % grain + grain;
        // Extend over following grains of the same table while they continue the run (for data:
        // contiguous in the file; compressed grains are only ever contiguous in the virtual disk).
        while (end < limit) {
            long next = Bytes.u32(table[++index]);
            if (kind(next) != kind) break;
            if (kind == Kind.GRAIN) {
                if (!g.compressed() && next != entry + grain / 512) break;
                grainOffset(next, end);
            }
            entry = next;
            end += grain;
        }
        long length = Math.min(end, limit) - pos;
        return switch (kind) {
            case UNALLOCATED -> LayerRun.unallocated(length);
            case ZERO -> LayerRun.zero(length);
            case GRAIN -> g.compressed() ? LayerRun.encoded(length) : LayerRun.data(length, file, host + pos % grain);
        };
    }

    @Override
    public void readEncoded(ByteBuffer dst, long pos) throws IOException {
        long grain = g.grainSize();
        while (dst.hasRemaining()) {
            int inGrain = (int) (pos % grain);
            int n = (int) Math.min(dst.remaining(), grain - inGrain);
            int[] table = table(pos);
            long entry = table == null ? 0 : Bytes.u32(table[(int) (pos % g.gtCoverage() / grain)]);
            if (kind(entry) != Kind.GRAIN) {
                Bytes.fillZero(dst.slice(dst.position(), n));
            } else {
                long host = grainOffset(entry, pos);
                byte[] data = grains.get(host, this::inflate);
                if (inGrain + n > data.length) {
                    throw ImageException.corrupt(file.path(), host, "compressed grain",
                            "compressed grain inflates to " + data.length + " bytes, too short for offset " + pos);
                }
                dst.put(dst.position(), data, inGrain, n);
            }
            dst.position(dst.position() + n);
            pos += n;
        }
    }

    /** Reads and inflates the compressed grain at {@code host}: at most one grain of output, as qemu. */
    private byte[] inflate(long host) throws IOException {
        ByteBuffer in;
        long dataAt = host;
        if (g.markers()) {
            ByteBuffer marker = file.readStruct(host, GRAIN_MARKER_SIZE, ByteOrder.LITTLE_ENDIAN, "grain marker");
            long size = Bytes.u32(marker.getInt(8));
            if (size == 0 || size > 2 * g.grainSize()) {
                throw ImageException.corrupt(file.path(), host + 8, "grain marker size",
                        "compressed grain size " + size + " is out of range (1.." + 2 * g.grainSize() + ")");
            }
            dataAt = host + GRAIN_MARKER_SIZE;
            in = file.readStruct(dataAt, size, ByteOrder.LITTLE_ENDIAN, "compressed grain");
        } else {
            in = file.readStruct(host, Math.min(2 * g.grainSize(), fileSize - host), ByteOrder.LITTLE_ENDIAN, "compressed grain");
        }
        Inflater inflater = new Inflater();
        try {
            inflater.setInput(in);
            byte[] out = new byte[Checked.toInt(file, host, "grain size", g.grainSize())];
            int produced = 0;
            while (!inflater.finished()) {
                if (produced == out.length) {
                    if (inflater.inflate(new byte[1]) > 0) {
                        throw ImageException.corrupt(file.path(), dataAt, "compressed grain", "compressed grain inflates to more than one grain");
                    }
                    if (!inflater.finished()) throw truncated(dataAt);
                    break;
                }
                int k = inflater.inflate(out, produced, out.length - produced);
                produced += k;
                if (k == 0 && (inflater.needsInput() || inflater.needsDictionary())) throw truncated(dataAt);
            }
            return produced == out.length ? out : java.util.Arrays.copyOf(out, produced);
        } catch (DataFormatException e) {
            throw ImageException.corrupt(file.path(), dataAt, "compressed grain", "compressed grain is not valid zlib data (" + e.getMessage() + ")");
        } finally {
            inflater.end();
        }
    }

    private ImageException truncated(long at) {
        return ImageException.corrupt(file.path(), at, "compressed grain", "compressed grain is truncated");
    }

    @Override
    public Map<String, Object> info() {
        Map<String, Object> m = new LinkedHashMap<>();
        if (g.compressed()) m.put("compressed", true);
        m.put("virtual-size", g.capacity());
        m.put("filename", file.path().toString());
        m.put("cluster-size", g.grainSize());
        m.put("format", type);
        return m;
    }
}
