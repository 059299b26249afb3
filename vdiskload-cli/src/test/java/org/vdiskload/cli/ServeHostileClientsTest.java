package org.vdiskload.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.EOFException;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code vdiskload serve} under hostile clients, at the socket: while a well-behaved client writes and reads back
 * its own region again and again, others open and drop 10 000 connections, send malformed handshakes (garbage,
 * bad magic, option lengths past the message), requests with bad flags, offsets, lengths and commands, stop in
 * the middle of a header or a payload, send the largest writes the server allows, and ask for the largest
 * reads without reading the replies. The server runs in its own JVM with 256 MiB of heap and of direct memory:
 * it must keep serving the good client, keep its threads and memory bounded, and write nothing outside the
 * export (the export keeps its size, the file beside it its bytes).
 */
class ServeHostileClientsTest {
    private static final long EXPORT_SIZE = 64L << 20;
    private static final int MAX_PAYLOAD = 32 << 20;
    /** The server's threads: per client (16 at once) a reader and 4 workers, plus the JVM's own. */
    private static final int MAX_THREADS = 16 * 5 + 40;
    private static final long MAX_RSS = 1L << 30;
    private static final long NBDMAGIC = 0x4e42444d41474943L, IHAVEOPT = 0x49484156454F5054L;
    private static final int REQUEST_MAGIC = 0x25609513;

    @TempDir
    Path dir;

    @Test
    void keepsServingAWellBehavedClient() {
        assertTimeoutPreemptively(Duration.ofMinutes(10), this::attack);
    }

    private void attack() throws Exception {
        Path export = dir.resolve("disk.raw");
        try (var f = java.nio.channels.FileChannel.open(export, java.nio.file.StandardOpenOption.CREATE_NEW,
                java.nio.file.StandardOpenOption.WRITE)) {
            f.truncate(EXPORT_SIZE);
            f.write(ByteBuffer.wrap(new byte[] {1}), EXPORT_SIZE - 1);
        }
        byte[] beside = new byte[1 << 20];
        new Random(7).nextBytes(beside);
        Path besideFile = Files.write(dir.resolve("beside.raw"), beside);
        Path sock = dir.resolve("s.sock");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process server = new ProcessBuilder(java, "-Xmx256m", "-XX:MaxDirectMemorySize=256m", "-cp", System.getProperty("java.class.path"),
                Main.class.getName(), "serve", "--persistent", "-k", sock.toString(), export.toString())
                .redirectErrorStream(true).redirectOutput(dir.resolve("serve.log").toFile()).start();
        Monitor monitor = new Monitor(server.pid());
        ExecutorService pool = Executors.newFixedThreadPool(8);
        try {
            waitForListening(sock);
            AtomicBoolean attacking = new AtomicBoolean(true);
            Future<Long> good = pool.submit(() -> wellBehaved(sock, attacking));
            List<Future<?>> attacks = new ArrayList<>();
            attacks.add(pool.submit(() -> churn(sock, 0, 5000)));
            attacks.add(pool.submit(() -> churn(sock, 1, 5000)));
            attacks.add(pool.submit(() -> badHandshakes(sock, new Random(11), 400)));
            attacks.add(pool.submit(() -> badRequests(sock, new Random(13), 200)));
            attacks.add(pool.submit(() -> largestWrites(sock, 6)));
            attacks.add(pool.submit(() -> unreadReads(sock, 6)));
            for (Future<?> a : attacks) a.get();
            attacking.set(false);
            long rounds = good.get();
            assertTrue(rounds > 0, "the well-behaved client completed rounds");
            assertTrue(server.isAlive(), "the server is still running: " + log());
            monitor.sample();
            System.out.printf("ServeHostileClientsTest: %d well-behaved rounds; server peaked at %d threads, %d MiB resident%n",
                    rounds, monitor.maxThreads, monitor.maxRss >> 20);
            assertTrue(monitor.maxThreads <= MAX_THREADS, "threads peaked at " + monitor.maxThreads + ": " + monitor.atPeak);
            assertTrue(monitor.maxRss <= MAX_RSS, "resident memory peaked at " + monitor.maxRss);
            assertEquals(EXPORT_SIZE, Files.size(export), "the export keeps its size");
            assertArrayEquals(beside, Files.readAllBytes(besideFile), "the file beside the export is untouched");
            assertTrue(!log().contains("internal error") && !log().contains("OutOfMemoryError"), log());
        } finally {
            pool.shutdownNow();
            monitor.stop();
            server.destroy();
            server.waitFor(20, TimeUnit.SECONDS);
        }
    }

