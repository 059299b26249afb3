package org.vdiskload.format.layout;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.zip.CRC32;

/**
 * The partition-table sectors of a planned disk, built in memory: a protective MBR, the primary and backup
 * GPT headers and entry arrays (UEFI 2.10 §5.3) with their CRC32s; or an MBR with, past four partitions, an
 * extended partition whose EBR chain holds the logical ones.
 */
final class Tables {
    private Tables() {}

    /** Bytes at a disk offset. */
    record Block(long offset, byte[] bytes) {
        long end() {
            return offset + bytes.length;
        }
    }

    private static final long GPT_ATTR_LEGACY_BIOS_BOOTABLE = 1L << 2;
    private static final long GPT_ATTR_READ_ONLY = 1L << 60;
    private static final int MBR_EXTENDED_LBA = 0x0F;

    static List<Block> build(DiskPlan plan) {
        return plan.isGpt() ? gpt(plan) : mbr(plan);
    }

    // ---- GPT ----

    private static List<Block> gpt(DiskPlan plan) {
        int ss = plan.spec.sectorSize();
        long sectors = plan.diskSize / ss;
        int arraySectors = (int) (DiskPlan.GPT_ARRAY_BYTES / ss);
        ByteBuffer entries = le(ByteBuffer.allocate((int) DiskPlan.GPT_ARRAY_BYTES));
        for (DiskPlan.Placed p : plan.parts) {
            int at = (p.number() - 1) * 128;
            putGuid(entries, at, p.spec().gptType());
            putGuid(entries, at + 16, p.spec().guid());
            entries.putLong(at + 32, p.start() / ss);
            entries.putLong(at + 40, p.end() / ss - 1);
            long attrs = (p.spec().bootable() || p.spec().legacyBiosBootable() ? GPT_ATTR_LEGACY_BIOS_BOOTABLE : 0)
                    | (p.spec().readOnly() ? GPT_ATTR_READ_ONLY : 0);
            entries.putLong(at + 48, attrs);
            byte[] name = p.spec().name().getBytes(StandardCharsets.UTF_16LE);
            entries.put(at + 56, name, 0, Math.min(name.length, 72));
        }
        int entriesCrc = crc(entries.array(), 0, entries.capacity());
        long firstUsable = plan.firstUsable() / ss;
        long lastUsable = sectors - 2 - arraySectors;
        long backupArray = sectors - 1 - arraySectors;

        byte[] primary = new byte[(2 + arraySectors) * ss];
        protectiveMbr(ByteBuffer.wrap(primary, 0, ss).slice(), sectors);
        byte[] header = gptHeader(ss, 1, sectors - 1, firstUsable, lastUsable, plan.spec.diskGuid(), 2, entriesCrc);
        System.arraycopy(header, 0, primary, ss, ss);
        System.arraycopy(entries.array(), 0, primary, 2 * ss, entries.capacity());

        byte[] backup = new byte[(1 + arraySectors) * ss];
        System.arraycopy(entries.array(), 0, backup, 0, entries.capacity());
        byte[] backupHeader = gptHeader(ss, sectors - 1, 1, firstUsable, lastUsable, plan.spec.diskGuid(), backupArray, entriesCrc);
        System.arraycopy(backupHeader, 0, backup, arraySectors * ss, ss);
        return List.of(new Block(0, primary), new Block(backupArray * ss, backup));
    }

    private static byte[] gptHeader(int ss, long myLba, long alternateLba, long firstUsable, long lastUsable, UUID disk,
                                    long entriesLba, int entriesCrc) {
        ByteBuffer h = le(ByteBuffer.allocate(ss));
        h.put(0, "EFI PART".getBytes(StandardCharsets.US_ASCII));
        h.putInt(8, 0x00010000);
        h.putInt(12, 92);
        h.putLong(24, myLba);
        h.putLong(32, alternateLba);
        h.putLong(40, firstUsable);
        h.putLong(48, lastUsable);
        putGuid(h, 56, disk);
        h.putLong(72, entriesLba);
        h.putInt(80, LayoutParser.GPT_ENTRIES);
        h.putInt(84, 128);
        h.putInt(88, entriesCrc);
        h.putInt(16, crc(h.array(), 0, 92));
        return h.array();
    }

