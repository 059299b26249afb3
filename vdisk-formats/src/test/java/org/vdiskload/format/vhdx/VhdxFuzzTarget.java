package org.vdiskload.format.vhdx;

import com.code_intelligence.jazzer.junit.DictionaryFile;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.vdiskload.testing.fuzz.ImageTarget;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;

/**
 * Coverage-guided fuzzing of the VHDX reader: file identifier, both headers, region tables, metadata (file
 * parameters, sizes, parent locators; beside the image: parent.vhdx), BAT and sector bitmaps, the log and its
 * replay, check. Input: see {@link ImageTarget}; resealing recomputes the CRC-32C of both headers, both region
 * tables and every log entry the current header's log region holds.
 */
class VhdxFuzzTarget {
    private static final ImageTarget TARGET = new ImageTarget("vhdx", "image.vhdx")
            .companionImage("parent.vhdx", "vhdx", 1 << 20, Map.of())
            .reseal(VhdxFuzzTarget::reseal);

    private static final int LOG_ENTRY_SIGNATURE = 0x65676f6c; // "loge"

    @FuzzTest
    @DictionaryFile(resourcePath = "vhdx.dict")
    void image(byte[] input) throws IOException {
        TARGET.run(input);
    }

    private static void reseal(Path image) throws IOException {
        try (FileChannel ch = FileChannel.open(image, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            for (long header : new long[] {64 << 10, 128 << 10}) {
                ByteBuffer h = seal(ch, header, 4096);
                if (h == null) continue;
                long logLength = Integer.toUnsignedLong(h.getInt(68)), logOffset = h.getLong(72);
                if (logOffset <= 0 || logLength > 16 << 20 || logOffset > ch.size()) continue;
                for (long at = logOffset; at + 4096 <= Math.min(logOffset + logLength, ch.size()); at += 4096) {
                    ByteBuffer head = read(ch, at, 12);
                    long length = Integer.toUnsignedLong(head.getInt(8));
                    if (head.getInt(0) == LOG_ENTRY_SIGNATURE && length >= 4096 && length % 4096 == 0
                            && at + length <= logOffset + logLength) {
                        seal(ch, at, (int) length);
                    }
                }
            }
            seal(ch, 192 << 10, 64 << 10);
            seal(ch, 256 << 10, 64 << 10);
        }
    }

    /** Recomputes the CRC-32C at offset 4 of the {@code length} bytes at {@code at}; returns them (null past the end). */
    private static ByteBuffer seal(FileChannel ch, long at, int length) throws IOException {
        if (at + length > ch.size()) return null;
        ByteBuffer b = read(ch, at, length);
        b.putInt(4, Crc.withFieldZeroed(b, length, 4));
        ch.write(b.duplicate().clear(), at);
        return b;
    }

    private static ByteBuffer read(FileChannel ch, long at, int length) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(length).order(ByteOrder.LITTLE_ENDIAN);
        ch.read(b, at);
        return b.clear();
    }
}
