package org.vdiskload.cli;

import org.vdiskload.attach.Attacher;
import org.vdiskload.attach.Attachment;
import org.vdiskload.attach.Backends;
import org.vdiskload.attach.BlockDevices;
import org.vdiskload.attach.Detacher;
import org.vdiskload.attach.ImageMounter;
import org.vdiskload.attach.StateDir;
import org.vdiskload.text.Printable;
import picocli.CommandLine;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/** The losetup-style actions of the top-level command: attach, -l, -j, -d, -D, --reconnect. */
final class Losetup {
    static final Duration TIMEOUT = Duration.ofSeconds(120);
    /**
     * Overrides TIMEOUT, how long attaching waits for the devices (whole seconds): for the boot, where a slow
     * machine had better wait than drop to the initramfs shell (the initramfs boot script sets it), and tests.
     */
    static final String TIMEOUT_ENV = "VDISKLOAD_ATTACH_TIMEOUT";
    private static final long MAX_TIMEOUT_SECONDS = 86_400;
    private static final String[] COLUMNS = {"NAME", "BACKEND", "DEVICE", "SIZE", "RO", "FORMAT", "MOUNTPOINT", "IMAGE", "BACKING"};

    private final Main m;
    private final PrintWriter out;
    private final StateDir state = StateDir.system();

    Losetup(Main m) {
        this.m = m;
        this.out = Main.out(m.spec);
    }

    int run() throws IOException, InterruptedException {
        int actions = (m.list ? 1 : 0) + (m.associated != null ? 1 : 0) + (m.detach ? 1 : 0) + (m.detachAll ? 1 : 0) + (m.reconnect ? 1 : 0);
        if (actions > 1) throw usage("-l, -j, -d, -D and --reconnect exclude each other");
        if (actions > 0 && !m.allowRefs.directories.isEmpty()) {
            throw usage("--allow-refs is for attaching a FILE (--reconnect uses the directories allowed when it was attached)");
        }
        if (m.list || m.associated != null) {
            if (!m.args.isEmpty()) throw usage("unexpected argument: " + m.args.get(0));
            return list();
        }
        if (m.detach) {
            if (m.args.isEmpty()) throw usage("-d needs the device(s) to detach");
            return detach(m.args);
        }
        if (m.reconnect) {
            if (m.args.isEmpty()) throw usage("--reconnect needs the device(s) to reconnect");
            return reconnect(m.args);
        }
        if (m.detachAll) {
            if (!m.args.isEmpty()) throw usage("-D takes no arguments");
            List<String> all = new ArrayList<>();
            for (Attachment a : state.list()) all.add(a.path());
            return detach(all);
        }
        if (m.args.isEmpty()) throw usage("missing command or FILE (see 'vdiskload --help')");
        if (m.args.size() > 1) throw usage("attach one FILE at a time (got " + m.args.size() + ")");
        return attach(Path.of(m.args.get(0)));
    }

    private int attach(Path file) throws IOException, InterruptedException {
        if (m.snapshot && m.readOnly) throw usage("--snapshot and --read-only exclude each other");
        List<String> choices = new ArrayList<>(AttachBackends.ALL.names());
        choices.sort(null);
        choices.add(0, Backends.AUTO);
        if (!choices.contains(m.backend)) {
            throw usage("--backend " + m.backend + ": choose " + String.join(", ", choices.subList(0, choices.size() - 1)) + " or " + choices.get(choices.size() - 1));
        }
        if (!Files.exists(file)) {
            // "vdiskload infoo disk.qcow2" lands here too: a bare word may have been meant as a command
            boolean word = !file.toString().contains("/") && !file.toString().contains(".");
            throw new IOException(file + (word ? ": no such file or command (see 'vdiskload --help')" : ": no such file"));
        }
        List<String> daemon = new ArrayList<>(Attacher.thisJava(Main.class.getName()));
        daemon.add("attach-daemon");
        Attacher attacher = new Attacher(state, AttachBackends.ALL, daemon, timeout(System.getenv(TIMEOUT_ENV)));
        Attachment a = attacher.attach(file, m.backend, m.readOnly, m.snapshot,
                m.allowRefs.policy());
        if (m.show) {
            for (Attachment.PartitionDevice p : a.partitions()) out.println("/dev/" + p.name());
            out.println(a.path());
        }
        return 0;
    }

    /** What {@code mount}, {@code umount} and {@code tar} attach, mount and detach with. */
    static ImageMounter mounter() throws IOException {
        StateDir state = StateDir.system();
        List<String> daemon = new ArrayList<>(Attacher.thisJava(Main.class.getName()));
        daemon.add("attach-daemon");
        return new ImageMounter(state, new Attacher(state, AttachBackends.ALL, daemon, timeout(System.getenv(TIMEOUT_ENV))),
                new Detacher(state, AttachBackends.ALL, TIMEOUT));
    }

