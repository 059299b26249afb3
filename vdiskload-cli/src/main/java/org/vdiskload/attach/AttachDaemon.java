package org.vdiskload.attach;

import org.vdiskload.image.DiskImage;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.ReferencePolicy;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.partition.PartitionTable;
import org.vdiskload.serving.ServedImage;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The serving process of an attachment. It opens and locks the image ({@link ServedImage}), reads its
 * partition table, has the backend make the devices, names them /dev/NAME and /dev/NAMEpN
 * ({@link DeviceLinks}), and records the attachment as ready. It then serves until it is told to stop
 * (SIGTERM from {@code -d}, or the backend's kernel side going away), when the backend removes the
 * devices (their last writes reach the image), the names go, the image is flushed and closed, and the
 * record removed.
 *
 * <p>Started to reconnect ({@code vdiskload --reconnect}), it takes over the devices its record names from
 * a serving process that died, instead of making new ones ({@link Backend#reconnect}); a failure then
 * leaves the devices as they were, for another try or {@code -d}.
 */
public final class AttachDaemon {
    private final StateDir state;
    private final Attachment reserved;
    private final PrintStream log;
    private final Backend backend;
    private final boolean reconnect;
    private ServedImage served;
    private boolean linked;
    private boolean ready;
    private boolean stopped;

    private AttachDaemon(StateDir state, Backend.Kind kind, Attachment reserved, boolean reconnect, PrintStream log) {
        this.state = state;
        this.reserved = reserved;
        this.reconnect = reconnect;
        this.log = log;
        this.backend = kind.create(state);
    }

    /**
     * Attaches the image {@code name}'s record names (or, with {@code reconnect}, takes over its recorded
     * devices) and serves it until stopped; returns when stopped.
     */
    public static void run(StateDir state, Backends backends, String name, boolean reconnect, PrintStream log) throws IOException, InterruptedException {
        Attachment reserved = state.find(name).filter(a -> Attachment.STARTING.equals(a.state()))
                .orElseThrow(() -> new IOException(state.record(name) + ": no such attachment being started"));
        if (reconnect && reserved.device().isEmpty()) throw new IOException(state.record(name) + ": names no device to reconnect");
        AttachDaemon daemon = new AttachDaemon(state, backends.named(reserved.backend()), reserved, reconnect, log);
        Thread hook = new Thread(daemon::stop, "vdiskload-detach");
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            daemon.start();
        } catch (IOException | RuntimeException e) {
            daemon.stop();
            throw e;
        }
        daemon.backend.awaitEnd();
        daemon.stop();
    }

    private void start() throws IOException {
        Path image = Path.of(reserved.image());
        // Read-write and locked against other writers; read-only (others may read, none may write:
        // qemu's rule); or read-only beneath a throwaway overlay for --snapshot. Its references lead
        // where the record allows (the directories allowed when it was attached). Metadata written through:
        // a write the kernel was told is done survives this process's death (kmod and nbd wait for a
        // --reconnect; the new process finds every answered write in the file).
        ServedImage.Access access = reserved.snapshot() ? ServedImage.Access.SNAPSHOT
                : reserved.readOnly() ? ServedImage.Access.READ_ONLY : ServedImage.Access.READ_WRITE;
        ReferencePolicy refs = ReferencePolicy.allowing(reserved.allowRefs().stream().map(Path::of).toList());
        served = ServedImage.open(image, OpenOptions.DEFAULTS.withRefs(refs).withMetadataWriteThrough(true), access, "attach");
        DiskImage disk = served.disk();
        if (access == ServedImage.Access.READ_WRITE && disk.layers().get(0).appendOnly()) {
            // Each unit takes one write, in order: a file system's first rewrite would fail with EOPNOTSUPP.
            throw ImageException.unsupported(image, "this " + disk.formatName() + " image takes each block once, in order "
                    + "(stream-optimized), not a file system's rewrites; attach it read-only (-r) or with --snapshot, or convert it");
        }
        PartitionTable table = PartitionTable.read(disk);
        Backend.Devices devices = reconnect ? backend.reconnect(reserved, disk, table)
                : backend.start(reserved.name(), disk, table, !reserved.readOnly());
        linked = true; // from here on, stop removes the names (a failed reconnect leaves the old ones alone)
        DeviceLinks.SYSTEM.link(reserved.name(), devices);
        List<String> backing = new ArrayList<>();
        List<ImageLayer> layers = disk.layers();
        for (int i = 1; i < layers.size(); i++) backing.add(layers.get(i).files().get(0).path().toString());
        Attachment done = reserved.withPid(ProcessHandle.current().pid())
                .ready(backing, disk.size(), devices.mountPoint(), devices.disk(), devices.partitions());
        state.write(done);
        ready = true;
        log.println("vdiskload: " + (reconnect ? "reconnected " : "attached ") + image + " (" + disk.formatName() + ") as " + done.path() + " on " + devices.disk()
                + " with backend " + reserved.backend() + (devices.partitions().isEmpty() ? "" : ", " + devices.partitions().size() + " partition(s)"));
        log.flush();
    }

    /**
     * Undoes everything (whatever part of it was done), once; the image is flushed and closed last but
     * for its lock. The record and log go only if the attachment was ready: after a failed start the
     * attaching command reads the log to tell why, and removes both.
     */
    private synchronized void stop() {
        if (stopped) return;
        stopped = true;
        String name = reserved.name();
        try {
            backend.stop();
        } catch (IOException e) {
            log.println("vdiskload: " + e.getMessage());
        }
        try {
            if (linked) DeviceLinks.SYSTEM.unlink(name);
        } catch (IOException e) {
            log.println("vdiskload: " + e.getMessage());
        }
        try {
            if (served != null) served.close();
        } catch (IOException e) {
            log.println("vdiskload: " + served.disk().path() + ": " + e.getMessage());
        }
        log.flush();
        if (!ready) return;
        try {
            state.locked(() -> {
                state.remove(name);
                return null;
            });
        } catch (IOException e) {
            log.println("vdiskload: " + e.getMessage());
        }
        log.flush();
    }
}
