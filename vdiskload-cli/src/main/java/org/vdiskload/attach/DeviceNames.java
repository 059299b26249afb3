package org.vdiskload.attach;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;

/**
 * Device names by format family, losetup-style lowest free index: {@code /dev/qcow0} for qcow and
 * qcow2, {@code /dev/vmdk0}, {@code /dev/vdi0}, {@code /dev/vhd0} (VHD, which qemu calls vpc),
 * {@code /dev/vhdx0}, {@code /dev/img0} for raw; partitions append {@code pN} as the kernel does for
 * names ending in a digit.
 */
public final class DeviceNames {
    public static final String DEV = "/dev";

    private DeviceNames() {}

    /** The family a format's devices are named after. */
    public static String family(String format) {
        return switch (format) {
            case "qcow", "qcow2" -> "qcow";
            case "vpc" -> "vhd";
            case "raw" -> "img";
            case "vmdk", "vdi", "vhdx" -> format;
            default -> "vdisk";
        };
    }

    /** The lowest {@code family}N that no attachment records and no file in {@code devDir} holds. */
    static String lowestFree(String family, Set<String> recorded, Path devDir) {
        for (int i = 0; ; i++) {
            String name = family + i;
            if (!recorded.contains(name) && !Files.exists(devDir.resolve(name), java.nio.file.LinkOption.NOFOLLOW_LINKS)) return name;
        }
    }

    public static String partition(String disk, int number) {
        return disk + "p" + number;
    }
}
