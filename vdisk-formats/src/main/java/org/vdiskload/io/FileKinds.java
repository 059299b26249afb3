package org.vdiskload.io;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** What kind of file a path is, beyond what java.nio.file.Files tells. */
public final class FileKinds {
    private static final int S_IFMT = 0170000;
    private static final int S_IFBLK = 0060000;

    private FileKinds() {}

    public static boolean isBlockDevice(Path p) {
        try {
            int mode = (Integer) Files.getAttribute(p, "unix:mode");
            return (mode & S_IFMT) == S_IFBLK;
        } catch (IOException | UnsupportedOperationException | IllegalArgumentException e) {
            return false;
        }
    }

    /** Size of a block device from sysfs (FileChannel reports 0 for devices). */
    public static long blockDeviceSize(Path p) throws IOException {
        long rdev = (Long) Files.getAttribute(p, "unix:rdev");
        long major = ((rdev >>> 8) & 0xfff) | ((rdev >>> 32) & ~0xfffL);
        long minor = (rdev & 0xff) | ((rdev >>> 12) & ~0xffL);
        String sectors = Files.readString(Path.of("/sys/dev/block/" + major + ":" + minor + "/size")).trim();
        return Long.parseLong(sectors) * 512;
    }
}
