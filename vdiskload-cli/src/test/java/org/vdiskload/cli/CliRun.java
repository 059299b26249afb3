package org.vdiskload.cli;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

/** One in-process run of the CLI as a test sees it: exit code, stdout and stderr. */
public record CliRun(int exit, String out, String err) {
    /**
     * Runs {@code vdiskload ARGS} in this JVM, failing the test if it takes longer than {@code limit}
     * (a guard against hangs, not a speed measurement).
     */
    public static CliRun run(Duration limit, String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = assertTimeoutPreemptively(limit, () -> Main.run(new PrintWriter(out), new PrintWriter(err), args));
        return new CliRun(code, out.toString(), err.toString());
    }

    /** The last line on stdout (where --show prints the device), or "". */
    public String lastLine() {
        List<String> l = out.lines().toList();
        return l.isEmpty() ? "" : l.get(l.size() - 1);
    }
}
