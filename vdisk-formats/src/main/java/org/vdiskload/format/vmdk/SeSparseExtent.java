package org.vdiskload.format.vmdk;

import org.vdiskload.image.Beneath;
import org.vdiskload.image.LayerRun;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;
import org.vdiskload.io.LruCache;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * An ESXi seSparse extent, read-only as in qemu (vmdk_open_se_sparse, and get_cluster_offset's seSparse
 * branch): a grain directory of u64 entries naming grain tables by number, grain tables of u64 entries
 * whose top nibble is their type — 0 unallocated (the parent's bytes, or zeros), 1 unmapped by the guest and
 * 2 zero (both read as zeros), 3 allocated (a grain number, its 12 low bits stored in bits 48..59) — and 4 KiB
 * grains addressed by number in the grain region. The directory is read and checked at open; each grain table
 * is checked whole when first read, through a bounded cache.
 */
final class SeSparseExtent implements VmdkExtent {
    static final long GRAIN = SeSparseHeader.GRAIN_SECTORS * 512;
    private static final int ENTRIES = SeSparseHeader.GRAIN_TABLE_ENTRIES;
    private static final long TABLE_BYTES = ENTRIES * 8L;
    /** Bytes of disk one grain table covers (16 MiB). */
    private static final long COVERAGE = ENTRIES * GRAIN;
    /** qemu's limit on grain directory entries ("L1 size too big"). */
    static final long MAX_DIRECTORY_ENTRIES = 32L << 20;
    private static final long DIRECTORY_TABLE = 0x1000000000000000L;
    private static final long TYPE_MASK = 0xf000000000000000L;

    private enum Kind { UNALLOCATED, ZERO, GRAIN }

    private final ImageFile file;
    private final SeSparseHeader header;
    private final String type;
    private final long fileSize;
    /** Grain table number per grain directory entry covering the capacity, or -1 where there is none. */
    private final long[] directory;
    private final LruCache<long[]> tables;

    private SeSparseExtent(ImageFile file, SeSparseHeader header, String type, long[] directory, long cacheBytes) throws IOException {
        this.file = file;
        this.header = header;
        this.type = type;
        this.fileSize = file.size();
        this.directory = directory;
        this.tables = new LruCache<>(LruCache.entriesFor(cacheBytes, TABLE_BYTES));
    }

    /** Reads and checks both headers and the grain directory. {@code type} is the descriptor's extent type. */
    static SeSparseExtent open(ImageFile file, String type, long cacheBytes) throws IOException {
        SeSparseHeader h = SeSparseHeader.parse(file.readStruct(0, SeSparseHeader.SIZE, ByteOrder.LITTLE_ENDIAN, "const header"), file);
        long volatileAt = h.volatileHeader().byteOffset();
        SeSparseVolatileHeader.check(file.readStruct(volatileAt, SeSparseVolatileHeader.SIZE, ByteOrder.LITTLE_ENDIAN, "volatile header"),
                file, volatileAt);
        if (h.directoryEntries() > MAX_DIRECTORY_ENTRIES) {
            throw ImageException.corrupt(file.path(), h.grainDirectory().at() + 8, "grain_dir_size", "grain directory of "
                    + h.directoryEntries() + " entries is over qemu's limit of " + MAX_DIRECTORY_ENTRIES);
        }
        long needed = (h.capacity() * 512 + COVERAGE - 1) / COVERAGE;
        if (needed > h.directoryEntries()) {
            throw ImageException.corrupt(file.path(), h.grainDirectory().at() + 8, "grain_dir_size", "grain directory of "
                    + h.directoryEntries() + " entries does not cover the capacity of " + h.capacity() + " sectors (needs " + needed + ")");
        }
        // Only the entries covering the capacity are read: their size is bounded by the file, which must hold them.
        long gdAt = h.grainDirectory().byteOffset();
        ByteBuffer b = file.readStruct(gdAt, needed * 8, ByteOrder.LITTLE_ENDIAN, "grain directory");
        long[] directory = new long[(int) needed];
        for (int i = 0; i < directory.length; i++) {
            directory[i] = tableNumber(file, h, b.getLong(i * 8), gdAt + i * 8L, i);
        }
        return new SeSparseExtent(file, h, type, directory, cacheBytes);
    }

    /** The grain table a directory entry names, -1 for none, checked to lie in the grain table region. */
    private static long tableNumber(ImageFile file, SeSparseHeader h, long entry, long at, int index) throws ImageException {
        if (entry == 0) return -1;
        String field = "grain directory entry " + index;
        if ((entry & 0xffffffff00000000L) != DIRECTORY_TABLE) {
            // qemu: the top nibble 1 marks a table, and its number fits in the low 32 bits
            throw ImageException.corrupt(file.path(), at, field, String.format("grain directory entry 0x%016x is not a grain table reference", entry));
        }
        long number = entry & 0xffffffffL;
        if (number >= h.tableCount()) {
            throw ImageException.corrupt(file.path(), at, field, "grain table " + number + " is outside the grain table region ("
                    + h.tableCount() + " tables)");
        }
        if (h.grainTables().offset() + number * SeSparseHeader.GRAIN_TABLE_SECTORS > 0xffffffffL) {
            throw ImageException.corrupt(file.path(), at, field, "grain table " + number + " lies past sector 2^32, where qemu cannot read it");
        }
        return number;
    }

    @Override
    public long size() {
        return header.capacity() * 512;
    }

    @Override
    public ImageFile file() {
        return file;
    }

    @Override
    public long grainSize() {
        return GRAIN;
    }

    /** The grain table covering {@code pos}, or null where the directory has none. */
    private long[] table(long pos) throws IOException {
        int gdIndex = (int) (pos / COVERAGE);
        long number = directory[gdIndex];
        if (number < 0) return null;
        return tables.get(number, n -> loadTable(n, gdIndex));
    }

    /** Reads grain table {@code number} and checks every entry: its type, and an allocated grain's place. */
    private long[] loadTable(long number, int gdIndex) throws IOException {
        long at = header.grainTables().byteOffset() + number * TABLE_BYTES;
        String field = "grain table " + number + " (grain directory entry " + gdIndex + ")";
        ByteBuffer b = file.readStruct(at, TABLE_BYTES, ByteOrder.LITTLE_ENDIAN, field);
        long[] t = new long[ENTRIES];
        for (int i = 0; i < ENTRIES; i++) {
            long e = b.getLong(i * 8);
            t[i] = e;
            long entryAt = at + i * 8L;
            String what = "grain table " + number + " entry " + i + " (disk offset " + (gdIndex * COVERAGE + i * GRAIN) + ")";
            long kind = e & TYPE_MASK;
            if (kind == 0 && e != 0) {
                throw ImageException.corrupt(file.path(), entryAt, what, String.format("unallocated grain table entry 0x%016x has bits set", e));
            }
            if (kind != 0 && kind != 0x1000000000000000L && kind != 0x2000000000000000L && kind != 0x3000000000000000L) {
                throw ImageException.corrupt(file.path(), entryAt, what, String.format("grain table entry 0x%016x has unknown type %x", e, kind >>> 60));
            }
            if (kind == 0x3000000000000000L) {
                long grain = grainNumber(e);
                if (grain >= header.grainCount()) {
                    throw ImageException.corrupt(file.path(), entryAt, what, "grain " + grain + " is outside the grain region ("
                            + header.grainCount() + " grains)");
                }
                long host = grainOffset(grain);
                if (host >= fileSize) {
                    throw ImageException.corrupt(file.path(), entryAt, what, "grain " + grain + " at " + host
                            + " is past the end of the file (" + fileSize + " bytes)");
                }
            }
        }
        return t;
    }

    /** qemu's decoding: the entry's bits 48..59 are the number's low 12 bits, bits 0..47 the rest. */
    static long grainNumber(long entry) {
        return ((entry & 0x0fff000000000000L) >>> 48) | ((entry & 0x0000ffffffffffffL) << 12);
    }

    private long grainOffset(long grain) {
        return header.grains().byteOffset() + grain * GRAIN;
    }

    private static Kind kind(long entry) {
        long type = entry >>> 60;
        return type == 0 ? Kind.UNALLOCATED : type == 3 ? Kind.GRAIN : Kind.ZERO;
    }

    @Override
    public LayerRun map(long pos, long maxLength) throws IOException {
        long limit = Math.min(pos + maxLength, pos - pos % COVERAGE + COVERAGE);
        long[] table = table(pos);
        if (table == null) return LayerRun.unallocated(limit - pos);
        int index = (int) (pos % COVERAGE / GRAIN);
        long entry = table[index];
        Kind kind = kind(entry);
        long end = pos - pos % GRAIN + GRAIN;
        // Extend over the table's following grains while they continue the run (data: the next grain in the file).
        while (end < limit) {
            long next = table[++index];
            if (kind(next) != kind || kind == Kind.GRAIN && grainNumber(next) != grainNumber(entry) + 1) break;
            entry = next;
            end += GRAIN;
        }
        long length = Math.min(end, limit) - pos;
        return switch (kind) {
            case UNALLOCATED -> LayerRun.unallocated(length);
            case ZERO -> LayerRun.zero(length);
            case GRAIN -> {
                long first = grainOffset(grainNumber(table[(int) (pos % COVERAGE / GRAIN)]));
                yield LayerRun.data(length, file, first + pos % GRAIN);
            }
        };
    }

    @Override
    public void requireWritable() throws ImageException {
        throw ImageException.unsupported(file.path(), "seSparse extents are read-only: writing them is not supported (nor by qemu)");
    }

    @Override
    public void write(ByteBuffer src, long pos, Beneath beneath, long base) throws ImageException {
        requireWritable();
    }

    @Override
    public void writeZeroes(long pos, long length, boolean mayUnmap, Beneath beneath, long base) throws ImageException {
        requireWritable();
    }

    /**
     * Reads every grain table the directory names, which checks each entry (type, grain inside the grain
     * region and the file). Returns the first problem, or null; as qemu's check, which stops at the first and
     * names the sector of the entry it could not use.
     */
    @Override
    public String check(long base) throws IOException {
        for (long pos = 0; pos < size(); pos += COVERAGE) {
            try {
                table(pos);
            } catch (ImageException e) {
                long tableAt = header.grainTables().byteOffset() + directory[(int) (pos / COVERAGE)] * TABLE_BYTES;
                long entry = e.offset() >= tableAt && e.offset() < tableAt + TABLE_BYTES ? (e.offset() - tableAt) / 8 : 0;
                return "could not get cluster_offset for sector " + (base + pos + entry * GRAIN) / 512 + ": " + e.problem();
            }
        }
        return null;
    }

    @Override
    public Map<String, Object> info() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("virtual-size", size());
        m.put("filename", file.path().toString());
        m.put("cluster-size", GRAIN);
        m.put("format", type);
        return m;
    }
}
