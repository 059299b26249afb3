package org.vdiskload.partition;

import org.vdiskload.image.error.ImageException;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32;

/**
 * Reads a GUID partition table (UEFI spec, chapter 5.3). The primary header is looked for at LBA 1 for
 * 512- and then 4096-byte sectors. If no primary copy is valid, the backup is used: at the LBA a primary
 * header with a good CRC names, else at the disk's last LBA. (Linux itself only looks at the last LBA with
 * the "gpt" boot option; fdisk, sgdisk and blkid always do, and so do we.)
 */
final class GptReader {
    private static final int[] SECTOR_SIZES = {512, 4096};
    private static final long SIGNATURE = 0x5452415020494645L; // "EFI PART", little-endian
    private static final int MIN_HEADER_SIZE = 92;
    private static final int MIN_ENTRY_SIZE = 128;
    /** Far beyond real use (128 bytes is the norm); keeps a hostile header from steering big reads. */
    private static final int MAX_ENTRY_SIZE = 4096;
    private static final long MAX_ENTRIES = 16384;
    private static final long MAX_ARRAY_BYTES = 4L << 20;

    private final SectorReader disk;

    GptReader(SectorReader disk) {
        this.disk = disk;
    }

    /** One header copy, checked: where it is and what it says about the entry array. */
    private record Header(int sectorSize, long lba, long alternateLba, long firstUsable, long lastUsable,
                          long entriesLba, int entryCount, int entrySize, int entriesCrc) {
        long offset() {
            return lba * sectorSize;
        }
    }

    /** Where a header copy may be: an LBA in sectors of a size. */
    private record Place(int sectorSize, long lba) {}

    PartitionTable read() throws IOException {
        ImageException primaryFailure = null;
        List<Place> backups = new ArrayList<>();
        for (int ss : SECTOR_SIZES) {
            Header h = null;
            try {
                h = header(new Place(ss, 1));
                return table(h);
            } catch (ImageException e) {
                primaryFailure = mostTelling(primaryFailure, e);
                if (h != null && Long.compareUnsigned(h.alternateLba, lastLba(ss)) <= 0) backups.add(new Place(ss, h.alternateLba));
            }
        }
        for (int ss : SECTOR_SIZES) {
            Place last = new Place(ss, lastLba(ss));
            if (last.lba > 1 && !backups.contains(last)) backups.add(last);
        }
        ImageException backupFailure = null;
        for (Place p : backups) {
            try {
                return table(header(p));
            } catch (ImageException e) {
                backupFailure = mostTelling(backupFailure, e);
            }
        }
        String backupProblem = backupFailure == null ? "no backup header to try" : "backup header: " + backupFailure.problem()
                + " (" + backupFailure.field() + " at offset " + backupFailure.offset() + ")";
        throw disk.corrupt(primaryFailure.offset(), primaryFailure.field(), "GPT: " + primaryFailure.problem() + "; " + backupProblem);
    }

    private long lastLba(int sectorSize) {
        return disk.size() / sectorSize - 1;
    }

    /** Of two failures to find a header, the one that found a header (rather than no signature) says more. */
    private static ImageException mostTelling(ImageException kept, ImageException next) {
        return kept == null || isSignatureMissing(kept) && !isSignatureMissing(next) ? next : kept;
    }

    private static boolean isSignatureMissing(ImageException e) {
        return "GPT header signature".equals(e.field());
    }

