package org.vdiskload.format.vhdx;

import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.Bytes;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32C;

/**
 * The VHDX metadata log (MS-VHDX 2.3): a circular buffer of 4 KiB sectors holding entries, each a header,
 * descriptors (data sectors to write, ranges to zero) and the data sectors. When the current header has a
 * non-zero LogGuid, the active sequence (consecutive valid entries with increasing sequence numbers, from
 * the head entry's Tail to the head) must be replayed before the file is read. This reader replays it into
 * a {@link LogOverlay} and leaves the file untouched.
 */
final class VhdxLog {
    static final int SECTOR = 4096;
    /** Larger logs are refused: replay holds the log in memory (Hyper-V and qemu write 1 MiB logs). */
    static final long MAX_LENGTH = 32L << 20;
    static final int ENTRY_SIGNATURE = 0x65676f6c; // "loge"
    private static final int ZERO_SIGNATURE = 0x6f72657a;  // "zero"
    static final int DESC_SIGNATURE = 0x63736564;  // "desc"
    static final int DATA_SIGNATURE = 0x61746164;  // "data"
    /** The log writes no lower than here: the file identifier and the headers are never logged. */
    private static final long FIRST_LOGGABLE = RegionTable.TABLE1;

    /** One replayable write: {@code data} (4 KiB) at {@code fileOffset}, or {@code length} zeros when data is null. */
    record Write(long fileOffset, long length, byte[] data) {}

    /** A valid log entry at sector {@code sector} of the log. */
    record Entry(int sector, int sectors, long tail, long sequence, long flushedFileOffset, long lastFileOffset,
                 List<Write> writes) {}

    /**
     * The outcome of reading the log.
     *
     * @param overlay  the replayed writes (empty when nothing needed replay)
     * @param size     the file's size after replay
     * @param entries  how many entries were replayed (0: the log was clean)
     */
    record Replay(LogOverlay overlay, long size, int entries) {
        boolean dirty() {
            return entries > 0;
        }
    }

    private final ImageFile file;
    private final VhdxHeader header;
    private final ByteBuffer log;
    private final int sectors;
    private long crcBudget;

    private VhdxLog(ImageFile file, VhdxHeader header, ByteBuffer log) {
        this.file = file;
        this.header = header;
        this.log = log;
        this.sectors = log.capacity() / SECTOR;
        // Valid entries never overlap, so a sane log costs at most one pass of checksums; a hostile one could
        // make every sector look like a long entry.
        this.crcBudget = 4L * log.capacity();
    }

    /** Finds and replays the active sequence of the current header's log. */
    static Replay replay(ImageFile file, VhdxHeader header) throws IOException {
        long fileSize = file.size();
        if (header.logGuid().isZero() || header.logLength() == 0) return new Replay(LogOverlay.EMPTY, fileSize, 0);
        if (header.logLength() > MAX_LENGTH) {
            throw new ImageException(ImageException.Kind.UNSUPPORTED, file.path(), header.offset() + 68, "header LogLength",
                    "the log needs replay but is " + header.logLength() + " bytes, more than the " + MAX_LENGTH + " this reader replays");
        }
        ByteBuffer raw = file.readStruct(header.logOffset(), header.logLength(), ByteOrder.LITTLE_ENDIAN, "log");
        List<Entry> active = new VhdxLog(file, header, raw).activeSequence();
        if (active.isEmpty()) return new Replay(LogOverlay.EMPTY, fileSize, 0);
        LogOverlay overlay = new LogOverlay();
        long size = fileSize;
        for (Entry e : active) {
            if (Long.compareUnsigned(e.flushedFileOffset(), fileSize) > 0) {
                throw ImageException.corrupt(file.path(), header.logOffset() + (long) e.sector() * SECTOR, "log entry FlushedFileOffset",
                        "the file is " + fileSize + " bytes but its log says at least " + e.flushedFileOffset() + " were flushed: truncated");
            }
            for (Write w : e.writes()) overlay.put(w.fileOffset(), w.length(), w.data());
            if (e.lastFileOffset() > size) size = e.lastFileOffset();
        }
        return new Replay(overlay, size, active.size());
    }

