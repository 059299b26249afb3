package org.vdiskload.attach.fuse;

import org.vdiskload.attach.DeviceNames;
import org.vdiskload.attach.Exec;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Loop devices through util-linux's losetup, which knows every kernel's loop ioctls (LOOP_CONFIGURE
 * and its fallbacks) and the free-device race: no reason to redo that by hand.
 */
public final class LoopDevices {
    private static final Path SYS_BLOCK = Path.of("/sys/block");

    private LoopDevices() {}

    /**
     * A new loop device on {@code file}; {@code partscan} asks the kernel to read its partition table
     * (kernels built without partition support ignore it). With direct I/O the loop driver hands its
     * requests to the file asynchronously, many in flight (buffered, its worker does one at a time: 4 KiB
     * random reads at queue depth 16 went from 23–30k to 36–72k IOPS over FUSE, bench/attach-vs-qsd.sh);
     * our FUSE files have no page cache to bypass anyway. Where the file cannot do direct I/O, LOOP_CONFIGURE
     * leaves the device buffered rather than failing.
     */
    static String attach(Path file, boolean readOnly, int sectorSize, boolean partscan) throws IOException {
        List<String> cmd = new ArrayList<>(List.of("losetup", "--find", "--show", "--direct-io=on", "--sector-size", Integer.toString(sectorSize)));
        if (readOnly) cmd.add("--read-only");
        if (partscan) cmd.add("--partscan");
        cmd.add(file.toString());
        return Exec.run(cmd);
    }

    /** Detaches {@code device}; one already gone is fine. */
    static void detach(String device) throws IOException {
        if (backingFile(device).isEmpty()) return;
        Exec.run(List.of("losetup", "--detach", device));
    }

    /** The file a loop device sits on, or empty if the device is free (or gone). */
    static Optional<String> backingFile(String device) throws IOException {
        Path f = SYS_BLOCK.resolve(Path.of(device).getFileName()).resolve("loop/backing_file");
        try {
            return Optional.of(Files.readString(f).strip());
        } catch (NoSuchFileException e) {
            return Optional.empty();
        }
    }

    /**
     * The loop devices whose backing file lies under {@code dir}: found by what they sit on, not by a
     * record, so none is leaked by a serving process killed before it recorded them, and none that
     * someone else has since taken is touched.
     */
    public static List<String> under(Path dir) throws IOException {
        String prefix = dir.toAbsolutePath().normalize() + "/";
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
}
