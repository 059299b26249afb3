package org.vdiskload.nbd;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.api.parallel.Isolated;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Starting, sharing, stopping: --shared, --persistent, close with clients connected, socket files. */
@Isolated // counts the threads serving clients: no other test's server may start any meanwhile
class LifecycleTest {
    @TempDir
    Path dir;

    private List<TestImages.Served> one() throws IOException {
        var chain = TestImages.vdltestChain(Files.createDirectories(dir.resolve("images")));
        return List.of(new TestImages.Served("disk", chain, null));
    }

    @Test
    void sharedOneServesOneClientAtATimeAndDoesNotAdvertiseMultiConn() {
        assertTimeoutPreemptively(Duration.ofSeconds(20), () -> {
            try (var s = TestImages.serve(one(), dir.resolve("s.sock"), NbdServer.Options.defaults().withShared(1))) {
                TestClient first = new TestClient(s.socket());
                TestClient.ExportInfo info = first.open("disk", false, false, false);
                assertEquals(0, info.flags() & Nbd.FLAG_CAN_MULTI_CONN);
                try (TestClient second = new TestClient(s.socket())) {
                    second.ch.configureBlocking(false);
                    Thread.sleep(300);
                    assertEquals(0, second.ch.read(ByteBuffer.allocate(18)), "no greeting while the first is served");
                    first.close();
                    second.ch.configureBlocking(true);
                    second.open("disk", false, false, false);
                    assertEquals(512, second.read(0, 512, 0).length);
                }
            }
        });
    }

    @Test
    void noLimitStillServesAtMostMaxClientsAtOnce() {
        assertThrows(IllegalArgumentException.class, () -> NbdServer.Options.defaults().withShared(NbdServer.MAX_CLIENTS + 1));
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            var options = NbdServer.Options.defaults().withShared(0).withHandshakeTimeout(Duration.ofSeconds(60));
            long before = clientThreads(); // other tests' servers, ending
            try (var s = TestImages.serve(one(), dir.resolve("s.sock"), options)) {
                int extra = 16;
                List<TestClient> clients = new ArrayList<>();
                try {
                    for (int i = 0; i < NbdServer.MAX_CLIENTS + extra; i++) clients.add(new TestClient(s.socket()));
                    awaitConnected(s, NbdServer.MAX_CLIENTS);
                    Thread.sleep(300);
                    assertEquals(NbdServer.MAX_CLIENTS, connected(s), "the rest wait in the listen queue");
                    long serving = clientThreads() - before;
                    assertTrue(serving <= NbdServer.MAX_CLIENTS, serving + " threads serving clients");
                    for (int i = 0; i < extra; i++) clients.get(i).close();
                    awaitConnected(s, NbdServer.MAX_CLIENTS + extra);
                    TestClient last = clients.get(clients.size() - 1);
                    last.open("disk", false, false, false);
                    assertEquals(512, last.read(0, 512, 0).length);
                } finally {
                    for (TestClient c : clients) c.close();
                }
            }
        });
    }

    private static long clientThreads() {
        return Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().startsWith("nbd-client")).count();
    }

    private static long connected(TestImages.Running s) {
        return s.log().stream().filter(l -> l.endsWith(": connected")).count();
    }

    private static void awaitConnected(TestImages.Running s, int n) throws InterruptedException {
        long deadline = System.currentTimeMillis() + 30_000;
        while (connected(s) < n && System.currentTimeMillis() < deadline) Thread.sleep(20);
        assertEquals(n, connected(s));
    }

    @Test
    void withoutPersistentTheServerStopsWhenTheLastClientLeaves() {
        assertTimeoutPreemptively(Duration.ofSeconds(20), () -> {
            Path sock = dir.resolve("s.sock");
            try (var s = TestImages.serve(one(), sock, NbdServer.Options.defaults().withPersistent(false))) {
                TestClient a = new TestClient(sock);
                a.open("disk", true, false, false);
                TestClient b = new TestClient(sock);
                b.open("disk", true, false, false);
                a.close();
                assertFalse(s.server().await(Duration.ofMillis(300)), "still serving b");
                b.request(0, Command.DISC.code, 0, 0, 0);
                assertTrue(b.closedByServer());
                assertTrue(s.server().await(Duration.ofSeconds(10)));
                assertTrue(Files.notExists(sock), "socket removed");
            }
        });
    }

    @Test
    void closeAnswersWhatIsInFlightThenDisconnects() {
        assertTimeoutPreemptively(Duration.ofSeconds(20), () -> {
            var s = TestImages.serve(one(), dir.resolve("s.sock"), NbdServer.Options.defaults());
            try (TestClient c = new TestClient(s.socket())) {
                c.open("disk", false, false, false);
                byte[] before = c.read(0, 4096, 0);
                c.request(0, Command.READ.code, 9, 0, 4096);
                s.close();
                TestClient.Reply r = c.readReply();
                assertEquals(9, r.cookie());
                byte[] after = new byte[4096];
                c.read(4096).get(after);
                assertArrayEquals(before, after);
                assertTrue(c.closedByServer());
            }
            assertTrue(s.server().await(Duration.ofSeconds(1)));
        });
    }

    @Test
    void aLiveSocketIsNotTakenOverButAStaleOneIs() throws Exception {
        Path sock = dir.resolve("s.sock");
        try (var s = TestImages.serve(one(), sock, NbdServer.Options.defaults())) {
            IOException e = assertThrows(IOException.class, () -> TestImages.serve(one(), sock, NbdServer.Options.defaults()));
            assertTrue(e.getMessage().contains("another server is listening"), e.getMessage());
        }
        Files.writeString(dir.resolve("plain"), "x");
        IOException e = assertThrows(IOException.class, () -> TestImages.serve(one(), dir.resolve("plain"), NbdServer.Options.defaults()));
        assertTrue(e.getMessage().contains("is not a socket"), e.getMessage());
    }

    @Test
    void minimumBlockSizeIsAdvertisedAndEnforced() {
        assertTimeoutPreemptively(Duration.ofSeconds(20), () -> {
            var chain = TestImages.vdltestChain(Files.createDirectories(dir.resolve("images")));
            try (var d = TestImages.open(chain)) {
                Export e = new Export("disk", "aligned", d, BlockSizes.DEFAULT.withMinimum(512));
                try (NbdServer server = NbdServer.start(List.of(e), java.net.UnixDomainSocketAddress.of(dir.resolve("s.sock")),
                        NbdServer.Options.defaults().withLog(l -> { }));
                     TestClient c = new TestClient(dir.resolve("s.sock"))) {
                    TestClient.ExportInfo info = c.open("disk", true, false, true);
                    assertEquals(512, info.minBlock());
                    c.request(0, Command.READ.code, 1, 100, 512);
                    assertEquals(Nbd.EINVAL, c.readReply().error());
                    c.request(0, Command.BLOCK_STATUS.code, 2, 0, 1000);
                    assertEquals(Nbd.EINVAL, c.readReply().error());
                    assertEquals(1024, c.read(512, 1024, 0).length);
                }
            }
        });
    }
}
