package org.vdiskload.format.vhdx;

import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The parent locator metadata item (MS-VHDX 2.6.2.6) of a differencing VHDX: a header with the locator type
 * and a list of UTF-16LE key/value pairs (parent_linkage, parent_linkage2, relative_path, volume_path,
 * absolute_win32_path).
 *
 * @param entries the key/value pairs in file order
 */
record ParentLocator(Map<String, String> entries) {
    static final Guid VHDX_LOCATOR = Guid.of("B04AEFB7-D19E-4A81-B789-25B8E9445913");
    private static final int HEADER = 20;
    private static final int ENTRY = 12;

    static ParentLocator parse(ImageFile file, long at, ByteBuffer raw) throws ImageException {
        ByteBuffer b = raw.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        int length = b.limit();
        if (length < HEADER) throw bad(file, at, "parent locator is " + length + " bytes, shorter than its header");
        Guid type = Guid.read(b, 0);               // LocatorType
        int count = b.getShort(18) & 0xffff;      // KeyValueCount (after a 2-byte Reserved)
        if (!type.equals(VHDX_LOCATOR)) {
            throw new ImageException(ImageException.Kind.UNSUPPORTED, file.path(), at, "parent locator LocatorType",
                    "unsupported parent locator type " + type);
        }
        if (HEADER + (long) ENTRY * count > length) {
            throw bad(file, at + 18, "parent locator lists " + count + " entries but is only " + length + " bytes");
        }
        Map<String, String> entries = new LinkedHashMap<>();
        for (int i = 0; i < count; i++) {
            int e = HEADER + ENTRY * i;
            long keyOffset = Integer.toUnsignedLong(b.getInt(e));     // KeyOffset
            long valueOffset = Integer.toUnsignedLong(b.getInt(e + 4)); // ValueOffset
            int keyLength = b.getShort(e + 8) & 0xffff;              // KeyLength
            int valueLength = b.getShort(e + 10) & 0xffff;           // ValueLength
            String key = string(file, at + e, b, keyOffset, keyLength, "key");
            String value = string(file, at + e, b, valueOffset, valueLength, "value");
            if (entries.put(key, value) != null) throw bad(file, at + e, "parent locator lists key '" + key + "' twice");
        }
        if (!entries.containsKey("parent_linkage")) throw bad(file, at, "parent locator has no parent_linkage");
        return new ParentLocator(Map.copyOf(entries));
    }

    /**
     * The item for a new differencing image: the header, then the entries, then the UTF-16LE keys and values,
     * in {@code pairs}' order. Refuses what does not fit the 16-bit lengths.
     */
    static ByteBuffer encode(Map<String, String> pairs) {
        int n = pairs.size();
        int at = HEADER + ENTRY * n;
        int total = at;
        for (Map.Entry<String, String> kv : pairs.entrySet()) {
            total += 2 * (kv.getKey().length() + kv.getValue().length());
        }
        ByteBuffer b = ByteBuffer.allocate(total).order(ByteOrder.LITTLE_ENDIAN);
        VHDX_LOCATOR.write(b, 0);                       // LocatorType
        b.putShort(18, (short) n);                      // KeyValueCount
        int e = HEADER;
        for (Map.Entry<String, String> kv : pairs.entrySet()) {
            byte[] key = kv.getKey().getBytes(StandardCharsets.UTF_16LE);
            byte[] value = kv.getValue().getBytes(StandardCharsets.UTF_16LE);
            if (key.length == 0 || value.length == 0 || key.length > 0xffff || value.length > 0xffff) {
                throw new IllegalArgumentException("parent locator entry '" + kv.getKey() + "' is empty or too long");
            }
            b.putInt(e, at);                            // KeyOffset
            b.putInt(e + 4, at + key.length);           // ValueOffset
            b.putShort(e + 8, (short) key.length);      // KeyLength
            b.putShort(e + 10, (short) value.length);   // ValueLength
            b.put(at, key).put(at + key.length, value);
            at += key.length + value.length;
            e += ENTRY;
        }
        return b;
    }

    private static String string(ImageFile file, long entryAt, ByteBuffer b, long offset, int length, String what)
            throws ImageException {
        if (length == 0 || length % 2 != 0 || offset < HEADER || offset + length > b.limit()) {
            throw bad(file, entryAt, "parent locator " + what + " at " + offset + "+" + length + " is empty, odd-sized or outside the item");
        }
        byte[] bytes = new byte[length];
        b.get((int) offset, bytes);
        return new String(bytes, StandardCharsets.UTF_16LE);
    }

    private static ImageException bad(ImageFile file, long at, String problem) {
        return ImageException.corrupt(file.path(), at, "parent locator", problem);
    }

    /** parent_linkage: the parent's DataWriteGuid, or null if it is not a GUID. */
    Guid linkage() {
        return Guid.parse(entries.get("parent_linkage"));
    }

    /** parent_linkage2, the alternative linkage a parent may match, or null. */
    Guid linkage2() {
        String s = entries.get("parent_linkage2");
        return s == null ? null : Guid.parse(s);
    }

    /**
     * The parent's paths for this host, in the order MS-VHDX lists the entries to try (relative_path,
     * volume_path, absolute_win32_path), Windows separators turned around: relative_path; volume_path and
     * absolute_win32_path where they name a path here (no drive letter or volume GUID, as this library's
     * writer records them); then the last component of either, looked for beside the child (for paths on
     * Windows volumes this host cannot open: the linkage check guards against a wrong file). Empty if none.
     */
    List<String> hostPaths() {
        List<String> paths = new ArrayList<>();
        String rel = entries.get("relative_path");
        if (rel != null) {
            String p = rel.replace('\\', '/');
            while (p.startsWith("./")) p = p.substring(2);
            if (!p.isEmpty()) paths.add(p);
        }
        List<String> beside = new ArrayList<>();
        for (String key : new String[] {"volume_path", "absolute_win32_path"}) {
            String abs = entries.get(key);
            if (abs == null || abs.isEmpty()) continue;
            String p = abs.replace('\\', '/');
            if (p.startsWith("/") && !p.startsWith("//")) paths.add(p);
            String name = p.substring(p.lastIndexOf('/') + 1);
            if (!name.isEmpty()) beside.add(name);
        }
        for (String name : beside) if (!paths.contains(name)) paths.add(name);
        return paths;
    }
}
