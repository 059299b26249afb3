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
 */
public record BackingRef(List<String> names, String format) {
    public BackingRef {
        names = List.copyOf(names);
        if (names.isEmpty()) throw new IllegalArgumentException("a backing reference names at least one file");
    }

    public BackingRef(String name, String format) {
        this(List.of(name), format);
    }

    /** The first name: the one the image names first, and the only one for most formats. */
    public String name() {
        return names.get(0);
    }
}
