package org.vdiskload.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.api.parallel.Isolated;
import org.vdiskload.attach.Attachment;
import org.vdiskload.attach.StateDir;
import org.vdiskload.testing.Tools;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A qcow2 whose L2 entry for guest offset 1 MiB points at its own L1 table, written to as users write: through
 * {@code convert -n}, an NBD client of {@code serve}, and an attached device. Every way, the write there is
 * refused (one line, no stack trace, an error for the client), the L1 table keeps its bytes, and the image is
 * marked corrupt.
 */
@Isolated
class MetadataOverlapCliTest {
    private static final Duration LIMIT = Duration.ofMinutes(2);
    private static final int MB = 1 << 20;

    @TempDir
    Path dir;

    /** The image, and the offset of its L1 table. */
    private record Hostile(Path image, long l1) {}

    private Hostile hostile(String name) throws Exception {
        Path p = dir.resolve(name);
        Tools.check("qemu-img", "create", "-q", "-f", "qcow2", p.toString(), "4M");
        Tools.check("qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 2M", p.toString());
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer b = ByteBuffer.allocate(8);
            ch.read(b, 40);
            long l1 = b.flip().getLong();
            ch.read(b.clear(), l1);
            long l2 = b.flip().getLong() & 0x00fffffffffffe00L;
            ch.write(ByteBuffer.allocate(8).putLong(0, l1 | 1L << 63), l2 + 16 * 8); // guest cluster 16 (64 KiB clusters)
            return new Hostile(p, l1);
        }
    }

    private static byte[] cluster(Path p, long at) throws Exception {
        try (FileChannel ch = FileChannel.open(p)) {
            ByteBuffer b = ByteBuffer.allocate(1 << 16);
            ch.read(b, at);
            return b.array();
        }
    }

    /** The L1 table as it was, and the corrupt bit set (qemu-img info says so too). */
    private static void intact(Hostile h, byte[] l1Before) throws Exception {
        assertArrayEquals(l1Before, cluster(h.image(), h.l1()), "the L1 table was overwritten");
        Tools.Result info = Tools.run(List.of("qemu-img", "info", "--output=json", h.image().toString()), null);
        assertTrue(info.stdout().contains("\"corrupt\": true"), info.stdout());
    }

    @Test
    void convertIntoItIsRefused() throws Exception {
        Hostile h = hostile("convert.qcow2");
        byte[] l1 = cluster(h.image(), h.l1());
        byte[] data = new byte[4 * MB];
        new Random(5).nextBytes(data);
        Path src = Files.write(dir.resolve("src.raw"), data);
        CliRun r = CliRun.run(LIMIT, "convert", "-n", "-O", "qcow2", src.toString(), h.image().toString());
        assertNotEquals(0, r.exit(), r.toString());
        assertTrue(r.err().contains("it would overwrite the active L1 table"), r.err());
        assertEquals(1, r.err().lines().count(), "one line: " + r.err());
        assertFalse(r.err().contains("\tat "), r.err());
        intact(h, l1);
        CliRun again = CliRun.run(LIMIT, "convert", "-n", "-O", "qcow2", src.toString(), h.image().toString());
        assertTrue(again.err().contains("vdiskload check -r all"), again.err());
    }

    @Test
    void anNbdClientsWriteIsRefused() throws Exception {
        Hostile h = hostile("serve.qcow2");
        byte[] l1 = cluster(h.image(), h.l1());
        Path sock = dir.resolve("s.sock");
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CompletableFuture<Integer> serve = CompletableFuture.supplyAsync(() ->
                Main.run(new PrintWriter(out), new PrintWriter(err), "serve", "-k", sock.toString(), "--name", "d", h.image().toString()));
        for (int i = 0; i < 400 && !out.toString().contains("?socket="); i++) Thread.sleep(25);
        Tools.Result w = Tools.run(List.of("qemu-io", "-f", "raw", "-c", "write -P 0x77 " + MB + " 4k", "-c", "read -P 0x11 0 4k",
                "nbd+unix:///d?socket=" + sock), null);
        assertTrue((w.stdout() + w.stderr()).contains("write failed"), w.stdout() + w.stderr());
        assertEquals(0, (int) serve.get(), err.toString());
        intact(h, l1);
    }

    /** The device is a loop device on the FUSE mount: the write fails with EIO, and the table survives. */
    @Test
    void aWriteToTheAttachedDeviceIsRefused() throws Exception {
        Hostile h = hostile("attach.qcow2");
        byte[] l1 = cluster(h.image(), h.l1());
        CliRun a = CliRun.run(LIMIT, "--show", h.image().toString());
        assertEquals(0, a.exit(), a.toString());
        String dev = a.lastLine();
        try {
            Tools.Result dd = Tools.run(List.of("dd", "if=/dev/zero", "of=" + dev, "bs=4096", "count=1", "seek=256",
                    "oflag=direct", "conv=notrunc"), null);
            assertNotEquals(0, dd.exit(), dd.stdout() + dd.stderr());
            Tools.Result read = Tools.run(List.of("dd", "if=" + dev, "bs=4096", "count=1", "iflag=direct", "status=none"), null);
            assertEquals(0, read.exit(), read.stderr());
        } finally {
            for (Attachment at : StateDir.system().list()) {
                if (at.image().startsWith(dir.toString())) CliRun.run(LIMIT, "-d", at.path());
            }
        }
        intact(h, l1);
        assertTrue(Arrays.equals(l1, cluster(h.image(), h.l1())));
    }
}
