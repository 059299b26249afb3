package org.vdiskload.nbd;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.sys.Errno;
import org.vdiskload.testing.Tools;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The write commands step by step with the hand-driven client, on a raw image opened for writing:
 * after every scenario the image file must equal a byte model of what was acknowledged.
 */
class WriteProtocolTest {
    static final int SIZE = 4 << 20;

    @TempDir
    Path dir;
    Path file;
    byte[] model;
    TestImages.Running server;

    @BeforeEach
    void start() throws Exception {
        model = new byte[SIZE];
        new Random(1).nextBytes(model);
        Arrays.fill(model, 3 << 20, SIZE, (byte) 0);
        file = dir.resolve("disk.raw");
        Files.write(file, Arrays.copyOf(model, 3 << 20));
        Tools.check("truncate", "-s", String.valueOf(SIZE), file.toString()); // a hole at the end
        var img = new Tools.GeneratedImage(file, "raw", List.of());
        server = TestImages.serveWritable(List.of(new TestImages.Served("disk", img, null)), dir.resolve("nbd.sock"),
                NbdServer.Options.defaults());
    }

    @AfterEach
    void stop() throws Exception {
        server.close();
        // closed (and so flushed): the file holds exactly what the clients were told was written
        long m = Files.mismatch(file, writeModel());
        if (m >= 0) fail("the image differs from the model at offset " + m + "; server log: " + server.log());
    }

    private Path writeModel() throws Exception {
        return Files.write(dir.resolve("model.raw"), model);
    }

    private static void within(ProtocolTest.ThrowingRunnable r) {
        assertTimeoutPreemptively(Duration.ofSeconds(30), r::run);
    }

    private TestClient client(int mode) throws Exception {
        TestClient c = new TestClient(server.socket());
        TestClient.ExportInfo info = c.open("disk", mode == 1, mode == 2, mode != 0);
        int expected = Nbd.FLAG_HAS_FLAGS | Nbd.FLAG_SEND_FLUSH | Nbd.FLAG_SEND_FUA | Nbd.FLAG_SEND_TRIM | Nbd.FLAG_SEND_WRITE_ZEROES
                | Nbd.FLAG_SEND_FAST_ZERO | Nbd.FLAG_SEND_CACHE | Nbd.FLAG_CAN_MULTI_CONN | (mode == 0 ? 0 : Nbd.FLAG_SEND_DF);
        assertEquals(expected, info.flags(), "a writable export: no READ_ONLY, every write flag, multi-conn");
        return c;
    }

    private static byte[] pattern(int length, int seed) {
        byte[] b = new byte[length];
        new Random(seed).nextBytes(b);
        return b;
    }

    private void write(TestClient c, int flags, long offset, byte[] data) throws Exception {
        assertEquals(0, c.command(flags, Command.WRITE, offset, data.length, data), "WRITE at " + offset);
        System.arraycopy(data, 0, model, (int) offset, data.length);
    }

    private void zero(TestClient c, int flags, Command cmd, long offset, int length) throws Exception {
        assertEquals(0, c.command(flags, cmd, offset, length, null), cmd + " at " + offset);
        Arrays.fill(model, (int) offset, (int) offset + length, (byte) 0);
    }

    /** base:allocation flags of the one extent at {@code offset} (REQ_ONE). */
    private static int status(TestClient c, long offset, int length) throws Exception {
        c.request(Nbd.CMD_FLAG_REQ_ONE, Command.BLOCK_STATUS.code, 3, offset, length);
        TestClient.Reply r = c.readReply();
        assertEquals(0, r.error());
        ByteBuffer p = r.payload();
        return c.extended ? (int) p.getLong(16) : p.getInt(8);
    }

