package org.vdiskload.cli;

import org.vdiskload.attach.ImageTar;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code vdiskload tar}: an image's file system as a tar stream, e.g. for {@code podman import}. */
@Command(name = "tar", description = {
        "Write the tree of one of IMAGE's file systems as a tar archive (POSIX format, numeric owners, modes, times,",
        "links, device nodes, xattrs and ACLs), e.g. 'vdiskload tar vm.qcow2 | podman import - vm:latest'.",
        "The file system is mounted read-only in a private mount namespace; PART as for 'vdiskload mount'."})
final class TarCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Option(names = {"-r", "--read-only"}, description = "Attach the image read-only (a journal needing recovery then fails);"
            + " by default writes such as journal recovery go to a throwaway overlay: the image is never written.")
    boolean readOnly;

    @Option(names = {"-f", "--file"}, paramLabel = "OUT.tar|-", defaultValue = "-", description = "Where to write the archive (default: standard output).")
    String file;

    @Option(names = "--backend", paramLabel = "auto|kmod|nbd|fuse", defaultValue = "auto", description = "The attach backend, as for attaching (default: ${DEFAULT-VALUE}).")
    String backend;

    @Mixin AllowRefs allowRefs;

    @Parameters(paramLabel = "IMAGE[:PART]")
    String image;

    @Override
    public Integer call() throws Exception {
        ImagePart ip = ImagePart.parse(image);
        Path out = file.equals("-") ? null : Path.of(file);
        new ImageTar(Losetup.mounter()).write(ip.image(), ip.part(), backend, readOnly, allowRefs.policy(), out, spec.commandLine().getErr());
        return 0;
    }
}
