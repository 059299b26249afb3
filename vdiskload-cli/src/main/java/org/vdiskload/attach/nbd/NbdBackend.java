package org.vdiskload.attach.nbd;

import org.vdiskload.attach.Attachment;
import org.vdiskload.attach.Backend;
import org.vdiskload.attach.DeviceNames;
import org.vdiskload.attach.StateDir;
import org.vdiskload.attach.Teardown;
import org.vdiskload.image.DiskImage;
import org.vdiskload.nbd.Export;
import org.vdiskload.nbd.NbdServer;
import org.vdiskload.partition.Partition;
import org.vdiskload.partition.PartitionTable;

import java.io.IOException;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Backend {@code nbd}: the kernel's own nbd driver, with this process as its server. The driver gets
 * connected Unix sockets over netlink ({@link NbdNetlink}) and speaks NBD's transmission phase on them
 * straight away; {@link NbdServer#serveConnected} answers. The driver picks a free /dev/nbdN and scans
 * its partitions itself (/dev/nbdNpM); /dev/NAME and /dev/NAMEpM point at them.
 *
 * <p>Several connections (one per CPU, up to four) spread the driver's queues over server threads: safe,
 * as every connection serves the one image and a flush on any of them covers all (CAN_MULTI_CONN).
 *
 * <p>If this process dies, the driver sees its sockets close: new I/O waits {@link #DEAD_CONN_SECONDS}
 * for a new connection (NBD_CMD_RECONFIGURE, which vdiskload does not do yet), then fails with EIO;
 * requests the server had not answered fail after {@link #TIMEOUT_SECONDS} the same way. {@code -d}
 * then disconnects the device ({@link #KIND}'s releaseOrphan).
 */
public final class NbdBackend implements Backend {
    public static final Kind KIND = new Kind() {
        @Override
        public String name() {
            return "nbd";
        }

        @Override
        public Backend create(StateDir state) {
            return new NbdBackend(state);
        }

        @Override
        public void releaseOrphan(Attachment a, StateDir state) throws IOException {
            IOException first = null;
            for (int index : NbdDevices.connectedTo(a.name())) {
                try {
                    NbdNetlink.disconnect(index);
                } catch (IOException e) {
                    if (first == null) first = e;
                }
            }
            Teardown.removeLinks(a.name());
            Files.deleteIfExists(socket(state, a.name()));
            if (first != null) throw first;
        }
    };

    /** Seconds a request may go unanswered before the driver gives up on its connection. */
    static final long TIMEOUT_SECONDS = 30;
    /** Seconds the driver holds new I/O when every connection is dead, waiting for a reconnect. */
    static final long DEAD_CONN_SECONDS = 10;
    private static final long SETTLE_MILLIS = 20_000;
    private static final int CONNECTIONS = Math.min(4, Math.max(1, Runtime.getRuntime().availableProcessors()));

    private final StateDir state;
    private String name;
    private KernelSockets sockets;
    private final List<Thread> servers = new ArrayList<>();
    private CountDownLatch ended;
    private int index = -1;

    private NbdBackend(StateDir state) {
        this.state = state;
    }

    /** Whether the kernel has the nbd driver: loaded, or loadable now (modprobe nbd). */
    public static boolean available() {
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
        Path dir = state.mountPoint(name);
        Files.createDirectories(dir);
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
        Export export = Export.of(name, disk);
        sockets = KernelSockets.create(CONNECTIONS, socket(state, name));
        ended = new CountDownLatch(CONNECTIONS);
        for (int i = 0; i < CONNECTIONS; i++) {
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
        index = NbdNetlink.connect(new NbdNetlink.Connect(disk.size(), table.sectorSize(),
                NbdServer.connectedFlags(export, CONNECTIONS > 1), TIMEOUT_SECONDS, DEAD_CONN_SECONDS,
                NbdDevices.backendId(name), sockets.fds()));
        sockets.closeKernelEnds();
        String device = NbdDevices.device(index);
        Map<Integer, String> kernelParts = settle(device, table);
        List<Attachment.PartitionDevice> parts = new ArrayList<>();
        for (Map.Entry<Integer, String> k : kernelParts.entrySet()) {
            Partition p = table.partitions().stream().filter(x -> x.number() == k.getKey()).findFirst().orElse(null);
            parts.add(new Attachment.PartitionDevice(k.getKey(), DeviceNames.partition(name, k.getKey()), k.getValue(),
                    p == null ? -1 : p.start(), p == null ? -1 : p.length()));
        }
        Teardown.link(name, device);
        for (Attachment.PartitionDevice p : parts) Teardown.link(p.name(), p.device());
        return new Devices("", device, parts);
    }

    /**
     * Waits for the device node, opens it once (the driver reads the partition table on the first open
     * after a connect, unless udev's probe did already), and waits until the kernel has a device for
     * every partition the table names; returns the kernel's partitions.
     */
    private TreeMap<Integer, String> settle(String device, PartitionTable table) throws IOException {
        long deadline = System.currentTimeMillis() + SETTLE_MILLIS;
        while (!Files.exists(Path.of(device))) pause(deadline, device + " did not appear");
        NbdDevices.open(device);
        while (true) {
            TreeMap<Integer, String> parts = NbdDevices.partitions(index);
            boolean all = table.partitions().stream().allMatch(p -> parts.containsKey(p.number()));
            if (all) return parts;
            pause(deadline, device + ": the kernel did not find the partitions " + table.partitions().stream()
                    .map(p -> Integer.toString(p.number())).toList() + " (it has " + parts.keySet() + ")");
        }
    }

    private static void pause(long deadline, String failure) throws IOException {
        if (System.currentTimeMillis() > deadline) throw new IOException(failure);
        try {
            Thread.sleep(20);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while waiting: " + failure);
        }
    }

    @Override
    public void awaitEnd() throws InterruptedException {
        ended.await();
    }

    /** Flushes, disconnects (the driver sends NBD_CMD_DISC on each connection), waits for the servers, removes the names. */
    @Override
    public void stop() throws IOException {
        if (name == null) return;
        IOException first = null;
        if (index >= 0 && NbdDevices.backend(index).equals(NbdDevices.backendId(name))) {
            try {
                NbdDevices.flush(NbdDevices.device(index));
            } catch (IOException e) {
                first = e;
            }
            try {
                NbdNetlink.disconnect(index);
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
        Teardown.removeLinks(name);
        Files.deleteIfExists(socket(state, name));
        if (first != null) throw first;
    }
}
