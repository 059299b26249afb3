package org.vdiskload.format.vhdx;

import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.Checked;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The image file as it reads once its log is replayed: the file's bytes with the log's overlay applied,
 * and a size that the log may have extended (its LastFileOffset); bytes past the real end read as zeros.
 * Replaying in memory lets a read-only open see the current data instead of silently stale data.
 */
record ReplayedFile(ImageFile file, LogOverlay overlay, long size) {

    /** Reads a metadata structure of {@code len} bytes at {@code pos}, checked against the replayed size first. */
    ByteBuffer readStruct(long pos, long len, String field) throws IOException {
        if (pos < 0 || len < 0 || pos > size || len > size - pos) {
            throw ImageException.corrupt(file.path(), pos, field,
                    "extends to " + (pos + len) + ", past the end of the file (" + size + " bytes)");
        }
        ByteBuffer b = ByteBuffer.allocate(Checked.toInt(file, pos, field, len)).order(ByteOrder.LITTLE_ENDIAN);
        read(b, pos);
        return b.flip();
    }

    /** Fills {@code dst} with the replayed bytes at {@code pos} (zeros past the file's end), advancing its position. */
    void read(ByteBuffer dst, long pos) throws IOException {
        ByteBuffer view = dst.slice();
        file.readPadded(dst, pos);
        overlay.apply(view, pos);
    }

    /** The first offset in {@code [pos, end)} the log changes, or {@code end}. */
    long nextPatched(long pos, long end) {
        return overlay.nextPatched(pos, end);
    }
}
