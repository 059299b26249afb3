package org.vdiskload.attach;

import org.vdiskload.sys.Errno;
import org.vdiskload.sys.Libc;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/** What holds a block device: a mount, or anyone else with it open exclusively (swap, md, dm, a filesystem). */
public final class BlockDevices {
    private BlockDevices() {}

    /** Why {@code device} cannot go now (e.g. "mounted on /mnt"), or empty when nothing holds it. */
    static Optional<String> holder(String device) throws IOException {
        Optional<String> mount = mountPoint(device);
        if (mount.isPresent()) return Optional.of("mounted on " + mount.get());
        if (!Libc.available()) return Optional.empty();
        // The kernel refuses an exclusive open while a filesystem, swap or a stacked device claims it.
        int fd = Libc.open(device, Libc.O_RDONLY | Libc.O_EXCL | Libc.O_CLOEXEC);
        if (fd >= 0) {
            Libc.close(fd);
            return Optional.empty();
        }
        return Libc.errno() == Errno.EBUSY ? Optional.of("in use") : Optional.empty();
    }

    /** Where {@code device} is mounted, from /proc/self/mountinfo's major:minor column. */
    static Optional<String> mountPoint(String device) throws IOException {
        return mountPoints(device).stream().findFirst();
    }

    /** Every directory {@code device} is mounted on (in this process's mount namespace), in mount order. */
    public static List<String> mountPoints(String device) throws IOException {
        Optional<String> majorMinor = majorMinor(device);
        List<String> points = new ArrayList<>();
        if (majorMinor.isEmpty()) return points;
        for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
            String[] f = line.split(" ");
            if (f.length > 4 && f[2].equals(majorMinor.get())) points.add(unescape(f[4]));
        }
        return points;
    }

    /** The block device's "major:minor" from sysfs, or empty once it is gone. */
    public static Optional<String> majorMinor(String device) throws IOException {
        try {
            return Optional.of(Files.readString(Path.of("/sys/class/block", Path.of(device).getFileName().toString(), "dev")).strip());
        } catch (NoSuchFileException gone) {
            return Optional.empty();
        }
    }

    /** The "major:minor" of what is mounted on {@code dir} (the topmost mount there), or empty when it is no mount point. */
    public static Optional<String> mountedOn(Path dir) throws IOException {
        String target = dir.toAbsolutePath().normalize().toString();
        Optional<String> top = Optional.empty();
        for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
            String[] f = line.split(" ");
            if (f.length > 4 && unescape(f[4]).equals(target)) top = Optional.of(f[2]);
        }
        return top;
    }

    /** Whether {@code dir} is a mount point. */
    public static boolean isMounted(Path dir) throws IOException {
        String target = dir.toAbsolutePath().normalize().toString();
        for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
            String[] f = line.split(" ");
            if (f.length > 4 && unescape(f[4]).equals(target)) return true;
        }
        return false;
    }

    /** mountinfo writes space, tab, newline and backslash as octal escapes. */
    private static String unescape(String s) {
        if (s.indexOf('\\') < 0) return s;
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && i + 3 < s.length()) {
                b.append((char) Integer.parseInt(s.substring(i + 1, i + 4), 8));
                i += 3;
            } else {
                b.append(c);
            }
        }
        return b.toString();
    }
}
