package org.vdiskload.format.vhd;

import com.code_intelligence.jazzer.junit.DictionaryFile;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.vdiskload.testing.fuzz.ImageTarget;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;

/**
 * Coverage-guided fuzzing of the VHD (vpc) reader: footer and its copy, dynamic header, BAT, sector bitmaps,
 * parent locators of differencing disks (beside the image: parent.vhd), geometry, check. Input: see
 * {@link ImageTarget}; resealing recomputes the checksums of both footer copies and of the dynamic header.
 */
class VhdFuzzTarget {
    private static final ImageTarget TARGET = new ImageTarget("vpc", "image.vhd")
            .companionImage("parent.vhd", "vpc", 1 << 20, Map.of())
            .reseal(VhdFuzzTarget::reseal);

    @FuzzTest
    @DictionaryFile(resourcePath = "vhd.dict")
    void image(byte[] input) throws IOException {
        TARGET.run(input);
    }

    private static void reseal(Path image) throws IOException {
        try (FileChannel ch = FileChannel.open(image, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            long size = ch.size();
            if (size < 512) return;
            ByteBuffer footer = seal(ch, size - 512, 512, 64);
            seal(ch, 0, 512, 64);
            long dynamic = footer.getLong(16);
            if (dynamic > 0 && dynamic <= size - 1024) seal(ch, dynamic, 1024, 36);
        }
    }

    /** Recomputes the checksum at {@code checksumAt} of the {@code length} bytes at {@code at}; returns them. */
    private static ByteBuffer seal(FileChannel ch, long at, int length, int checksumAt) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(length);
        ch.read(b, at);
        b.flip();
        b.putInt(checksumAt, (int) VhdFooter.checksum(b, checksumAt));
        ch.write(b.duplicate().clear(), at);
        return b;
    }
}
