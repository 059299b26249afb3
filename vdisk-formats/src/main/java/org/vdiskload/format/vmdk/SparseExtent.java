package org.vdiskload.format.vmdk;

import org.vdiskload.image.Beneath;
import org.vdiskload.image.LayerRun;
import org.vdiskload.image.MapChangeListener;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.Bytes;
import org.vdiskload.io.Checked;
import org.vdiskload.io.ImageFile;
import org.vdiskload.io.LruCache;
import org.vdiskload.io.DirtyTables;
import org.vdiskload.io.WriteBack;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.DataFormatException;
import java.util.zip.Deflater;
import java.util.zip.Inflater;

/**
 * A sparse extent (KDMV or COWD): a grain directory of grain-table sector offsets, grain tables of
 * grain sector offsets. Entry 0 is unallocated; 1 is a zeroed grain where the header enables them;
 * otherwise the grain's sector, holding the data or, compressed, a grain marker and zlib data.
 * Grain tables are read on demand through a bounded cache.
 * A writer appends a grain's data, then changes its grain table entry in memory only: changed tables
 * stay pinned in {@link #tables} until a commit ({@link WriteBack}: at {@link #flush}, when too many wait,
 * or with metadata write-through before each write returns) forces the data and then writes the entries,
 * so a power cut never leaves an entry pointing at data that is not on the disk, and allocating writes do
 * not each pay a flush.
 */
final class SparseExtent implements VmdkExtent {
    /** Compressed grains are inflated into a grain-sized buffer: refuse absurd grain sizes for them. */
    static final long MAX_COMPRESSED_GRAIN = 16L << 20;
    private static final int GRAIN_MARKER_SIZE = 12;
    /** The first output buffer of an inflated grain; it doubles up to the grain size as the data inflates. */
    private static final int INITIAL_INFLATE_BUFFER = 64 << 10;
    /** Grain table entries are 32-bit sector numbers: an extent file cannot grow past this. */
    private static final long MAX_FILE_BYTES = (1L << 32) * 512;

    private final ImageFile file;
    private final SparseGeometry g;
    private final String type;
    private final boolean writable;
    /** Grain directory; entries change only under {@link #lock}, when a grain table is allocated. */
    private final int[] directory;
    /** Redundant grain directory (writers only), or null. */
    private final int[] redundant;
    /** Grain tables by file offset: cached, or pinned with changed entries (tagged with their directory index). */
    private final DirtyTables<int[]> tables;
    private final LruCache<byte[]> grains;
    /**
     * Serializes allocation and table updates. In a writable extent, grain tables are also loaded under
     * it, so a table read from the file cannot be cached after (and so hide) an update made meanwhile.
     */
    private final Object lock = new Object();
    private volatile long fileSize;
    /** Where the next grain goes (the end of the file); under {@link #lock}. */
    private long nextGrain;
    /** streamOptimized: the grain being filled before it is compressed and appended, or -1. */
    private volatile long pendingGrain = -1;
    private byte[] pending;
    /** Written since the last flush (a disk of many extents forces only the files it changed). */
    private volatile boolean dirty;
    /** Pinned grain tables that make a writer commit them at once (about 8 MiB of them). */
    private final int maxUnwritten;
    /** Commits the changed grain table entries; counts each change (under {@link #lock}). */
    private final WriteBack writeBack;
    /** Where the header, directories and tables lie: no grain there is served as data or written. */
    private final SparseMetadata metadata;
    /** Told of every grain whose map changes, in offsets of this extent. */
    private volatile MapChangeListener listener = MapChangeListener.NONE;

