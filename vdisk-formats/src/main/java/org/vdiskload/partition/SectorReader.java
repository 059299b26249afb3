package org.vdiskload.partition;

import org.vdiskload.image.DiskImage;
import org.vdiskload.image.error.ImageException;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** Bounds-checked reads of partition-table structures from a disk, and the errors that name them. */
final class SectorReader {
    private final DiskImage disk;

    SectorReader(DiskImage disk) {
        this.disk = disk;
    }

    long size() {
        return disk.size();
    }

    /** Whether {@code [pos, pos+len)} lies inside the disk (no overflow for any non-negative pos and len). */
    boolean inside(long pos, long len) {
        return pos >= 0 && len >= 0 && pos <= disk.size() && len <= disk.size() - pos;
    }

    /** Reads {@code len} bytes at {@code pos} as a little-endian buffer; the range must lie inside the disk. */
    ByteBuffer read(long pos, int len, String field) throws IOException {
        if (!inside(pos, len)) throw corrupt(pos, field, "lies past the end of the disk (" + disk.size() + " bytes)");
        ByteBuffer b = ByteBuffer.allocate(len).order(ByteOrder.LITTLE_ENDIAN);
        disk.read(b, pos);
        return b.flip();
    }

    ImageException corrupt(long offset, String field, String problem) {
        return ImageException.corrupt(disk.path(), offset, field, problem);
    }
}
