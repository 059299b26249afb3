package org.vdiskload.attach;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * What util-linux's blkid finds on a block device ({@code blkid -p -o export}: a low-level probe of the
 * device itself, no cache): TYPE, LABEL, UUID, USAGE ("filesystem", "raid", "crypto"...).
 */
final class Blkid {
    private static final long TIMEOUT_SECONDS = 60;
    /** blkid's exit status when it recognizes nothing on the device. */
    private static final int NOTHING_FOUND = 2;

    private Blkid() {}

    /** The device's tags; empty when blkid recognizes nothing there. */
    static Map<String, String> probe(String device) throws IOException {
        Process p = new ProcessBuilder("blkid", "-p", "-o", "export", device)
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                .redirectError(ProcessBuilder.Redirect.DISCARD).start();
        try {
            byte[] out = p.getInputStream().readAllBytes();
            if (!p.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IOException("blkid " + device + ": no answer in " + TIMEOUT_SECONDS + " s");
            }
            if (p.exitValue() == NOTHING_FOUND) return Map.of();
            if (p.exitValue() != 0) throw new IOException("blkid -p " + device + ": exit " + p.exitValue());
            return parse(new String(out, StandardCharsets.UTF_8));
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new IOException("blkid " + device + ": interrupted");
        }
    }

    /** KEY=value lines, where the value escapes spaces and other shell-special characters with a backslash. */
    static Map<String, String> parse(String export) {
        Map<String, String> tags = new LinkedHashMap<>();
        for (String line : export.split("\n")) {
            int eq = line.indexOf('=');
            if (eq <= 0) continue;
            StringBuilder value = new StringBuilder();
            for (int i = eq + 1; i < line.length(); i++) {
                char c = line.charAt(i);
                if (c == '\\' && i + 1 < line.length()) c = line.charAt(++i);
                value.append(c);
            }
            tags.put(line.substring(0, eq), value.toString());
        }
        return tags;
    }
}
