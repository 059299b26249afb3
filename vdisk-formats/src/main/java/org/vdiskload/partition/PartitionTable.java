package org.vdiskload.partition;

import org.vdiskload.image.DiskImage;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * A disk's partition table, read through {@link DiskImage#read} (so from any image format), with the
 * partitions numbered as Linux numbers them: what {@code vdiskload attach} turns into /dev/qcowNpM devices
 * where the kernel cannot.
 */
public final class PartitionTable {
    private final String kind;
    private final int sectorSize;
    private final List<Partition> partitions;

    PartitionTable(String kind, int sectorSize, List<Partition> partitions) {
        this.kind = kind;
        this.sectorSize = sectorSize;
        this.partitions = List.copyOf(partitions);
    }

    /**
     * Reads the disk's table: GPT when the MBR holds a protective (or hybrid) 0xEE entry, else MBR when
     * sector 0 ends in 0x55AA and every boot indicator is 0x00 or 0x80 (Linux's test, which tells a FAT boot
     * sector from an MBR), else kind "none". A table that contradicts itself or the disk's size is an
     * {@link org.vdiskload.image.error.ImageException} of kind CORRUPT naming the disk and the field.
     */
    public static PartitionTable read(DiskImage disk) throws IOException {
        SectorReader reader = new SectorReader(disk);
        if (disk.size() < MbrReader.SECTOR) return none();
        ByteBuffer mbr = reader.read(0, MbrReader.SECTOR, "MBR");
        if (!MbrReader.hasSignature(mbr)) return none();
        boolean protective = false;
        boolean validBootFlags = true;
        for (int i = 0; i < 4; i++) {
            MbrReader.Entry e = MbrReader.Entry.at(mbr, i);
            protective |= e.type() == 0xee;
            validBootFlags &= e.boot() == 0 || e.boot() == 0x80;
        }
        if (protective) return new GptReader(reader).read();
        if (!validBootFlags) return none();
        return new MbrReader(reader).read(mbr);
    }

    private static PartitionTable none() {
        return new PartitionTable("none", MbrReader.SECTOR, List.of());
    }

    /** "gpt", "mbr" or "none". */
    public String kind() {
        return kind;
    }

    /** The sector size the table is laid out in: 512 or 4096 for GPT (where its header was found), 512 otherwise. */
    public int sectorSize() {
        return sectorSize;
    }

    /** The partitions in number order; numbers may have gaps (unused GPT entries, empty MBR slots). */
    public List<Partition> partitions() {
        return partitions;
    }

    @Override
    public String toString() {
        return kind + " (" + sectorSize + "-byte sectors) " + partitions;
    }
}
