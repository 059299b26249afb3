package org.vdiskload.image;

import java.util.List;

/**
 * A layer's reference to the image beneath it.
 *
 * @param names  the file names as stored in the image, each resolved relative to the image's directory:
 *               one, or for a VHD/VHDX differencing disk every usable parent locator in the order its
 *               specification lists them (relative first), tried in turn
 * @param format the format the image names for it (qemu's names: "qcow2", "raw", "vmdk", "vpc"...),
 *               or null where the image names none (old qcow2, qcow v1): then the format is probed
 *               and anything but raw is refused rather than guessed
 * @param unresolved null, or why the layer found no file for the image it names (a differencing VDI names
 *                   its parent by UUID and looks for it; none matched): the chain stops there with this
 *                   problem, and {@code names} holds only what {@code info} shows for it
 */
public record BackingRef(List<String> names, String format, String unresolved) {
    public BackingRef {
        names = List.copyOf(names);
        if (names.isEmpty()) throw new IllegalArgumentException("a backing reference names at least one file");
    }

    public BackingRef(List<String> names, String format) {
        this(names, format, null);
    }

    public BackingRef(String name, String format) {
        this(List.of(name), format);
    }

    /** A reference the layer could not resolve to a file: {@code shown} is how info shows it, {@code why} the problem. */
    public static BackingRef unresolved(String shown, String format, String why) {
        return new BackingRef(List.of(shown), format, why);
    }

    /** The first name: the one the image names first, and the only one for most formats. */
    public String name() {
        return names.get(0);
    }
}
