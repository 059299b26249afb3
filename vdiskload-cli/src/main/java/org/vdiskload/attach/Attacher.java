package org.vdiskload.attach;

import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.ReferencePolicy;

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
 * no device, no record, no log; the log's last line becomes the error. It also starts the new serving
 * process that takes over the devices of one that died ({@link #reconnect}).
 */
public final class Attacher {
    private static final long POLL_MILLIS = 20;

    private final StateDir state;
    private final Backends backends;
    private final List<String> daemonCommand;
    private final Duration timeout;

    /**
     * @param daemonCommand how to start the serving process: the command line up to (without) the
     *                      attachment's name, which is appended
     */
    public Attacher(StateDir state, Backends backends, List<String> daemonCommand, Duration timeout) {
        this.state = state;
        this.backends = backends;
        this.daemonCommand = List.copyOf(daemonCommand);
        this.timeout = timeout;
    }

    /** The serving process's heap: its caches, buffers and the NBD and FUSE servers' direct buffers fit. */
    static final String SERVING_HEAP = "192m";

    /**
     * The java command line that runs {@code mainClass} of this very installation (same JVM, same class
     * path) as a serving process, with the launcher's class-data sharing archive where it started this JVM
     * with one ({@code VDISKLOAD_CDS}): the serving process starts as fast as the command did. An archive
     * that does not match is ignored (-Xshare:auto).
     */
    public static List<String> thisJava(String mainClass) {
        String java = ProcessHandle.current().info().command().orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        List<String> classPath = new ArrayList<>();
        for (String entry : System.getProperty("java.class.path").split(File.pathSeparator)) classPath.add(Path.of(entry).toAbsolutePath().toString());
        // A heap of fixed size, touched at start: the serving process never asks for more memory while
        // the machine may be short of it (ServingProcess locks it in RAM). No hsperfdata file: its
        // memory-mapped /tmp/hsperfdata_USER/PID would keep the root file system from being remounted
        // read-only at shutdown while the process serves.
        List<String> command = new ArrayList<>(List.of(java, "-XX:+ExitOnOutOfMemoryError", "-XX:-UsePerfData",
                "-Xms" + SERVING_HEAP, "-Xmx" + SERVING_HEAP, "-XX:+AlwaysPreTouch"));
        String archive = System.getenv("VDISKLOAD_CDS");
        if (archive != null && Files.isRegularFile(Path.of(archive))) {
            command.addAll(List.of("-XX:SharedArchiveFile=" + archive, "-Xshare:auto", "-Xlog:cds=off", "-Xlog:cds+dynamic=off"));
        }
        command.addAll(List.of("-cp", String.join(File.pathSeparator, classPath), mainClass));
        return command;
    }

    /**
     * Attaches {@code file} with the backend {@code --backend} names ({@link Backends#choose}: "auto" too);
     * its references are followed where {@code refs} allows, by this command and by the serving process
     * (and any later one {@code --reconnect} starts: the record keeps the directories).
     */
    public Attachment attach(Path file, String backend, boolean readOnly, boolean snapshot, ReferencePolicy refs)
            throws IOException, InterruptedException {
        Backend.Kind kind = backends.choose(backend);
        Path image = file.toAbsolutePath().normalize();
        String format;
        try (DiskImage d = Images.open(image, OpenOptions.DEFAULTS.withRefs(refs))) {
            format = d.formatName(); // and the image (with its backing chain) opens: a broken one stops here
        }
        List<String> allowRefs = refs.allowed().stream().map(Path::toString).toList();
        Attachment reserved = state.locked(() -> {
            Set<String> taken = new HashSet<>();
            for (Attachment a : state.list()) taken.add(a.name());
            String n = DeviceNames.lowestFree(DeviceNames.family(format), taken, Path.of(DeviceNames.DEV));
            Attachment a = Attachment.starting(n, kind.name(), ProcessHandle.current().pid(), image.toString(), format, readOnly, snapshot,
                    allowRefs);
            state.write(a);
            return a;
        });
        Process daemon = null;
        try {
            daemon = spawn(reserved.name(), List.of());
            return awaitReady(reserved.name(), image.toString(), daemon, 0);
        } catch (IOException | InterruptedException | RuntimeException e) {
            abandon(reserved, daemon);
            throw e;
        }
    }

    /**
     * {@code --reconnect}: starts a new serving process for attachment {@code a}, whose serving process
     * died, to take over its devices; returns once it has. A failure leaves the devices and the record as
     * they were (another try, or {@code -d}, follows).
     */
    public Attachment reconnect(Attachment a) throws IOException, InterruptedException {
        Backend.Kind kind = backends.named(a.backend());
        if (!kind.reconnects()) throw new IOException(a.path() + ": backend " + kind.name() + " cannot reconnect; detach it (-d) and attach the image again");
        if (a.snapshot()) throw new IOException(a.path() + ": attached with --snapshot, whose overlay died with its serving process; detach it (-d)");
        Attachment[] before = new Attachment[1];
        Attachment reserved = state.locked(() -> {
            Attachment now = state.find(a.name()).orElseThrow(() -> new IOException(a.path() + ": no longer attached"));
            if (!Attachment.READY.equals(now.state())) throw new IOException(a.path() + ": being attached or reconnected (by pid " + now.pid() + ")");
            if (Detacher.servingProcess(now).isPresent()) throw new IOException(a.path() + ": its serving process (pid " + now.pid() + ") runs: nothing to reconnect");
            before[0] = now;
            Attachment r = now.reconnecting(ProcessHandle.current().pid());
            state.write(r);
            return r;
        });
        Path log = state.log(a.name());
        long logStart = Files.exists(log) ? Files.size(log) : 0; // the dead process's lines are no reason
        Process daemon = null;
        try {
            daemon = spawn(a.name(), List.of("--reconnect"));
            return awaitReady(a.name(), a.image(), daemon, logStart);
        } catch (IOException | InterruptedException | RuntimeException e) {
            stop(daemon);
            state.locked(() -> {
                if (state.find(a.name()).filter(reserved::equals).isPresent()) state.write(before[0]);
                return null;
            });
            throw e;
        }
    }

    /** Starts the serving process for attachment {@code name}, in its own session, its output appended to its log. */
    private Process spawn(String name, List<String> options) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add("setsid"); // its own session: no terminal's hangup or ^C reaches it
        // argv[0] "@vdiskload-NAME": systemd's mark of a storage daemon the root file system may
        // live on, which its final killing spree at shutdown spares (docs: ROOT_STORAGE_DAEMONS).
        cmd.addAll(List.of("bash", "-c", "exec -a \"$0\" \"$@\"", "@vdiskload-" + name));
        cmd.addAll(daemonCommand);
        cmd.addAll(options);
        cmd.add(name);
        return ServingProcess.start(new ProcessBuilder(cmd).redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(state.log(name).toFile())));
    }

    /** Waits until {@code daemon} records attachment {@code name} ready; its log from {@code logStart} on tells why it failed. */
    private Attachment awaitReady(String name, String image, Process daemon, long logStart) throws IOException, InterruptedException {
        Path log = state.log(name);
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            Optional<Attachment> a = state.find(name);
            if (a.isPresent() && Attachment.READY.equals(a.get().state())) return a.get();
            if (!daemon.isAlive()) throw new IOException(reason(log, logStart, "the serving process exited (" + daemon.exitValue() + ")"));
            if (System.nanoTime() > deadline) throw new IOException(image + ": the devices were not ready in " + timeout.toSeconds() + " s (log: " + log + ")");
            Thread.sleep(POLL_MILLIS);
        }
    }

    private void stop(Process daemon) throws InterruptedException {
        if (daemon != null && daemon.isAlive()) {
            daemon.destroy();
            if (!daemon.waitFor(timeout.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS)) daemon.destroyForcibly().waitFor();
        }
    }

    /** Stops a serving process that failed to start and removes all it left. */
    private void abandon(Attachment a, Process daemon) throws IOException, InterruptedException {
        stop(daemon);
        state.locked(() -> {
            backends.releaseOrphan(a, state);
            state.remove(a.name());
            return null;
        });
    }

    /** The serving process's own last word (in its log from byte {@code from} on) on why it failed, or {@code otherwise}. */
    private static String reason(Path log, long from, String otherwise) throws IOException {
        if (!Files.exists(log)) return otherwise;
        byte[] all = Files.readAllBytes(log);
        int start = (int) Math.min(from, all.length);
        List<String> lines = new String(all, start, all.length - start, java.nio.charset.StandardCharsets.UTF_8).lines().toList();
        for (int i = lines.size() - 1; i >= 0; i--) {
            String l = lines.get(i).strip();
            if (l.startsWith("vdiskload: ")) return l.substring("vdiskload: ".length());
        }
        return lines.isEmpty() ? otherwise : otherwise + ": " + lines.get(lines.size() - 1).strip();
    }
}
