package org.vdiskload.attach.nbd;

import org.vdiskload.sys.Libc;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The kernel's nbd devices as sysfs shows them. A device vdiskload connected carries the backend
 * identifier {@code vdiskload:NAME} in /sys/block/nbdN/backend for as long as it is connected: that,
 * not a record, tells which devices an attachment holds (also those of a serving process killed
 * before it wrote its record), and lets udev name them.
 */
final class NbdDevices {
    private static final Path SYS_BLOCK = Path.of("/sys/block");
    static final String DEV = "/dev";

    private NbdDevices() {}

    static String backendId(String attachment) {
        return "vdiskload:" + attachment;
    }

    static String device(int index) {
        return DEV + "/nbd" + index;
    }

    /** The backend identifier of /dev/nbd{@code index}, or "" if it has none (not connected, or not by netlink). */
    static String backend(int index) throws IOException {
        try {
            return Files.readString(SYS_BLOCK.resolve("nbd" + index).resolve("backend")).strip();
        } catch (NoSuchFileException e) {
            return "";
        }
    }

    /** The indexes of the connected devices whose backend identifier is {@code attachment}'s. */
    static List<Integer> connectedTo(String attachment) throws IOException {
        String id = backendId(attachment);
        List<Integer> found = new ArrayList<>();
        try (DirectoryStream<Path> s = Files.newDirectoryStream(SYS_BLOCK, "nbd*")) {
            for (Path dev : s) {
                String n = dev.getFileName().toString().substring(3);
                if (n.isEmpty() || n.length() > 6 || !n.chars().allMatch(Character::isDigit)) continue;
                int index = Integer.parseInt(n);
                if (backend(index).equals(id)) found.add(index);
            }
        }
        return found;
    }

    /**
     * Pushes what the kernel holds for {@code device} to the server: BLKFLSBUF writes back its buffer
     * cache, fsync has the driver send NBD_CMD_FLUSH (the server flushes the image).
     */
    static void flush(String device) throws IOException {
        Libc.require();
        int fd = Libc.open(device, Libc.O_RDONLY | Libc.O_CLOEXEC);
        if (fd < 0) throw Libc.failure("open " + device);
        try {
            if (Libc.ioctl(fd, Libc.BLKFLSBUF, 0) != 0) throw Libc.failure("BLKFLSBUF " + device);
            if (Libc.fsync(fd) != 0) throw Libc.failure("fsync " + device);
        } finally {
            Libc.close(fd);
        }
    }
}
