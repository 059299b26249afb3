package org.vdiskload.cli;

import org.vdiskload.attach.Attachment;
import org.vdiskload.attach.StateDir;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * {@code vdiskload vdisktab}: attaches and detaches the images /etc/vdisktab lists, for
 * vdiskload-attach@.service (one instance per image, started by vdiskload-generator).
 */
@Command(name = "vdisktab", description = {"Check /etc/vdisktab, or attach or detach one image it lists with its options",
        "(what vdiskload-attach@IMAGE.service runs at boot and shutdown)."})
final class VdisktabCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--file", paramLabel = "FILE", description = "The table to read (default: /etc/vdisktab).")
    Path file = Vdisktab.DEFAULT;

    @Parameters(index = "0", paramLabel = "check|attach|detach", description = "check: parse the table and list its images; attach IMAGE, detach IMAGE.")
    String action;

    @Parameters(index = "1", arity = "0..1", paramLabel = "IMAGE", description = "The image, as the table names it.")
    Path image;

    @Override
    public Integer call() throws IOException {
        Vdisktab table;
        try {
            table = Vdisktab.parse(file, Files.readString(file));
        } catch (NoSuchFileException e) {
            throw new IOException(file + ": no such file");
        }
        PrintWriter out = Main.out(spec);
        PrintWriter err = spec.commandLine().getErr();
        switch (action) {
            case "check" -> {
                if (image != null) throw new IOException("vdisktab check takes no IMAGE");
                for (Vdisktab.Entry e : table.entries()) out.println(String.join(" ", e.attachArguments()));
                return 0;
            }
            case "attach" -> {
                Vdisktab.Entry e = entry(table);
                List<String> args = new ArrayList<>(e.attachArguments());
                args.add(0, "--show");
                return Main.run(out, err, args.toArray(String[]::new));
            }
            case "detach" -> {
                Vdisktab.Entry e = entry(table);
                List<String> devices = new ArrayList<>();
                for (Attachment a : StateDir.system().list()) {
                    if (Path.of(a.image()).equals(e.image().toAbsolutePath().normalize())) devices.add(a.path());
                }
                if (devices.isEmpty()) return 0; // not attached (any more): nothing to do at shutdown
                devices.add(0, "--detach");
                return Main.run(out, err, devices.toArray(String[]::new));
            }
            default -> throw new IOException("vdisktab: unknown action \"" + action + "\" (check, attach or detach)");
        }
    }

    private Vdisktab.Entry entry(Vdisktab table) throws IOException {
        if (image == null) throw new IOException("vdisktab " + action + " needs the IMAGE");
        return table.find(image).orElseThrow(() -> new IOException(file + ": does not list " + image));
    }
}
