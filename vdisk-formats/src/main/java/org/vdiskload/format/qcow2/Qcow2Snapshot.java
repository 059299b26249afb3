package org.vdiskload.format.qcow2;

import org.vdiskload.image.SnapshotInfo;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.Checked;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * One entry of the snapshot table: a fixed 40-byte part, extra data, the id and the name, padded
 * to 8 bytes.
 *
 * @param l1TableOffset the snapshot's L1 table
 * @param l1Size        its entries
 * @param vmStateSize   saved VM state bytes (the 64-bit extra-data field where present)
 * @param icount        the instruction count from the extra data, or -1 where absent
 * @param entryBytes    the bytes this entry takes in the snapshot table, padding included
 */
record Qcow2Snapshot(long l1TableOffset, int l1Size, String id, String name, long dateSec, long dateNsec,
                     long vmClockNsec, long vmStateSize, long icount, long entryBytes) {

    static final int FIXED_BYTES = 40;
    /** qemu's limits for extra data and for the whole table (block/qcow2.h). */
    static final int MAX_EXTRA_DATA = 1024;
    static final long MAX_TABLE_BYTES = 64L << 20;

    SnapshotInfo info() {
        return new SnapshotInfo(id, name, vmStateSize, dateSec, dateNsec, vmClockNsec, icount);
    }

    /** Reads and validates the snapshot table the header points to. */
    static List<Qcow2Snapshot> readTable(ImageFile file, Qcow2Header h) throws IOException {
        List<Qcow2Snapshot> out = new ArrayList<>();
        long pos = h.snapshotsOffset();
        long tableEnd = h.snapshotsOffset();
        for (int i = 0; i < h.nbSnapshots(); i++) {
            String field = "snapshot " + (i + 1);
            ByteBuffer fixed = file.readStruct(pos, FIXED_BYTES, ByteOrder.BIG_ENDIAN, field);
            long l1Offset = fixed.getLong(0);
            int l1Size = fixed.getInt(8);
            int idSize = Short.toUnsignedInt(fixed.getShort(12));
            int nameSize = Short.toUnsignedInt(fixed.getShort(14));
            long dateSec = Integer.toUnsignedLong(fixed.getInt(16));
            long dateNsec = Integer.toUnsignedLong(fixed.getInt(20));
            long vmClock = fixed.getLong(24);
            long vmState = Integer.toUnsignedLong(fixed.getInt(32));
            long extraSize = Integer.toUnsignedLong(fixed.getInt(36));
            if (extraSize > MAX_EXTRA_DATA) {
                throw ImageException.corrupt(file.path(), pos + 36, field + " extra_data_size",
                        "extra data of " + extraSize + " bytes is too large (at most " + MAX_EXTRA_DATA + ")");
            }
            long variable = extraSize + idSize + nameSize;
            ByteBuffer rest = file.readStruct(pos + FIXED_BYTES, variable, ByteOrder.BIG_ENDIAN, field);
            long icount = -1;
            if (extraSize >= 8) vmState = rest.getLong(0);
            if (extraSize >= 24) icount = rest.getLong(16);
            if (vmState < 0) {
                throw ImageException.corrupt(file.path(), pos + FIXED_BYTES, field + " vm_state_size", "VM state size is too large");
            }
            String id = string(rest, (int) extraSize, idSize);
            String name = string(rest, (int) extraSize + idSize, nameSize);
            if (id.isEmpty()) throw ImageException.corrupt(file.path(), pos + 12, field + " id_str_size", "snapshot has an empty id");
            validateL1(file, h, pos, field, l1Offset, l1Size);
            pos = Checked.add(file, pos, field, pos, (FIXED_BYTES + variable + 7) & ~7L);
            tableEnd = pos;
            if (tableEnd - h.snapshotsOffset() > MAX_TABLE_BYTES) {
                throw ImageException.corrupt(file.path(), h.snapshotsOffset(), "snapshot table", "snapshot table is larger than 64 MiB");
            }
            for (Qcow2Snapshot s : out) {
                if (s.id.equals(id)) throw ImageException.corrupt(file.path(), pos, field, "snapshot id '" + id + "' appears twice");
            }
            out.add(new Qcow2Snapshot(l1Offset, l1Size, id, name, dateSec, dateNsec, vmClock, vmState, icount,
                    (FIXED_BYTES + variable + 7) & ~7L));
        }
        return List.copyOf(out);
    }

    private static void validateL1(ImageFile file, Qcow2Header h, long entry, String field, long offset, int size) throws IOException {
        if (Integer.toUnsignedLong(size) > Qcow2Header.MAX_L1_BYTES / 8) {
            throw ImageException.corrupt(file.path(), entry + 8, field + " l1_size",
                    "snapshot L1 table of " + Integer.toUnsignedString(size) + " entries is too large");
        }
        if (size == 0) return;
        if (offset < h.clusterSize() || (offset & (h.clusterSize() - 1)) != 0) {
            throw ImageException.corrupt(file.path(), entry, field + " l1_table_offset",
                    "snapshot L1 table offset " + Long.toUnsignedString(offset) + " is unaligned or overlaps the header");
        }
        Checked.requireInFile(file, offset, (long) size * 8, field + " L1 table");
    }

    private static String string(ByteBuffer b, int at, int len) {
        byte[] bytes = new byte[len];
        b.get(at, bytes);
        return new String(bytes, StandardCharsets.UTF_8);
    }

    /** The snapshot {@code idOrName} names: an id first, then a name, as qemu-img convert -l looks it up. */
    static Qcow2Snapshot find(List<Qcow2Snapshot> snapshots, String idOrName) {
        for (Qcow2Snapshot s : snapshots) if (s.id.equals(idOrName)) return s;
        for (Qcow2Snapshot s : snapshots) if (s.name.equals(idOrName)) return s;
        return null;
    }
}