    /** The active sequence, tail first; empty when the log holds no valid sequence. */
    private List<Entry> activeSequence() throws ImageException {
        Entry[] entries = new Entry[sectors];
        boolean[] tried = new boolean[sectors];
        boolean[] inChain = new boolean[sectors];
        List<Entry> best = List.of();
        for (int start = 0; start < sectors; start++) {
            if (inChain[start]) continue; // a suffix of a sequence already found, with the same head
            List<Entry> chain = new ArrayList<>();
            int s = start;
            while (chain.size() < sectors) {
                if (!tried[s]) {
                    tried[s] = true;
                    entries[s] = parseEntry(s);
                }
                Entry e = entries[s];
                if (e == null) break;
                if (!chain.isEmpty() && e.sequence() != chain.get(chain.size() - 1).sequence() + 1) break;
                if (!chain.isEmpty()) inChain[s] = true;
                chain.add(e);
                s = (s + e.sectors()) % sectors;
                if (s == start) break;
            }
            if (chain.isEmpty()) continue;
            Entry head = chain.get(chain.size() - 1);
            int tailAt = -1;
            for (int i = 0; i < chain.size(); i++) if ((long) chain.get(i).sector() * SECTOR == head.tail()) tailAt = i;
            if (tailAt < 0) continue; // the head's tail is not in this sequence: not a complete sequence
            if (best.isEmpty() || Long.compareUnsigned(head.sequence(), best.get(best.size() - 1).sequence()) > 0) {
                best = List.copyOf(chain.subList(tailAt, chain.size()));
            }
        }
        return best;
    }

    private int byteAt(int sector, int offset) {
        return (int) (((long) sector * SECTOR + offset) % log.capacity());
    }

    /** The entry at {@code sector}, or null if none valid starts there (MS-VHDX 2.3.1). */
    private Entry parseEntry(int sector) throws ImageException {
        int at = sector * SECTOR;
        if (log.getInt(at) != ENTRY_SIGNATURE) return null;
        long length = Bytes.u32(log.getInt(at + 8));    // EntryLength
        long tail = Bytes.u32(log.getInt(at + 12));     // Tail
        long sequence = log.getLong(at + 16);           // SequenceNumber
        long descriptors = Bytes.u32(log.getInt(at + 24)); // DescriptorCount
        Guid guid = Guid.read(log, at + 32);            // LogGuid
        long flushed = log.getLong(at + 48);            // FlushedFileOffset
        long last = log.getLong(at + 56);               // LastFileOffset
        if (length == 0 || length % SECTOR != 0 || length > log.capacity()) return null;
        if (tail % SECTOR != 0 || tail >= log.capacity() || sequence == 0 || !guid.equals(header.logGuid())) return null;
        long descriptorSectors = (64 + 32 * descriptors + SECTOR - 1) / SECTOR;
        int entrySectors = (int) (length / SECTOR);
        if (descriptorSectors > entrySectors) return null;
        if (!checksumOk(at, (int) length)) return null;
        List<Write> writes = new ArrayList<>();
        int dataSector = (int) descriptorSectors;
        for (int i = 0; i < descriptors; i++) {
            int d = byteAt(sector, 64 + 32 * i);
            int signature = log.getInt(d);
            long fileOffset = log.getLong(d + 16);
            if (log.getLong(d + 24) != sequence || fileOffset % SECTOR != 0 || fileOffset < FIRST_LOGGABLE) return null;
            if (signature == ZERO_SIGNATURE) {
                long zeroLength = log.getLong(d + 8);
                if (zeroLength < 0 || zeroLength % SECTOR != 0 || fileOffset > Long.MAX_VALUE - zeroLength) return null;
                if (zeroLength > 0) writes.add(new Write(fileOffset, zeroLength, null));
            } else if (signature == DESC_SIGNATURE) {
                if (dataSector >= entrySectors || fileOffset > Long.MAX_VALUE - SECTOR) return null;
                int ds = byteAt(sector, dataSector * SECTOR);
                dataSector++;
                long dataSequence = (Bytes.u32(log.getInt(ds + 4)) << 32) | Bytes.u32(log.getInt(ds + 4092));
                if (log.getInt(ds) != DATA_SIGNATURE || dataSequence != sequence) return null;
                byte[] data = new byte[SECTOR];
                log.get(d + 8, data, 0, 8);           // LeadingBytes from the descriptor
                log.get(ds + 8, data, 8, 4084);       // the sector's data
                log.get(d + 4, data, 4092, 4);        // TrailingBytes from the descriptor
                writes.add(new Write(fileOffset, SECTOR, data));
            } else {
                return null;
            }
        }
        return new Entry(sector, entrySectors, tail, sequence, flushed, last, List.copyOf(writes));
    }

    /** Checks the entry's CRC-32C over its whole length (wrapping around the log), checksum field as zero. */
    private boolean checksumOk(int at, int length) throws ImageException {
        crcBudget -= length;
        if (crcBudget < 0) {
            throw ImageException.corrupt(file.path(), header.logOffset(), "log",
                    "the log holds too many overlapping entry headers to search");
        }
        CRC32C crc = new CRC32C();
        crc.update(log.duplicate().position(at).limit(at + 4));
        crc.update(new byte[4]);
        int first = Math.min(length, log.capacity() - at);
        crc.update(log.duplicate().position(at + 8).limit(at + first));
        if (first < length) crc.update(log.duplicate().position(0).limit(length - first));
        return (int) crc.getValue() == log.getInt(at + 4);
    }
}