    @ParameterizedTest(name = "mode {0} (0 simple, 1 structured, 2 extended)")
    @ValueSource(ints = {0, 1, 2})
    void everyWriteCommandChangesTheImageAsAcknowledged(int mode) {
        within(() -> {
            try (TestClient c = client(mode)) {
                write(c, 0, 1000, pattern(70_000, 1));
                write(c, Nbd.CMD_FLAG_FUA, SIZE - 4096, pattern(4096, 2)); // into the hole, durable before the reply
                write(c, 0, 0, new byte[0]);
                zero(c, Nbd.CMD_FLAG_NO_HOLE, Command.WRITE_ZEROES, 128 << 10, 64 << 10);
                if (mode != 0) assertEquals(0, status(c, 128 << 10, 64 << 10), "NO_HOLE: written zeros stay allocated data");
                zero(c, 0, Command.WRITE_ZEROES, 1 << 20, 256 << 10);
                if (mode != 0) assertEquals(Nbd.STATE_ZERO, status(c, 1 << 20, 256 << 10), "may unmap: a hole punched");
                zero(c, Nbd.CMD_FLAG_FUA, Command.TRIM, 2 << 20, 64 << 10);
                zero(c, Nbd.CMD_FLAG_FAST_ZERO, Command.WRITE_ZEROES, 5000, 300); // raw, may unmap: fast
                assertEquals(0, c.command(0, Command.FLUSH, 0, 0, null));
                assertEquals(0, c.command(Nbd.CMD_FLAG_FUA, Command.CACHE, 0, SIZE, null));
                assertArrayEquals(Arrays.copyOf(model, 3 << 20), c.read(0, 3 << 20, 0), "reads see every write");
            }
        });
    }

    @Test
    void fastZeroThatWouldWriteDataIsRefusedWithoutChangingAnything() {
        within(() -> {
            try (TestClient c = client(1)) {
                int e = c.command(Nbd.CMD_FLAG_FAST_ZERO | Nbd.CMD_FLAG_NO_HOLE, Command.WRITE_ZEROES, 4096, 65536, null);
                assertEquals(Nbd.ENOTSUP, e, "raw must write zeros to keep them allocated: not fast");
                assertArrayEquals(Arrays.copyOfRange(model, 4096, 4096 + 65536), c.read(4096, 65536, 0));
            }
        });
    }

    @Test
    void badWritesAreRefusedAndTheConnectionGoesOn() {
        within(() -> {
            try (TestClient c = client(0)) {
                assertEquals(Nbd.ENOSPC, c.command(0, Command.WRITE, SIZE - 100, 512, new byte[512]), "write past the end");
                assertEquals(Nbd.ENOSPC, c.command(0, Command.WRITE, -512, 1024, new byte[1024]), "offset + length wraps");
                assertEquals(Nbd.ENOSPC, c.command(0, Command.WRITE_ZEROES, SIZE, 512, null), "zeroes past the end");
                assertEquals(Nbd.EINVAL, c.command(0, Command.TRIM, SIZE - 512, 1024, null), "trim past the end");
                assertEquals(Nbd.EINVAL, c.command(Nbd.CMD_FLAG_NO_HOLE, Command.WRITE, 0, 512, new byte[512]), "NO_HOLE on WRITE");
                assertEquals(Nbd.EINVAL, c.command(Nbd.CMD_FLAG_FAST_ZERO, Command.TRIM, 0, 512, null), "FAST_ZERO on TRIM");
                assertEquals(Nbd.EINVAL, c.command(0, Command.FLUSH, 0, 512, null), "FLUSH with a length");
                write(c, 0, 0, pattern(512, 3));
            }
            try (TestClient c = client(2)) {
                // Extended headers: a payload where none belongs is consumed, then refused; the stream stays in step.
                c.request(Nbd.CMD_FLAG_PAYLOAD_LEN, Command.WRITE_ZEROES.code, 4, 0, 512, pattern(512, 4));
                assertEquals(Nbd.EINVAL, c.readReply().error());
                c.request(0, Command.WRITE.code, 5, 0, 512); // a WRITE without PAYLOAD_LEN carries nothing
                assertEquals(Nbd.EINVAL, c.readReply().error());
                write(c, 0, 512, pattern(512, 5));
            }
            assertTrue(server.log().stream().anyMatch(l -> l.contains("rejected WRITE offset=4194204 length=512") && l.contains("ENOSPC")),
                    server.log().toString());
        });
    }

