package org.vdiskload.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
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

    private static void waitFor(Path socket) throws InterruptedException {
        for (int i = 0; i < 200 && !Files.exists(socket); i++) Thread.sleep(25);
        assertTrue(Files.exists(socket), "server socket " + socket);
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
            waitFor(sock);
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

    @Test
    void badArgumentsAreOneLineErrors() throws Exception {
        Path img = image();
        CliTest.Run r = CliTest.cli("serve", "--name", "x", img.toString(), img.toString());
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