    private int detach(List<String> devices) throws IOException, InterruptedException {
        Detacher d = new Detacher(state, AttachBackends.ALL, TIMEOUT);
        PrintWriter err = m.spec.commandLine().getErr();
        int code = 0;
        for (String dev : devices) {
            try {
                Optional<Attachment> a = d.find(dev);
                if (a.isEmpty()) throw new IOException(dev + ": not attached by vdiskload (see vdiskload -l)");
                d.detach(a.get());
            } catch (IOException e) {
                err.println("vdiskload: " + e.getMessage());
                err.flush();
                code = Errors.EXIT_ERROR;
            }
        }
        return code;
    }

    private int reconnect(List<String> devices) throws IOException, InterruptedException {
        Detacher d = new Detacher(state, AttachBackends.ALL, TIMEOUT);
        List<String> daemon = new ArrayList<>(Attacher.thisJava(Main.class.getName()));
        daemon.add("attach-daemon");
        Attacher attacher = new Attacher(state, AttachBackends.ALL, daemon, timeout(System.getenv(TIMEOUT_ENV)));
        PrintWriter err = m.spec.commandLine().getErr();
        int code = 0;
        for (String dev : devices) {
            try {
                Optional<Attachment> a = d.find(dev);
                if (a.isEmpty()) throw new IOException(dev + ": not attached by vdiskload (see vdiskload -l)");
                Attachment done = attacher.reconnect(a.get());
                if (m.show) out.println(done.path());
            } catch (IOException e) {
                err.println("vdiskload: " + e.getMessage());
                err.flush();
                code = Errors.EXIT_ERROR;
            }
        }
        return code;
    }

    private int list() throws IOException {
        List<Attachment> all = new ArrayList<>();
        String wanted = m.associated == null ? null : m.associated.toAbsolutePath().normalize().toString();
        for (Attachment a : state.list()) if (wanted == null || a.image().equals(wanted)) all.add(a);
        if (m.json) {
            out.println(Json.mapper().writeValueAsString(java.util.Map.of("attachments", all)));
            return 0;
        }
        if (all.isEmpty()) return 0;
        List<String[]> rows = new ArrayList<>();
        rows.add(COLUMNS);
        for (Attachment a : all) {
            String[] row = {a.path(), a.backend(), a.device().isEmpty() ? "-" : a.device(), Long.toString(a.size()),
                    a.readOnly() ? "1" : "0", a.format(), mountPoints(a), a.image(), a.backing().isEmpty() ? "" : a.backing().get(0)};
            for (int i = 0; i < row.length; i++) row[i] = Printable.of(row[i]); // the backing file's name is the image's text
            rows.add(row);
        }
        int[] width = new int[COLUMNS.length];
        for (String[] r : rows) for (int i = 0; i < r.length; i++) width[i] = Math.max(width[i], r[i].length());
        for (String[] r : rows) {
            StringBuilder b = new StringBuilder();
            for (int i = 0; i < r.length; i++) {
                b.append(i == r.length - 1 ? r[i] : String.format("%-" + width[i] + "s ", r[i]));
            }
            out.println(b.toString().stripTrailing());
        }
        return 0;
    }

    /** Where the attachment's devices are mounted (by {@code vdiskload mount} or by hand), comma-separated; "-" for nowhere. */
    private static String mountPoints(Attachment a) throws IOException {
        List<String> all = new ArrayList<>();
        for (String dev : a.kernelDevices()) all.addAll(BlockDevices.mountPoints(dev));
        return all.isEmpty() ? "-" : String.join(",", all);
    }

    /** How long to wait for the devices: {@code value} of VDISKLOAD_ATTACH_TIMEOUT, TIMEOUT when unset. */
    static Duration timeout(String value) throws IOException {
        if (value == null || value.isEmpty()) return TIMEOUT;
        if (!value.matches("[0-9]{1,5}") || Long.parseLong(value) < 1 || Long.parseLong(value) > MAX_TIMEOUT_SECONDS) {
            throw new IOException(TIMEOUT_ENV + "=" + Printable.of(value) + ": want whole seconds, 1 to " + MAX_TIMEOUT_SECONDS);
        }
        return Duration.ofSeconds(Long.parseLong(value));
    }

    private CommandLine.ParameterException usage(String message) {
        return new CommandLine.ParameterException(m.spec.commandLine(), message);
    }
}
