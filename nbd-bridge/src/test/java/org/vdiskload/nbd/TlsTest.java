package org.vdiskload.nbd;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.testing.Tools;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A server with TLS required, on a Unix socket and on TCP: libnbd (nbdinfo, nbdcopy) and qemu
 * (qemu-img, qemu-io with a tls-creds-x509 object) verify it against the test CA and read and write
 * through it; plain clients are refused, broken handshakes dropped, and the server goes on serving.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TlsTest {
    private static final int SIZE = 4 << 20;

    @TempDir
    static Path dir;
    TestPki pki;
    byte[] content;
    final List<String> log = new CopyOnWriteArrayList<>();
    final List<DiskImage> disks = new ArrayList<>();
    NbdServer unix;
    NbdServer tcp;
    Path socket;
    int port;

    @BeforeAll
    void start() throws Exception {
        pki = TestPki.create(dir.resolve("pki"), "rsa");
        content = new byte[SIZE];
        for (int i = 0; i < SIZE / 2; i++) content[i] = (byte) (i * 13 + (i >> 12));
        Path image = Files.write(dir.resolve("disk.raw"), content);
        Path writable = Files.write(dir.resolve("rw.raw"), content);
        DiskImage ro = Images.open(image, OpenOptions.DEFAULTS.withFormat("raw"));
        DiskImage rw = Images.open(writable, OpenOptions.DEFAULTS.withFormat("raw").withWritable(true));
        disks.addAll(List.of(ro, rw));
        List<Export> exports = List.of(Export.of("disk", ro), Export.of("rw", rw));
        NbdServer.Options options = NbdServer.Options.defaults().withTls(pki.credentials()).withLog(log::add)
                .withHandshakeTimeout(Duration.ofSeconds(5));
        socket = dir.resolve("tls.sock");
        unix = NbdServer.start(exports, UnixDomainSocketAddress.of(socket), options);
        tcp = NbdServer.start(exports, new InetSocketAddress("127.0.0.1", 0), options);
        port = ((InetSocketAddress) tcp.address()).getPort();
    }

    @AfterAll
    void stop() throws IOException {
        unix.close();
        tcp.close();
        for (DiskImage d : disks) d.close();
    }

    private String unixUri(String export) {
        return "nbds+unix:///" + export + "?socket=" + socket + "&tls-certificates=" + pki.dir();
    }

    private String tcpUri(String export) {
        return "nbds://localhost:" + port + "/" + export + "?tls-certificates=" + pki.dir();
    }

    /** A qemu-img or qemu-io command line ({@code tool} with its subcommand, if any) on an NBD export over TLS. */
    private List<String> qemu(List<String> tool, String nbdOptions, String... args) {
        List<String> cmd = new ArrayList<>(tool);
        cmd.addAll(List.of("--object", "tls-creds-x509,id=tls0,dir=" + pki.dir() + ",endpoint=client", "--image-opts"));
        cmd.addAll(Arrays.asList(args));
        // the nbd driver checks the certificate against tls-hostname (with a Unix socket there is no host to take)
        cmd.add(cmd.indexOf("--image-opts") + 1, "driver=nbd," + nbdOptions + ",tls-creds=tls0,tls-hostname=localhost");
        return cmd;
    }

    private void within(ProtocolTest.ThrowingRunnable r) {
        assertTimeoutPreemptively(Duration.ofSeconds(60), r::run);
    }

    private void logged(String... parts) {
        assertTrue(log.stream().anyMatch(l -> Arrays.stream(parts).allMatch(l::contains)), "a log line with " + Arrays.toString(parts) + " in " + log);
    }

    private void assertCopyEquals(String uri) throws Exception {
        Path out = Files.createTempFile(dir, "copy", ".raw");
        Tools.check("nbdcopy", uri, out.toString());
        assertEquals(-1, Files.mismatch(dir.resolve("disk.raw"), out), "nbdcopy " + uri);
    }

    @Test
    void libnbdReadsOverTlsOnBothSockets() {
        within(() -> {
            String info = Tools.check("nbdinfo", unixUri("disk"));
            assertTrue(info.contains("with TLS") && info.contains("export-size: " + SIZE), info);
            assertCopyEquals(unixUri("disk"));
            assertCopyEquals(tcpUri("disk"));
            logged("TLS established (TLSv1.3");
        });
    }

    @Test
    void qemuReadsAndWritesOverTls() {
        within(() -> {
            Path out = dir.resolve("qemu.raw");
            Tools.Result r = Tools.run(qemu(List.of("qemu-img", "convert"), "path=" + socket + ",export=disk", "-O", "raw", out.toString()), null);
            assertEquals(0, r.exit(), r.stderr());
            assertEquals(-1, Files.mismatch(dir.resolve("disk.raw"), out));
            String tcpOpts = "server.type=inet,server.host=localhost,server.port=" + port + ",export=rw";
            r = Tools.run(qemu(List.of("qemu-io"), tcpOpts, "-c", "write -P 0x5a 1M 64k", "-c", "read -P 0x5a 1M 64k", "-c", "flush"), null);
            assertEquals(0, r.exit(), r.stdout() + r.stderr());
            assertTrue(!r.stdout().contains("Pattern verification failed"), r.stdout());
            r = Tools.run(qemu(List.of("qemu-io"), "path=" + socket + ",export=rw", "-r", "-c", "read -P 0x5a 1M 64k"), null);
            assertEquals(0, r.exit(), r.stdout() + r.stderr());
            assertTrue(!r.stdout().contains("Pattern verification failed"), r.stdout());
        });
    }

    @Test
    void plainClientIsRefusedWithTlsRequired() {
        within(() -> {
            Tools.Result r = Tools.run(List.of("nbdinfo", "nbd+unix:///disk?socket=" + socket), null);
            assertNotEquals(0, r.exit(), r.stdout());
            logged("GO refused: this server requires TLS");
            try (TestClient c = new TestClient(socket)) {
                c.greet(Nbd.FLAG_C_FIXED_NEWSTYLE | Nbd.FLAG_C_NO_ZEROES);
                for (int option : new int[] {Nbd.OPT_LIST, Nbd.OPT_STRUCTURED_REPLY, Nbd.OPT_GO, Nbd.OPT_INFO, 4242}) {
                    ByteBuffer data = option == Nbd.OPT_GO || option == Nbd.OPT_INFO ? TestClient.nameAndInfos("disk") : null;
                    assertEquals(Nbd.REP_ERR_TLS_REQD, c.option(option, data).get(0).type(), Nbd.optionName(option));
                }
                assertEquals(Nbd.REP_ERR_INVALID, c.option(Nbd.OPT_STARTTLS, ByteBuffer.wrap(new byte[3])).get(0).type());
                c.sendOption(Nbd.OPT_EXPORT_NAME, ByteBuffer.wrap("disk".getBytes()));
                assertTrue(c.closedByServer());
            }
            logged("EXPORT_NAME before STARTTLS");
            assertCopyEquals(unixUri("disk"));
        });
    }

    @Test
    void negotiationGoesOnInsideTlsAndASecondStartTlsIsInvalid() {
        within(() -> {
            try (TestClient c = new TestClient(socket)) {
                c.greet(Nbd.FLAG_C_FIXED_NEWSTYLE | Nbd.FLAG_C_NO_ZEROES);
                assertTrue(c.startTls(pki.clientContext()));
                assertEquals(Nbd.REP_ERR_INVALID, c.option(Nbd.OPT_STARTTLS, null).get(0).type());
                assertEquals(Nbd.REP_ACK, c.option(Nbd.OPT_STRUCTURED_REPLY, null).get(0).type());
                c.structured = true;
                assertEquals(SIZE, c.info(Nbd.OPT_GO, "disk").size());
                assertArrayEquals(Arrays.copyOfRange(content, 4096, 4096 + 300_000), c.read(4096, 300_000, 0));
                assertArrayEquals(Arrays.copyOfRange(content, SIZE - 8192, SIZE), c.read(SIZE - 8192, 8192, 0));
            }
            logged("STARTTLS refused: TLS is already in use");
        });
    }

    @Test
    void tls12IsAcceptedAndNothingOlderIsOffered() {
        within(() -> {
            try (TestClient c = new TestClient(SocketChannel.open(tcp.address()))) {
                c.greet(Nbd.FLAG_C_FIXED_NEWSTYLE | Nbd.FLAG_C_NO_ZEROES);
                assertTrue(c.startTls(pki.clientContext(), "TLSv1.2"));
                assertTrue(c.tlsSession.startsWith("TLSv1.2"), c.tlsSession);
                c.info(Nbd.OPT_GO, "disk");
                assertArrayEquals(Arrays.copyOfRange(content, 0, 512), c.read(0, 512, 0));
            }
            assertEquals(List.of("TLSv1.3", "TLSv1.2"), Arrays.asList(pki.credentials().newEngine().getEnabledProtocols()));
        });
    }

    @Test
    void garbageInsteadOfAHandshakeIsDropped() {
        within(() -> {
            try (TestClient c = new TestClient(socket)) {
                c.greet(Nbd.FLAG_C_FIXED_NEWSTYLE);
                assertEquals(Nbd.REP_ACK, c.option(Nbd.OPT_STARTTLS, null).get(0).type());
                c.write("GET / HTTP/1.0\r\n\r\n".repeat(20).getBytes());
                assertTrue(c.closedByServer());
            }
            logged("dropped: TLS handshake failed");
            try (TestClient c = new TestClient(socket)) {
                c.greet(Nbd.FLAG_C_FIXED_NEWSTYLE);
                assertEquals(Nbd.REP_ACK, c.option(Nbd.OPT_STARTTLS, null).get(0).type());
                // a client that stops in the middle of its handshake is dropped at the negotiation deadline
                c.write(new byte[] {0x16, 0x03, 0x01, 0x02, 0x00, 0x01});
                assertTrue(c.closedByServer());
            }
            logged("no complete negotiation within 5 s");
            assertCopyEquals(tcpUri("disk"));
        });
    }
}
