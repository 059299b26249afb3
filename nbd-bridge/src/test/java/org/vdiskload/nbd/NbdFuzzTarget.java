package org.vdiskload.nbd;

import com.code_intelligence.jazzer.junit.DictionaryFile;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.junit.jupiter.api.parallel.Isolated;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.serving.SnapshotOverlay;
import org.vdiskload.testing.fuzz.AllocationBudget;
import org.vdiskload.testing.fuzz.Companions;
import org.vdiskload.testing.fuzz.Finding;
import org.vdiskload.testing.fuzz.Sandbox;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.regex.Pattern;

/**
 * Coverage-guided fuzzing of the NBD server in process: the input is everything a client sends on one
 * connection — greeting flags, options (fixed newstyle haggling), then requests with their payloads — handed
 * to the server's own per-client {@link Connection} over a connected Unix socket, which then closes. The
 * exports: "disk", a 1 MiB raw image open for writing, "ro", a read-only qcow2 of 1 MiB, and "snap", a
 * snapshot overlay over it (as {@code serve --snapshot}).
 *
 * <p>Findings: the connection ends in an exception it does not handle, logs an internal error or a failure
 * that is a bug (a RuntimeException answered as EIO), a write lands outside the export (the raw file changes
 * size, a file beside it changes), the reading thread allocates more than {@link #ALLOCATION_BOUND}: one
 * request payload of the advertised maximum and the buffers around it, or the connection leaves more than
 * {@link #DIRECT_LEFT_BOUND} of direct buffers to the garbage collector (its request buffers must be freed when it
 * ends, not left for a collection that may come too late).
 */
@Isolated // measures the JVM's direct memory per connection: no other test's server may allocate meanwhile
class NbdFuzzTarget {
    static final long ALLOCATION_BOUND = BlockSizes.DEFAULT.maxPayload() + (16L << 20);
    /** The request reader's buffer (64 KiB) and the JDK's temporary buffers for small heap writes, with room to spare. */
    static final long DIRECT_LEFT_BOUND = 512 << 10;
    private static final int DISK_BYTES = 1 << 20;
    /**
     * A log line that is a bug: the connection's "internal error", or a request that failed with a
     * RuntimeException (logged by its class name: an IOException is logged by its message). Anchored, since log
     * lines also quote what clients send.
     */
    private static final Pattern BUG = Pattern.compile("^client#\\d+: (internal error: |[A-Z_]+ offset=\\d+ length=\\d+( flags=0x[0-9a-f]+)?"
            + " failed: (java\\.lang\\.|java\\.util\\.|java\\.nio\\.\\w*Buffer\\w*Exception|java\\.io\\.UncheckedIOException))");

    private static final Sandbox SANDBOX = Sandbox.create("nbd");
    private static final byte[] BESIDE = Companions.pattern(4096, 99);
    private static final Path DISK_FILE, BESIDE_FILE;
    private static final Exports EXPORTS;
    private static final ServerSocketChannel LISTENER;
    private static final ScheduledExecutorService TIMER = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "nbd-fuzz-timer");
        t.setDaemon(true);
        return t;
    });
    private static int connections;

    static {
        try {
            DISK_FILE = SANDBOX.put("disk.raw", Companions.pattern(DISK_BYTES, 1));
            BESIDE_FILE = SANDBOX.put("beside.raw", BESIDE);
            Companions.image(SANDBOX, "ro.qcow2", "qcow2", 1 << 20, Map.of("cluster_size", "4096"));
            DiskImage disk = Images.open(DISK_FILE, OpenOptions.DEFAULTS.withFormat("raw").withWritable(true));
            DiskImage ro = Images.open(SANDBOX.path("ro.qcow2"), OpenOptions.DEFAULTS.withFormat("qcow2"));
            DiskImage snap = SnapshotOverlay.over(Images.open(SANDBOX.path("ro.qcow2"), OpenOptions.DEFAULTS.withFormat("qcow2")),
                    Files.createDirectories(SANDBOX.path("overlay")));
            EXPORTS = new Exports(List.of(Export.of("disk", disk), Export.of("ro", ro), Export.of("snap", snap)));
            LISTENER = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
            LISTENER.bind(UnixDomainSocketAddress.of(SANDBOX.path("nbd.sock")));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @FuzzTest
    @DictionaryFile(resourcePath = "nbd.dict")
    void client(byte[] input) throws Exception {
        try {
            connect(input);
        } catch (AllocationBudget.Exceeded first) {
            connect(input); // the first run of a path allocates for class loading: only a repeat counts
        }
    }

    private static void connect(byte[] input) throws Exception {
        List<String> log = new ArrayList<>();
        long direct = directMemory();
        try (SocketChannel client = SocketChannel.open(LISTENER.getLocalAddress())) {
            SocketChannel server = LISTENER.accept();
            Thread drain = drainer(client);
            Thread feed = feeder(client, input);
            Connection c = new Connection(++connections, server, EXPORTS, true, null, Duration.ofSeconds(30), TIMER,
                    line -> { synchronized (log) { log.add(line); } });
            AllocationBudget.within(ALLOCATION_BOUND, "one connection's reading thread", () -> {
                c.run();
                return null;
            });
            feed.join();
            drain.join();
        }
        long left = directMemory() - direct;
        if (left > DIRECT_LEFT_BOUND) throw new Finding("the connection left " + left + " bytes of direct buffers behind");
        synchronized (log) {
            if (Boolean.getBoolean("fuzz.verbose")) log.forEach(l -> System.err.println("  " + l));
            for (String line : log) if (BUG.matcher(line).find()) throw new Finding("the server logged a bug: " + line);
        }
        if (Files.size(DISK_FILE) != DISK_BYTES) throw new Finding("disk.raw is now " + Files.size(DISK_FILE) + " bytes");
        if (!Arrays.equals(Files.readAllBytes(BESIDE_FILE), BESIDE)) throw new Finding("beside.raw changed");
    }

    /** Bytes of direct buffers the JVM holds now, those unreachable but not yet collected included. */
    private static long directMemory() {
        return ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class).stream()
                .filter(p -> p.getName().equals("direct")).mapToLong(BufferPoolMXBean::getTotalCapacity).sum();
    }

    /** Sends the input, then closes the client's sending side: the server reads it to its end. */
    private static Thread feeder(SocketChannel client, byte[] input) {
        Thread t = new Thread(() -> {
            try {
                ByteBuffer b = ByteBuffer.wrap(input);
                while (b.hasRemaining()) client.write(b);
                client.shutdownOutput();
            } catch (IOException serverClosedFirst) {
                // the server may drop the connection before reading everything
            }
        }, "nbd-fuzz-feed");
        t.start();
        return t;
    }

    /** Reads and drops the server's replies until it closes, so no reply ever blocks on a full socket. */
    private static Thread drainer(SocketChannel client) {
        Thread t = new Thread(() -> {
            ByteBuffer b = ByteBuffer.allocate(1 << 16);
            try {
                while (client.read(b.clear()) >= 0) {
                    // dropped
                }
            } catch (IOException closed) {
                // the connection is over
            }
        }, "nbd-fuzz-drain");
        t.start();
        return t;
    }
}
