package org.vdiskload.format.vhdx;

import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.Bytes;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * One of the two 4 KiB VHDX headers (MS-VHDX 2.2.2), at 64 KiB and 128 KiB. A header is valid when its
 * signature and CRC-32C check out; the current one is the valid one with the higher sequence number.
 *
 * @param offset        where the header is in the file
 * @param sequence      SequenceNumber (compared unsigned)
 * @param fileWriteGuid FileWriteGuid
 * @param dataWriteGuid DataWriteGuid: a differencing child's parent_linkage names it
 * @param logGuid       LogGuid: zero when the log is empty
 * @param logVersion    LogVersion, 0
 * @param version       Version, 1
 * @param logLength     LogLength in bytes, a multiple of 1 MiB
 * @param logOffset     LogOffset in bytes, a multiple of 1 MiB
 */
record VhdxHeader(long offset, long sequence, Guid fileWriteGuid, Guid dataWriteGuid, Guid logGuid,
                  int logVersion, int version, long logLength, long logOffset) {
    static final long HEADER1 = 64 << 10;
    static final long HEADER2 = 128 << 10;
    static final int SIZE = 4096;
    static final byte[] FILE_SIGNATURE = "vhdxfile".getBytes(StandardCharsets.US_ASCII);
    private static final int SIGNATURE = 0x64616568; // "head"
    static final long MB = 1 << 20;

    /** The header's problem if it is not valid (bad signature or checksum), or null. */
    static String invalidReason(ByteBuffer b) {
        if (b.getInt(0) != SIGNATURE) return "bad signature";
        if (Crc.stored(b, 4) != Crc.withFieldZeroed(b, SIZE, 4)) return "bad CRC-32C checksum";
        return null;
    }

    /** Parses a header already known to be valid, then checks the fields the reader depends on. */
    static VhdxHeader parse(ImageFile file, long at, ByteBuffer raw) throws ImageException {
        ByteBuffer b = raw.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        VhdxHeader h = new VhdxHeader(at,
                b.getLong(8),                 // SequenceNumber
                Guid.read(b, 16),             // FileWriteGuid
                Guid.read(b, 32),             // DataWriteGuid
                Guid.read(b, 48),             // LogGuid
                b.getShort(64) & 0xffff,      // LogVersion
                b.getShort(66) & 0xffff,      // Version
                Bytes.u32(b.getInt(68)),      // LogLength
                b.getLong(72));               // LogOffset
        h.validate(file);
        return h;
    }

    private void validate(ImageFile file) throws ImageException {
        if (version != 1) {
            throw new ImageException(ImageException.Kind.UNSUPPORTED, file.path(), offset + 66, "header Version",
                    "unsupported VHDX version " + version + " (only 1 is defined)");
        }
        if (logVersion != 0) {
            throw new ImageException(ImageException.Kind.UNSUPPORTED, file.path(), offset + 64, "header LogVersion",
                    "unsupported VHDX log version " + logVersion + " (only 0 is defined)");
        }
        if (logLength % MB != 0) {
            throw ImageException.corrupt(file.path(), offset + 68, "header LogLength",
                    "log length " + logLength + " is not a multiple of 1 MiB");
        }
        if (logOffset < MB || logOffset % MB != 0) {
            throw ImageException.corrupt(file.path(), offset + 72, "header LogOffset",
                    "log offset " + logOffset + " is not a multiple of 1 MiB past the header area");
        }
    }

    /**
     * This header as the 4 KiB block to write at {@code at}, with {@code sequence} and a fresh CRC-32C
     * (MS-VHDX 2.2.2.1: an update goes to the non-current slot with the sequence number plus one).
     */
    ByteBuffer encode() {
        ByteBuffer b = ByteBuffer.allocate(SIZE).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(0, SIGNATURE);
        b.putLong(8, sequence);
        fileWriteGuid.write(b, 16);
        dataWriteGuid.write(b, 32);
        logGuid.write(b, 48);
        b.putShort(64, (short) logVersion);
        b.putShort(66, (short) version);
        b.putInt(68, (int) logLength);
        b.putLong(72, logOffset);
        b.putInt(4, Crc.withFieldZeroed(b, SIZE, 4));
        return b;
    }

    /** The header that replaces this one: the other slot, the next sequence number, the given GUIDs. */
    VhdxHeader successor(Guid fileWrite, Guid dataWrite, Guid log) {
        return new VhdxHeader(offset == HEADER1 ? HEADER2 : HEADER1, sequence + 1, fileWrite, dataWrite, log,
                logVersion, version, logLength, logOffset);
    }

    /** Reads both headers and returns the current one; both invalid means a corrupt image. */
    static VhdxHeader current(ImageFile file) throws IOException {
        ByteBuffer fileId = file.readStruct(0, 8, ByteOrder.LITTLE_ENDIAN, "file type identifier");
        if (!fileId.equals(ByteBuffer.wrap(FILE_SIGNATURE))) {
            throw ImageException.corrupt(file.path(), 0, "file type identifier", "not a VHDX image (no 'vhdxfile' signature)");
        }
        ByteBuffer h1 = file.readStruct(HEADER1, SIZE, ByteOrder.LITTLE_ENDIAN, "header 1");
        ByteBuffer h2 = file.readStruct(HEADER2, SIZE, ByteOrder.LITTLE_ENDIAN, "header 2");
        String bad1 = invalidReason(h1);
        String bad2 = invalidReason(h2);
        if (bad1 != null && bad2 != null) {
            throw ImageException.corrupt(file.path(), HEADER1, "headers",
                    "no valid VHDX header (header 1: " + bad1 + ", header 2: " + bad2 + ")");
        }
        boolean useFirst;
        if (bad2 != null) useFirst = true;
        else if (bad1 != null) useFirst = false;
        else {
            int order = Long.compareUnsigned(h1.getLong(8), h2.getLong(8));
            // Equal sequence numbers leave no current header, except that Disk2VHD writes two identical
            // headers (a quirk qemu accepts too).
            if (order == 0 && !h1.equals(h2)) {
                throw ImageException.corrupt(file.path(), HEADER1, "header SequenceNumber",
                        "both headers are valid but differ and have the same sequence number");
            }
            useFirst = order >= 0;
        }
        return useFirst ? parse(file, HEADER1, h1) : parse(file, HEADER2, h2);
    }
}