    private SparseExtent(ImageFile file, long fileSize, SparseGeometry g, String type, int[] directory, int[] redundant,
                         boolean writable, long cacheBytes) {
        this.file = file;
        this.fileSize = fileSize;
        this.g = g;
        this.type = type;
        this.directory = directory;
        this.redundant = redundant;
        this.writable = writable;
        this.metadata = new SparseMetadata(g, directory, redundant);
        this.tables = new DirtyTables<>(LruCache.entriesFor(cacheBytes, g.gtEntries() * 4L), DirtyTables.LITTLE_ENDIAN_INTS);
        this.writeBack = new WriteBack(file, WriteBack.FormatLock.of(lock), this::unwritten);
        this.grains = new LruCache<>(LruCache.entriesFor(Math.min(cacheBytes / 4, 8L << 20), g.grainSize()));
        this.maxUnwritten = LruCache.entriesFor(8L << 20, g.gtEntries() * 4L);
        // As qemu: new grains start at the end of the file, rounded up to a whole grain.
        this.nextGrain = g.compressed() ? roundUp(fileSize, 512) : roundUp(fileSize, g.grainSize());
    }

    private static long roundUp(long v, long unit) {
        return (v + unit - 1) / unit * unit;
    }

    /**
     * Reads and checks the grain directory (and, for a writer, the redundant one). {@code type} is the
     * descriptor's extent type ("" for a monolithic file).
     */
    static SparseExtent open(ImageFile file, SparseGeometry g, String type, long cacheBytes, boolean writable) throws IOException {
        if (g.compressed() && g.grainSize() > MAX_COMPRESSED_GRAIN) {
            throw ImageException.unsupported(file.path(), "compressed grains of " + g.grainSize() + " bytes are over the "
                    + MAX_COMPRESSED_GRAIN + "-byte limit");
        }
        int[] directory = readDirectory(file, g.gdOffset(), g.gdEntries(), "grain directory");
        int[] redundant = writable && g.rgdOffset() != 0
                ? readDirectory(file, g.rgdOffset(), g.gdEntries(), "redundant grain directory") : null;
        return new SparseExtent(file, file.size(), g, type, directory, redundant, writable, cacheBytes);
    }

    private static int[] readDirectory(ImageFile file, long offset, int entries, String field) throws IOException {
        ByteBuffer b = file.readStruct(offset, entries * 4L, ByteOrder.LITTLE_ENDIAN, field);
        int[] directory = new int[entries];
        b.asIntBuffer().get(directory);
        return directory;
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
        if (!writable) return loadTable(pos);
        synchronized (lock) {
            return loadTable(pos);
        }
    }

