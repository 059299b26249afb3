package org.vdiskload.format.vhdx;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Locale;

/**
 * A GUID as MS-VHDX stores it: Data1 (u32), Data2 (u16), Data3 (u16) little-endian, then Data4 as 8 bytes.
 * Held as its 16 raw bytes (two longs) so equality is byte equality.
 */
record Guid(long low, long high) {
    static final Guid ZERO = new Guid(0, 0);

    /** Reads 16 bytes at {@code at} of a little-endian buffer. */
    static Guid read(ByteBuffer b, int at) {
        ByteBuffer le = b.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        return new Guid(le.getLong(at), le.getLong(at + 8));
    }

    /** A random (version 4) GUID, as MS-VHDX wants for FileWriteGuid, DataWriteGuid and LogGuid. */
    static Guid random() {
        return of(java.util.UUID.randomUUID().toString());
    }

    /** Writes the 16 bytes at {@code at} of a buffer (in MS-VHDX byte order whatever the buffer's order). */
    void write(ByteBuffer b, int at) {
        ByteBuffer le = b.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        le.putLong(at, low);
        le.putLong(at + 8, high);
    }

    /** Parses "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", optionally in braces; null if malformed. */
    static Guid parse(String s) {
        String t = s.trim();
        if (t.startsWith("{") && t.endsWith("}")) t = t.substring(1, t.length() - 1);
        if (t.length() != 36 || t.charAt(8) != '-' || t.charAt(13) != '-' || t.charAt(18) != '-' || t.charAt(23) != '-') {
            return null;
        }
        String hex = t.replace("-", "");
        if (hex.length() != 32 || !hex.chars().allMatch(c -> Character.digit(c, 16) >= 0)) return null;
        ByteBuffer b = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt((int) Long.parseLong(hex.substring(0, 8), 16));
        b.putShort((short) Integer.parseInt(hex.substring(8, 12), 16));
        b.putShort((short) Integer.parseInt(hex.substring(12, 16), 16));
        for (int i = 16; i < 32; i += 2) b.put((byte) Integer.parseInt(hex.substring(i, i + 2), 16));
        return read(b, 0);
    }

    static Guid of(String s) {
        Guid g = parse(s);
        if (g == null) throw new IllegalArgumentException("bad GUID constant " + s);
        return g;
    }

    boolean isZero() {
        return low == 0 && high == 0;
    }

    @Override
    public String toString() {
        ByteBuffer b = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(low).putLong(high);
        StringBuilder sb = new StringBuilder(36);
        sb.append(String.format(Locale.ROOT, "%08x-%04x-%04x-", b.getInt(0), b.getShort(4) & 0xffff, b.getShort(6) & 0xffff));
        for (int i = 8; i < 16; i++) {
            if (i == 10) sb.append('-');
            sb.append(String.format(Locale.ROOT, "%02x", b.get(i) & 0xff));
        }
        return sb.toString();
    }
}
