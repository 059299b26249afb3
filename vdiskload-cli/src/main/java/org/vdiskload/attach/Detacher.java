package org.vdiskload.attach;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * {@code -d}: refuses an attachment any of whose devices is mounted or held; otherwise asks its serving
 * process to stop (SIGTERM: it detaches the loop devices so their last writes reach the image, then
 * flushes and closes the image) and waits until it has. A serving process that is gone — killed —
 * leaves devices and a record behind: those are removed all the same, and the image, which may have
 * missed the last writes, is for {@code check -r}.
 */
public final class Detacher {
    private final StateDir state;
    private final Backends backends;
    private final Duration timeout;

    public Detacher(StateDir state, Backends backends, Duration timeout) {
        this.state = state;
        this.backends = backends;
        this.timeout = timeout;
    }

    /** The attachment {@code device} names: /dev/qcow0, qcow0, a partition (/dev/qcow0p1) or the kernel's device (/dev/loop3). */
    public Optional<Attachment> find(String device) throws IOException {
        String n = device.startsWith(DeviceNames.DEV + "/") ? device.substring(DeviceNames.DEV.length() + 1) : device;
        for (Attachment a : state.list()) {
            if (a.name().equals(n) || a.kernelDevices().contains(device)) return Optional.of(a);
            for (Attachment.PartitionDevice p : a.partitions()) if (p.name().equals(n)) return Optional.of(a);
        }
        return Optional.empty();
    }

    /**
     * Detaches {@code a}: first unmounts the file system {@code vdiskload mount} mounted (a mount made by hand
     * is left to its maker: the attachment is then busy, and refused).
     */
    public void detach(Attachment a) throws IOException, InterruptedException {
        unmountOwn(a);
        refuseIfBusy(a);
        Optional<ProcessHandle> daemon = servingProcess(a);
        if (daemon.isPresent()) {
            daemon.get().destroy();
            try {
                daemon.get().onExit().get(timeout.toMillis(), TimeUnit.MILLISECONDS);
            } catch (TimeoutException e) {
                throw new IOException(a.path() + ": the serving process (pid " + a.pid() + ") did not stop in " + timeout.toSeconds() + " s");
            } catch (ExecutionException e) {
                throw new IOException(a.path() + ": " + e.getCause());
            }
        }
        state.locked(() -> {
            backends.releaseOrphan(a, state);
            state.remove(a.name());
            return null;
        });
    }

    /** Unmounts where {@code vdiskload mount} mounted {@code a}, if one of its devices is still mounted there. */
    private static void unmountOwn(Attachment a) throws IOException {
        if (a.mountedOn().isEmpty()) return;
        Optional<String> mounted = BlockDevices.mountedOn(Path.of(a.mountedOn()));
        if (mounted.isPresent() && ImageMounter.holds(a, mounted.get())) Exec.run(List.of("umount", a.mountedOn()));
    }

    private static void refuseIfBusy(Attachment a) throws IOException {
        List<String[]> devices = new ArrayList<>(); // {what users call it, the kernel's device}
        devices.add(new String[] {a.path(), a.device()});
        for (Attachment.PartitionDevice p : a.partitions()) devices.add(new String[] {DeviceNames.DEV + "/" + p.name(), p.device()});
        for (String[] d : devices) {
            if (d[1].isEmpty()) continue;
            Optional<String> holder = BlockDevices.holder(d[1]);
            if (holder.isPresent()) throw new IOException(d[0] + " is busy: " + holder.get() + "; unmount or close it first");
        }
    }

    /** The serving process, if it still runs (and the pid was not reused by another program). */
    static Optional<ProcessHandle> servingProcess(Attachment a) {
        return ProcessHandle.of(a.pid()).filter(ProcessHandle::isAlive)
                .filter(p -> p.info().arguments().map(args -> List.of(args).contains(a.name())).orElse(false));
    }
}
