package org.vdiskload.attach.nbd;

import org.vdiskload.attach.Attachment;
import org.vdiskload.attach.Backend;
import org.vdiskload.attach.DeadTimeout;
import org.vdiskload.attach.KernelPartitions;
import org.vdiskload.attach.StateDir;
import org.vdiskload.image.DiskImage;
import org.vdiskload.nbd.Export;
import org.vdiskload.nbd.NbdServer;
import org.vdiskload.partition.PartitionTable;

import java.io.IOException;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Backend {@code nbd}: the kernel's own nbd driver, with this process as its server. The driver gets
 * connected Unix sockets over netlink ({@link NbdNetlink}; on kernels without it, through the
 * NBD_SET_SOCK ioctls, {@link NbdIoctl}: both behind {@link NbdControl}) and speaks NBD's transmission
 * phase on them straight away; {@link NbdServer#serveConnected} answers. The driver picks a free
 * /dev/nbdN and scans its partitions itself (/dev/nbdNpM).
 *
 * <p>Several connections (one per two CPUs, up to four) spread the driver's queues over server threads: safe,
 * as every connection serves the one image and a flush on any of them covers all (CAN_MULTI_CONN). Each
 * connection brings its own reading thread and workers: on 2 CPUs, two connections' threads took turns on
 * the CPUs and 4 KiB random reads at queue depth 16 ran at about half the rate of one connection
 * (bench/README.md, nbd in the VM), so a machine with 2 CPUs or fewer gets one.
 *
 * <p><b>When this process dies</b> (SIGKILL, the OOM killer, a crash), the device stays: the driver sees
 * its sockets close and marks the connections dead, and {@code vdiskload --reconnect} starts a new serving
 * process, which hands the driver fresh sockets for the same /dev/nbdN with NBD_CMD_RECONFIGURE
 * ({@link #reconnect}). What I/O sees meanwhile (drivers/block/nbd.c, Linux 6.1):
 * <ul>
 * <li>A request sent after the death waits, in nbd_handle_cmd's wait_for_reconnect, up to
 *     the dead-connection timeout ({@link DeadTimeout}) for a live connection; a reconnect wakes it,
 *     and it goes out on the new connection. Once that time passes with none, it fails with EIO, and the
 *     driver marks the device disconnected: later I/O fails with EIO at once. A reconnect still works
 *     then (it clears that mark) and later I/O succeeds, but what failed stays failed (a filesystem may
 *     have shut itself down).
 * <li>A request the dead process had received and not answered is resent whole: when its
 *     {@link #TIMEOUT_SECONDS} request timeout expires the driver requeues it (nbd_xmit_timeout: more than
 *     one connection, or a timeout set), and it then goes as above — on the new connection, or waiting for
 *     one. So it completes up to {@link #TIMEOUT_SECONDS} after it was sent, not at the reconnect.
 * <li>Writes the dead process had answered are not resent. They are as safe as the format made them
 *     before the answer: qcow2's writer puts data and metadata in the file (written through, not yet
 *     synced), so the process's death loses none of them and only a host crash could lose what no flush
 *     covered; a flush the process answered was durable (the image was flushed first).
 * </ul>
 * Reconnecting is a command, not an automatic respawn: respawning needs a second resident process per
 * attachment watching the first (or a service manager's Restart=, which can run this command), and a
 * process that died of a bug or of memory would be restarted into the same death in a loop; a deliberate
 * kill would be undone. {@code -d} instead disconnects the device ({@link #KIND}'s releaseOrphan).
 */
public final class NbdBackend implements Backend {
    public static final Kind KIND = new Kind() {
        @Override
        public String name() {
            return "nbd";
        }

        @Override
        public boolean available() {
            return NbdBackend.available();
        }

        @Override
        public Backend create(StateDir state) {
            return new NbdBackend(state);
        }

        @Override
        public boolean reconnects() {
            return true;
        }

        @Override
        public void releaseOrphan(Attachment a, StateDir state) throws IOException {
            IOException first = null;
            for (int index : NbdDevices.connectedTo(a.name())) {
                try {
                    new NbdNetlink().disconnect(index); // only netlink's devices carry the identifier
                } catch (IOException e) {
                    if (first == null) first = e;
                }
            }
            Files.deleteIfExists(socket(state, a.name()));
            if (first != null) throw first;
        }
    };

    /** Seconds a request may go unanswered before the driver gives up on its connection. */
    static final long TIMEOUT_SECONDS = 30;
    /** How long the kernel may take to show the device and its partitions after the connect. */
    private static final Duration SETTLE = Duration.ofSeconds(20);
    private static final int CONNECTIONS = Math.min(4, Math.max(1, Runtime.getRuntime().availableProcessors() / 2));

    private final StateDir state;
    private NbdControl control;
    private String name;
    private KernelSockets sockets;
    private final List<Thread> servers = new ArrayList<>();
    private CountDownLatch ended;
    private int index = -1;

    private NbdBackend(StateDir state) {
        this.state = state;
    }

    /** Whether the kernel has the nbd driver: loaded, or loadable now (modprobe nbd). */
    static boolean available() {
        if (Files.isDirectory(Path.of("/sys/module/nbd"))) return true;
        try {
            Process p = new ProcessBuilder("modprobe", "nbd").redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return false;
            }
            return p.exitValue() == 0 && Files.isDirectory(Path.of("/sys/module/nbd"));
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    private static Path socket(StateDir state, String name) {
        return state.mountPoint(name).resolve("nbd.sock");
    }

    @Override
    public Devices start(String attachment, DiskImage disk, PartitionTable table, boolean writable) throws IOException {
        name = attachment;
        if (!available()) throw new IOException("the kernel has no nbd driver (modprobe nbd failed); use --backend fuse");
        Export export = Export.of(name, disk);
        control = NbdControl.forKernel();
        int connections = control.multipleConnections() ? CONNECTIONS : 1;
        serve(export, connections);
        index = control.connect(new NbdControl.Connect(disk.size(), table.sectorSize(),
                NbdServer.connectedFlags(export, connections > 1), TIMEOUT_SECONDS, DeadTimeout.seconds(),
                NbdDevices.backendId(name), sockets.fds()));
        sockets.closeKernelEnds();
        String device = NbdDevices.device(index);
        return new Devices("", device, KernelPartitions.match(name, KernelPartitions.await(device, table, SETTLE), table));
    }

    /** Makes the socket pairs and a server thread on each server end. */
    private void serve(Export export, int connections) throws IOException {
        Path dir = state.mountPoint(export.name());
        Files.createDirectories(dir);
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
        sockets = KernelSockets.create(connections, socket(state, export.name()));
        ended = new CountDownLatch(connections);
        for (int i = 0; i < connections; i++) {
            SocketChannel ch = sockets.channels().get(i);
            String conn = "nbd" + i;
            Thread t = new Thread(() -> {
                try {
                    NbdServer.serveConnected(export, ch, conn, line -> System.err.println("vdiskload nbd: " + line));
                } finally {
                    ended.countDown();
                }
            }, "vdiskload-" + conn);
            t.setDaemon(true);
            servers.add(t);
            t.start();
        }
    }

    /**
     * Takes over the device {@code previous} recorded from its dead serving process: new sockets in the
     * place of the dead connections (NBD_CMD_RECONFIGURE, which wakes the I/O waiting for one; see the
     * class comment). The driver keeps the size, flags, timeouts and partitions it had; the image must
     * still have that size. On failure the device is left as it was (name stays unset: {@link #stop} does
     * nothing).
     */
    @Override
    public Devices reconnect(Attachment previous, DiskImage disk, PartitionTable table) throws IOException {
        if (disk.size() != previous.size()) {
            throw new IOException(previous.image() + ": is " + disk.size() + " bytes now, " + previous.size()
                    + " when attached; detach " + previous.path() + " (-d) and attach it again");
        }
        List<Integer> held = NbdDevices.connectedTo(previous.name());
        if (held.isEmpty()) {
            throw new IOException(previous.path() + ": the kernel has no nbd device for it any more; detach it (-d) and attach the image again");
        }
        int idx = held.get(0);
        if (held.size() > 1 || !NbdDevices.device(idx).equals(previous.device())) {
            throw new IOException(previous.path() + ": recorded on " + previous.device() + ", but the kernel has it on "
                    + held.stream().map(NbdDevices::device).toList());
        }
        if (!available()) throw new IOException("the kernel has no nbd driver (modprobe nbd failed)");
        control = NbdControl.forKernel();
        try {
            serve(Export.of(previous.name(), disk), control.multipleConnections() ? CONNECTIONS : 1);
            control.reconnect(idx, NbdDevices.backendId(previous.name()), sockets.fds());
        } catch (IOException | RuntimeException e) {
            if (sockets != null) sockets.close(); // the servers see the end of their streams
            throw e;
        }
        sockets.closeKernelEnds();
        name = previous.name();
        index = idx;
        String device = NbdDevices.device(index);
        return new Devices("", device, KernelPartitions.match(name, KernelPartitions.of(device), table));
    }

    @Override
    public void awaitEnd() throws InterruptedException {
        ended.await();
    }

    /** Flushes, disconnects (the driver sends NBD_CMD_DISC on each connection), waits for the servers. */
    @Override
    public void stop() throws IOException {
        if (name == null) return;
        IOException first = null;
        if (index >= 0 && control.holds(index, NbdDevices.backendId(name))) {
            try {
                NbdDevices.flush(NbdDevices.device(index));
            } catch (IOException e) {
                first = e;
            }
            try {
                control.disconnect(index);
            } catch (IOException e) {
                if (first == null) first = e;
            }
        }
        boolean connected = index >= 0;
        index = -1;
        if (sockets != null) {
            if (!connected) sockets.close(); // no driver to send NBD_CMD_DISC: end the servers' reads
            for (Thread t : servers) {
                try {
                    t.join(TimeUnit.SECONDS.toMillis(TIMEOUT_SECONDS));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
            sockets.close();
        }
        Files.deleteIfExists(socket(state, name));
        if (first != null) throw first;
    }
}
