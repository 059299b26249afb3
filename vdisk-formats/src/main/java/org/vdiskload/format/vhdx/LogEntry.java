package org.vdiskload.format.vhdx;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/**
 * Builds one log entry (MS-VHDX 2.3.1): a header, one data descriptor per 4 KiB sector to write, then the
 * data sectors. The writer puts every entry alone at the start of the log (its own tail), because it
 * applies each entry and empties the log before the next one, as qemu does.
 */
final class LogEntry {
    static final int HEADER = 64;
    static final int DESCRIPTOR = 32;

    /** A 4 KiB sector of metadata to write at {@code fileOffset} (a multiple of 4 KiB). */
    record Sector(long fileOffset, byte[] data) {
        Sector {
            if (data.length != VhdxLog.SECTOR || fileOffset % VhdxLog.SECTOR != 0) {
                throw new IllegalArgumentException("a log sector is 4 KiB at a 4 KiB boundary: " + fileOffset);
            }
        }
    }

    private LogEntry() {}

    /** Bytes the entry for {@code count} sectors takes in the log. */
    static long length(int count) {
        long descriptorSectors = (HEADER + (long) DESCRIPTOR * count + VhdxLog.SECTOR - 1) / VhdxLog.SECTOR;
        return (descriptorSectors + count) * VhdxLog.SECTOR;
    }

    /**
     * The entry writing {@code sectors}, with sequence number {@code sequence} under {@code logGuid};
     * {@code fileSize} is both FlushedFileOffset and LastFileOffset (the file is flushed before the entry).
     */
    static ByteBuffer encode(Guid logGuid, long sequence, long fileSize, List<Sector> sectors) {
        int length = Math.toIntExact(length(sectors.size()));
        int descriptorBytes = length - sectors.size() * VhdxLog.SECTOR;
        ByteBuffer b = ByteBuffer.allocate(length).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(0, VhdxLog.ENTRY_SIGNATURE);
        b.putInt(8, length);                 // EntryLength
        b.putInt(12, 0);                     // Tail: this entry, at the start of the log
        b.putLong(16, sequence);             // SequenceNumber
        b.putInt(24, sectors.size());        // DescriptorCount
        logGuid.write(b, 32);                // LogGuid
        b.putLong(48, fileSize);             // FlushedFileOffset
        b.putLong(56, fileSize);             // LastFileOffset
        for (int i = 0; i < sectors.size(); i++) {
            Sector s = sectors.get(i);
            ByteBuffer data = ByteBuffer.wrap(s.data()).order(ByteOrder.LITTLE_ENDIAN);
            int d = HEADER + DESCRIPTOR * i;
            b.putInt(d, VhdxLog.DESC_SIGNATURE);
            b.putInt(d + 4, data.getInt(4092));  // TrailingBytes: the sector's last 4 bytes
            b.putLong(d + 8, data.getLong(0));   // LeadingBytes: its first 8
            b.putLong(d + 16, s.fileOffset());   // FileOffset
            b.putLong(d + 24, sequence);         // SequenceNumber
            int at = descriptorBytes + i * VhdxLog.SECTOR;
            b.putInt(at, VhdxLog.DATA_SIGNATURE);
            b.putInt(at + 4, (int) (sequence >>> 32));  // SequenceHigh
            b.put(at + 8, s.data(), 8, 4084);           // the sector without its leading and trailing bytes
            b.putInt(at + 4092, (int) sequence);        // SequenceLow
        }
        b.putInt(4, Crc.withFieldZeroed(b, length, 4));
        return b;
    }
}
