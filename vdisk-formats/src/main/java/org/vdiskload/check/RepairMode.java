package org.vdiskload.check;

/** What {@code check -r} may repair, as in qemu-img check. */
public enum RepairMode {
    /** Report only; the image is opened read-only. */
    NONE,
    /** Free leaked clusters (harmless: space only). */
    LEAKS,
    /** Also repair corruptions where that is safe. */
    ALL
}
