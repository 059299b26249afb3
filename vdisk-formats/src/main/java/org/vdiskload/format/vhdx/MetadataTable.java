package org.vdiskload.format.vhdx;

import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.Bytes;
import org.vdiskload.io.ImageFile;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * The metadata table (MS-VHDX 2.6.1): 64 KiB at the start of the metadata region, listing the metadata
 * items by GUID with their offset (relative to the region) and length.
 */
final class MetadataTable {
    static final int SIZE = 64 << 10;
    static final int MAX_ENTRIES = 2047;
    static final int MAX_ITEM = 1 << 20;
    static final long SIGNATURE = 0x617461646174656dL; // "metadata"

    /**
     * One table entry.
     *
     * @param entryAt  file offset of the entry, for messages
     * @param id       ItemId
     * @param offset   Offset relative to the metadata region
     * @param length   Length
     * @param user     IsUser
     * @param required IsRequired
     */
    record Entry(long entryAt, Guid id, long offset, long length, boolean user, boolean required) {}

    private MetadataTable() {}

    /** Parses the table read from {@code regionOffset}; items are checked to lie inside the region without overlapping. */
    static List<Entry> parse(ImageFile file, long regionOffset, long regionLength, ByteBuffer raw) throws ImageException {
        ByteBuffer b = raw.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        if (b.getLong(0) != SIGNATURE) {
            throw ImageException.corrupt(file.path(), regionOffset, "metadata table signature", "bad metadata table signature");
        }
        int count = b.getShort(10) & 0xffff; // EntryCount
        if (count > MAX_ENTRIES) {
            throw ImageException.corrupt(file.path(), regionOffset + 10, "metadata table EntryCount",
                    "metadata table has " + count + " entries (at most " + MAX_ENTRIES + ")");
        }
        List<Entry> entries = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            int e = 32 + 32 * i;
            long entryAt = regionOffset + e;
            int flags = b.getInt(e + 24);
            Entry entry = new Entry(entryAt,
                    Guid.read(b, e),              // ItemId
                    Bytes.u32(b.getInt(e + 16)),  // Offset
                    Bytes.u32(b.getInt(e + 20)),  // Length
                    (flags & 1) != 0,             // IsUser
                    (flags & 4) != 0);            // IsRequired (bit 2; bit 1 is IsVirtualDisk)
            if (entry.length() == 0) {
                if (entry.offset() != 0) {
                    throw ImageException.corrupt(file.path(), entryAt + 16, "metadata entry Offset",
                            "metadata item " + entry.id() + " is empty but has offset " + entry.offset());
                }
            } else {
                if (entry.offset() < SIZE || entry.length() > MAX_ITEM || entry.offset() + entry.length() > regionLength) {
                    throw ImageException.corrupt(file.path(), entryAt + 16, "metadata entry Offset/Length",
                            "metadata item " + entry.id() + " at " + entry.offset() + "+" + entry.length()
                                    + " is not inside the metadata region (" + regionLength + " bytes, table 64 KiB)");
                }
                for (Entry other : entries) {
                    if (other.length() > 0 && entry.offset() < other.offset() + other.length()
                            && other.offset() < entry.offset() + entry.length()) {
                        throw ImageException.corrupt(file.path(), entryAt + 16, "metadata entry Offset",
                                "metadata items " + other.id() + " and " + entry.id() + " overlap");
                    }
                }
            }
            for (Entry other : entries) {
                if (other.id().equals(entry.id()) && other.user() == entry.user()) {
                    throw ImageException.corrupt(file.path(), entryAt, "metadata entry ItemId",
                            "metadata item " + entry.id() + " is listed twice");
                }
            }
            entries.add(entry);
        }
        return entries;
    }
}