    @Test
    void aWritePayloadCutShortByADisconnectWritesNothing() {
        within(() -> {
            try (TestClient bystander = client(1)) {
                for (int mode = 0; mode < 3; mode++) {
                    TestClient c = client(mode);
                    c.request(c.extended ? Nbd.CMD_FLAG_PAYLOAD_LEN : 0, Command.WRITE.code, 9, 8192, 65536);
                    c.write(pattern(1000, 9));
                    c.close();
                }
                TestClient c = client(0);
                c.request(0, Command.WRITE.code, 10, 0, 64 << 20); // more than the maximum payload: dropped
                assertTrue(c.closedByServer());
                c.close();
                long deadline = System.currentTimeMillis() + 10_000;
                while (server.log().stream().filter(l -> l.endsWith(": closed")).count() < 4 && System.currentTimeMillis() < deadline) Thread.sleep(20);
                write(bystander, 0, 4096, pattern(8192, 6));
                assertArrayEquals(Arrays.copyOf(model, 1 << 20), bystander.read(0, 1 << 20, 0));
            }
            assertTrue(server.log().stream().anyMatch(l -> l.contains("payload of 67108864 bytes exceeds")), server.log().toString());
        });
    }

    @Test
    void connectionsWriteDistinctRangesAtOnce() {
        within(() -> {
            int clients = 4;
            int chunk = SIZE / clients;
            List<CompletableFuture<byte[]>> runs = new ArrayList<>();
            for (int i = 0; i < clients; i++) {
                int id = i;
                runs.add(CompletableFuture.supplyAsync(() -> {
                    try (TestClient c = client(id % 3)) {
                        // 32 pipelined writes of 16 KiB, then their replies in whatever order they come
                        byte[] mine = pattern(chunk, 100 + id);
                        int n = chunk / (16 << 10);
                        for (int k = 0; k < n; k++) {
                            byte[] part = Arrays.copyOfRange(mine, k * (16 << 10), (k + 1) * (16 << 10));
                            c.request(c.extended ? Nbd.CMD_FLAG_PAYLOAD_LEN : 0, Command.WRITE.code, k, (long) id * chunk + k * (16 << 10),
                                    part.length, part);
                        }
                        for (int k = 0; k < n; k++) assertEquals(0, c.readReply().error());
                        assertEquals(0, c.command(0, Command.FLUSH, 0, 0, null));
                        return mine;
                    } catch (Exception e) {
                        throw new RuntimeException(e);
                    }
                }));
            }
            for (int i = 0; i < clients; i++) System.arraycopy(runs.get(i).get(), 0, model, i * chunk, chunk);
            try (TestClient c = client(1)) {
                assertArrayEquals(model, c.read(0, SIZE, 0), "a third connection sees all of them");
            }
        });
    }

    @Test
    void failuresAnswerTheNbdErrorOfTheirErrno() throws Exception {
        // The JDK's own failure for ENOSPC: /dev/full refuses every write with it.
        IOException full;
        try (FileChannel ch = FileChannel.open(Path.of("/dev/full"), StandardOpenOption.WRITE)) {
            full = assertThrows(IOException.class, () -> ch.write(ByteBuffer.allocate(512)));
        }
        assertEquals(Nbd.ENOSPC, ErrorCodes.of(full));
        assertEquals(Nbd.ENOSPC, ErrorCodes.of(new ImageException(ImageException.Kind.IO, Path.of("disk.raw"), 0, null, "cannot write", full)));
        assertEquals(Nbd.ENOSPC, ErrorCodes.ofErrno(Errno.EDQUOT));
        assertEquals(Nbd.ENOSPC, ErrorCodes.ofErrno(Errno.EFBIG));
        assertEquals(Nbd.EIO, ErrorCodes.of(new IOException("disk.raw: no space left on device, it seems")), "words in a message are no errno");
        assertEquals(Nbd.EIO, ErrorCodes.of(new IllegalStateException("bug")));
        assertEquals(Nbd.EIO, ErrorCodes.of(ImageException.corrupt(Path.of("d.qcow2"), 4096, "L2 entry", "points past the end")));
        assertEquals(Nbd.EPERM, ErrorCodes.of(ImageException.readOnly(Path.of("d.json"), "partition 1: its source is compressed")));
        assertEquals(Nbd.EPERM, ErrorCodes.ofErrno(Errno.EROFS));
        assertEquals(Nbd.ENOTSUP, ErrorCodes.ofErrno(Errno.EOPNOTSUPP));
        assertEquals(Nbd.EIO, ErrorCodes.ofErrno(Errno.ENXIO), "no NBD equivalent");
    }
}
