package org.vdiskload.attach;

import org.vdiskload.testing.Tools;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** A test's mounts of attached devices, on fresh directories under its own; unmountAll() after each test. */
public final class Mounts {
    private final Path dir;
    private final List<Path> mounted = new ArrayList<>();

    public Mounts(Path dir) {
        this.dir = dir;
    }

    public Path mount(String device, String type, boolean readOnly) throws Exception {
        Path m = Files.createTempDirectory(dir, "mnt");
        Tools.check("mount", "-t", type, "-o", readOnly ? "ro" : "rw", device, m.toString());
        mounted.add(m);
        return m;
    }

    public void umount(Path m) throws Exception {
        Tools.umount(m);
        mounted.remove(m);
    }

    /** Lazily, so that a failed test's busy mount does not keep the next test's devices. */
    public void unmountAll() throws Exception {
        for (Path m : mounted) Tools.run(List.of("umount", "-l", m.toString()), null);
        mounted.clear();
    }
}
