package org.vdiskload.attach;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.regex.Pattern;

/**
 * An attachment's names in /dev: /dev/NAME for the whole disk and /dev/NAMEpN per partition, symlinks
 * to the kernel's devices (relative, as udev's are), made and removed here for every backend. Where the
 * kernel itself calls a device so (a backend whose disks the kernel names vdi0, vdi0p1), there is
 * nothing to link; and removing never touches anything but a symlink, so a real device node stays.
 */
public final class DeviceLinks {
    /** The system's: /dev. */
    public static final DeviceLinks SYSTEM = new DeviceLinks(Path.of(DeviceNames.DEV));

    private final Path dev;

    DeviceLinks(Path dev) {
        this.dev = dev;
    }

    /** Names the whole disk {@code name} and each partition by its {@link Attachment.PartitionDevice#name}. */
    public void link(String name, Backend.Devices devices) throws IOException {
        link(name, devices.disk());
        for (Attachment.PartitionDevice p : devices.partitions()) link(p.name(), p.device());
    }

    /**
     * Makes {@code name} point at {@code device}, replacing a link of that name; nothing if {@code device}
     * is that very name. Refuses to replace anything but a symlink.
     */
    void link(String name, String device) throws IOException {
        Path link = dev.resolve(name);
        Path target = Path.of(device);
        if (link.normalize().equals(target.normalize())) return; // the kernel's own node has the name
        if (Files.exists(link, LinkOption.NOFOLLOW_LINKS)) {
            if (!Files.isSymbolicLink(link)) throw new IOException(link + " exists and is not vdiskload's: cannot name the device");
            Files.delete(link);
        }
        Files.createSymbolicLink(link, target.getParent() != null && target.getParent().equals(dev) ? target.getFileName() : target);
    }

    /** Removes NAME and NAMEpN where they are symlinks; device nodes (the kernel's own of those names) stay. */
    public void unlink(String name) throws IOException {
        Pattern ours = Pattern.compile(Pattern.quote(name) + "(p[0-9]+)?");
        try (DirectoryStream<Path> s = Files.newDirectoryStream(dev, name + "*")) {
            for (Path p : s) {
                if (ours.matcher(p.getFileName().toString()).matches() && Files.isSymbolicLink(p)) Files.deleteIfExists(p);
            }
        }
    }
}
