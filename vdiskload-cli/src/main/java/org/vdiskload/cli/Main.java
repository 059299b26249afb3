package org.vdiskload.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.util.Properties;

/** vdiskload: losetup for virtual-disk formats. */
@Command(name = "vdiskload",
        mixinStandardHelpOptions = true,
        versionProvider = Main.Version.class,
        description = "Read, map and attach virtual-disk images (qcow, qcow2, vmdk, vdi, vhd, vhdx, raw).",
        subcommands = {InfoCommand.class, MapCommand.class, CreateCommand.class, ConvertCommand.class, CheckCommand.class,
                ResizeCommand.class, CompareCommand.class, ServeCommand.class,
                DemoCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Runnable {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "missing command (see 'vdiskload --help')");
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
        CommandLine cl = new CommandLine(new Main());
        cl.setOut(out);
        cl.setErr(err);
        cl.setExecutionExceptionHandler(Errors::onExecution);
        cl.setParameterExceptionHandler(Errors::onParameter);
        // qemu-img resize takes "-10M" as a size: let resize see unknown "options" as its SIZE.
        cl.getSubcommands().get("resize").setUnmatchedOptionsArePositionalParams(true);
        int code = cl.execute(args);
        out.flush();
        err.flush();
        return code;
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
