package org.vdiskload.nbd;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;

import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link NbdServer#serveConnected}: transmission with no handshake, as the kernel's nbd client speaks it. */
class ConnectedTest {
    @TempDir
    Path dir;

    /** A connected pair of Unix sockets: {client, server}. */
    private SocketChannel[] pair() throws Exception {
        try (ServerSocketChannel l = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            l.bind(UnixDomainSocketAddress.of(dir.resolve("pair.sock")));
            SocketChannel client = SocketChannel.open(l.getLocalAddress());
            return new SocketChannel[] {client, l.accept()};
        }
    }

    private DiskImage raw(boolean writable) throws Exception {
        byte[] data = new byte[1 << 20];
        Arrays.fill(data, (byte) 0x5a);
        Path f = dir.resolve("disk.raw");
        if (!Files.exists(f)) Files.write(f, data);
        return Images.open(f, OpenOptions.DEFAULTS.withFormat("raw").withWritable(writable));
    }

    @Test
    void servesSimpleRepliesWithoutHandshakeUntilDisc() {
        assertTimeoutPreemptively(Duration.ofSeconds(20), () -> {
            try (DiskImage d = raw(true)) {
                SocketChannel[] p = pair();
                List<String> log = new CopyOnWriteArrayList<>();
                Export e = Export.of("disk", d);
                Thread server = new Thread(() -> NbdServer.serveConnected(e, p[1], "kernel#0", log::add));
                server.start();
                try (TestClient c = new TestClient(p[0])) {
                    byte[] block = new byte[4096];
                    Arrays.fill(block, (byte) 0x11);
                    assertEquals(0, c.command(Nbd.CMD_FLAG_FUA, Command.WRITE, 8192, block.length, block));
                    assertArrayEquals(block, c.read(8192, 4096, 0));
                    assertEquals(0x5a, c.read(0, 512, 0)[0]);
                    assertEquals(0, c.command(0, Command.FLUSH, 0, 0, null));
                    assertEquals(0, c.command(0, Command.TRIM, 65536, 4096, null));
                    assertEquals(Nbd.EINVAL, c.command(0, Command.READ, 1 << 20, 512, null), "past the end");
                    c.request(0, Command.DISC.code, 1, 0, 0);
                    server.join();
                    assertTrue(c.closedByServer());
                }
                assertFalse(p[1].isOpen());
                assertTrue(log.contains("kernel#0: disconnect requested"), log.toString());
            }
        });
    }

    @Test
    void readOnlyExportRefusesWritesAndEndsAtEof() {
        assertTimeoutPreemptively(Duration.ofSeconds(20), () -> {
            raw(true).close();
            try (DiskImage d = raw(false)) {
                SocketChannel[] p = pair();
                Export e = Export.of("disk", d);
                int flags = NbdServer.connectedFlags(e, true);
                assertEquals(Nbd.FLAG_READ_ONLY | Nbd.FLAG_HAS_FLAGS | Nbd.FLAG_CAN_MULTI_CONN,
                        flags & (Nbd.FLAG_READ_ONLY | Nbd.FLAG_HAS_FLAGS | Nbd.FLAG_CAN_MULTI_CONN | Nbd.FLAG_SEND_TRIM | Nbd.FLAG_SEND_DF));
                Thread server = new Thread(() -> NbdServer.serveConnected(e, p[1], "kernel#1", line -> { }));
                server.start();
                TestClient c = new TestClient(p[0]);
                assertEquals(Nbd.EPERM, c.command(0, Command.WRITE, 0, 512, new byte[512]));
                c.close();
                server.join();
                assertFalse(p[1].isOpen());
            }
        });
    }
}
