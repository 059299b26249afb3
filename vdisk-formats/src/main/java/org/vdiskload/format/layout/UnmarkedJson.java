package org.vdiskload.format.layout;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Whether a file parses as a JSON object. A class of its own so that the JSON parser is loaded only for a file
 * that starts like one, not at every start (LayoutFormat is loaded with every format).
 */
final class UnmarkedJson {
    private UnmarkedJson() {}

    /** Whether {@code file}, at most {@code maxBytes} long, is one JSON object (a byte-order mark and blanks allowed first). */
    static boolean in(ImageFile file, long maxBytes) throws IOException {
        long size = file.size();
        if (size == 0 || size > maxBytes) return false;
        ByteBuffer content = ByteBuffer.allocate((int) size);
        file.readFully(content, 0, "JSON");
        byte[] b = content.array();
        int p = b.length >= 3 && (b[0] & 0xFF) == 0xEF && (b[1] & 0xFF) == 0xBB && (b[2] & 0xFF) == 0xBF ? 3 : 0;
        while (p < b.length && Character.isWhitespace(b[p])) p++;
        if (p >= b.length || b[p] != '{') return false;
        try {
            return new ObjectMapper().readTree(b, p, b.length - p).isObject();
        } catch (IOException e) {
            // Parsing bytes in memory: every IOException means "not JSON", JsonProcessingException or not (Jackson's
            // UTF-32 decoder throws CharConversionException for a code point past U+10FFFF). A probe never throws.
            return false;
        }
    }
}
