package org.vdiskload.nbd;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

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

/**
 * Clients that misbehave: each one is answered with an error or dropped, with a log line saying why,
 * and a well-behaved client served right after (and one connected all along) still works.
 */
class BadClientTest {
    @TempDir
    Path dir;
    TestImages.Running server;
    TestImages.Served image;
    byte[] content;
    /** A client connected before the bad one and used after it. */
    TestClient bystander;

    @BeforeEach
    void start() throws Exception {
        Path images = Files.createDirectories(dir.resolve("images"));
        var chain = TestImages.vdltestChain(images);
        List<TestImages.Served> served = List.of(new TestImages.Served("disk", chain, null));
        server = TestImages.serve(served, dir.resolve("nbd.sock"), NbdServer.Options.defaults().withHandshakeTimeout(Duration.ofMillis(500)));
        image = served.get(0);
        try (var d = TestImages.open(chain)) {
            ByteBuffer b = ByteBuffer.allocate((int) d.size());
            d.read(b, 0);
            content = b.array();
        }
        bystander = new TestClient(server.socket());
        bystander.open("disk", true, false, true);
    }

    @AfterEach
    void stop() throws Exception {
        bystander.close();
        server.close();
    }

    /** The bystander and a new client both read correctly: the server survived. */
    private void serverStillServes() throws Exception {
        assertArrayEquals(Arrays.copyOfRange(content, 1 << 20, (1 << 20) + 8192), bystander.read(1 << 20, 8192, 0));
        try (TestClient c = new TestClient(server.socket())) {
            c.open("disk", false, false, false);
            assertArrayEquals(Arrays.copyOfRange(content, 0, 4096), c.read(0, 4096, 0));
        }
    }

    private void logged(String... parts) {
        assertTrue(server.log().stream().anyMatch(l -> Arrays.stream(parts).allMatch(l::contains)),
                "a log line with " + Arrays.toString(parts) + " in " + server.log());
    }

    private void within(ProtocolTest.ThrowingRunnable r) {
        assertTimeoutPreemptively(Duration.ofSeconds(20), r::run);
    }

    @Test
    void randomBytesAreDropped() {
        within(() -> {
            Random rnd = new Random(42);
            for (int round = 0; round < 20; round++) {
                try (TestClient c = new TestClient(server.socket())) {
                    c.read(18);
                    byte[] junk = new byte[1 + rnd.nextInt(4000)];
                    rnd.nextBytes(junk);
                    c.write(junk);
                    assertTrue(c.closedByServer(), "round " + round);
                }
            }
            serverStillServes();
        });
    }

    @Test
    void unknownClientFlagsAreDropped() {
        within(() -> {
            try (TestClient c = new TestClient(server.socket())) {
                c.greet(Nbd.FLAG_C_FIXED_NEWSTYLE | 0x100);
                assertTrue(c.closedByServer());
            }
            logged("unknown client flags 0x101");
            serverStillServes();
        });
    }

    @Test
    void badOptionMagicIsDropped() {
        within(() -> {
            try (TestClient c = new TestClient(server.socket())) {
                c.greet(Nbd.FLAG_C_FIXED_NEWSTYLE);
                c.write(ByteBuffer.allocate(16).putLong(0x1234).putInt(Nbd.OPT_GO).putInt(0).flip());
                assertTrue(c.closedByServer());
            }
            logged("bad option magic 0x1234");
            serverStillServes();
        });
    }

    @Test
    void oversizeOptionIsDropped() {
        within(() -> {
            try (TestClient c = new TestClient(server.socket())) {
                c.greet(Nbd.FLAG_C_FIXED_NEWSTYLE);
                c.write(ByteBuffer.allocate(16).putLong(Nbd.IHAVEOPT).putInt(Nbd.OPT_GO).putInt(-1).flip());
                assertTrue(c.closedByServer());
            }
            logged("GO with 4294967295 bytes of data");
            serverStillServes();
        });
    }

    @Test
    void unknownAndMalformedOptionsAreAnsweredAndNegotiationGoesOn() {
        within(() -> {
            try (TestClient c = new TestClient(server.socket())) {
                c.greet(Nbd.FLAG_C_FIXED_NEWSTYLE);
                assertEquals(Nbd.REP_ERR_UNSUP, c.option(4242, ByteBuffer.wrap(new byte[100])).get(0).type());
                assertEquals(Nbd.REP_ERR_INVALID, c.option(Nbd.OPT_LIST, ByteBuffer.wrap(new byte[3])).get(0).type());
                assertEquals(Nbd.REP_ERR_INVALID, c.option(Nbd.OPT_GO, ByteBuffer.allocate(8).putInt(1000).putInt(0).flip()).get(0).type());
                assertEquals(Nbd.REP_ERR_INVALID, c.option(Nbd.OPT_GO, TestClient.nameAndInfos("disk", 3).limit(10)).get(0).type(),
                        "info count not matching the length");
                assertEquals(Nbd.REP_ERR_INVALID, c.option(Nbd.OPT_STRUCTURED_REPLY, ByteBuffer.wrap(new byte[1])).get(0).type());
                assertEquals(Nbd.REP_ERR_POLICY, c.option(Nbd.OPT_STARTTLS, null).get(0).type());
                ByteBuffer badUtf8 = ByteBuffer.allocate(8).putInt(2).put((byte) 0xc3).put((byte) 0x28).putShort((short) 0).flip();
                assertEquals(Nbd.REP_ERR_INVALID, c.option(Nbd.OPT_INFO, badUtf8).get(0).type());
                assertEquals(1 << 22, c.info(Nbd.OPT_GO, "disk").size());
                assertArrayEquals(Arrays.copyOfRange(content, 0, 100), c.read(0, 100, 0));
            }
            logged("option 4242", "unsupported");
        });
    }

