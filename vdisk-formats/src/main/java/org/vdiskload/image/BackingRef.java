package org.vdiskload.image;

/**
 * A layer's reference to the image beneath it.
 *
 * @param name   the file name as stored in the image; resolved relative to the image's directory
 * @param format the format the image names for it (qemu's names: "qcow2", "raw", "vmdk", "vpc"...),
 *               or null where the image names none (old qcow2, qcow v1): then the format is probed
 *               and anything but raw is refused rather than guessed
 */
public record BackingRef(String name, String format) {
}