    private String log() throws IOException {
        return Files.readString(dir.resolve("serve.log"));
    }

    private void waitForListening(Path sock) throws Exception {
        for (int i = 0; i < 400 && !log().contains("?socket=" + sock); i++) Thread.sleep(25);
        assertTrue(log().contains("?socket=" + sock), log());
    }

    /** Samples the server's thread count and resident memory from /proc every 100 ms. */
    private static final class Monitor {
        private final long pid;
        private final Thread thread;
        volatile long maxThreads, maxRss;
        /** The server's threads by name (digits dropped) when their number peaked. */
        volatile java.util.Map<String, Long> atPeak = java.util.Map.of();

        Monitor(long pid) {
            this.pid = pid;
            this.thread = new Thread(() -> {
                while (!Thread.currentThread().isInterrupted()) {
                    sample();
                    try {
                        Thread.sleep(100);
                    } catch (InterruptedException e) {
                        return;
                    }
                }
            }, "monitor");
            thread.setDaemon(true);
            thread.start();
        }

        synchronized void sample() {
            try {
                for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
                    if (line.startsWith("Threads:")) {
                        long n = Long.parseLong(line.split("\\s+")[1]);
                        if (n > maxThreads) {
                            maxThreads = n;
                            atPeak = threadNames();
                        }
                    }
                    if (line.startsWith("VmRSS:")) maxRss = Math.max(maxRss, Long.parseLong(line.split("\\s+")[1]) * 1024);
                }
            } catch (IOException | RuntimeException gone) {
                // the process ended
            }
        }

        private java.util.Map<String, Long> threadNames() throws IOException {
            java.util.Map<String, Long> names = new java.util.TreeMap<>();
            try (var tasks = Files.list(Path.of("/proc/" + pid + "/task"))) {
                for (Path t : (Iterable<Path>) tasks::iterator) {
                    try {
                        names.merge(Files.readString(t.resolve("comm")).strip().replaceAll("[0-9]+", "N"), 1L, Long::sum);
                    } catch (IOException ended) {
                        // the thread ended meanwhile
                    }
                }
            }
            return names;
        }

