package org.vdiskload.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.PrintWriter;
import java.io.StringWriter;
import org.vdiskload.testing.Tools;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code vdiskload serve} as a user runs it: URIs printed, qemu-img reading, one-line errors, clean signals. */
class ServeCommandTest {
    @TempDir
    Path dir;

    private Path image() throws Exception {
        byte[] b = new byte[1 << 20];
        for (int i = 0; i < b.length; i++) b[i] = (byte) (i * 31);
        return Files.write(dir.resolve("disk.raw"), b);
    }

    /**
     * Waits until the server printed its URI: it is listening then. (The socket file alone is not enough:
     * it appears at bind, a moment before listen, and a client connecting in between is refused.)
     */
    private static void waitFor(Path socket, java.util.function.Supplier<String> output) throws InterruptedException {
        for (int i = 0; i < 400 && !output.get().contains("?socket=" + socket); i++) Thread.sleep(25);
        assertTrue(Files.exists(socket), "server socket " + socket + "; output: " + output.get());
    }

    /** The same for a server in a child process, whose output goes to serve.log. */
    private void waitFor(Path socket) throws InterruptedException {
        waitFor(socket, () -> {
            try {
                return Files.readString(dir.resolve("serve.log"));
            } catch (java.io.IOException e) {
                return "";
            }
        });
    }

