package org.vdiskload.nbd;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The protocol, step by step with a hand-driven client, over the vdltest chain whose layout is known:
 * [0,2M) data, [2M,+128K) allocated zeros, [2M+128K,3M) data, [3M,4M) unallocated zeros.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ProtocolTest {
    static final int M = 1 << 20;
    static final int K = 1 << 10;

    @TempDir
    static Path dir;
    List<TestImages.Served> served;
    TestImages.Running server;
    TestImages.Served chain;
    byte[] content;

    @BeforeAll
    void start() throws Exception {
        served = TestImages.make(dir.resolve("images"));
        server = TestImages.serve(served, dir.resolve("nbd.sock"), NbdServer.Options.defaults());
        chain = served.stream().filter(s -> s.image().format().equals("vdltest")).findFirst().orElseThrow();
        content = Files.readAllBytes(chain.expected());
    }

    @AfterAll
    void stop() throws Exception {
        server.close();
    }

    TestClient client() throws Exception {
        return new TestClient(server.socket());
    }

    private byte[] expected(int offset, int length) {
        return Arrays.copyOfRange(content, offset, offset + length);
    }

    private static void within(ThrowingRunnable r) {
        assertTimeoutPreemptively(Duration.ofSeconds(20), r::run);
    }

    interface ThrowingRunnable {
        void run() throws Throwable;
    }

    @Test
    void simpleRepliesCarryTheBytes() {
        within(() -> {
            try (TestClient c = client()) {
                TestClient.ExportInfo info = c.open(chain.name(), false, false, false);
                assertEquals(4 * M, info.size());
                assertEquals(Nbd.FLAG_HAS_FLAGS | Nbd.FLAG_READ_ONLY | Nbd.FLAG_SEND_FLUSH | Nbd.FLAG_SEND_CACHE | Nbd.FLAG_CAN_MULTI_CONN,
                        info.flags(), "no DF without structured replies");
                assertArrayEquals(expected(M - 100, 300), c.read(M - 100, 300, 0));
                assertArrayEquals(expected(0, 4 * M), c.read(0, 4 * M, 0));
            }
        });
    }

    @Test
    void structuredReadsSendZeroRunsAsHoles() {
        within(() -> {
            try (TestClient c = client()) {
                TestClient.ExportInfo info = c.open(chain.name(), true, false, false);
                assertTrue((info.flags() & Nbd.FLAG_SEND_DF) != 0);
                c.request(0, Command.READ.code, 5, 3 * M - 64 * K, 128 * K);
                List<TestClient.Reply> chunks = c.replies();
                assertEquals(2, chunks.size());
                assertEquals(Nbd.REPLY_TYPE_OFFSET_DATA, chunks.get(0).type());
                assertEquals(3 * M - 64 * K, chunks.get(0).payload().getLong(0));
                assertEquals(8 + 64 * K, chunks.get(0).payload().remaining());
                assertEquals(Nbd.REPLY_TYPE_OFFSET_HOLE, chunks.get(1).type());
                assertEquals(3 * M, chunks.get(1).payload().getLong(0));
                assertEquals(64 * K, chunks.get(1).payload().getInt(8));
                assertTrue(chunks.get(1).done());
                assertFalse(chunks.get(0).done());
                assertArrayEquals(expected(0, 4 * M), c.read(0, 4 * M, 0));
            }
        });
    }

    @Test
    void dontFragmentGivesOneDataChunk() {
        within(() -> {
            try (TestClient c = client()) {
                c.open(chain.name(), true, false, false);
                c.request(Nbd.CMD_FLAG_DF, Command.READ.code, 6, 3 * M - 64 * K, 128 * K);
                List<TestClient.Reply> chunks = c.replies();
                assertEquals(1, chunks.size());
                assertEquals(Nbd.REPLY_TYPE_OFFSET_DATA, chunks.get(0).type());
                ByteBuffer p = chunks.get(0).payload();
                assertEquals(3 * M - 64 * K, p.getLong());
                byte[] got = new byte[p.remaining()];
                p.get(got);
                assertArrayEquals(expected(3 * M - 64 * K, 128 * K), got);
            }
        });
    }

    private static List<long[]> descriptors(TestClient.Reply r, boolean extended) {
        ByteBuffer p = r.payload();
        assertEquals(Handshake.BASE_ALLOCATION_ID, p.getInt());
        List<long[]> out = new ArrayList<>();
        if (extended) {
            int n = p.getInt();
            for (int i = 0; i < n; i++) out.add(new long[] {p.getLong(), p.getLong()});
        } else {
            while (p.hasRemaining()) out.add(new long[] {Integer.toUnsignedLong(p.getInt()), p.getInt()});
        }
        return out;
    }

    private static String str(List<long[]> d) {
        StringBuilder sb = new StringBuilder();
        for (long[] x : d) sb.append(x[0]).append(':').append(x[1]).append(' ');
        return sb.toString().trim();
    }

    @Test
    void blockStatusReportsHolesAndZeros() {
        within(() -> {
            try (TestClient c = client()) {
                c.open(chain.name(), true, false, true);
                c.request(0, Command.BLOCK_STATUS.code, 8, 0, 4 * M);
                List<TestClient.Reply> r = c.replies();
                assertEquals(1, r.size());
                assertEquals(Nbd.REPLY_TYPE_BLOCK_STATUS, r.get(0).type());
                assertEquals((2 * M) + ":0 " + (128 * K) + ":2 " + (M - 128 * K) + ":0 " + M + ":3", str(descriptors(r.get(0), false)));
                c.request(Nbd.CMD_FLAG_REQ_ONE, Command.BLOCK_STATUS.code, 9, 2 * M, M);
                assertEquals((128 * K) + ":2", str(descriptors(c.replies().get(0), false)));
                c.request(Nbd.CMD_FLAG_REQ_ONE, Command.BLOCK_STATUS.code, 10, 3 * M + 512, 1024);
                assertEquals("1024:3", str(descriptors(c.replies().get(0), false)), "never longer than asked with REQ_ONE");
            }
        });
    }

    @Test
    void extendedHeadersUse64BitRepliesEverywhere() {
        within(() -> {
            try (TestClient c = client()) {
                c.open(chain.name(), false, true, true);
                c.request(0, Command.BLOCK_STATUS.code, 11, M, 3 * M);
                TestClient.Reply r = c.readReply();
                assertEquals(Nbd.REPLY_TYPE_BLOCK_STATUS_EXT, r.type());
                assertEquals(M, r.offset(), "extended replies echo the request offset");
                assertEquals(M + ":0 " + (128 * K) + ":2 " + (M - 128 * K) + ":0 " + M + ":3", str(descriptors(r, true)));
                c.request(0, Command.FLUSH.code, 12, 0, 0);
                TestClient.Reply flush = c.readReply();
                assertEquals(Nbd.REPLY_TYPE_NONE, flush.type(), "no simple replies with extended headers");
                assertEquals(12, flush.cookie());
                assertArrayEquals(expected(3 * M - 4096, 8192), c.read(3 * M - 4096, 8192, 0));
                c.request(0, Command.CACHE.code, 13, 0, 4 * M);
                assertEquals(Nbd.REPLY_TYPE_NONE, c.readReply().type());
            }
        });
    }

    @Test
    void extendedHeadersForbidStructuredDowngradeAndExportName() {
        within(() -> {
            try (TestClient c = client()) {
                c.greet(Nbd.FLAG_C_FIXED_NEWSTYLE);
                assertEquals(Nbd.REP_ACK, c.option(Nbd.OPT_EXTENDED_HEADERS, null).get(0).type());
                assertEquals(Nbd.REP_ERR_EXT_HEADER_REQD, c.option(Nbd.OPT_STRUCTURED_REPLY, null).get(0).type());
                c.sendOption(Nbd.OPT_EXPORT_NAME, ByteBuffer.wrap(chain.name().getBytes()));
                assertTrue(c.closedByServer());
            }
        });
    }

    @Test
    void pipelinedRequestsAreAllAnsweredByCookie() {
        within(() -> {
            try (TestClient c = client()) {
                c.open(chain.name(), false, false, false);
                Map<Long, int[]> asked = new HashMap<>();
                for (long cookie = 1; cookie <= 60; cookie++) {
                    int off = (int) ((cookie * 65536 + cookie * 3) % (4 * M - 200 * K));
                    int len = (int) (cookie * 3000 % (200 * K)) + 1;
                    asked.put(cookie, new int[] {off, len});
                    c.request(0, Command.READ.code, cookie, off, len);
                }
                for (int i = 0; i < 60; i++) {
                    TestClient.Reply r = c.readReply();
                    int[] a = asked.remove(r.cookie());
                    assertTrue(a != null, "reply for an unknown or repeated cookie " + r.cookie());
                    assertEquals(0, r.error());
                    byte[] got = new byte[a[1]];
                    c.read(a[1]).get(got);
                    assertArrayEquals(expected(a[0], a[1]), got, "cookie " + r.cookie());
                }
                assertTrue(asked.isEmpty());
            }
        });
    }

    @Test
    void infoGivesNameDescriptionAndBlockSizes() {
        within(() -> {
            try (TestClient c = client()) {
                c.greet(Nbd.FLAG_C_FIXED_NEWSTYLE);
                List<TestClient.OptReply> r = c.option(Nbd.OPT_INFO, TestClient.nameAndInfos("", Nbd.INFO_NAME, Nbd.INFO_DESCRIPTION, Nbd.INFO_BLOCK_SIZE));
                assertEquals(Nbd.REP_ACK, r.get(r.size() - 1).type());
                Map<Integer, ByteBuffer> infos = new HashMap<>();
                for (TestClient.OptReply o : r) if (o.type() == Nbd.REP_INFO) infos.put((int) o.data().getShort(), o.data().slice());
                assertEquals(served.get(0).name(), java.nio.charset.StandardCharsets.UTF_8.decode(infos.get(Nbd.INFO_NAME)).toString(),
                        "the empty name is the first export");
                assertTrue(java.nio.charset.StandardCharsets.UTF_8.decode(infos.get(Nbd.INFO_DESCRIPTION)).toString().startsWith("raw image"));
                ByteBuffer bs = infos.get(Nbd.INFO_BLOCK_SIZE);
                assertEquals(1, bs.getInt());
                assertEquals(4096, bs.getInt());
                assertEquals(32 * M, bs.getInt());
                assertEquals(Nbd.REP_ERR_UNKNOWN, c.option(Nbd.OPT_INFO, TestClient.nameAndInfos("no-such-export")).get(0).type());
                assertNull(c.info(Nbd.OPT_GO, "no-such-export"), "GO to an unknown export fails and negotiation goes on");
                assertEquals(4 * M, c.info(Nbd.OPT_GO, chain.name()).size());
                assertArrayEquals(expected(0, 512), c.read(0, 512, 0));
            }
        });
    }

    @Test
    void metaContextQueries() {
        within(() -> {
            try (TestClient c = client()) {
                c.greet(Nbd.FLAG_C_FIXED_NEWSTYLE);
                assertEquals(Nbd.REP_ERR_INVALID, c.option(Nbd.OPT_LIST_META_CONTEXT, TestClient.nameAndQueries(chain.name())).get(0).type(),
                        "contexts need structured replies first");
                c.option(Nbd.OPT_STRUCTURED_REPLY, null);
                List<TestClient.OptReply> all = c.option(Nbd.OPT_LIST_META_CONTEXT, TestClient.nameAndQueries(chain.name()));
                assertEquals(2, all.size());
                assertEquals(Nbd.BASE_ALLOCATION, new String(Arrays.copyOfRange(all.get(0).data().array(), 4, all.get(0).data().limit())));
                assertEquals(2, c.option(Nbd.OPT_LIST_META_CONTEXT, TestClient.nameAndQueries(chain.name(), "base:")).size());
                assertEquals(1, c.option(Nbd.OPT_LIST_META_CONTEXT, TestClient.nameAndQueries(chain.name(), "qemu:dirty-bitmap:x")).size());
                assertEquals(Nbd.REP_ERR_INVALID, c.option(Nbd.OPT_LIST_META_CONTEXT, TestClient.nameAndQueries(chain.name(), "nocolon")).get(0).type());
                assertEquals(1, c.option(Nbd.OPT_SET_META_CONTEXT, TestClient.nameAndQueries(chain.name(), "base:")).size(),
                        "base: selects nothing in SET");
                ByteBuffer truncated = TestClient.nameAndQueries(chain.name(), Nbd.BASE_ALLOCATION);
                truncated.limit(truncated.limit() - 3);
                assertEquals(Nbd.REP_ERR_INVALID, c.option(Nbd.OPT_SET_META_CONTEXT, truncated).get(0).type());
                // contexts set for another export do not carry over to this one
                c.option(Nbd.OPT_SET_META_CONTEXT, TestClient.nameAndQueries(served.get(0).name(), Nbd.BASE_ALLOCATION));
                c.structured = true;
                c.info(Nbd.OPT_GO, chain.name());
                c.request(0, Command.BLOCK_STATUS.code, 1, 0, 4096);
                TestClient.Reply r = c.readReply();
                assertEquals(Nbd.EINVAL, r.error());
            }
        });
    }

    @Test
    void writeCommandsArePermissionErrors() {
        within(() -> {
            try (TestClient c = client()) {
                c.open(chain.name(), false, false, false);
                c.request(0, Command.WRITE.code, 21, 0, 4096, new byte[4096]);
                assertEquals(Nbd.EPERM, c.readReply().error());
                c.request(0, Command.TRIM.code, 22, 0, 4096);
                assertEquals(Nbd.EPERM, c.readReply().error());
                c.request(0, Command.WRITE_ZEROES.code, 23, 0, 4096);
                assertEquals(Nbd.EPERM, c.readReply().error());
                assertArrayEquals(expected(0, 4096), c.read(0, 4096, 0), "the connection goes on, unchanged");
            }
            assertTrue(server.log().stream().anyMatch(l -> l.contains("rejected WRITE offset=0 length=4096") && l.contains("EPERM")), server.log().toString());
        });
    }

    @Test
    void listNamesEveryExportAndAbortIsAcknowledged() {
        within(() -> {
            try (TestClient c = client()) {
                c.greet(Nbd.FLAG_C_FIXED_NEWSTYLE | Nbd.FLAG_C_NO_ZEROES);
                List<TestClient.OptReply> r = c.option(Nbd.OPT_LIST, null);
                assertEquals(served.size() + 1, r.size());
                for (int i = 0; i < served.size(); i++) {
                    ByteBuffer d = r.get(i).data();
                    byte[] name = new byte[d.getInt()];
                    d.get(name);
                    assertEquals(served.get(i).name(), new String(name));
                }
                assertEquals(Nbd.REP_ACK, c.option(Nbd.OPT_ABORT, null).get(0).type());
                assertTrue(c.closedByServer());
            }
        });
    }

    @Test
    void exportNameWithAndWithoutZeroes() {
        within(() -> {
            for (boolean noZeroes : new boolean[] {true, false}) {
                try (TestClient c = client()) {
                    c.greet(Nbd.FLAG_C_FIXED_NEWSTYLE | (noZeroes ? Nbd.FLAG_C_NO_ZEROES : 0));
                    c.sendOption(Nbd.OPT_EXPORT_NAME, ByteBuffer.wrap(chain.name().getBytes()));
                    ByteBuffer b = c.read(10);
                    assertEquals(4 * M, b.getLong());
                    if (!noZeroes) assertEquals(-1, c.read(124).mismatch(ByteBuffer.allocate(124)));
                    assertArrayEquals(expected(M, 1000), c.read(M, 1000, 0));
                }
            }
        });
    }
}
