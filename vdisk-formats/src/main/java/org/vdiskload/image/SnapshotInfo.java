package org.vdiskload.image;

/** An internal snapshot, as qemu-img info lists them. */
public record SnapshotInfo(String id, String name, long vmStateSize, long dateSec, long dateNsec,
                           long vmClockNsec, long icount) {
}
