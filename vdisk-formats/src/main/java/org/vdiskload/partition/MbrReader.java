package org.vdiskload.partition;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Reads a DOS (MBR) partition table the way Linux's block/partitions/msdos.c numbers it: primary entries
 * 1-4, logical partitions from 5 in extended-boot-record chain order. As in Linux, an entry is used when its
 * sector count is non-zero, and an extended partition appears itself as a 1 KiB partition (two sectors, room
 * for a boot loader, too small for a file system) while its logical partitions follow. Unlike Linux, which
 * clips or drops them silently, partitions past the disk's end and EBR chains that loop or leave their
 * extended partition are errors.
 */
final class MbrReader {
    static final int SECTOR = 512;
    static final int ENTRIES_AT = 446;
    private static final int ENTRY_SIZE = 16;
    /** An extended partition's own device: Linux gives it two sectors. */
    private static final long EXTENDED_DEVICE_LENGTH = 2 * SECTOR;
    /** Linux numbers at most 256 partitions per disk; a longer chain is hostile, not real. */
    private static final int MAX_LOGICALS = 256;

    private final SectorReader disk;
    private final List<Partition> parts = new ArrayList<>();
    private int nextLogical = 5;

    MbrReader(SectorReader disk) {
        this.disk = disk;
    }

    /** One 16-byte entry of an MBR or EBR. */
    record Entry(int boot, int type, long start, long sectors) {
        static Entry at(ByteBuffer sector, int index) {
            int e = ENTRIES_AT + index * ENTRY_SIZE;
            return new Entry(sector.get(e) & 0xff, sector.get(e + 4) & 0xff,
                    Integer.toUnsignedLong(sector.getInt(e + 8)), Integer.toUnsignedLong(sector.getInt(e + 12)));
        }

        boolean extended() {
            return type == 0x05 || type == 0x0f || type == 0x85;
        }

        String typeText() {
            return String.format("%02x", type);
        }
    }

    static boolean hasSignature(ByteBuffer sector) {
        return (sector.get(510) & 0xff) == 0x55 && (sector.get(511) & 0xff) == 0xaa;
    }

    PartitionTable read(ByteBuffer mbr) throws IOException {
        for (int i = 0; i < 4; i++) {
            Entry e = Entry.at(mbr, i);
            if (e.sectors == 0) continue;
            int number = i + 1;
            long start = e.start * SECTOR;
            long length = e.sectors * SECTOR;
            requireOnDisk(start, length, ENTRIES_AT + i * ENTRY_SIZE, "MBR partition " + number);
            if (e.extended()) {
                parts.add(new Partition(number, start, Math.min(length, EXTENDED_DEVICE_LENGTH), e.typeText(), "", e.boot == 0x80));
                readLogicals(e.start, e.sectors);
            } else {
                parts.add(new Partition(number, start, length, e.typeText(), "", e.boot == 0x80));
            }
        }
        parts.sort((a, b) -> Integer.compare(a.number(), b.number()));
        return new PartitionTable("mbr", SECTOR, parts);
    }

    /**
     * Follows the EBR chain of the extended partition at {@code [first, first+size)} (sectors). Each EBR holds
     * data partitions relative to itself and a link to the next EBR relative to the extended partition's start.
     */
    private void readLogicals(long first, long size) throws IOException {
        Set<Long> visited = new HashSet<>();
        long ebr = first;
        long ebrSize = size;
        while (true) {
            long at = ebr * SECTOR;
            ByteBuffer sector = disk.read(at, SECTOR, "EBR at sector " + ebr);
            if (!hasSignature(sector)) return; // an empty extended partition, as Linux reads it
            for (int i = 0; i < 4; i++) {
                Entry e = Entry.at(sector, i);
                if (e.sectors == 0 || e.extended()) continue;
                long start = ebr + e.start;
                // Linux ignores entries 3 and 4 unless they fit: they often hold garbage.
                if (i >= 2 && (e.start + e.sectors > ebrSize || start + e.sectors > first + size)) continue;
                if (nextLogical - 5 == MAX_LOGICALS)
                    throw disk.corrupt(at, "EBR chain", "more than " + MAX_LOGICALS + " logical partitions");
                int number = nextLogical++;
                requireOnDisk(start * SECTOR, e.sectors * SECTOR, at + ENTRIES_AT + i * ENTRY_SIZE, "logical partition " + number);
                parts.add(new Partition(number, start * SECTOR, e.sectors * SECTOR, e.typeText(), "", e.boot == 0x80));
            }
            int linkIndex = -1;
            for (int i = 0; i < 4 && linkIndex < 0; i++) {
                Entry e = Entry.at(sector, i);
                if (e.sectors != 0 && e.extended()) linkIndex = i;
            }
            if (linkIndex < 0) return;
            Entry link = Entry.at(sector, linkIndex);
            long linkAt = at + ENTRIES_AT + linkIndex * ENTRY_SIZE;
            long next = first + link.start;
            if (link.start >= size || link.sectors > size - link.start)
                throw disk.corrupt(linkAt, "EBR link", "the next EBR at sector " + next + " lies outside the extended partition (sectors "
                        + first + ".." + (first + size - 1) + ")");
            visited.add(ebr);
            if (visited.contains(next))
                throw disk.corrupt(linkAt, "EBR link", "the EBR chain loops back to sector " + next);
            if (visited.size() > MAX_LOGICALS)
                throw disk.corrupt(linkAt, "EBR link", "the EBR chain is longer than " + MAX_LOGICALS);
            ebr = next;
            ebrSize = link.sectors;
        }
    }

    private void requireOnDisk(long start, long length, long entryAt, String what) throws IOException {
        if (!disk.inside(start, length))
            throw disk.corrupt(entryAt, what + " start/size", "sectors " + start / SECTOR + ".." + ((start + length) / SECTOR - 1)
                    + " run past the end of the disk (" + disk.size() / SECTOR + " sectors)");
    }
}
