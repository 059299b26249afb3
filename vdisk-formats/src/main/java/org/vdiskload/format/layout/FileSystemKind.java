package org.vdiskload.format.layout;

import java.util.Locale;

/** The file systems a directory or tar source is built into: a partition's {@code "filesystem"} in the layout. */
enum FileSystemKind {
    /** mke2fs -d and debugfs (e2fsprogs): owners, modes, links and device nodes kept. The default. */
    EXT4,
    /** mkfs.fat (dosfstools) and mcopy (mtools): names, contents and times only, as FAT holds. */
    VFAT;

    /** The layout's name for it, also the cached image's suffix. */
    String jsonName() {
        return name().toLowerCase(Locale.ROOT);
    }

    static FileSystemKind of(String jsonName) {
        return valueOf(jsonName.toUpperCase(Locale.ROOT));
    }
}
