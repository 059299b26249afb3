package org.vdiskload.image;

import java.util.function.Consumer;

/**
 * Where the library's warnings go: things worth a line on the user's terminal that do not stop the command
 * (a file read as a raw disk although it parses as JSON, as qemu-img warns when its probe guesses raw).
 * Nowhere until the program says; a class of its own so that saying costs no format's loading at start.
 */
public final class Warnings {
    private static volatile Consumer<String> sink = w -> { };

    private Warnings() {}

    /** Sends every warning from now on, one line naming the file, to {@code to} (null: nowhere). */
    public static void to(Consumer<String> to) {
        sink = to == null ? w -> { } : to;
    }

    static void warn(String warning) {
        sink.accept(warning);
    }
}
