package org.vdiskload.attach;

import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * The attaching command's side: checks the image, reserves the lowest free name, starts the serving
 * process in its own session with its log under the state directory, and returns once that process
 * has recorded every device as usable. If the process fails or gives no sign in time, nothing is left:
 * no device, no record, no log; the log's last line becomes the error.
 */
public final class Attacher {
    private static final long POLL_MILLIS = 20;

    private final StateDir state;
    private final List<String> daemonCommand;
    private final Duration timeout;

    /**
     * @param daemonCommand how to start the serving process: the command line up to (without) the
     *                      attachment's name, which is appended
     */
    public Attacher(StateDir state, List<String> daemonCommand, Duration timeout) {
        this.state = state;
        this.daemonCommand = List.copyOf(daemonCommand);
        this.timeout = timeout;
    }

    /** The java command line that runs {@code mainClass} of this very installation (same JVM, same class path). */
    public static List<String> thisJava(String mainClass) {
        String java = ProcessHandle.current().info().command().orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        List<String> classPath = new ArrayList<>();
        for (String entry : System.getProperty("java.class.path").split(File.pathSeparator)) classPath.add(Path.of(entry).toAbsolutePath().toString());
        return List.of(java, "-XX:+ExitOnOutOfMemoryError", "-cp", String.join(File.pathSeparator, classPath), mainClass);
    }

    public Attachment attach(Path file, String backend, boolean readOnly, boolean snapshot) throws IOException, InterruptedException {
        Backend.Kind kind = Backend.kind(backend);
        Path image = file.toAbsolutePath().normalize();
        String format;
        try (DiskImage d = Images.open(image, OpenOptions.DEFAULTS)) {
            format = d.formatName(); // and the image (with its backing chain) opens: a broken one stops here
        }
        Attachment reserved = state.locked(() -> {
            Set<String> taken = new HashSet<>();
            for (Attachment a : state.list()) taken.add(a.name());
            String n = DeviceNames.lowestFree(DeviceNames.family(format), taken, Path.of(DeviceNames.DEV));
            Attachment a = Attachment.starting(n, kind.name(), ProcessHandle.current().pid(), image.toString(), format, readOnly, snapshot);
            state.write(a);
            return a;
        });
        String name = reserved.name();
        Process daemon = null;
        try {
            List<String> cmd = new ArrayList<>();
            cmd.add("setsid"); // its own session: no terminal's hangup or ^C reaches it
            // argv[0] "@vdiskload-NAME": systemd's mark of a storage daemon the root file system may
            // live on, which its final killing spree at shutdown spares (docs: ROOT_STORAGE_DAEMONS).
            cmd.addAll(List.of("bash", "-c", "exec -a \"$0\" \"$@\"", "@vdiskload-" + name));
            cmd.addAll(daemonCommand);
            cmd.add(name);
            Path log = state.log(name);
            daemon = new ProcessBuilder(cmd).redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                    .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
            long deadline = System.nanoTime() + timeout.toNanos();
            while (true) {
                Optional<Attachment> a = state.find(name);
                if (a.isPresent() && Attachment.READY.equals(a.get().state())) return a.get();
                if (!daemon.isAlive()) throw new IOException(reason(log, "the serving process exited (" + daemon.exitValue() + ")"));
                if (System.nanoTime() > deadline) throw new IOException(image + ": the devices were not ready in " + timeout.toSeconds() + " s (log: " + log + ")");
                Thread.sleep(POLL_MILLIS);
            }
        } catch (IOException | InterruptedException | RuntimeException e) {
            abandon(reserved, kind, daemon);
            throw e;
        }
    }

    /** Stops a serving process that failed to start and removes all it left. */
    private void abandon(Attachment a, Backend.Kind kind, Process daemon) throws IOException, InterruptedException {
        if (daemon != null && daemon.isAlive()) {
            daemon.destroy();
            if (!daemon.waitFor(timeout.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS)) daemon.destroyForcibly().waitFor();
        }
        state.locked(() -> {
            kind.releaseOrphan(a, state);
            state.remove(a.name());
            return null;
        });
    }

    /** The serving process's own last word on why it failed, or {@code otherwise}. */
    private static String reason(Path log, String otherwise) throws IOException {
        if (!Files.exists(log)) return otherwise;
        List<String> lines = Files.readAllLines(log);
        for (int i = lines.size() - 1; i >= 0; i--) {
            String l = lines.get(i).strip();
            if (l.startsWith("vdiskload: ")) return l.substring("vdiskload: ".length());
        }
        return lines.isEmpty() ? otherwise : otherwise + ": " + lines.get(lines.size() - 1).strip();
    }
}