    @Test
    void exportNameForAnUnknownExportIsDropped() {
        within(() -> {
            try (TestClient c = new TestClient(server.socket())) {
                c.greet(Nbd.FLAG_C_FIXED_NEWSTYLE);
                c.sendOption(Nbd.OPT_EXPORT_NAME, ByteBuffer.wrap("nope".getBytes()));
                assertTrue(c.closedByServer());
            }
            logged("unknown export 'nope'");
            serverStillServes();
        });
    }

    @Test
    void badRequestsGetErrorsAndTheConnectionGoesOn() {
        within(() -> {
            try (TestClient c = new TestClient(server.socket())) {
                c.open("disk", true, false, true);
                long size = 1 << 22;
                c.request(0, Command.READ.code, 1, size - 512, 1024);
                assertEquals(Nbd.EINVAL, c.readReply().error(), "read past the end");
                c.request(0, Command.READ.code, 2, -512, 1024);
                assertEquals(Nbd.EINVAL, c.readReply().error(), "offset + length wraps around");
                c.request(0, Command.READ.code, 3, 0, 64 << 20);
                assertEquals(Nbd.EOVERFLOW, c.readReply().error(), "read longer than the maximum payload");
                c.request(0, 99, 4, 0, 512);
                assertEquals(Nbd.EINVAL, c.readReply().error(), "unknown command");
                c.request(Nbd.CMD_FLAG_REQ_ONE, Command.READ.code, 5, 0, 512);
                assertEquals(Nbd.EINVAL, c.readReply().error(), "flag not documented for READ");
                c.request(Nbd.CMD_FLAG_FUA, Command.READ.code, 6, 0, 512);
                assertEquals(Nbd.EINVAL, c.readReply().error(), "FUA was not advertised");
                c.request(0, Command.FLUSH.code, 7, 4096, 0);
                assertEquals(Nbd.EINVAL, c.readReply().error(), "FLUSH with an offset");
                c.request(0, Command.BLOCK_STATUS.code, 8, size, 512);
                assertEquals(Nbd.EINVAL, c.readReply().error(), "status past the end");
                c.request(0, Command.BLOCK_STATUS.code, 9, 0, 0);
                assertEquals(Nbd.EINVAL, c.readReply().error(), "status of nothing");
                c.request(0, Command.WRITE.code, 10, size, 512, new byte[512]);
                assertEquals(Nbd.EPERM, c.readReply().error(), "writes are refused first for being writes");
                assertArrayEquals(Arrays.copyOfRange(content, 0, 512), c.read(0, 512, 0));
            }
            logged("rejected READ offset=4193792 length=1024", "past the end", "EINVAL");
            logged("rejected READ offset=0 length=67108864", "EOVERFLOW");
            logged("rejected command 99", "unknown command 99");
            serverStillServes();
        });
    }

    @Test
    void oversizeWritePayloadIsDropped() {
        within(() -> {
            try (TestClient c = new TestClient(server.socket())) {
                c.open("disk", false, false, false);
                c.request(0, Command.WRITE.code, 1, 0, 0xffffffffL);
                assertTrue(c.closedByServer());
            }
            logged("payload of 4294967295 bytes");
            serverStillServes();
        });
    }

    @Test
    void badRequestMagicIsDropped() {
        within(() -> {
            try (TestClient c = new TestClient(server.socket())) {
                c.open("disk", false, false, false);
                c.write(new byte[28]);
                assertTrue(c.closedByServer());
            }
            logged("bad request magic 0x0");
            serverStillServes();
        });
    }

    @Test
    void clientsVanishingMidRequestFreeTheirConnection() {
        within(() -> {
            for (int i = 0; i < 10; i++) {
                TestClient c = new TestClient(server.socket());
                c.open("disk", i % 2 == 0, false, false);
                if (i % 3 == 0) {
                    c.write(new byte[] {0x25, 0x60}); // half a header
                } else {
                    for (int k = 0; k < 8; k++) c.request(0, Command.READ.code, k, 0, 1 << 20); // replies nobody reads
                }
                c.close();
            }
            long deadline = System.currentTimeMillis() + 10_000;
            while (server.log().stream().filter(l -> l.endsWith(": closed")).count() < 10 && System.currentTimeMillis() < deadline) Thread.sleep(20);
            assertEquals(10, server.log().stream().filter(l -> l.endsWith(": closed")).count(), server.log().toString());
            serverStillServes();
        });
    }

    @Test
    void silentClientsAreDroppedAfterTheHandshakeTimeout() {
        within(() -> {
            try (TestClient c = new TestClient(server.socket())) {
                c.read(18);
                assertTrue(c.closedByServer());
            }
            logged("no complete negotiation within");
            serverStillServes();
        });
    }
}
