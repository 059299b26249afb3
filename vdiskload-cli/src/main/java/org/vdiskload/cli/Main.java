package org.vdiskload.cli;

import org.vdiskload.image.Warnings;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Callable;

/** vdiskload: losetup for virtual-disk formats. */
@Command(name = "vdiskload",
        mixinStandardHelpOptions = true,
        versionProvider = Main.Version.class,
        synopsisHeading = "Usage: ",
        customSynopsis = {
                "vdiskload [-r | --snapshot] [--show] [--backend auto|kmod|nbd|fuse] [--allow-refs DIR]... FILE",
                "       vdiskload -l [--json] | -j FILE | -d DEV... | -D | --reconnect DEV...",
                "       vdiskload COMMAND [ARGS]"},
        description = {"Attach FILE as /dev/<fmt>N (and /dev/<fmt>NpM per partition), as losetup does; list and detach attachments;", "or run a COMMAND on virtual-disk images (qcow, qcow2, vmdk, vdi, vhd, vhdx, raw)."})
public final class Main implements Callable<Integer> {
    /**
     * The subcommands, in the order help lists them. Added in {@link #run} rather than named in
     * {@code @Command}: picocli builds a command's whole model up front, reflection over every option
     * of every subcommand, a tenth of a second or more of a one-shot run's start-up.
     */
    private static final List<Class<?>> COMMANDS = List.of(InfoCommand.class, MapCommand.class, CreateCommand.class,
            ConvertCommand.class, CheckCommand.class, ResizeCommand.class, CompareCommand.class, ServeCommand.class,
            MountCommand.class, UmountCommand.class, TarCommand.class,
            DemoCommand.class, VdisktabCommand.class, AttachDaemonCommand.class, CommandLine.HelpCommand.class);

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = {"-r", "--read-only"}, description = "Attach read-only.")
    boolean readOnly;

    @Option(names = "--snapshot", description = "Attach read-write, keeping writes in a temporary overlay dropped at detach.")
    boolean snapshot;

    @Option(names = "--show", description = "Print the device names, the whole disk's last.")
    boolean show;

    @Option(names = "--backend", paramLabel = "auto|kmod|nbd|fuse", defaultValue = "auto", description = "How the kernel gets the image: kmod (vdisk.ko serves it in the kernel), nbd (the kernel's nbd driver), fuse (FUSE and loop devices); auto: the first the kernel has, in that order (default: ${DEFAULT-VALUE}).")
    String backend;

    @Option(names = {"-l", "--list"}, description = "List attached images.")
    boolean list;

    @Option(names = "--json", description = "With -l or -j: JSON output.")
    boolean json;

    @Option(names = {"-j", "--associated"}, paramLabel = "FILE", description = "List the devices attached to FILE.")
    Path associated;

    @Option(names = {"-d", "--detach"}, description = "Detach the devices given (/dev/qcow0, qcow0, /dev/loop3...).")
    boolean detach;

    @Option(names = {"-D", "--detach-all"}, description = "Detach every attached image.")
    boolean detachAll;

    @Option(names = "--reconnect", description = "Start a new serving process for the devices given (backends kmod and nbd), whose serving process died: the same device carries on, and I/O waiting for it resumes.")
    boolean reconnect;

    @CommandLine.Mixin
    AllowRefs allowRefs;

    @Parameters(paramLabel = "FILE|DEV", arity = "0..*", description = "The image to attach, or the devices for -d or --reconnect.")
    List<String> args = new ArrayList<>();

    @Override
    public Integer call() throws IOException, InterruptedException {
        return new Losetup(this).run();
    }

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs the CLI on stdout/stderr and returns the exit code. */
    public static int run(String... args) {
        return run(new PrintWriter(System.out, true), new PrintWriter(System.err, true), args);
    }

    /** Runs the CLI and returns the exit code; errors become one line on {@code err}. */
    public static int run(PrintWriter out, PrintWriter err, String... args) {
        Warnings.to(warning -> err.println("vdiskload: warning: " + warning));
        Integer plain = ConvertCommand.runPlain(args, out, err);
        if (plain != null) {
            out.flush();
            return plain;
        }
        CommandLine cl = commandLine(commandsFor(args));
        cl.setOut(out);
        cl.setErr(err);
        cl.setExecutionExceptionHandler(Errors::onExecution);
        cl.setParameterExceptionHandler(Errors::onParameter);
        int code = cl.execute(args);
        out.flush();
        err.flush();
        return code;
    }

    /** The whole command tree, as every run and the man pages (generated from it at build time) see it. */
    static CommandLine commandLine() {
        return commandLine(COMMANDS);
    }

    private static CommandLine commandLine(List<Class<?>> commands) {
        CommandLine cl = new CommandLine(new Main());
        for (Class<?> command : commands) {
            cl.addSubcommand(command);
        }
        // Every command answers -h/--help (the usage errors point there) and -V/--version.
        cl.getSubcommands().values().forEach(sub -> sub.getCommandSpec().mixinStandardHelpOptions(true));
        // qemu-img resize takes "-10M" as a size: let resize see unknown "options" as its SIZE.
        CommandLine resize = cl.getSubcommands().get("resize");
        if (resize != null) resize.setUnmatchedOptionsArePositionalParams(true);
        return cl;
    }

    /**
     * Only the command named first when it is one (its parse sees no other command anyway); every
     * command otherwise: attaching, help, and errors that list them.
     */
    private static List<Class<?>> commandsFor(String[] args) {
        if (args.length > 0) {
            for (Class<?> command : COMMANDS) {
                if (command != CommandLine.HelpCommand.class && command.getAnnotation(Command.class).name().equals(args[0])) {
                    return List.of(command);
                }
            }
        }
        return COMMANDS;
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() throws IOException {
            Properties p = new Properties();
            try (InputStream in = Main.class.getResourceAsStream("version.properties")) {
                if (in != null) p.load(in);
            }
            return new String[] {"vdiskload " + p.getProperty("version", "unknown")};
        }
    }

    static PrintWriter out(CommandLine.Model.CommandSpec spec) {
        return spec.commandLine().getOut();
    }
}
