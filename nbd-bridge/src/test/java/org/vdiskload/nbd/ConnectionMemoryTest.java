package org.vdiskload.nbd;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.api.parallel.Isolated;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.vdiskload.testing.Tools;

import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * What a connection's requests cost the server in memory, whatever the client sends: its request buffers are
 * reused, within one maximum payload, and a payload past the maximum is refused without a buffer for it.
 * Measured as the JVM's direct buffer memory (where request buffers live) before and after, with the client
 * writing from direct buffers of its own, made beforehand, so that only the server's buffers count.
 */
@Isolated // measures the JVM's direct memory: no other test's server may allocate meanwhile
class ConnectionMemoryTest {
    static final int SIZE = 8 << 20;
    /** The export's maximum payload: the connection's buffer budget. */
    static final int MAX = 1 << 20;

    @TempDir
    Path dir;
    Path file;
    byte[] model;
    TestImages.Running server;

    @BeforeEach
    void start() throws Exception {
        model = pattern(SIZE, 1);
        file = dir.resolve("disk.raw");
        Files.write(file, model);
        var img = new Tools.GeneratedImage(file, "raw", List.of());
        server = TestImages.serveWritable(List.of(new TestImages.Served("disk", img, null)), dir.resolve("nbd.sock"),
                NbdServer.Options.defaults(), new BlockSizes(1, 4096, MAX));
    }

    @AfterEach
    void stop() throws Exception {
        server.close();
        long m = Files.mismatch(file, Files.write(dir.resolve("model.raw"), model));
        if (m >= 0) fail("the image differs from the model at offset " + m + "; server log: " + server.log());
    }

    private static byte[] pattern(int length, int seed) {
        byte[] b = new byte[length];
        new Random(seed).nextBytes(b);
        return b;
    }

    private static ByteBuffer direct(byte[] b) {
        return ByteBuffer.allocateDirect(b.length).put(b).flip();
    }

    /** Bytes of direct buffers the JVM holds now (those unreachable but not yet collected included). */
    private static long directMemory() {
        return ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class).stream()
                .filter(p -> p.getName().equals("direct")).mapToLong(BufferPoolMXBean::getTotalCapacity).sum();
    }

    private TestClient client(int mode) throws Exception {
        TestClient c = new TestClient(server.socket());
        TestClient.ExportInfo info = c.open("disk", mode == 1, mode == 2, false);
        assertEquals(MAX, info.maxPayload());
        return c;
    }

    private static int payloadFlag(TestClient c) {
        return c.extended ? Nbd.CMD_FLAG_PAYLOAD_LEN : 0;
    }

    @ParameterizedTest(name = "mode {0} (0 simple, 2 extended)")
    @ValueSource(ints = {0, 2})
    void pipelinedMaximumWritesReuseTheConnectionsBuffers(int mode) {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            int slots = SIZE / MAX;
            ByteBuffer[] payloads = new ByteBuffer[slots];
            for (int i = 0; i < slots; i++) payloads[i] = direct(pattern(MAX, 100 + i));
            try (TestClient c = client(mode)) {
                assertEquals(0, c.command(0, Command.WRITE, 0, MAX, pattern(MAX, 99)), "a first write");
                long before = directMemory();
                int writes = 200; // 200 MiB: with a buffer allocated per request, as many MiB of direct memory
                for (int k = 0; k < writes; k++) {
                    c.request(payloadFlag(c), Command.WRITE.code, k, (long) (k % slots) * MAX, MAX);
                    c.write(payloads[k % slots].duplicate()); // replies left unread until every request is sent
                }
                for (int k = 0; k < writes; k++) assertEquals(0, c.readReply().error());
                long grown = directMemory() - before;
                long bound = Transmission.bufferBound(new BlockSizes(1, 4096, MAX)); // its first write made its buffers already
                assertTrue(grown <= bound, "the server's direct memory grew by " + grown + " bytes for " + writes + " writes");
                for (int i = 0; i < slots; i++) payloads[i].get(0, model, i * MAX, MAX);
            }
        });
    }

    @ParameterizedTest(name = "mode {0} (0 simple, 2 extended)")
    @ValueSource(ints = {0, 2})
    void aWriteLongerThanTheMaximumIsRefusedAndItsPayloadPassedOver(int mode) {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            ByteBuffer oversize = direct(pattern(4 * MAX, 7));
            try (TestClient c = client(mode)) {
                assertArrayEquals(Arrays.copyOf(model, 4096), c.read(0, 4096, 0));
                long before = directMemory();
                c.request(payloadFlag(c), Command.WRITE.code, 1, 0, 4 * MAX);
                c.write(oversize);
                assertEquals(Nbd.EINVAL, c.readReply().error(), "EINVAL, after the payload was read");
                long grown = directMemory() - before;
                assertTrue(grown < MAX, "the server's direct memory grew by " + grown + " bytes for a refused payload");
                byte[] small = pattern(4096, 8);
                assertEquals(0, c.command(0, Command.WRITE, 4096, small.length, small), "the connection goes on, in step");
                System.arraycopy(small, 0, model, 4096, small.length);
                assertArrayEquals(Arrays.copyOf(model, 3 * 4096), c.read(0, 3 * 4096, 0), "nothing of the refused write");
            }
            assertTrue(server.log().stream().anyMatch(l -> l.contains("rejected WRITE offset=0 length=4194304") && l.contains("EINVAL")),
                    server.log().toString());
        });
    }
}
