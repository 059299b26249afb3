package org.vdiskload.partition;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.function.Consumer;
import java.util.zip.CRC32;

/**
 * Edits one GPT header copy of a raw disk file and its entry array, then rewrites both CRC32s, so a test
 * can make a table that is well-formed but says something wrong. Offsets follow the UEFI spec (table 5-5, 5-6).
 */
final class GptPatch {
    static final int ENTRIES_LBA = 72, ENTRY_COUNT = 80, ENTRY_SIZE = 84, ENTRIES_CRC = 88, HEADER_CRC = 16, HEADER_SIZE = 12;
    /** In an entry: first and last LBA. */
    static final int FIRST_LBA = 32, LAST_LBA = 40;

    private GptPatch() {}

    /** Edits the header at {@code headerLba} and, before it, its entry array (as currently described); then fixes the CRCs. */
    static void patch(Path raw, int sectorSize, long headerLba, Consumer<ByteBuffer> entries, Consumer<ByteBuffer> header) throws IOException {
        try (FileChannel ch = FileChannel.open(raw, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer h = read(ch, headerLba * sectorSize, sectorSize);
            long arrayAt = h.getLong(ENTRIES_LBA) * sectorSize;
            int arrayLen = h.getInt(ENTRY_COUNT) * h.getInt(ENTRY_SIZE);
            ByteBuffer a = read(ch, arrayAt, arrayLen);
            entries.accept(a);
            ch.write(a.clear(), arrayAt);
            h.putInt(ENTRIES_CRC, crc(a, arrayLen));
            header.accept(h);
            h.putInt(HEADER_CRC, 0);
            h.putInt(HEADER_CRC, crc(h, h.getInt(HEADER_SIZE)));
            ch.write(h.clear(), headerLba * sectorSize);
        }
    }

    /** Rewrites only the header CRC of the header at {@code headerLba}, whatever the header says. */
    static void resealHeader(FileChannel ch, int sectorSize, long headerLba) throws IOException {
        ByteBuffer h = read(ch, headerLba * sectorSize, sectorSize);
        int size = Math.max(0, Math.min(sectorSize, h.getInt(HEADER_SIZE)));
        h.putInt(HEADER_CRC, 0);
        h.putInt(HEADER_CRC, crc(h, size));
        ch.write(h.clear(), headerLba * sectorSize);
    }

    static ByteBuffer read(FileChannel ch, long pos, int len) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(len).order(ByteOrder.LITTLE_ENDIAN);
        ch.read(b, pos);
        return b.clear();
    }

    static int crc(ByteBuffer b, int len) {
        CRC32 c = new CRC32();
        c.update(b.duplicate().clear().limit(len));
        return (int) c.getValue();
    }
}
