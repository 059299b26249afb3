package org.vdiskload.format.qcow2;

import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.Checked;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The host clusters persistent dirty bitmaps use (docs/interop/qcow2.txt, "Bitmaps"): the bitmap
 * directory, each bitmap table and the data clusters those tables point to. This library does not
 * keep bitmaps up to date; it only needs to know their clusters, to count them in check and to
 * free them when a write makes the bitmaps stale (it clears their autoclear bit), and to list them
 * in info.
 */
final class Bitmaps {
    static final long AUTOCLEAR_BITMAPS = 1;
    private static final int ENTRY_FIXED_BYTES = 24;
    private static final long TABLE_OFFSET_MASK = 0x00fffffffffffe00L;
    /** qemu's limits (block/qcow2-bitmap.c). */
    private static final long MAX_DIRECTORY_BYTES = 64L << 20;
    private static final long MAX_TABLE_ENTRIES = 1L << 27;

    private static final int FLAG_IN_USE = 1;
    private static final int FLAG_AUTO = 2;

    private Bitmaps() {}

    /**
     * What {@code qemu-img info} lists under "bitmaps": each bitmap's flags ("in-use", "auto"), name and
     * granularity, in directory order; empty when the image has none (or qemu would ignore them).
     */
    static List<Map<String, Object>> describe(ImageFile file, Qcow2Header h, HeaderExtensions ext) throws IOException {
        List<Map<String, Object>> out = new ArrayList<>();
        if (!ext.bitmaps() || (h.autoclearFeatures() & AUTOCLEAR_BITMAPS) == 0 || ext.bitmapCount() == 0) return out;
        long dir = ext.bitmapDirectoryOffset(), dirSize = ext.bitmapDirectorySize();
        if (dirSize > MAX_DIRECTORY_BYTES) {
            throw ImageException.corrupt(file.path(), ImageException.NO_OFFSET, "bitmaps extension", "bitmap directory of " + dirSize + " bytes is too large");
        }
        ByteBuffer d = file.readStruct(dir, dirSize, ByteOrder.BIG_ENDIAN, "bitmap directory");
        int pos = 0;
        for (int i = 0; i < ext.bitmapCount(); i++) {
            String field = "bitmap directory entry " + i;
            if (pos + ENTRY_FIXED_BYTES > dirSize) throw ImageException.corrupt(file.path(), dir + pos, field, "runs past the bitmap directory");
            int flags = d.getInt(pos + 12);
            int granularityBits = Byte.toUnsignedInt(d.get(pos + 17));
            int nameSize = Short.toUnsignedInt(d.getShort(pos + 18));
            long extra = Integer.toUnsignedLong(d.getInt(pos + 20));
            long next = pos + ((ENTRY_FIXED_BYTES + extra + nameSize + 7) & ~7L);
            if (next > dirSize) throw ImageException.corrupt(file.path(), dir + pos, field, "runs past the bitmap directory");
            if (granularityBits > 63) throw ImageException.corrupt(file.path(), dir + pos + 17, field, "granularity of 2^" + granularityBits + " bytes");
            List<String> flagNames = new ArrayList<>();
            if ((flags & FLAG_IN_USE) != 0) flagNames.add("in-use");
            if ((flags & FLAG_AUTO) != 0) flagNames.add("auto");
            byte[] name = new byte[nameSize];
            d.get((int) (pos + ENTRY_FIXED_BYTES + extra), name);
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("flags", flagNames);
            m.put("name", new String(name, StandardCharsets.UTF_8));
            m.put("granularity", 1L << granularityBits);
            out.add(m);
            pos = (int) next;
        }
        return out;
    }

    /** Every range the bitmaps occupy, the directory first; empty when there are none or qemu would ignore them. */
    static List<HostRange> extents(ImageFile file, Qcow2Header h, HeaderExtensions ext, long autoclear) throws IOException {
        List<HostRange> out = new ArrayList<>();
        if (!ext.bitmaps() || (autoclear & AUTOCLEAR_BITMAPS) == 0 || ext.bitmapCount() == 0) return out;
        long dir = ext.bitmapDirectoryOffset(), dirSize = ext.bitmapDirectorySize();
        if (dirSize > MAX_DIRECTORY_BYTES) {
            throw ImageException.corrupt(file.path(), ImageException.NO_OFFSET, "bitmaps extension", "bitmap directory of " + dirSize + " bytes is too large");
        }
        Checked.requireAligned(file, ImageException.NO_OFFSET, "bitmap directory offset", dir, h.clusterSize());
        ByteBuffer d = file.readStruct(dir, dirSize, ByteOrder.BIG_ENDIAN, "bitmap directory");
        out.add(new HostRange(dir, dirSize));
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
            out.add(new HostRange(table, entries * 8));
            for (int k = 0; k < entries; k++) {
                long data = t.getLong(k * 8) & TABLE_OFFSET_MASK;
                if (data != 0) out.add(new HostRange(data, h.clusterSize()));
            }
            long next = pos + ((ENTRY_FIXED_BYTES + extra + nameSize + 7) & ~7L);
            if (next > dirSize) throw ImageException.corrupt(file.path(), dir + pos, field, "runs past the bitmap directory");
            pos = (int) next;
        }
        return out;
    }
}
