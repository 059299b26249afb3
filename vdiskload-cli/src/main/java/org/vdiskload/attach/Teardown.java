package org.vdiskload.attach;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Undoes an attachment's kernel side — its loop devices, its /dev names, its mount — from whatever
 * state it is in: complete, half-built by a serving process that failed, or orphaned by one that was
 * killed. It finds the loop devices by what they sit on (a file under the attachment's mount point),
 * not by the record, so none is leaked by a process killed before it recorded them, and none that
 * someone else has since taken is touched.
 */
public final class Teardown {
    private static final Path SYS_BLOCK = Path.of("/sys/block");

    private Teardown() {}

    /** Detaches the loop devices, removes the names pointing at them, unmounts the mount point. */
    static void release(String name, Path mountPoint) throws IOException {
        IOException first = null;
        for (String loop : loopsUnder(mountPoint)) {
            try {
                LoopDevices.detach(loop);
            } catch (IOException e) {
                if (first == null) first = e;
            }
        }
        removeLinks(name);
        if (BlockDevices.isMounted(mountPoint)) {
            try {
                Exec.run(List.of("umount", "--lazy", mountPoint.toString()));
            } catch (IOException e) {
                if (first == null) first = e;
            }
        }
        if (first != null) throw first;
    }

    /** Loop devices whose backing file lies under {@code mountPoint}. */
    static List<String> loopsUnder(Path mountPoint) throws IOException {
        String prefix = mountPoint.toAbsolutePath().normalize() + "/";
        List<String> loops = new ArrayList<>();
        try (DirectoryStream<Path> s = Files.newDirectoryStream(SYS_BLOCK, "loop*")) {
            for (Path dev : s) {
                Path backing = dev.resolve("loop/backing_file");
                if (!Files.isRegularFile(backing)) continue;
                String file;
                try {
                    file = Files.readString(backing).strip();
                } catch (IOException goneMeanwhile) {
                    continue;
                }
                if (file.startsWith(prefix)) loops.add(DeviceNames.DEV + "/" + dev.getFileName());
            }
        }
        return loops;
    }

    /** Removes /dev/NAME and /dev/NAMEpN where they are symlinks (as attach makes them). */
    public static void removeLinks(String name) throws IOException {
        Path dev = Path.of(DeviceNames.DEV);
        try (DirectoryStream<Path> s = Files.newDirectoryStream(dev, name + "*")) {
            for (Path p : s) {
                String n = p.getFileName().toString();
                boolean ours = n.equals(name) || n.matches(java.util.regex.Pattern.quote(name) + "p[0-9]+");
                if (ours && Files.isSymbolicLink(p)) Files.deleteIfExists(p);
            }
        }
    }

    /** Makes /dev/NAME point at {@code device} (relative, as udev's links are). */
    public static void link(String name, String device) throws IOException {
        Path link = Path.of(DeviceNames.DEV, name);
        if (Files.exists(link, LinkOption.NOFOLLOW_LINKS)) {
            if (!Files.isSymbolicLink(link)) throw new IOException(link + " exists and is not vdiskload's: cannot name the device");
            Files.delete(link);
        }
        Files.createSymbolicLink(link, Path.of(device).getFileName());
    }
}
