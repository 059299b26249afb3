package org.vdiskload.format.vmdk;

import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The const header of an ESXi seSparse extent (qemu's VMDKSESparseConstHeader: VMware publishes no
 * specification, qemu's reader is the reference), little-endian, the file's first sector. Every offset
 * and size is in sectors; each (offset, size) pair is a region of the file.
 *
 * @param capacity        virtual size of the extent
 * @param volatileHeader  the volatile header ({@link SeSparseVolatileHeader}), one sector
 * @param journalHeader   journal header (not read: no journal replay, as qemu)
 * @param journal         journal (not read)
 * @param grainDirectory  grain directory: u64 entries naming grain tables by number
 * @param grainTables     grain tables, {@link #GRAIN_TABLE_SECTORS} each, addressed by number
 * @param freeBitmap      which grains are in use (not read: no space reclamation)
 * @param backmap         grain to grain table entry (not read)
 * @param grains          the grains, {@link #GRAIN_SECTORS} each, addressed by number
 */
record SeSparseHeader(long capacity, Region volatileHeader, Region journalHeader, Region journal, Region grainDirectory,
                      Region grainTables, Region freeBitmap, Region backmap, Region grains) {

    static final int SIZE = 512;
    static final long MAGIC = 0xcafebabeL;
    /** 2.1, the only version ESXi writes and qemu reads. */
    static final long VERSION = 0x0000000200000001L;
    /** qemu accepts 4 KiB grains only. */
    static final long GRAIN_SECTORS = 8;
    /** qemu accepts 64-sector grain tables only: 4096 entries of 8 bytes. */
    static final long GRAIN_TABLE_SECTORS = 64;
    static final int GRAIN_TABLE_ENTRIES = (int) (GRAIN_TABLE_SECTORS * 512 / 8);
    /** The magic as its eight bytes lie in the file (a little-endian u64): what detection looks for. */
    static final byte[] MAGIC_BYTES = {(byte) 0xbe, (byte) 0xba, (byte) 0xfe, (byte) 0xca, 0, 0, 0, 0};
    /** Regions past this many sectors are refused (their byte offsets would overflow). */
    private static final long MAX_SECTORS = Long.MAX_VALUE >> 10;
    private static final String[] REGION_NAMES = {"volatile_header", "journal_header", "journal", "grain_dir",
            "grain_tables", "free_bitmap", "backmap", "grains"};

    /**
     * A region in sectors; {@code at} is where its offset field lies in the header (for messages).
     */
    record Region(String name, long offset, long size, int at) {
        long byteOffset() {
            return offset * 512;
        }

        long byteSize() {
            return size * 512;
        }

        long end() {
            return offset + size;
        }
    }

    /** Parses and validates the const header in {@code b} (512 bytes from the magic on) of {@code f}. */
    static SeSparseHeader parse(ByteBuffer b, ImageFile f) throws ImageException {
        b = b.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        long magic = b.getLong(0);
        if (magic != MAGIC) {
            throw ImageException.corrupt(f.path(), 0, "magic", String.format("not a seSparse extent: bad const header magic 0x%016x", magic));
        }
        long version = b.getLong(8);
        if (version != VERSION) {
            throw new ImageException(ImageException.Kind.UNSUPPORTED, f.path(), 8, "version",
                    String.format("unsupported seSparse version 0x%016x (only 0x%016x, 2.1, is known)", version, VERSION));
        }
        requireValue(b, f, 24, "grain_size", GRAIN_SECTORS);
        requireValue(b, f, 32, "grain_table_size", GRAIN_TABLE_SECTORS);
        requireValue(b, f, 40, "flags", 0);
        for (int i = 0; i < 4; i++) requireValue(b, f, 48 + 8 * i, "reserved" + (i + 1), 0);
        for (int at = 208; at < SIZE; at++) {
            if (b.get(at) != 0) {
                throw new ImageException(ImageException.Kind.UNSUPPORTED, f.path(), at, "padding", "non-zero seSparse const header padding");
            }
        }
        long capacity = b.getLong(16);
        if (capacity < 0 || capacity > MAX_SECTORS) {
            throw ImageException.corrupt(f.path(), 16, "capacity", "capacity of " + Long.toUnsignedString(capacity) + " sectors is too large");
        }
        Region[] r = new Region[REGION_NAMES.length];
        for (int i = 0; i < r.length; i++) {
            int at = 80 + 16 * i;
            long offset = b.getLong(at), size = b.getLong(at + 8);
            if (offset < 0 || offset > MAX_SECTORS || size < 0 || size > MAX_SECTORS) {
                throw ImageException.corrupt(f.path(), at, REGION_NAMES[i] + "_offset", REGION_NAMES[i] + " region at sector "
                        + Long.toUnsignedString(offset) + ", " + Long.toUnsignedString(size) + " sectors long, is out of range");
            }
            r[i] = new Region(REGION_NAMES[i], offset, size, at);
        }
        SeSparseHeader h = new SeSparseHeader(capacity, r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
        h.requireLayout(f);
        return h;
    }

    private static void requireValue(ByteBuffer b, ImageFile f, int at, String field, long want) throws ImageException {
        long v = b.getLong(at);
        if (v != want) {
            throw new ImageException(ImageException.Kind.UNSUPPORTED, f.path(), at, field,
                    "unsupported seSparse " + field + " " + Long.toUnsignedString(v) + " (only " + want + " is known)");
        }
    }

    /**
     * The regions a reader uses are non-empty, and no two regions overlap each other or the const header
     * (ESXi lays them out one after the other): a grain can then never lie on a table, nor a table on the
     * directory.
     */
    private void requireLayout(ImageFile f) throws ImageException {
        requireNonEmpty(f, volatileHeader);
        requireNonEmpty(f, grainDirectory);
        Region[] all = regions();
        for (int i = 0; i < all.length; i++) {
            Region a = all[i];
            if (a.size == 0) continue;
            if (a.offset == 0) {
                throw ImageException.corrupt(f.path(), a.at, a.name + "_offset", a.name + " region overlaps the const header (sector 0)");
            }
            for (int j = 0; j < i; j++) {
                Region c = all[j];
                if (c.size != 0 && a.offset < c.end() && c.offset < a.end()) {
                    throw ImageException.corrupt(f.path(), a.at, a.name + "_offset", a.name + " region (sectors " + a.offset + ".." + a.end()
                            + ") overlaps the " + c.name + " region (sectors " + c.offset + ".." + c.end() + ")");
                }
            }
        }
    }

    private static void requireNonEmpty(ImageFile f, Region r) throws ImageException {
        if (r.size == 0) throw ImageException.corrupt(f.path(), r.at + 8, r.name + "_size", r.name + " region is empty");
    }

    Region[] regions() {
        return new Region[] {volatileHeader, journalHeader, journal, grainDirectory, grainTables, freeBitmap, backmap, grains};
    }

    /** Grain directory entries the header's directory region holds. */
    long directoryEntries() {
        return grainDirectory.byteSize() / 8;
    }

    /** Grain tables the grain table region holds. */
    long tableCount() {
        return grainTables.size / GRAIN_TABLE_SECTORS;
    }

    /** Grains the grain region holds. */
    long grainCount() {
        return grains.size / GRAIN_SECTORS;
    }
}
