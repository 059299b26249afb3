package org.vdiskload.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code vdiskload mount}: attach an image and mount one of its file systems, in one step ({@code umount} undoes both). */
@Command(name = "mount", description = {
        "Attach IMAGE and mount one of its file systems on DIR (the type from blkid); 'vdiskload umount DIR' undoes both.",
        "PART: a partition number, GPT partition name, or file-system label or UUID; by default the only file system,",
        "else the partition GPT marks as root for this architecture. A failed mount detaches again."})
final class MountCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Option(names = {"-r", "--read-only"}, description = "Attach and mount read-only.")
    boolean readOnly;

    @Option(names = "--snapshot", description = "Mount read-write, keeping writes in a temporary overlay dropped at umount.")
    boolean snapshot;

    @Option(names = {"-o", "--options"}, paramLabel = "MOUNTOPTS", description = "More mount options (mount's -o), after ro or rw.")
    String options;

    @Option(names = "--backend", paramLabel = "auto|kmod|nbd|fuse", defaultValue = "auto", description = "The attach backend, as for attaching (default: ${DEFAULT-VALUE}).")
    String backend;

    @Mixin AllowRefs allowRefs;

    @Parameters(index = "0", paramLabel = "IMAGE[:PART]")
    String image;

    @Parameters(index = "1", paramLabel = "DIR")
    Path dir;

    @Override
    public Integer call() throws Exception {
        if (snapshot && readOnly) throw new CommandLine.ParameterException(spec.commandLine(), "--snapshot and --read-only exclude each other");
        ImagePart ip = ImagePart.parse(image);
        Losetup.mounter().mount(ip.image(), ip.part(), dir, backend, readOnly, snapshot, options, allowRefs.policy());
        return 0;
    }
}