        void stop() {
            thread.interrupt();
        }
    }

    // ---- The well-behaved client ----

    /** Where the well-behaved client writes: away from the offsets the hostile ones aim at. */
    private static final long GOOD_REGION = EXPORT_SIZE - (2L << 20);

    /** Writes a fresh pattern to 1 MiB of its own and reads it back, over and over, until the attacks are over; returns the rounds. */
    private static long wellBehaved(Path sock, AtomicBoolean attacking) throws Exception {
        Random rnd = new Random(1);
        long rounds = 0;
        do {
            try (Client c = Client.open(sock)) {
                c.negotiate("disk.raw");
                byte[] data = new byte[1 << 20];
                rnd.nextBytes(data);
                c.request(1, 0, GOOD_REGION, data.length, data);
                assertEquals(0, c.simpleReply(0), "write error");
                c.request(0, 0, GOOD_REGION, data.length, null);
                byte[] back = new byte[data.length];
                assertEquals(0, c.simpleReply(back.length, back), "read error");
                assertArrayEquals(data, back, "the good client reads back what it wrote");
            }
            rounds++;
        } while (attacking.get());
        return rounds;
    }

    // ---- The hostile ones ----

    /** Connections opened and dropped: at once, after the greeting, or in the middle of the client's flags. */
    private static Void churn(Path sock, int variant, int count) throws Exception {
        for (int i = 0; i < count; i++) {
            try (SocketChannel ch = SocketChannel.open(UnixDomainSocketAddress.of(sock))) {
                switch ((i + variant) % 3) {
                    case 0 -> { }
                    case 1 -> Client.readFully(ch, ByteBuffer.allocate(18));
                    default -> ch.write(ByteBuffer.wrap(new byte[] {0, 0}));
                }
            }
        }
        return null;
    }

    /** Handshakes a server must refuse or drop: garbage, bad magic, unknown flags and options, lengths past the data. */
    private static Void badHandshakes(Path sock, Random rnd, int count) throws Exception {
        for (int i = 0; i < count; i++) {
            try (Client c = Client.open(sock)) {
                c.readGreeting();
                ByteBuffer b = ByteBuffer.allocate(4096);
                switch (i % 6) {
                    case 0 -> { byte[] g = new byte[1 + rnd.nextInt(200)]; rnd.nextBytes(g); b.put(g); }
                    case 1 -> b.putInt(rnd.nextInt());                                                   // unknown client flags
                    case 2 -> b.putInt(3).putLong(IHAVEOPT ^ 1).putInt(7).putInt(0);                    // bad option magic
                    case 3 -> b.putInt(3).putLong(IHAVEOPT).putInt(7).putInt(60000).put(new byte[10]);   // length past the data
                    case 4 -> b.putInt(3).putLong(IHAVEOPT).putInt(rnd.nextInt()).putInt(rnd.nextInt()); // anything
                    default -> b.putInt(3).putLong(IHAVEOPT).putInt(1).putInt(7).put("nothere".getBytes(StandardCharsets.UTF_8));
                }
                c.send(b.flip());
                c.drainBriefly();
            } catch (IOException dropped) {
                // what the server should do with most of these
            }
        }
        return null;
    }

    /** Negotiated connections sending requests no server should act on, cut off at random points. */
    private static Void badRequests(Path sock, Random rnd, int count) throws Exception {
        long[] offsets = {0, 1, 511, EXPORT_SIZE - 512, EXPORT_SIZE, EXPORT_SIZE + 512, Long.MAX_VALUE, -1, -512};
        long[] lengths = {0, 1, 512, MAX_PAYLOAD, MAX_PAYLOAD + 1L, 0xffffffffL, 4096};
        for (int i = 0; i < count; i++) {
            try (Client c = Client.open(sock)) {
                c.negotiate("disk.raw");
                for (int r = 0; r < 8; r++) {
                    int type = rnd.nextInt(10) == 0 ? rnd.nextInt(65536) : rnd.nextInt(9);
                    int flags = rnd.nextInt(4) == 0 ? rnd.nextInt(65536) : 0;
                    long offset = rnd.nextBoolean() ? offsets[rnd.nextInt(offsets.length)] : rnd.nextLong();
                    long length = lengths[rnd.nextInt(lengths.length)];
                    ByteBuffer h = ByteBuffer.allocate(28).putInt(REQUEST_MAGIC).putShort((short) flags).putShort((short) type)
                            .putLong(i).putLong(offset).putInt((int) length).flip();
                    if (rnd.nextInt(8) == 0) h.limit(rnd.nextInt(28)); // cut off in the header
                    c.send(h);
                    if (type == 1 && h.limit() == 28) {
                        int sent = (int) Math.min(length, rnd.nextInt(3) == 0 ? rnd.nextInt(4096) : 4096);
                        c.send(ByteBuffer.allocate(sent)); // often fewer than the header promised
                    }
                    if (rnd.nextInt(6) == 0) break;
                }
                c.drainBriefly();
            } catch (IOException dropped) {
                // dropped or cut off: fine
            }
        }
        return null;
    }

    /** Connections sending WRITEs of the largest payload, pipelined, as fast as the socket takes them. */
    private static Void largestWrites(Path sock, int connections) throws Exception {
        byte[] payload = new byte[MAX_PAYLOAD];
        for (int n = 0; n < connections; n++) {
            try (Client c = Client.open(sock)) {
                c.negotiate("disk.raw");
                for (int r = 0; r < 4; r++) c.request(1, 0, (2L << 20) + (long) r * MAX_PAYLOAD % (EXPORT_SIZE - MAX_PAYLOAD - (2L << 20)), MAX_PAYLOAD, payload);
                c.drainBriefly();
            } catch (IOException dropped) {
                // fine
            }
        }
        return null;
    }

    /** Connections asking for 64 of the largest reads and never reading a reply, then leaving. */
    private static Void unreadReads(Path sock, int connections) throws Exception {
        for (int n = 0; n < connections; n++) {
            try (Client c = Client.open(sock)) {
                c.negotiate("disk.raw");
                for (int r = 0; r < 64; r++) c.request(0, 0, 0, MAX_PAYLOAD, null);
                Thread.sleep(500);
            } catch (IOException dropped) {
                // fine
            }
        }
        return null;
    }

    /** A minimal fixed-newstyle client: EXPORT_NAME negotiation, simple replies. */
    private static final class Client implements AutoCloseable {
        private final SocketChannel ch;

        private Client(SocketChannel ch) {
            this.ch = ch;
        }

        static Client open(Path sock) throws IOException {
            SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
            ch.connect(UnixDomainSocketAddress.of(sock));
            return new Client(ch);
        }

        void readGreeting() throws IOException {
            ByteBuffer g = readFully(ch, ByteBuffer.allocate(18));
            if (g.getLong(0) != NBDMAGIC || g.getLong(8) != IHAVEOPT) throw new IOException("not an NBD server");
        }

        void negotiate(String export) throws IOException {
            readGreeting();
            byte[] name = export.getBytes(StandardCharsets.UTF_8);
            send(ByteBuffer.allocate(20 + name.length).putInt(3).putLong(IHAVEOPT).putInt(1).putInt(name.length).put(name).flip());
            readFully(ch, ByteBuffer.allocate(10)); // size and flags; no zeroes were asked for
        }

        void request(int type, int flags, long offset, int length, byte[] payload) throws IOException {
            send(ByteBuffer.allocate(28).putInt(REQUEST_MAGIC).putShort((short) flags).putShort((short) type).putLong(1)
                    .putLong(offset).putInt(length).flip());
            if (payload != null) send(ByteBuffer.wrap(payload, 0, length));
        }

        /** A simple reply's error, with {@code dataLength} bytes of data read into {@code data} when there is no error. */
        int simpleReply(int dataLength, byte[]... data) throws IOException {
            ByteBuffer h = readFully(ch, ByteBuffer.allocate(16));
            int error = h.getInt(4);
            if (error == 0 && dataLength > 0) readFully(ch, ByteBuffer.wrap(data[0], 0, dataLength));
            return error;
        }

        void send(ByteBuffer b) throws IOException {
            while (b.hasRemaining()) ch.write(b);
        }

        /** Reads what the server answers for up to 100 ms (so it is not stuck on a full socket), then goes. */
        void drainBriefly() throws IOException {
            ch.configureBlocking(false);
            ByteBuffer b = ByteBuffer.allocate(1 << 16);
            long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(100);
            while (System.nanoTime() < end) {
                int n = ch.read(b.clear());
                if (n < 0) return;
                if (n == 0) Thread.onSpinWait();
            }
        }

        static ByteBuffer readFully(SocketChannel ch, ByteBuffer b) throws IOException {
            while (b.hasRemaining()) if (ch.read(b) < 0) throw new EOFException("server closed");
            return b.flip();
        }

        @Override
        public void close() throws IOException {
            ch.close();
        }
    }
}
