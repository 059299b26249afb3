package org.vdiskload.attach;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.api.parallel.Isolated;
import org.vdiskload.cli.CliRun;
import org.vdiskload.testing.Tools;

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The reference rule (issue 19) when attaching, with the fuse backend on this machine's kernel (root): an image
 * whose backing file lies outside its directory is refused in one line with nothing left behind; attached with
 * {@code --allow-refs}, whose directories the serving process gets from the record. (The nbd backend and
 * {@code --reconnect}: vmtest/checks/refs-nbd.sh.) Isolated: it owns /dev/&lt;fmt&gt;N and /run/vdiskload while it runs.
 */
@Isolated
class AttachRefsTest {
    private static final Duration LIMIT = Duration.ofMinutes(3);

    @TempDir
    Path dir;

    @AfterEach
    void cleanUp() throws Exception {
        for (Attachment a : StateDir.system().list()) if (a.image().startsWith(dir.toString())) vdiskload("-d", a.path());
    }

    private static CliRun vdiskload(String... args) {
        return CliRun.run(LIMIT, args);
    }

    @Test
    void attachFollowsOnlyAllowedReferences() throws Exception {
        Path images = Files.createDirectories(dir.resolve("images"));
        Path outside = Files.createDirectories(dir.resolve("outside"));
        byte[] secret = new byte[64 << 10];
        Arrays.fill(secret, (byte) 0x5e);
        Files.write(outside.resolve("base.raw"), secret);
        Path top = images.resolve("top.qcow2");
        Tools.check("qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", "../outside/base.raw", "-F", "raw", top.toString(), "64K");

        List<String> loopsBefore = Tools.check("losetup", "-n", "-O", "NAME").lines().toList();
        CliRun r = vdiskload("--backend", "fuse", top.toString());
        assertEquals(1, r.exit(), r.toString());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().startsWith("vdiskload: " + top + ": backing file \"../outside/base.raw\" resolves to "
                + outside.toRealPath().resolve("base.raw")), r.err());
        assertTrue(r.err().contains("allow it with --allow-refs " + outside.toRealPath()), r.err());
        assertTrue(vdiskload("-j", top.toString()).out().isEmpty(), "no record left");
        assertEquals(loopsBefore, Tools.check("losetup", "-n", "-O", "NAME").lines().toList(), "no loop device left");

        r = vdiskload("--backend", "fuse", "-r", "--show", "--allow-refs", outside.toString(), top.toString());
        assertEquals(0, r.exit(), r.toString());
        String dev = r.lastLine();
        byte[] read;
        try (InputStream in = Files.newInputStream(Path.of(dev))) {
            read = in.readAllBytes();
        }
        assertArrayEquals(secret, read, dev + " reads the backing file");
        Attachment rec = StateDir.system().list().stream().filter(a -> a.path().equals(dev)).findFirst().orElseThrow();
        assertEquals(List.of(outside.toRealPath().toString()), rec.allowRefs());
        assertTrue(vdiskload("-l", "--json").out().contains("\"allowRefs\" : [ \"" + outside.toRealPath() + "\" ]"));
        assertEquals(0, vdiskload("-d", dev).exit());
        assertFalse(Files.exists(Path.of(dev)));
    }

    @Test
    void allowRefsIsForAttachingOnly() {
        for (String[] args : new String[][] {{"-l", "--allow-refs", "/tmp"}, {"--allow-refs", "/tmp", "-d", "/dev/qcow99"},
                {"--reconnect", "--allow-refs", "/tmp", "/dev/qcow99"}}) {
            CliRun r = vdiskload(args);
            assertEquals(1, r.exit(), String.join(" ", args) + ": " + r);
            assertEquals(1, r.err().lines().count(), r.err());
            assertTrue(r.err().contains("--allow-refs is for attaching a FILE"), r.err());
        }
    }
}