    private static void protectiveMbr(ByteBuffer s, long sectors) {
        le(s);
        mbrEntry(s, 446, false, 0xEE, 1, Math.min(sectors - 1, 0xFFFFFFFFL));
        s.put(510, (byte) 0x55).put(511, (byte) 0xAA);
    }

    /** A GUID in the mixed-endian layout GPT stores: the first three fields little-endian. */
    private static void putGuid(ByteBuffer b, int at, UUID u) {
        long hi = u.getMostSignificantBits();
        ByteBuffer be = ByteBuffer.allocate(16).putLong(hi).putLong(u.getLeastSignificantBits());
        byte[] a = be.array();
        byte[] mixed = {a[3], a[2], a[1], a[0], a[5], a[4], a[7], a[6], a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15]};
        b.put(at, mixed);
    }

    private static int crc(byte[] b, int off, int len) {
        CRC32 c = new CRC32();
        c.update(b, off, len);
        return (int) c.getValue();
    }

    // ---- MBR ----

    private static List<Block> mbr(DiskPlan plan) {
        int ss = plan.spec.sectorSize();
        List<Block> blocks = new ArrayList<>();
        ByteBuffer mbr = le(ByteBuffer.allocate(ss));
        mbr.putInt(440, plan.spec.mbrSignature());
        int primaries = plan.hasLogical() ? 3 : plan.parts.size();
        for (int i = 0; i < primaries; i++) {
            DiskPlan.Placed p = plan.parts.get(i);
            mbrEntry(mbr, 446 + 16 * i, p.spec().bootable(), p.spec().mbrType(), p.start() / ss, p.size() / ss);
        }
        if (plan.hasLogical()) {
            long ext = plan.extendedStart();
            mbrEntry(mbr, 446 + 48, false, MBR_EXTENDED_LBA, ext / ss, (plan.extendedEnd() - ext) / ss);
            List<DiskPlan.Placed> logical = plan.parts.subList(3, plan.parts.size());
            for (int i = 0; i < logical.size(); i++) {
                DiskPlan.Placed p = logical.get(i);
                ByteBuffer ebr = le(ByteBuffer.allocate(ss));
                // The logical partition, relative to its EBR; the next EBR, relative to the extended partition
                mbrEntry(ebr, 446, p.spec().bootable(), p.spec().mbrType(), (p.start() - p.ebr()) / ss, p.size() / ss);
                if (i + 1 < logical.size()) {
                    DiskPlan.Placed next = logical.get(i + 1);
                    mbrEntry(ebr, 462, false, MBR_EXTENDED_LBA, (next.ebr() - ext) / ss, (next.end() - next.ebr()) / ss);
                }
                ebr.put(510, (byte) 0x55).put(511, (byte) 0xAA);
                blocks.add(new Block(p.ebr(), ebr.array()));
            }
        }
        mbr.put(510, (byte) 0x55).put(511, (byte) 0xAA);
        blocks.add(0, new Block(0, mbr.array()));
        return blocks;
    }

    /** One 16-byte entry; CHS fields hold the "use LBA" maximum (1023/254/63), as partitioners write past 8 GiB. */
    private static void mbrEntry(ByteBuffer b, int at, boolean active, int type, long lba, long sectors) {
        b.put(at, (byte) (active ? 0x80 : 0));
        b.put(at + 1, (byte) 0xFE).put(at + 2, (byte) 0xFF).put(at + 3, (byte) 0xFF);
        b.put(at + 4, (byte) type);
        b.put(at + 5, (byte) 0xFE).put(at + 6, (byte) 0xFF).put(at + 7, (byte) 0xFF);
        b.putInt(at + 8, (int) lba);
        b.putInt(at + 12, (int) sectors);
    }

    private static ByteBuffer le(ByteBuffer b) {
        return b.order(ByteOrder.LITTLE_ENDIAN);
    }
}
