package org.vdiskload.cli;

import org.vdiskload.text.Printable;
import picocli.CommandLine;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.AccessDeniedException;
import java.nio.file.NoSuchFileException;

/** Turns failures into the single line a user sees; a stack trace only with VDISKLOAD_DEBUG=1. */
final class Errors {
    static final int EXIT_ERROR = 1;

    private Errors() {}

    static int onExecution(Exception e, CommandLine cl, CommandLine.ParseResult parsed) {
        report(e, cl.getErr());
        return cl.getCommand() instanceof CompareCommand ? CompareCommand.EXIT_ERROR : EXIT_ERROR;
    }

    /** Prints the line for a command's failure; returns {@link #EXIT_ERROR}. */
    static int report(Exception e, PrintWriter err) {
        err.println("vdiskload: " + describe(e));
        if (System.getenv("VDISKLOAD_DEBUG") != null) e.printStackTrace(err);
        err.flush();
        return EXIT_ERROR;
    }

    static int onParameter(CommandLine.ParameterException e, String[] args) {
        CommandLine cl = e.getCommandLine();
        cl.getErr().println("vdiskload: " + Printable.of(e.getMessage()) + " (see '" + cl.getCommandSpec().qualifiedName() + " --help')");
        cl.getErr().flush();
        return cl.getCommand() instanceof CompareCommand ? CompareCommand.EXIT_ERROR : EXIT_ERROR;
    }

    /** One line whatever the failure carries: control characters (a newline in a name from an image) escaped. */
    static String describe(Throwable e) {
        return Printable.of(what(e));
    }

    private static String what(Throwable e) {
        if (e instanceof NoSuchFileException n) return n.getFile() + ": no such file";
        if (e instanceof AccessDeniedException a) return a.getFile() + ": permission denied";
        if (e instanceof IOException && e.getMessage() != null) return e.getMessage();
        if (e instanceof OutOfMemoryError) return "out of memory";
        return "internal error: " + e;
    }
}
