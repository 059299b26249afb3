package org.vdiskload.partition;

import com.code_intelligence.jazzer.junit.DictionaryFile;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.testing.fuzz.Finding;
import org.vdiskload.testing.fuzz.Outcomes;
import org.vdiskload.testing.fuzz.Sandbox;
import org.vdiskload.testing.fuzz.SparseFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Coverage-guided fuzzing of the partition-table reader: protective and hybrid MBRs, GPT headers (512- and
 * 4096-byte sectors, primary and backup) and entry arrays, MBR primaries and chains of extended boot records.
 * The input is a flags byte and a {@link SparseFile} holding a raw disk; flag bit 0 recomputes the CRC32s of
 * every GPT header (and its entry array) found at LBA 1 and at the LBA it names as its alternate. A table that
 * is read must have its partitions inside the disk, in number order.
 */
class PartitionTableFuzzTarget {
    private static final Sandbox SANDBOX = Sandbox.create("partition");
    private static final Path DISK = SANDBOX.path("disk.raw");

    @FuzzTest
    @DictionaryFile(resourcePath = "partition.dict")
    void table(byte[] input) throws IOException {
        int flags = input.length > 0 ? input[0] & 0xff : 0;
        SparseFile.write(input, Math.min(1, input.length), DISK);
        if ((flags & 1) != 0) reseal();
        Outcomes.expect(() -> {
            try (DiskImage disk = Images.open(DISK, OpenOptions.DEFAULTS.withFormat("raw"))) {
                PartitionTable t = PartitionTable.read(disk);
                int last = 0;
                for (Partition p : t.partitions()) {
                    if (p.number() <= last) throw new Finding("partition numbers out of order: " + t);
                    if (p.start() < 0 || p.length() <= 0 || p.start() > disk.size() - p.length()) {
                        throw new Finding("partition outside the disk of " + disk.size() + " bytes: " + p);
                    }
                    last = p.number();
                }
            }
        });
    }

    private static void reseal() throws IOException {
        try (FileChannel ch = FileChannel.open(DISK, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            for (int ss : new int[] {512, 4096}) {
                long alternate = seal(ch, ss, 1);
                if (alternate > 1) seal(ch, ss, alternate);
            }
        }
    }

    /** Reseals the header at {@code lba} if it has the signature; returns the LBA it names as its alternate (else -1). */
    private static long seal(FileChannel ch, int sectorSize, long lba) throws IOException {
        if (lba > ch.size() / sectorSize - 1) return -1;
        ByteBuffer h = GptPatch.read(ch, lba * sectorSize, sectorSize);
        if (h.getLong(0) != 0x5452415020494645L) return -1;
        long arrayAt = h.getLong(GptPatch.ENTRIES_LBA) * sectorSize;
        long count = Integer.toUnsignedLong(h.getInt(GptPatch.ENTRY_COUNT)), size = Integer.toUnsignedLong(h.getInt(GptPatch.ENTRY_SIZE));
        long arrayLen = count * size;
        if (arrayAt > 0 && count <= 16384 && size <= 4096 && arrayAt <= ch.size() - arrayLen) {
            h.putInt(GptPatch.ENTRIES_CRC, GptPatch.crc(GptPatch.read(ch, arrayAt, (int) arrayLen), (int) arrayLen));
        }
        ch.write(h.clear(), lba * sectorSize);
        GptPatch.resealHeader(ch, sectorSize, lba);
        return h.getLong(32);
    }
}
