package org.vdiskload.nbd;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.testing.Tools;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Reads that a read-only export sends straight from the image file (data runs of at least
 * {@link ReadHandler#MIN_SENDFILE}): a run whose stored bytes end early, where the file ends inside it,
 * reads as its bytes then zeros, in every reply shape, and a run sent from the file sits between runs
 * read into memory in one data chunk.
 * Layout of the 1 MiB disk: [0,256K) data at file offset 4096, of which the file holds the first 192 KiB;
 * [256K,260K) data (too short to send from the file); [260K,1M) unallocated.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class FileRangeReadTest {
    static final int K = 1 << 10;

    @TempDir
    static Path dir;
    TestImages.Running server;
    String name;
    byte[] content;

    @BeforeAll
    void start() throws Exception {
        int stored = 192 * K;
        String header = "VDLTEST\nsize=" + (1 << 20) + "\n"
                + "data=0:" + 256 * K + ":4096\n"
                + "data=" + 256 * K + ":4096:4096\n\n";
        byte[] file = new byte[4096 + stored];
        byte[] h = header.getBytes(StandardCharsets.US_ASCII);
        System.arraycopy(h, 0, file, 0, h.length);
        for (int i = 0; i < stored; i++) file[4096 + i] = (byte) (i * 13 + 5);
        Path image = dir.resolve("short.vdltest");
        Files.write(image, file);
        content = new byte[1 << 20];
        System.arraycopy(file, 4096, content, 0, stored);
        System.arraycopy(file, 4096, content, 256 * K, 4096);
        name = image.getFileName().toString();
        TestImages.Served served = new TestImages.Served(name, new Tools.GeneratedImage(image, "vdltest", List.of()), image);
        server = TestImages.serve(List.of(served), dir.resolve("nbd.sock"), NbdServer.Options.defaults());
    }

    @AfterAll
    void stop() throws Exception {
        server.close();
    }

    private byte[] expected(int offset, int length) {
        return Arrays.copyOfRange(content, offset, offset + length);
    }

    @Test
    void bytesPastTheFilesEndReadAsZerosInEveryReplyShape() {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            for (boolean[] shape : new boolean[][] {{false, false}, {true, false}, {false, true}}) {
                try (TestClient c = new TestClient(server.socket())) {
                    c.open(name, shape[0], shape[1], false);
                    assertArrayEquals(expected(0, 1 << 20), c.read(0, 1 << 20, 0), "whole disk " + Arrays.toString(shape));
                    assertArrayEquals(expected(100 * K, 200 * K), c.read(100 * K, 200 * K, 0), "across the file's end");
                    if (shape[0] || shape[1]) {
                        assertArrayEquals(expected(0, 512 * K), c.read(0, 512 * K, Nbd.CMD_FLAG_DF), "DF");
                    }
                }
            }
        });
    }

    @Test
    void aFileRangeAndBytesAfterItShareOneDataChunk() {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            try (TestClient c = new TestClient(server.socket())) {
                c.open(name, true, false, false);
                c.request(0, Command.READ.code, 9, 0, 300 * K);
                List<TestClient.Reply> chunks = c.replies();
                assertEquals(2, chunks.size(), "one data chunk, one hole chunk");
                TestClient.Reply data = chunks.get(0);
                assertEquals(Nbd.REPLY_TYPE_OFFSET_DATA, data.type());
                assertEquals(0, data.payload().getLong());
                byte[] got = new byte[data.payload().remaining()];
                data.payload().get(got);
                assertArrayEquals(expected(0, 260 * K), got);
                assertEquals(Nbd.REPLY_TYPE_OFFSET_HOLE, chunks.get(1).type());
                assertTrue(chunks.get(1).done());
            }
        });
    }
}
