package org.vdiskload.format.qcow2;

import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

/**
 * The header extensions between the header and the end of the first cluster: (type, length, data
 * padded to 8 bytes) until an end marker. Unknown extensions are skipped, as the spec asks.
 *
 * @param backingFormat the backing format name, or null if the image records none
 * @param dataFile      the external data file name, or null
 * @param encryption    whether a full-disk-encryption header extension is present
 * @param bitmaps       whether a bitmaps extension is present (bitmaps are not needed for reading)
 * @param bitmapCount   its number of bitmaps
 * @param bitmapDirectoryOffset where its bitmap directory is
 * @param bitmapDirectorySize   the directory's length in bytes
 * @param incompatibleNames the feature name table's names of incompatible feature bits, by bit
 */
record HeaderExtensions(String backingFormat, String dataFile, boolean encryption, boolean bitmaps,
                        int bitmapCount, long bitmapDirectoryOffset, long bitmapDirectorySize,
                        Map<Integer, String> incompatibleNames) {

    static final int END = 0;
    static final int BACKING_FORMAT = 0xe2792aca;
    static final int FEATURE_TABLE = 0x6803f857;
    static final int BITMAPS = 0x23852875;
    static final int ENCRYPTION = 0x0537be77;
    static final int DATA_FILE = 0x44415441;

    /** qemu keeps the backing format in a 16-byte buffer, so longer names are refused. */
    static final int MAX_BACKING_FORMAT = 15;
    static final int FEATURE_ENTRY_BYTES = 48;
    static final int BITMAPS_BYTES = 24;
    static final int ENCRYPTION_BYTES = 16;

    static HeaderExtensions read(ImageFile file, Qcow2Header h) throws IOException {
        long start = h.extensionsStart();
        long end = Math.min(h.clusterSize(), file.size());
        // With the backing file name in the first cluster, the extensions end where it starts.
        if (h.backingFileOffset() != 0) end = Math.min(end, h.backingFileOffset());
        if (end <= start) return new HeaderExtensions(null, null, false, false, 0, 0, 0, Map.of());
        ByteBuffer b = file.readStruct(start, end - start, ByteOrder.BIG_ENDIAN, "header extensions");
        String backingFormat = null, dataFile = null;
        boolean encryption = false, bitmaps = false;
        int bitmapCount = 0;
        long bitmapDirectoryOffset = 0, bitmapDirectorySize = 0;
        Map<Integer, String> names = new HashMap<>();
        while (b.remaining() >= 8) {
            long at = start + b.position();
            int type = b.getInt();
            long length = Integer.toUnsignedLong(b.getInt());
            if (type == END) break;
            long padded = (length + 7) & ~7L;
            if (padded > b.remaining()) {
                throw ImageException.corrupt(file.path(), at, "header extension 0x" + Integer.toHexString(type),
                        "extension of " + length + " bytes runs past the header area");
            }
            ByteBuffer data = b.slice(b.position(), (int) length).order(ByteOrder.BIG_ENDIAN);
            b.position(b.position() + (int) padded);
            switch (type) {
                case BACKING_FORMAT -> {
                    if (length > MAX_BACKING_FORMAT) {
                        throw ImageException.corrupt(file.path(), at, "backing format extension",
                                "backing format name of " + length + " bytes is too long");
                    }
                    backingFormat = string(data);
                }
                case FEATURE_TABLE -> {
                    if (length % FEATURE_ENTRY_BYTES != 0) {
                        throw ImageException.corrupt(file.path(), at, "feature name table extension",
                                "length " + length + " is not a multiple of " + FEATURE_ENTRY_BYTES);
                    }
                    while (data.hasRemaining()) {
                        int kind = Byte.toUnsignedInt(data.get());
                        int bit = Byte.toUnsignedInt(data.get());
                        String name = string(data.slice(data.position(), FEATURE_ENTRY_BYTES - 2));
                        data.position(data.position() + FEATURE_ENTRY_BYTES - 2);
                        if (kind == 0 && bit < 64) names.put(bit, name);
                    }
                }
                case BITMAPS -> {
                    if (length != BITMAPS_BYTES) {
                        throw ImageException.corrupt(file.path(), at, "bitmaps extension", "length " + length + " is not " + BITMAPS_BYTES);
                    }
                    bitmaps = true;
                    bitmapCount = data.getInt(0);
                    bitmapDirectorySize = data.getLong(8);
                    bitmapDirectoryOffset = data.getLong(16);
                }
                case ENCRYPTION -> {
                    if (length != ENCRYPTION_BYTES) {
                        throw ImageException.corrupt(file.path(), at, "encryption extension", "length " + length + " is not " + ENCRYPTION_BYTES);
                    }
                    encryption = true;
                }
                case DATA_FILE -> dataFile = string(data);
                default -> { } // unknown extensions are ignored
            }
        }
        return new HeaderExtensions(backingFormat, dataFile, encryption, bitmaps, bitmapCount, bitmapDirectoryOffset,
                bitmapDirectorySize, Map.copyOf(names));
    }

    private static String string(ByteBuffer data) {
        byte[] bytes = new byte[data.remaining()];
        data.get(bytes);
        int n = 0;
        while (n < bytes.length && bytes[n] != 0) n++;
        return new String(bytes, 0, n, StandardCharsets.UTF_8);
    }
}
