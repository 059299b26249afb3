package org.vdiskload.image;

import java.util.function.Consumer;

/**
 * Where the library's warnings go: things worth a line on the user's terminal that do not stop the command
 * (a file read as a raw disk although it parses as JSON, as qemu-img warns when its probe guesses raw).
 * Nowhere until the program says; a class of its own so that saying costs no format's loading at start.
 *
 * <p>The sink is the calling thread's (and that of threads it starts afterwards): commands run side by side
 * in one JVM, as the CLI's tests run them, each keep their warnings. A thread that never had one set uses
 * the one set last.
 */
public final class Warnings {
    private static final Consumer<String> NOWHERE = w -> { };
    private static volatile Consumer<String> last = NOWHERE;
    private static final InheritableThreadLocal<Consumer<String>> SINK = new InheritableThreadLocal<>();

    private Warnings() {}

    /** Sends every warning from now on, one line naming the file, to {@code to} (null: nowhere). */
    public static void to(Consumer<String> to) {
        Consumer<String> sink = to == null ? NOWHERE : to;
        last = sink;
        SINK.set(sink);
    }

    static void warn(String warning) {
        Consumer<String> sink = SINK.get();
        (sink == null ? last : sink).accept(warning);
    }
}
