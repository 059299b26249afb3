package org.vdiskload.format.vmdk;

import org.vdiskload.io.Bytes;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * A metadata marker of a stream-optimized extent: a sector starting with {@code value} (u64: sectors of
 * metadata that follow), {@code size} (u32, 0 for metadata markers; a grain marker has its compressed
 * length here instead) and {@code type} (u32).
 */
record StreamMarker(long value, long size, long type) {
    static final int END_OF_STREAM = 0;
    static final int GRAIN_TABLE = 1;
    static final int GRAIN_DIRECTORY = 2;
    static final int FOOTER = 3;

    static StreamMarker parse(ByteBuffer b, int at) {
        ByteBuffer l = b.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        return new StreamMarker(l.getLong(at), Bytes.u32(l.getInt(at + 8)), Bytes.u32(l.getInt(at + 12)));
    }

    boolean is(int wantedType) {
        return size == 0 && type == wantedType;
    }
}