    private static String run(String... cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), String.join(" ", cmd) + ": " + out);
        return out;
    }

    @Test
    void servesUntilItsOnlyClientLeaves() {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            Path img = image();
            Path sock = dir.resolve("s.sock");
            StringWriter out = new StringWriter();
            StringWriter err = new StringWriter();
            CompletableFuture<Integer> serve = CompletableFuture.supplyAsync(() ->
                    Main.run(new PrintWriter(out), new PrintWriter(err), "serve", "-k", sock.toString(), "--name", "d", img.toString()));
            waitFor(sock, out::toString);
            Path copy = dir.resolve("copy.raw");
            run("qemu-img", "convert", "-f", "raw", "-O", "raw", "nbd+unix:///d?socket=" + sock, copy.toString());
            assertEquals(0, serve.get(), err.toString());
            assertEquals(-1, Files.mismatch(img, copy));
            assertEquals("d: nbd+unix:///d?socket=" + sock + "\n", out.toString());
            assertTrue(Files.notExists(sock), "socket removed");
        });
    }

    @Test
    void sigtermStopsAPersistentServerCleanly() {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            Path img = image();
            Path sock = dir.resolve("s.sock");
            String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
            Process p = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"), Main.class.getName(),
                    "serve", "--persistent", "-k", sock.toString(), img.toString())
                    .redirectErrorStream(true).redirectOutput(dir.resolve("serve.log").toFile()).start();
            waitFor(sock);
            String info = run("nbdinfo", "nbd+unix:///disk.raw?socket=" + sock);
            assertTrue(info.contains("export-size: 1048576"), info);
            run("nbdinfo", "--size", "nbd+unix:///?socket=" + sock); // still there: persistent
            p.destroy(); // SIGTERM
            assertTrue(p.waitFor(20, TimeUnit.SECONDS), "exits on SIGTERM");
            String output = Files.readString(dir.resolve("serve.log"));
            assertTrue(output.startsWith("disk.raw: nbd+unix:///disk.raw?socket="), output);
            assertTrue(Files.notExists(sock), "socket removed on SIGTERM");
            assertTrue(output.contains("client#2: closed"), output);
        });
    }

    /** A server in a child JVM (so signals and resource limits reach it alone), its output in serve.log. */
    private Process serveProcess(String shellPrefix, String... args) throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> cmd = new ArrayList<>(List.of(java, "-cp", System.getProperty("java.class.path"), Main.class.getName(), "serve"));
        cmd.addAll(List.of(args));
        if (shellPrefix != null) {
            StringBuilder line = new StringBuilder(shellPrefix + "; exec");
            for (String c : cmd) line.append(" '").append(c).append('\'');
            cmd = List.of("sh", "-c", line.toString());
        }
        return new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(dir.resolve("serve.log").toFile()).start();
    }

    private static Tools.Result qemuIo(Path sock, String export, String... commands) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("qemu-io", "-f", "raw"));
        for (String c : commands) cmd.addAll(List.of("-c", c));
        cmd.add("nbd+unix:///" + export + "?socket=" + sock);
        return Tools.run(cmd, null);
    }

    private String stop(Process p) throws Exception {
        p.destroy(); // SIGTERM
        assertTrue(p.waitFor(20, TimeUnit.SECONDS), "exits on SIGTERM");
        return Files.readString(dir.resolve("serve.log"));
    }

    @Test
    void writesThroughTheExportAreInTheImageAfterSigterm() {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            Path img = image();
            byte[] model = Files.readAllBytes(img);
            Path sock = dir.resolve("s.sock");
            Process p = serveProcess(null, "--persistent", "-k", sock.toString(), img.toString());
            waitFor(sock);
            Tools.Result r = qemuIo(sock, "disk.raw", "write -P 0x5a 4096 8192", "write -f -P 0x6b 100000 1000", "write -z 200000 5000",
                    "discard 524288 65536", "flush");
            assertEquals(0, r.exit(), r.stdout() + r.stderr());
            Arrays.fill(model, 4096, 4096 + 8192, (byte) 0x5a);
            Arrays.fill(model, 100000, 101000, (byte) 0x6b);
            Arrays.fill(model, 200000, 205000, (byte) 0);
            Arrays.fill(model, 524288, 524288 + 65536, (byte) 0);
            r = qemuIo(sock, "disk.raw", "read -P 0x5a 4096 8192", "read -P 0x6b 100000 1000", "read -P 0 524288 65536");
            assertEquals(0, r.exit(), r.stdout() + r.stderr());
            assertFalse(r.stdout().contains("Pattern verification failed"), r.stdout());
            String log = stop(p);
            assertTrue(log.contains("vdiskload serve: flushed and closed " + img), log);
            assertEquals(-1, Arrays.mismatch(model, Files.readAllBytes(img)), "the image holds every acknowledged write");
        });
    }

    @Test
    void aSecondReadWriteServerOfTheSameImageIsRefused() {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            Path img = image();
            Path sock = dir.resolve("s.sock");
            Process p = serveProcess(null, "--persistent", "-k", sock.toString(), img.toString());
            waitFor(sock);
            CliRun second = CliTest.cli("serve", "-k", dir.resolve("t.sock").toString(), img.toString());
            CliTest.assertOneLineError(second, 1, img + ": is in use: another process");
            assertTrue(second.err().contains("is writing it"), second.err());
            Tools.Result q = Tools.run(List.of("qemu-io", "-f", "raw", "-c", "write 0 512", img.toString()), null);
            assertTrue(q.stderr().contains("Failed to get \"write\" lock"), "qemu sees the lock too: " + q.stderr());
            // a --snapshot server reads the image as it is, so it needs nobody writing it either
            CliTest.assertOneLineError(CliTest.cli("serve", "--snapshot", "-k", dir.resolve("t.sock").toString(), img.toString()),
                    1, "is writing it");
            stop(p);
        });
    }

    @Test
    void snapshotTakesWritesAndLeavesTheImageUntouched() {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            Path img = image();
            byte[] before = Files.readAllBytes(img);
            Path sock = dir.resolve("s.sock");
            Path tmp = Files.createDirectories(dir.resolve("tmp"));
            Process p = serveProcess("TMPDIR='" + tmp + "'; export TMPDIR", "--snapshot", "--persistent", "-k", sock.toString(), img.toString());
            waitFor(sock);
            Tools.Result r = qemuIo(sock, "disk.raw", "write -P 0x77 1000 70000", "write -z 0 512", "flush");
            assertEquals(0, r.exit(), r.stdout() + r.stderr());
            r = qemuIo(sock, "disk.raw", "read -P 0x77 1000 70000", "read -P 0 0 512");
            assertFalse(r.stdout().contains("Pattern verification failed") || r.exit() != 0, r.stdout() + r.stderr());
            String info = Tools.check("nbdinfo", "nbd+unix:///disk.raw?socket=" + sock);
            assertTrue(info.contains("is_read_only: false") && info.contains("snapshot: writes are discarded at exit"), info);
            assertEquals(List.of(), Files.list(tmp).toList(), "the overlay's file is unlinked while in use");
            stop(p);
            assertEquals(-1, Arrays.mismatch(before, Files.readAllBytes(img)), "--snapshot never writes the image");
        });
    }

    @Test
    void aFullFileSystemIsEnospcForTheClient() {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            Path img = dir.resolve("big.raw");
            Tools.check("truncate", "-s", "8M", img.toString());
            Path sock = dir.resolve("s.sock");
            // RLIMIT_FSIZE of 2 MiB (in 512-byte blocks for sh): writes past it fail with EFBIG, as on a full disk
            Process p = serveProcess("ulimit -f 4096", "--persistent", "-k", sock.toString(), img.toString());
            waitFor(sock);
            Tools.Result r = qemuIo(sock, "big.raw", "write -P 0x11 0 4096");
            assertEquals(0, r.exit(), r.stdout() + r.stderr());
            r = qemuIo(sock, "big.raw", "write -P 0x22 6M 4096");
            assertTrue((r.stdout() + r.stderr()).contains("No space left on device"), r.stdout() + r.stderr());
            String log = stop(p);
            assertTrue(log.contains("WRITE offset=6291456 length=4096") && log.contains("failed: File too large (ENOSPC)"), log);
        });
    }

    @Test
    void imagesThatCannotBeWrittenAreRefusedUnlessReadOnly() throws Exception {
        Path q = dir.resolve("d.qcow2");
        Tools.check("qemu-img", "create", "-q", "-f", "qcow2", q.toString(), "1M");
        // Set the corrupt bit (incompatible_features bit 1, header offset 72): such an image opens read-only only.
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(q, java.nio.file.StandardOpenOption.WRITE)) {
            ch.write(java.nio.ByteBuffer.wrap(new byte[] {0, 0, 0, 0, 0, 0, 0, 2}), 72);
        }
        CliTest.assertOneLineError(CliTest.cli("serve", "-k", dir.resolve("s.sock").toString(), q.toString()), 1,
                "d.qcow2: the image is marked corrupt (a write found its metadata inconsistent); it opens read-only until"
                        + " 'vdiskload check -r all' (or 'qemu-img check -r all') repairs it");
        CliTest.assertOneLineError(CliTest.cli("serve", "-r", "--snapshot", q.toString()), 1, "--snapshot and --read-only exclude each other");
    }

    @Test
    void tlsCredentialsMakeAnNbdsServer() {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            Path img = image();
            Path creds = Files.createDirectories(dir.resolve("creds"));
            Path cert = creds.resolve("server-cert.pem");
            Path key = creds.resolve("server-key.pem");
            Tools.check("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key.toString(), "-out", cert.toString(),
                    "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost");
            Files.copy(cert, creds.resolve("ca-cert.pem")); // self-signed: the client trusts it directly
            Path sock = dir.resolve("s.sock");
            StringWriter out = new StringWriter();
            StringWriter err = new StringWriter();
            CompletableFuture<Integer> serve = CompletableFuture.supplyAsync(() -> Main.run(new PrintWriter(out), new PrintWriter(err),
                    "serve", "-r", "-k", sock.toString(), "--tls-cert", cert.toString(), "--tls-key", key.toString(), img.toString()));
            waitFor(sock, out::toString);
            assertEquals("disk.raw: nbds+unix:///disk.raw?socket=" + sock + "\n", out.toString());
            Path copy = dir.resolve("copy.raw");
            run("nbdcopy", "nbds+unix:///disk.raw?socket=" + sock + "&tls-certificates=" + creds, copy.toString());
            assertEquals(0, serve.get(), err.toString());
            assertEquals(-1, Files.mismatch(img, copy));

            Path pkcs1 = dir.resolve("pkcs1.pem");
            Tools.check("openssl", "pkey", "-in", key.toString(), "-traditional", "-out", pkcs1.toString());
            CliTest.assertOneLineError(CliTest.cli("serve", "-k", sock.toString(), "--tls-cert", cert.toString(), "--tls-key", pkcs1.toString(),
                    img.toString()), 1, pkcs1 + ": an RSA key in PKCS#1 format, not PKCS#8; convert it with: openssl pkcs8 -topk8 -nocrypt -in " + pkcs1);
            CliTest.assertOneLineError(CliTest.cli("serve", "--tls-cert", cert.toString(), img.toString()), 1, "--tls-cert and --tls-key go together");
            CliTest.assertOneLineError(CliTest.cli("serve", "--tls-creds", dir.resolve("nope").toString(), img.toString()), 1,
                    "nope: not a directory (expected server-cert.pem and server-key.pem in it)");
        });
    }

    @Test
    void badArgumentsAreOneLineErrors() throws Exception {
        Path img = image();
        CliRun r = CliTest.cli("serve", "--name", "x", img.toString(), img.toString());
        CliTest.assertOneLineError(r, 1, "--name needs exactly one FILE");
        r = CliTest.cli("serve", "-k", dir.resolve("s.sock").toString(), img.toString(), img.toString());
        CliTest.assertOneLineError(r, 1, "two exports are named 'disk.raw'");
        r = CliTest.cli("serve", "-k", dir.resolve("s.sock").toString(), dir.resolve("missing.raw").toString());
        CliTest.assertOneLineError(r, 1, "missing.raw: no such file");
        Files.writeString(dir.resolve("notasocket"), "x");
        r = CliTest.cli("serve", "-k", dir.resolve("notasocket").toString(), img.toString());
        CliTest.assertOneLineError(r, 1, "is not a socket");
    }
}