    /** Reads and checks the header copy at {@code lba}; every field that steers a later read is bounded here. */
    private Header header(Place place) throws IOException {
        int ss = place.sectorSize;
        long lba = place.lba;
        if (lba < 1 || lba > lastLba(ss)) throw disk.corrupt(ImageException.NO_OFFSET, "GPT header LBA", "LBA " + Long.toUnsignedString(lba) + " is outside the disk");
        long at = lba * ss;
        ByteBuffer b = disk.read(at, ss, "GPT header at LBA " + lba);
        if (b.getLong(0) != SIGNATURE) throw disk.corrupt(at, "GPT header signature", "header has no \"EFI PART\" signature");
        int revision = b.getInt(8);
        if (revision >>> 16 != 1) throw disk.corrupt(at + 8, "GPT header revision", "unknown revision 0x" + Integer.toHexString(revision));
        long headerSize = Integer.toUnsignedLong(b.getInt(12));
        if (headerSize < MIN_HEADER_SIZE || headerSize > ss)
            throw disk.corrupt(at + 12, "GPT header size", "header size " + headerSize + " is outside " + MIN_HEADER_SIZE + ".." + ss);
        int storedCrc = b.getInt(16);
        b.putInt(16, 0);
        if (crc(b, 0, (int) headerSize) != storedCrc) throw disk.corrupt(at + 16, "GPT header CRC32", "header checksum mismatch");
        long myLba = b.getLong(24);
        if (myLba != lba) throw disk.corrupt(at + 24, "GPT header my LBA", "says LBA " + Long.toUnsignedString(myLba) + " but lies at LBA " + lba);
        long lastLba = lastLba(ss);
        long firstUsable = b.getLong(40);
        long lastUsable = b.getLong(48);
        if (Long.compareUnsigned(lastUsable, lastLba) > 0)
            throw disk.corrupt(at + 48, "GPT last usable LBA", "LBA " + Long.toUnsignedString(lastUsable) + " is past the disk's last LBA " + lastLba);
        if (Long.compareUnsigned(firstUsable, lastUsable) > 0)
            throw disk.corrupt(at + 40, "GPT first usable LBA", "LBA " + Long.toUnsignedString(firstUsable) + " is past the last usable LBA " + lastUsable);
        long entriesLba = b.getLong(72);
        long count = Integer.toUnsignedLong(b.getInt(80));
        long entrySize = Integer.toUnsignedLong(b.getInt(84));
        if (entrySize < MIN_ENTRY_SIZE || entrySize > MAX_ENTRY_SIZE || entrySize % 8 != 0)
            throw disk.corrupt(at + 84, "GPT partition entry size", "entry size " + entrySize + " is not a multiple of 8 in "
                    + MIN_ENTRY_SIZE + ".." + MAX_ENTRY_SIZE);
        if (count > MAX_ENTRIES || count * entrySize > MAX_ARRAY_BYTES)
            throw disk.corrupt(at + 80, "GPT number of partition entries", count + " entries of " + entrySize + " bytes is more than "
                    + MAX_ENTRIES + " entries or " + MAX_ARRAY_BYTES + " bytes");
        if (Long.compareUnsigned(entriesLba, lastLba) > 0 || !disk.inside(entriesLba * ss, count * entrySize))
            throw disk.corrupt(at + 72, "GPT partition entry LBA", "the entry array at LBA " + Long.toUnsignedString(entriesLba) + " runs past the end of the disk");
        return new Header(ss, lba, b.getLong(32), firstUsable, lastUsable, entriesLba, (int) count, (int) entrySize, b.getInt(88));
    }

    private PartitionTable table(Header h) throws IOException {
        long arrayAt = h.entriesLba * h.sectorSize;
        ByteBuffer a = disk.read(arrayAt, h.entryCount * h.entrySize, "GPT partition entry array");
        if (crc(a, 0, a.limit()) != h.entriesCrc) throw disk.corrupt(h.offset() + 88, "GPT partition entry array CRC32", "entry array checksum mismatch");
        List<Partition> parts = new ArrayList<>();
        for (int i = 0; i < h.entryCount; i++) {
            int e = i * h.entrySize;
            if (a.getLong(e) == 0 && a.getLong(e + 8) == 0) continue; // unused entry; the numbers after it are kept
            long first = a.getLong(e + 32);
            long last = a.getLong(e + 40);
            long at = arrayAt + e;
            int number = i + 1;
            if (Long.compareUnsigned(first, h.firstUsable) < 0)
                throw disk.corrupt(at + 32, "GPT partition " + number + " first LBA", "LBA " + Long.toUnsignedString(first)
                        + " is before the first usable LBA " + h.firstUsable);
            if (Long.compareUnsigned(first, last) > 0)
                throw disk.corrupt(at + 32, "GPT partition " + number + " first LBA", "LBA " + Long.toUnsignedString(first)
                        + " is past the partition's last LBA " + Long.toUnsignedString(last));
            if (Long.compareUnsigned(last, h.lastUsable) > 0)
                throw disk.corrupt(at + 40, "GPT partition " + number + " last LBA", "LBA " + Long.toUnsignedString(last)
                        + " is past the last usable LBA " + h.lastUsable + (h.lastUsable == lastLba(h.sectorSize) ? " (the disk's end)" : ""));
            boolean legacyBootable = (a.getLong(e + 48) & 4) != 0;
            parts.add(new Partition(number, first * h.sectorSize, (last - first + 1) * h.sectorSize, guid(a, e), name(a, e + 56), legacyBootable));
        }
        return new PartitionTable("gpt", h.sectorSize, parts);
    }

    private static int crc(ByteBuffer b, int from, int len) {
        CRC32 c = new CRC32();
        c.update(b.duplicate().position(from).limit(from + len));
        return (int) c.getValue();
    }

    /** The mixed-endian GUID at {@code at} in canonical lower-case text. */
    static String guid(ByteBuffer b, int at) {
        StringBuilder s = new StringBuilder(String.format("%08x-%04x-%04x-", b.getInt(at), b.getShort(at + 4), b.getShort(at + 6)));
        for (int i = 8; i < 16; i++) {
            if (i == 10) s.append('-');
            s.append(String.format("%02x", b.get(at + i)));
        }
        return s.toString();
    }

    /** The 36 UTF-16LE code units at {@code at}, up to the first NUL. */
    private static String name(ByteBuffer b, int at) {
        byte[] raw = new byte[72];
        b.get(at, raw);
        int len = 0;
        while (len < raw.length && (raw[len] != 0 || raw[len + 1] != 0)) len += 2;
        return new String(raw, 0, len, StandardCharsets.UTF_16LE);
    }
}
