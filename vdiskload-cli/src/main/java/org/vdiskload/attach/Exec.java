package org.vdiskload.attach;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Runs a system tool (losetup, umount) and turns its failure into one line naming the command. */
public final class Exec {
    private static final long TIMEOUT_SECONDS = 60;

    private Exec() {}

    /** Runs {@code command}; returns its standard output, trimmed. */
    public static String run(List<String> command) throws IOException {
        Process p = new ProcessBuilder(command).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
        try {
            byte[] out = p.getInputStream().readAllBytes();
            byte[] err = p.getErrorStream().readAllBytes();
            if (!p.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IOException(String.join(" ", command) + ": no answer in " + TIMEOUT_SECONDS + " s");
            }
            if (p.exitValue() != 0) {
                String why = lastWord(new String(err, StandardCharsets.UTF_8));
                throw new IOException(String.join(" ", command) + ": " + (why.isEmpty() ? "exit " + p.exitValue() : why));
            }
            return new String(out, StandardCharsets.UTF_8).strip();
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new IOException(String.join(" ", command) + ": interrupted");
        }
    }

    /** A tool's last line on stderr that says why, passing over mount's standing hint "dmesg(1) may have more information". */
    public static String lastWord(String stderr) {
        List<String> lines = stderr.lines().map(String::strip).filter(l -> !l.isEmpty() && !l.startsWith("dmesg(1) may have more")).toList();
        return lines.isEmpty() ? "" : lines.get(lines.size() - 1);
    }
}
