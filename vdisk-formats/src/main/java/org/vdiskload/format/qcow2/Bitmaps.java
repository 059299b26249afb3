package org.vdiskload.format.qcow2;

import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.Checked;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * The host clusters persistent dirty bitmaps use (docs/interop/qcow2.txt, "Bitmaps"): the bitmap
 * directory, each bitmap table and the data clusters those tables point to. This library does not
 * keep bitmaps up to date; it only needs to know their clusters, to count them in check and to
 * free them when a write makes the bitmaps stale (it clears their autoclear bit).
 */
final class Bitmaps {
    static final long AUTOCLEAR_BITMAPS = 1;
    private static final int ENTRY_FIXED_BYTES = 24;
    private static final long TABLE_OFFSET_MASK = 0x00fffffffffffe00L;
    /** qemu's limits (block/qcow2-bitmap.c). */
    private static final long MAX_DIRECTORY_BYTES = 64L << 20;
    private static final long MAX_TABLE_ENTRIES = 1L << 27;

    private Bitmaps() {}

    /** Every (offset, length) the bitmaps occupy; empty when there are none or qemu would ignore them. */
    static List<long[]> extents(ImageFile file, Qcow2Header h, HeaderExtensions ext, long autoclear) throws IOException {
        List<long[]> out = new ArrayList<>();
        if (!ext.bitmaps() || (autoclear & AUTOCLEAR_BITMAPS) == 0 || ext.bitmapCount() == 0) return out;
        long dir = ext.bitmapDirectoryOffset(), dirSize = ext.bitmapDirectorySize();
        if (dirSize > MAX_DIRECTORY_BYTES) {
            throw ImageException.corrupt(file.path(), ImageException.NO_OFFSET, "bitmaps extension", "bitmap directory of " + dirSize + " bytes is too large");
        }
        Checked.requireAligned(file, ImageException.NO_OFFSET, "bitmap directory offset", dir, h.clusterSize());
        ByteBuffer d = file.readStruct(dir, dirSize, ByteOrder.BIG_ENDIAN, "bitmap directory");
        out.add(new long[] {dir, dirSize});
        int pos = 0;
        for (int i = 0; i < ext.bitmapCount(); i++) {
            String field = "bitmap directory entry " + i;
            if (pos + ENTRY_FIXED_BYTES > dirSize) throw ImageException.corrupt(file.path(), dir + pos, field, "runs past the bitmap directory");
            long table = d.getLong(pos);
            long entries = Integer.toUnsignedLong(d.getInt(pos + 8));
            int nameSize = Short.toUnsignedInt(d.getShort(pos + 18));
            long extra = Integer.toUnsignedLong(d.getInt(pos + 20));
            if (entries > MAX_TABLE_ENTRIES) throw ImageException.corrupt(file.path(), dir + pos + 8, field, "bitmap table of " + entries + " entries is too large");
            Checked.requireAligned(file, dir + pos, field, table, h.clusterSize());
            ByteBuffer t = file.readStruct(table, entries * 8, ByteOrder.BIG_ENDIAN, field + " table");
            out.add(new long[] {table, entries * 8});
            for (int k = 0; k < entries; k++) {
                long data = t.getLong(k * 8) & TABLE_OFFSET_MASK;
                if (data != 0) out.add(new long[] {data, h.clusterSize()});
            }
            long next = pos + ((ENTRY_FIXED_BYTES + extra + nameSize + 7) & ~7L);
            if (next > dirSize) throw ImageException.corrupt(file.path(), dir + pos, field, "runs past the bitmap directory");
            pos = (int) next;
        }
        return out;
    }
}
