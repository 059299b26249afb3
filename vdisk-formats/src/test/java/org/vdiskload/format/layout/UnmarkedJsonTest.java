package org.vdiskload.format.layout;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The raw-JSON probe answers "not JSON" for any bytes: a probe never throws (regression of a VmdkFuzzTarget finding). */
class UnmarkedJsonTest {
    @TempDir
    Path dir;

    @Test
    void binaryThatJacksonDetectsAsUtf32IsNotJson() throws IOException {
        byte[] bytes = {
                ' ', ' ', ' ',                   // blanks: the probe skips them
                '{', 0x00, 0x00, 0x00,           // '{' then three zeros: Jackson detects UTF-32LE
                0x00, 0x00, (byte) 0xff, 0x03,   // code point 0x03ff0000, past U+10FFFF: CharConversionException
                'K', 'D', 'M', 'V',              // the rest of the fuzzer's input, a VMDK header
        };
        assertFalse(probe(bytes));
    }

    @Test
    void aJsonObjectIsJson() throws IOException {
        byte[] bytes = {
                (byte) 0xef, (byte) 0xbb, (byte) 0xbf, // UTF-8 byte-order mark, allowed first
                '\n', '{', '"', 'a', '"', ':', '1', '}',
        };
        assertTrue(probe(bytes));
    }

    private boolean probe(byte[] bytes) throws IOException {
        Path p = Files.write(dir.resolve("probe.bin"), bytes);
        try (ImageFile f = ImageFile.open(p, false)) {
            return UnmarkedJson.in(f, 1 << 20);
        }
    }
}
