package org.vdiskload.format.vhdx;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.zip.CRC32C;

/** The CRC-32C checksums VHDX puts in headers, region tables and log entries. */
final class Crc {
    private Crc() {}

    /**
     * The CRC-32C of {@code b}'s {@code length} bytes from 0, computed with the 4-byte checksum field at
     * {@code checksumAt} taken as zero (the buffer is not modified).
     */
    static int withFieldZeroed(ByteBuffer b, int length, int checksumAt) {
        CRC32C crc = new CRC32C();
        ByteBuffer d = b.duplicate();
        crc.update(d.limit(checksumAt).position(0));
        crc.update(new byte[4]);
        crc.update(b.duplicate().limit(length).position(checksumAt + 4));
        return (int) crc.getValue();
    }

    /** The checksum field stored at {@code checksumAt} (little-endian u32). */
    static int stored(ByteBuffer b, int checksumAt) {
        return b.duplicate().order(ByteOrder.LITTLE_ENDIAN).getInt(checksumAt);
    }
}