    private int[] loadTable(long pos) throws IOException {
        int gdIndex = (int) (pos / g.gtCoverage());
        long sector = Bytes.u32(directory[gdIndex]);
        if (sector == 0) return null;
        String field = "grain table (grain directory entry " + gdIndex + ")";
        return tables.get(sector * 512, at -> {
            ByteBuffer b = file.readStruct(at, g.gtEntries() * 4L, ByteOrder.LITTLE_ENDIAN, field);
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
        long grainEnd = pos - pos % g.grainSize() + g.grainSize();
        if (pendingGrain == pos / g.grainSize()) return LayerRun.encoded(Math.min(grainEnd, limit) - pos);
        if (pendingGrain >= 0 && pendingGrain * g.grainSize() < limit && pendingGrain * g.grainSize() > pos) {
            limit = pendingGrain * g.grainSize();
        }
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
        if (kind == Kind.GRAIN && !g.compressed()) {
            // Never a data run over metadata: the grains before it, or the grain itself as the library's to serve.
            long inGrain = pos % grain; // host is where the run's first grain starts
            for (long at = host; at < host + inGrain + length; at += grain) {
                if (metadata.overlap(at, grain) == null) continue;
                if (at == host) return LayerRun.encoded(Math.min(length, grain - inGrain));
                length = at - host - inGrain;
                break;
            }
        }
        return switch (kind) {
            case UNALLOCATED -> LayerRun.unallocated(length);
            case ZERO -> LayerRun.zero(length);
            case GRAIN -> g.compressed() ? LayerRun.encoded(length)
                    : writable ? LayerRun.dataInPlace(length, file, host + pos % grain)
                    : LayerRun.data(length, file, host + pos % grain);
        };
    }

    @Override
    public void readEncoded(ByteBuffer dst, long pos) throws IOException {
        long grain = g.grainSize();
        while (dst.hasRemaining()) {
            int inGrain = (int) (pos % grain);
            int n = (int) Math.min(dst.remaining(), grain - inGrain);
            if (pendingGrain == pos / grain && readPending(dst.slice(dst.position(), n), inGrain, pos / grain)) {
                dst.position(dst.position() + n);
                pos += n;
                continue;
            }
            int[] table = table(pos);
            long entry = table == null ? 0 : Bytes.u32(table[(int) (pos % g.gtCoverage() / grain)]);
            if (kind(entry) != Kind.GRAIN) {
                Bytes.fillZero(dst.slice(dst.position(), n));
            } else if (!g.compressed()) {
                file.readPadded(dst.slice(dst.position(), n), grainOffset(entry, pos) + inGrain); // a grain on metadata
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

    /**
     * Reads and inflates the compressed grain at {@code host}: at most one grain of output, as qemu. The compressed
     * size is checked before anything is allocated (at most {@link #maxCompressed} and never past the file's end),
     * and the output grows with what the data inflates to, so a header's large grain size allocates nothing by itself.
     */
    private byte[] inflate(long host) throws IOException {
        long grain = g.grainSize();
        long dataAt = host;
        long size;
        if (g.markers()) {
            ByteBuffer marker = file.readStruct(host, GRAIN_MARKER_SIZE, ByteOrder.LITTLE_ENDIAN, "grain marker");
            size = Bytes.u32(marker.getInt(8));
            dataAt = host + GRAIN_MARKER_SIZE;
            long max = Math.min(maxCompressed(grain), fileSize - dataAt);
            if (size == 0 || size > max) {
                throw ImageException.corrupt(file.path(), host + 8, "grain marker size", "compressed grain size " + size
                        + " is out of range (1.." + Math.max(max, 0) + ": a grain of " + grain + " bytes, the file's end)");
            }
        } else {
            size = Math.min(maxCompressed(grain), fileSize - host);
            if (size <= 0) throw truncated(host);
        }
        ByteBuffer in = file.readStruct(dataAt, size, ByteOrder.LITTLE_ENDIAN, "compressed grain");
        Inflater inflater = new Inflater();
        try {
            inflater.setInput(in);
            int grainBytes = Checked.toInt(file, host, "grain size", grain);
            byte[] out = new byte[Math.min(grainBytes, INITIAL_INFLATE_BUFFER)];
            int produced = 0;
            while (!inflater.finished()) {
                if (produced == out.length) {
                    if (out.length < grainBytes) {
                        out = java.util.Arrays.copyOf(out, (int) Math.min(grainBytes, 2L * out.length));
                        continue;
                    }
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

    /**
     * The most compressed bytes a grain of {@code grain} bytes can need: zlib's conservative deflateBound (any
     * deflate settings: fixed-code or stored blocks, whichever is larger) plus its 6-byte wrapper. qemu accepts
     * up to twice the grain; no encoder writes more than this.
     */
    static long maxCompressed(long grain) {
        long fixed = grain + (grain >> 3) + (grain >> 8) + (grain >> 9) + 4;
        long stored = grain + (grain >> 5) + (grain >> 7) + (grain >> 11) + 7;
        return Math.max(fixed, stored) + 6;
    }

    private ImageException truncated(long at) {
        return ImageException.corrupt(file.path(), at, "compressed grain", "compressed grain is truncated");
    }

    // ---- Writing ----

    @Override
    public void requireWritable() throws ImageException {
        if (!writable) throw ImageException.invalid(file.path(), "extent is open read-only");
        if (g.gdAtEnd()) {
            throw ImageException.unsupported(file.path(), "a stream-optimized extent with its grain directory in the footer"
                    + " cannot be written in place; convert it instead");
        }
        if (g.grainSize() > MAX_COMPRESSED_GRAIN) {
            throw ImageException.unsupported(file.path(), "grains of " + g.grainSize() + " bytes are over the "
                    + MAX_COMPRESSED_GRAIN + "-byte limit for writing");
        }
    }

    private long entryAt(int[] table, long pos) {
        return table == null ? 0 : Bytes.u32(table[(int) (pos % g.gtCoverage() / g.grainSize())]);
    }

    @Override
    public void write(ByteBuffer src, long pos, Beneath beneath, long base) throws IOException {
        requireWritable();
        dirty = true;
        long grain = g.grainSize();
        long ticket = 0;
        while (src.hasRemaining()) {
            int n = (int) Math.min(src.remaining(), grain - pos % grain);
            ByteBuffer part = src.slice(src.position(), n);
            if (g.compressed()) writeStream(part, pos, beneath, base);
            else ticket = Math.max(ticket, writeGrain(part, pos, beneath, base));
            commitIfFull();
            src.position(src.position() + n);
            pos += n;
        }
        writeBack.settle(ticket);
    }

    /**
     * Writes inside one grain: in place where it is allocated (without the lock), else into a new grain.
     * Returns the commit ticket of the change it made, or 0.
     */
    private long writeGrain(ByteBuffer part, long pos, Beneath beneath, long base) throws IOException {
        long entry = entryAt(table(pos), pos);
        if (kind(entry) == Kind.GRAIN) {
            file.writeFully(part, writableGrain(entry, pos) + pos % g.grainSize());
            return 0;
        }
        synchronized (lock) {
            entry = entryAt(loadTable(pos), pos);
            Kind k = kind(entry);
            if (k == Kind.GRAIN) {
                file.writeFully(part, writableGrain(entry, pos) + pos % g.grainSize());
                return 0;
            }
            // A zeroed grain is not filled from the backing file: it reads as zeros.
            allocate(part, pos, k == Kind.UNALLOCATED ? beneath : null, base);
            return writeBack.ticket();
        }
    }

    /** {@link #grainOffset}, refusing a grain that lies on the extent's metadata. */
    private long writableGrain(long entry, long pos) throws ImageException {
        long host = grainOffset(entry, pos);
        String overlap = metadata.overlap(host, g.grainSize());
        if (overlap != null) {
            throw ImageException.corrupt(file.path(), host, "grain table entry for offset " + pos,
                    "refusing to write into the grain at " + host + ": it overlaps " + overlap);
        }
        return host;
    }

    /** After each grain changed, outside the lock: what waits in memory stays bounded. */
    private void commitIfFull() throws IOException {
        if (tables.pinnedCount() > maxUnwritten) writeBack.commit(true);
    }

    /**
     * Appends a grain holding {@code part}, the rest of it read from {@code fill} (copy-on-write) or
     * zeros where null, then points the grain tables at it: data first, so a crash leaks a grain at worst.
     */
    private void allocate(ByteBuffer part, long pos, Beneath fill, long base) throws IOException {
        requireTableClear(pos); // before the grain is appended: a refused change writes nothing
        long grain = g.grainSize();
        long grainStart = pos - pos % grain;
        int inGrain = (int) (pos % grain);
        ByteBuffer data = part;
        if (inGrain != 0 || part.remaining() != grain) {
            data = ByteBuffer.allocate((int) grain);
            if (fill != null && fill.exists()) {
                fill.read(data.slice(0, (int) Math.min(grain, g.capacity() - grainStart)), base + grainStart);
            }
            data.put(inGrain, part, part.position(), part.remaining());
        }
        long host = reserve(grain);
        file.writeFully(data, host);
        fileSize = Math.max(fileSize, host + grain);
        setEntry(pos, host / 512);
        grainChanged(pos);
    }

    /** Takes {@code bytes} at the end of the file (under the lock). */
    private long reserve(long bytes) throws ImageException {
        long host = nextGrain;
        if (host + bytes > MAX_FILE_BYTES) {
            throw ImageException.unsupported(file.path(), "extent file is full: grain tables cannot address past "
                    + MAX_FILE_BYTES + " bytes");
        }
        nextGrain = host + roundUp(bytes, 512);
        return host;
    }

    @Override
    public void setMapChangeListener(MapChangeListener l) {
        listener = l;
    }

    /**
     * The grain holding {@code pos} maps anew. Not for a pending stream grain being appended: encoded while
     * it filled, it stays encoded, and is appended when a write elsewhere (or a flush) moves on from it.
     */
    private void grainChanged(long pos) {
        listener.changed(pos - pos % g.grainSize(), g.grainSize());
    }

    /**
     * Sets the grain table entry for {@code pos} in memory (under the lock), allocating the tables first
     * where the directory has none; a commit ({@link #unwritten}) writes it to the table and its redundant copy.
     */
    private void setEntry(long pos, long value) throws IOException {
        int gdIndex = (int) (pos / g.gtCoverage());
        int index = (int) (pos % g.gtCoverage() / g.grainSize());
        requireTableClear(pos);
        int[] table = loadTable(pos);
        if (table == null) table = allocateTable(gdIndex, pos);
        table[index] = (int) value;
        tables.changed(Bytes.u32(directory[gdIndex]) * 512, table, gdIndex, index, index + 1);
        writeBack.changed();
    }

    @Override
    public void setMetadataWriteThrough(boolean on) throws IOException {
        writeBack.setWriteThrough(on);
    }

    /**
     * What waits, for a commit (under the lock): the changed grain table entries, which the commit writes to
     * the tables and their redundant copies once the grains they point to are on the disk.
     */
    private WriteBack.Batch unwritten(boolean all) {
        List<DirtyTables.Copy> copies = tables.take();
        if (copies.isEmpty()) return null;
        return new WriteBack.Batch() {
            @Override
            public void write() throws IOException {
                for (DirtyTables.Copy c : copies) {
                    file.writeFully(c.bytes().duplicate(), c.offset());
                    long copy = redundant == null ? 0 : Bytes.u32(redundant[c.tag()]) * 512;
                    if (copy == 0) continue;
                    long at = copy + (c.offset() - c.tableOffset());
                    Checked.requireInFile(file, at, c.bytes().remaining(), "redundant grain table (grain directory entry " + c.tag() + ")");
                    file.writeFully(c.bytes().duplicate(), at);
                }
            }

            @Override
            public void written() {
                tables.written(copies);
            }
        };
    }

    /** Appends an empty grain table (and its redundant copy), then points the directories at them. */
    private int[] allocateTable(int gdIndex, long pos) throws IOException {
        long bytes = roundUp(g.gtEntries() * 4L, 512);
        long primary = reserve(bytes);
        long copy = redundant != null ? reserve(bytes) : 0;
        long end = (copy != 0 ? copy : primary) + bytes;
        file.writeFully(ByteBuffer.allocate((int) (end - primary)), primary);
        fileSize = Math.max(fileSize, end);
        file.force(false); // the empty tables are on the disk before the directories point at them
        metadata.tableAdded(primary);
        if (copy != 0) metadata.tableAdded(copy);
        writeU32(g.gdOffset() + gdIndex * 4L, primary / 512);
        if (copy != 0) {
            writeU32(g.rgdOffset() + gdIndex * 4L, copy / 512);
            redundant[gdIndex] = (int) (copy / 512);
        }
        directory[gdIndex] = (int) (primary / 512);
        return loadTable(pos);
    }

    /**
     * Refuses a change to the grain table covering {@code pos} where it, or its redundant copy, lies on other
     * metadata (a damaged or hostile directory entry): the commit writing it back would overwrite that. A
     * directory entry of 0 is no table yet; a new one goes past everything.
     */
    private void requireTableClear(long pos) throws ImageException {
        int gdIndex = (int) (pos / g.gtCoverage());
        requireTableClear(directory[gdIndex], g.gdOffset(), gdIndex, "grain directory entry ");
        if (redundant != null) requireTableClear(redundant[gdIndex], g.rgdOffset(), gdIndex, "redundant grain directory entry ");
    }

    private void requireTableClear(int sector, long directoryOffset, int gdIndex, String field) throws ImageException {
        if (sector == 0) return;
        long at = Bytes.u32(sector) * 512;
        String overlap = metadata.tableOverlap(at);
        if (overlap != null) {
            throw ImageException.corrupt(file.path(), directoryOffset + 4L * gdIndex, field + gdIndex,
                    "refusing to change the grain table at " + at + ": it overlaps " + overlap);
        }
    }

    private void writeU32(long at, long value) throws IOException {
        file.writeFully(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(0, (int) value), at);
    }

    @Override
    public void writeZeroes(long pos, long length, boolean mayUnmap, Beneath beneath, long base) throws IOException {
        requireWritable();
        dirty = true;
        long grain = g.grainSize();
        long end = pos + length;
        long ticket = 0;
        while (pos < end) {
            long grainStart = pos - pos % grain;
            long grainEnd = Math.min(grainStart + grain, g.capacity());
            int n = (int) (Math.min(end, grainEnd) - pos);
            boolean whole = pos == grainStart && pos + n == grainEnd;
            synchronized (lock) {
                long before = writeBack.ticket();
                if (g.compressed()) zeroStream(pos, n, beneath);
                else zeroGrain(pos, n, whole, mayUnmap, beneath, base);
                if (writeBack.ticket() != before) ticket = writeBack.ticket();
            }
            commitIfFull();
            pos += n;
        }
        writeBack.settle(ticket);
    }

    /** Zeros inside one grain (under the lock). */
    private void zeroGrain(long pos, int n, boolean whole, boolean mayUnmap, Beneath beneath, long base) throws IOException {
        long entry = entryAt(loadTable(pos), pos);
        Kind k = kind(entry);
        if (whole && g.zeroGrains()) {
            // As qemu: a zeroed-grain entry, even over an allocated grain (which then leaks).
            if (k != Kind.ZERO) {
                setEntry(pos, 1);
                grainChanged(pos);
            }
        } else if (k == Kind.GRAIN && whole && mayUnmap && !beneath.exists()) {
            setEntry(pos, 0); // unallocated reads as zeros without a backing file; the grain leaks
            grainChanged(pos);
        } else if (k == Kind.GRAIN) {
            file.writeFully(ByteBuffer.allocate(n), writableGrain(entry, pos) + pos % g.grainSize());
        } else if (k == Kind.UNALLOCATED && beneath.exists()) {
            allocate(ByteBuffer.allocate(n), pos, whole ? null : beneath, base);
        }
        // Otherwise the grain reads as zeros already (unallocated with no backing file, or a zeroed grain).
    }

    // streamOptimized: compressed grains are appended once; a grain is filled in memory while the writer
    // stays in it, and compressed and appended when it moves on, on flush, or at once (writeCompressed).

    private ImageException appendOnly(long pos) {
        return ImageException.unsupported(file.path(), "stream-optimized images are append-only: the grain at offset "
                + (pos - pos % g.grainSize()) + " is already written");
    }

    private int grainLength(long index) {
        return (int) Math.min(g.grainSize(), g.capacity() - index * g.grainSize());
    }

    private void writeStream(ByteBuffer part, long pos, Beneath beneath, long base) throws IOException {
        long index = pos / g.grainSize();
        synchronized (lock) {
            if (pendingGrain != index) {
                if (kind(entryAt(loadTable(pos), pos)) != Kind.UNALLOCATED) throw appendOnly(pos);
                requireTableClear(pos); // before the grain is taken in: a refused change writes nothing
                commitPending();
                byte[] fresh = new byte[grainLength(index)];
                if (beneath.exists()) beneath.read(ByteBuffer.wrap(fresh), base + index * g.grainSize());
                pending = fresh;
                pendingGrain = index;
                grainChanged(pos); // unallocated until now, it maps as encoded while it fills
            }
            part.get(part.position(), pending, (int) (pos % g.grainSize()), part.remaining());
        }
    }

    private void zeroStream(long pos, int n, Beneath beneath) throws IOException {
        long index = pos / g.grainSize();
        if (pendingGrain == index) {
            int at = (int) (pos % g.grainSize());
            java.util.Arrays.fill(pending, at, at + n, (byte) 0);
        } else if (kind(entryAt(loadTable(pos), pos)) != Kind.UNALLOCATED || beneath.exists()) {
            throw appendOnly(pos);
        }
    }

    /** Copies the pending grain's bytes, if grain {@code index} is still pending. */
    private boolean readPending(ByteBuffer dst, int inGrain, long index) {
        synchronized (lock) {
            if (pendingGrain != index) return false;
            dst.put(dst.position(), pending, inGrain, dst.remaining());
            return true;
        }
    }

    /** Compresses and appends the pending grain. */
    private void commitPending() throws IOException {
        long index = pendingGrain;
        if (index < 0) return;
        appendGrain(index, deflate(pending));
        pendingGrain = -1;
        pending = null;
    }

    /** Appends one compressed grain: marker (LBA, size) and zlib data, then its table entry. */
    private void appendGrain(long index, byte[] compressed) throws IOException {
        ByteBuffer out = ByteBuffer.allocate((int) roundUp(GRAIN_MARKER_SIZE + compressed.length, 512)).order(ByteOrder.LITTLE_ENDIAN);
        out.putLong(0, index * g.grainSize() / 512).putInt(8, compressed.length).put(GRAIN_MARKER_SIZE, compressed);
        long host = reserve(out.capacity());
        file.writeFully(out, host);
        fileSize = Math.max(fileSize, host + out.capacity());
        setEntry(index * g.grainSize(), host / 512);
    }

    private static byte[] deflate(byte[] data) {
        Deflater d = new Deflater();
        try {
            d.setInput(data);
            d.finish();
            byte[] out = new byte[data.length + data.length / 8 + 64];
            int n = 0;
            while (!d.finished()) {
                if (n == out.length) out = java.util.Arrays.copyOf(out, out.length * 2);
                n += d.deflate(out, n, out.length - n);
            }
            return java.util.Arrays.copyOf(out, n);
        } finally {
            d.end();
        }
    }

    /** streamOptimized: compresses {@code unit}, the whole grain at {@code pos} (or the last, shorter one). */
    byte[] compressGrain(ByteBuffer unit, long pos) {
        byte[] grain = new byte[grainLength(pos / g.grainSize())];
        unit.duplicate().get(grain, 0, Math.min(unit.remaining(), grain.length));
        return deflate(grain);
    }

    /** streamOptimized: appends the grain at {@code pos} that {@link #compressGrain} compressed. */
    void appendCompressed(byte[] compressed, long pos) throws IOException {
        requireWritable();
        dirty = true;
        long index = pos / g.grainSize();
        synchronized (lock) {
            if (pendingGrain == index) {
                pendingGrain = -1; // written whole: what was pending is replaced
                pending = null;
            } else if (kind(entryAt(loadTable(pos), pos)) != Kind.UNALLOCATED) {
                throw appendOnly(pos);
            }
            commitPending();
            appendGrain(index, compressed);
            grainChanged(pos);
        }
        commitIfFull();
    }

    @Override
    public void flush() throws IOException {
        if (!dirty) return;
        dirty = false;
        synchronized (lock) {
            commitPending();
        }
        writeBack.commit(true);
        file.force(true);
    }

    /**
     * qemu's check (vmdk_co_check): every allocated grain must start inside the file; qemu stops at the
     * first that does not. Returns that problem, or null. {@code base} is the extent's disk offset.
     */
    @Override
    public String check(long base) throws IOException {
        long grain = g.grainSize();
        for (long pos = 0; pos < g.capacity(); pos += grain) {
            int[] table;
            try {
                table = table(pos);
            } catch (ImageException e) {
                return "could not get cluster_offset for sector " + (base + pos) / 512 + ": " + e.problem();
            }
            if (table == null) {
                pos = pos - pos % g.gtCoverage() + g.gtCoverage() - grain;
                continue;
            }
            long entry = entryAt(table, pos);
            if (kind(entry) == Kind.GRAIN && entry * 512 >= fileSize) {
                return "cluster offset for sector " + (base + pos) / 512 + " points after EOF";
            }
        }
        return null;
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
