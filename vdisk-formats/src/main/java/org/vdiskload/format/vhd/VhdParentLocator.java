package org.vdiskload.format.vhd;

import org.vdiskload.io.Checked;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * One parent locator entry of a differencing disk's header: a platform code and where in the file
 * that platform's spelling of the parent's path is stored.
 *
 * @param index        the entry's slot (0-7)
 * @param platformCode four ASCII bytes as an int ("W2ru", "W2ku", "MacX"...)
 * @param dataSpace    space reserved for the data (sectors by the specification, bytes by some writers)
 * @param dataLength   bytes of locator data
 * @param dataOffset   file offset of the locator data
 * @param entryAt      file offset of this entry in the header (for error messages)
 */
public record VhdParentLocator(int index, int platformCode, long dataSpace, long dataLength, long dataOffset,
                               long entryAt) {

    /** Windows relative path, UTF-16LE. */
    public static final int W2RU = code("W2ru");
    /** Windows absolute path, UTF-16LE. */
    public static final int W2KU = code("W2ku");
    /** Mac OS X file:// URL, UTF-8. */
    public static final int MACX = code("MacX");
    /** Longest locator data read: a path of 32767 UTF-16 units, as Windows allows, and then some. */
    static final long MAX_DATA_LENGTH = 65536;

    static int code(String s) {
        return ByteBuffer.wrap(s.getBytes(StandardCharsets.US_ASCII)).order(ByteOrder.BIG_ENDIAN).getInt();
    }

    public String platform() {
        byte[] b = ByteBuffer.allocate(4).order(ByteOrder.BIG_ENDIAN).putInt(platformCode).array();
        return new String(b, StandardCharsets.ISO_8859_1);
    }

    private String field() {
        return "parent locator " + index + " (" + platform() + ")";
    }

    /** Reads the locator's text after checking that its data lies inside the file and is of sane length. */
    public String readText(ImageFile file) throws IOException {
        Checked.require(dataLength > 0 && dataLength <= MAX_DATA_LENGTH, file, entryAt, field(),
                "locator data length " + dataLength + " is not between 1 and " + MAX_DATA_LENGTH);
        ByteBuffer b = file.readStruct(dataOffset, dataLength, ByteOrder.BIG_ENDIAN, field() + " data");
        byte[] raw = new byte[b.remaining()];
        b.get(raw);
        String text = platformCode == MACX
                ? new String(raw, StandardCharsets.UTF_8)
                : new String(raw, 0, raw.length & ~1, StandardCharsets.UTF_16LE);
        int nul = text.indexOf('\0');
        return nul >= 0 ? text.substring(0, nul) : text;
    }
}
