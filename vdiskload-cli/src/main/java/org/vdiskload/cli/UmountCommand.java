package org.vdiskload.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code vdiskload umount DIR}: unmount, then detach the image the file system came from. */
@Command(name = "umount", description = "Unmount DIR, then detach the image its file system belongs to (what 'vdiskload mount' did).")
final class UmountCommand implements Callable<Integer> {
    @Parameters(paramLabel = "DIR")
    Path dir;

    @Override
    public Integer call() throws Exception {
        Losetup.mounter().umount(dir);
        return 0;
    }
}
