package org.vdiskload.format.vhdx;

import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.Bytes;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The region table (MS-VHDX 2.2.3): 64 KiB at 192 KiB, with a copy at 256 KiB, locating the BAT and the
 * metadata region. Unknown regions marked required are refused; unknown optional ones are ignored.
 *
 * @param offset   where this copy of the table is
 * @param bat      the BAT region
 * @param metadata the metadata region
 */
record RegionTable(long offset, Region bat, Region metadata) {
    static final long TABLE1 = 192 << 10;
    static final long TABLE2 = 256 << 10;
    static final int SIZE = 64 << 10;
    static final int MAX_ENTRIES = 2047;
    private static final int SIGNATURE = 0x69676572; // "regi"
    static final Guid BAT = Guid.of("2DC27766-F623-4200-9D64-115E9BFD4A08");
    static final Guid METADATA = Guid.of("8B7CA206-4790-4B9A-B8FE-575F050F886E");

    /** One region: {@code [fileOffset, fileOffset+length)}, both multiples of 1 MiB. */
    record Region(long fileOffset, long length) {
        long end() {
            return fileOffset + length;
        }

        boolean overlaps(long start, long len) {
            return start < end() && fileOffset < start + len;
        }
    }

    /** The table's problem if its signature or checksum is bad, or null. */
    static String invalidReason(ByteBuffer b) {
        if (b.getInt(0) != SIGNATURE) return "bad signature";
        if (Crc.stored(b, 4) != Crc.withFieldZeroed(b, SIZE, 4)) return "bad CRC-32C checksum";
        return null;
    }

    /** Parses and validates a table whose signature and checksum are good. */
    static RegionTable parse(ImageFile file, long at, ByteBuffer raw, long fileSize) throws ImageException {
        ByteBuffer b = raw.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        long count = Bytes.u32(b.getInt(8)); // EntryCount
        if (count > MAX_ENTRIES) {
            throw ImageException.corrupt(file.path(), at + 8, "region table EntryCount",
                    "region table has " + count + " entries (at most " + MAX_ENTRIES + ")");
        }
        Region bat = null;
        Region metadata = null;
        for (int i = 0; i < count; i++) {
            int e = 16 + 32 * i;
            long entryAt = at + e;
            Guid guid = Guid.read(b, e);                    // Guid
            long fileOffset = b.getLong(e + 16);            // FileOffset
            long length = Bytes.u32(b.getInt(e + 24));      // Length
            boolean required = (b.getInt(e + 28) & 1) != 0; // Required (bit 0)
            boolean known = guid.equals(BAT) || guid.equals(METADATA);
            if (!known) {
                if (required) {
                    throw new ImageException(ImageException.Kind.UNSUPPORTED, file.path(), entryAt, "region table entry",
                            "unknown required region " + guid + " (this reader cannot honour it)");
                }
                continue;
            }
            String name = guid.equals(BAT) ? "BAT region" : "metadata region";
            if (fileOffset < VhdxHeader.MB || fileOffset % VhdxHeader.MB != 0) {
                throw ImageException.corrupt(file.path(), entryAt + 16, name + " FileOffset",
                        "offset " + fileOffset + " is not a multiple of 1 MiB past the header area");
            }
            if (length == 0 || length % VhdxHeader.MB != 0) {
                throw ImageException.corrupt(file.path(), entryAt + 24, name + " Length",
                        "length " + length + " is not a non-zero multiple of 1 MiB");
            }
            if (fileOffset > fileSize || length > fileSize - fileOffset) {
                throw ImageException.corrupt(file.path(), entryAt + 16, name,
                        "region " + fileOffset + "+" + length + " extends past the end of the file (" + fileSize + " bytes)");
            }
            Region r = new Region(fileOffset, length);
            if (guid.equals(BAT)) {
                if (bat != null) throw duplicate(file, entryAt, name);
                bat = r;
            } else {
                if (metadata != null) throw duplicate(file, entryAt, name);
                metadata = r;
            }
        }
        if (bat == null) throw ImageException.corrupt(file.path(), at, "region table", "region table has no BAT region");
        if (metadata == null) throw ImageException.corrupt(file.path(), at, "region table", "region table has no metadata region");
        if (bat.overlaps(metadata.fileOffset(), metadata.length())) {
            throw ImageException.corrupt(file.path(), at, "region table", "the BAT and metadata regions overlap");
        }
        return new RegionTable(at, bat, metadata);
    }

    /** A table (64 KiB, checksummed) listing {@code bat} and {@code metadata}, both required. */
    static ByteBuffer encode(Region bat, Region metadata) {
        ByteBuffer b = ByteBuffer.allocate(SIZE).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(0, SIGNATURE);
        b.putInt(8, 2);                    // EntryCount
        int e = 16;
        for (Region r : new Region[] {bat, metadata}) {
            (r == bat ? BAT : METADATA).write(b, e);
            b.putLong(e + 16, r.fileOffset());
            b.putInt(e + 24, (int) r.length());
            b.putInt(e + 28, 1);           // Required
            e += 32;
        }
        b.putInt(4, Crc.withFieldZeroed(b, SIZE, 4));
        return b;
    }

    /**
     * A copy of the valid table {@code raw} with its BAT entry moved to {@code bat} and the checksum renewed;
     * every other entry (unknown optional regions too) is kept as it is.
     */
    static ByteBuffer withBat(ByteBuffer raw, Region bat) {
        ByteBuffer b = ByteBuffer.allocate(SIZE).order(ByteOrder.LITTLE_ENDIAN);
        b.put(raw.duplicate().position(0).limit(SIZE)).clear();
        long count = Math.min(Bytes.u32(b.getInt(8)), MAX_ENTRIES);
        for (int i = 0; i < count; i++) {
            int e = 16 + 32 * i;
            if (Guid.read(b, e).equals(BAT)) {
                b.putLong(e + 16, bat.fileOffset());
                b.putInt(e + 24, (int) bat.length());
            }
        }
        b.putInt(4, Crc.withFieldZeroed(b, SIZE, 4));
        return b;
    }

    private static ImageException duplicate(ImageFile file, long at, String name) {
        return ImageException.corrupt(file.path(), at, "region table entry", "region table lists the " + name + " twice");
    }

    /** Reads the first valid copy of the region table through {@code view} (the log may have updated it). */
    static RegionTable read(ReplayedFile view) throws IOException {
        ImageFile file = view.file();
        ByteBuffer t1 = view.readStruct(TABLE1, SIZE, "region table 1");
        String bad1 = invalidReason(t1);
        if (bad1 == null) return parse(file, TABLE1, t1, view.size());
        ByteBuffer t2 = view.readStruct(TABLE2, SIZE, "region table 2");
        String bad2 = invalidReason(t2);
        if (bad2 == null) return parse(file, TABLE2, t2, view.size());
        throw ImageException.corrupt(file.path(), TABLE1, "region tables",
                "no valid region table (table 1: " + bad1 + ", table 2: " + bad2 + ")");
    }
}
