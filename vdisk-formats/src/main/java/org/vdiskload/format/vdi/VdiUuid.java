package org.vdiskload.format.vdi;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.UUID;

/**
 * A UUID as VirtualBox stores it in a VDI header (IPRT's RTUUID): time_low, time_mid and
 * time_hi_and_version little-endian, the last eight bytes as they are. The all-zero UUID means "none".
 */
final class VdiUuid {
    static final UUID NONE = new UUID(0, 0);

    private VdiUuid() {}

    static UUID get(ByteBuffer b, int at) {
        ByteBuffer le = b.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        long hi = (Integer.toUnsignedLong(le.getInt(at)) << 32) | ((le.getShort(at + 4) & 0xffffL) << 16) | (le.getShort(at + 6) & 0xffffL);
        long lo = le.order(ByteOrder.BIG_ENDIAN).getLong(at + 8);
        return new UUID(hi, lo);
    }

    static void put(ByteBuffer b, int at, UUID u) {
        ByteBuffer le = b.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        long hi = u.getMostSignificantBits();
        le.putInt(at, (int) (hi >>> 32)).putShort(at + 4, (short) (hi >>> 16)).putShort(at + 6, (short) hi);
        le.order(ByteOrder.BIG_ENDIAN).putLong(at + 8, u.getLeastSignificantBits());
    }

    /** As VirtualBox shows it: in braces. */
    static String text(UUID u) {
        return "{" + u + "}";
    }
}
