package org.vdiskload.attach;

import com.sun.jna.Library;
import com.sun.jna.Native;
import org.vdiskload.io.CLibrary;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/** What holds a block device: a mount, or anyone else with it open exclusively (swap, md, dm, a filesystem). */
final class BlockDevices {
    private static final int O_RDONLY = 0;
    private static final int O_EXCL = 0x80;
    private static final int O_CLOEXEC = 0x80000;
    private static final int EBUSY = 16;

    private interface LibC extends Library {
        int open(String path, int flags);

        int close(int fd);
    }

    private static final class Lazy {
        static final LibC LIBC = CLibrary.load(LibC.class);
    }

    private BlockDevices() {}

    /** Why {@code device} cannot go now (e.g. "mounted on /mnt"), or empty when nothing holds it. */
    static Optional<String> holder(String device) throws IOException {
        Optional<String> mount = mountPoint(device);
        if (mount.isPresent()) return Optional.of("mounted on " + mount.get());
        if (Lazy.LIBC == null) return Optional.empty();
        // The kernel refuses an exclusive open while a filesystem, swap or a stacked device claims it.
        int fd = Lazy.LIBC.open(device, O_RDONLY | O_EXCL | O_CLOEXEC);
        if (fd >= 0) {
            Lazy.LIBC.close(fd);
            return Optional.empty();
        }
        return Native.getLastError() == EBUSY ? Optional.of("in use") : Optional.empty();
    }

    /** Where {@code device} is mounted, from /proc/self/mountinfo's major:minor column. */
    static Optional<String> mountPoint(String device) throws IOException {
        String majorMinor;
        try {
            majorMinor = Files.readString(Path.of("/sys/class/block", LoopDevices.kernelName(device), "dev")).strip();
        } catch (NoSuchFileException gone) {
            return Optional.empty();
        }
        List<String> lines = Files.readAllLines(Path.of("/proc/self/mountinfo"));
        for (String line : lines) {
            String[] f = line.split(" ");
            if (f.length > 4 && f[2].equals(majorMinor)) return Optional.of(unescape(f[4]));
        }
        return Optional.empty();
    }

    /** Whether {@code dir} is a mount point. */
    static boolean isMounted(Path dir) throws IOException {
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
