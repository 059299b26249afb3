package org.vdiskload.serving;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.testing.Tools;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** One writer per image, between vdiskload servers and against qemu, which uses the same lock bytes. */
class ImageLockTest {
    @TempDir
    Path dir;

    private Path raw(String name) throws Exception {
        Path p = dir.resolve(name);
        Tools.check("truncate", "-s", "1M", p.toString());
        return p;
    }

    private static DiskImage open(Path p, boolean writable) throws Exception {
        return Images.open(p, OpenOptions.DEFAULTS.withFormat("raw").withWritable(writable));
    }

    private static Tools.Result qemuIoWrite(Path p) throws Exception {
        return Tools.run(List.of("qemu-io", "-f", "raw", "-c", "write -P 0x42 0 512", p.toString()), null);
    }

    @Test
    void aSecondWriterIsRefusedWithTheFileNamedUntilTheFirstLetsGo() throws Exception {
        Path p = raw("disk.raw");
        try (DiskImage a = open(p, true); DiskImage b = open(p, true)) {
            ImageLock first = ImageLock.acquire(a, true);
            ImageException e = assertThrows(ImageException.class, () -> ImageLock.acquire(b, true));
            assertTrue(e.getMessage().startsWith(p + ": is in use: another process") && e.getMessage().contains("is writing it")
                    && e.getMessage().contains("-r"), e.getMessage());
            assertEquals(ImageException.Kind.INVALID, e.kind());
            assertThrows(ImageException.class, () -> ImageLock.acquire(b, false), "a reader that forbids writes cannot join a writer");
            first.close();
            ImageLock.acquire(b, true).close();
        }
    }

    @Test
    void readersShareAndKeepWritersAway() throws Exception {
        Path p = raw("disk.raw");
        try (DiskImage a = open(p, false); DiskImage b = open(p, false); DiskImage w = open(p, true);
             ImageLock ra = ImageLock.acquire(a, false); ImageLock rb = ImageLock.acquire(b, false)) {
            ImageException e = assertThrows(ImageException.class, () -> ImageLock.acquire(w, true));
            assertTrue(e.getMessage().contains("does not let others write it"), e.getMessage());
            assertNotEquals(0, qemuIoWrite(p).exit());
        }
    }

    @Test
    void qemuSeesOurLockEvenAfterTheLibraryPunchedHoles() throws Exception {
        Path p = raw("disk.raw");
        try (DiskImage d = open(p, true)) {
            try (ImageLock lock = ImageLock.acquire(d, true)) {
                // The library opens and closes descriptors of the file to punch holes: OFD locks stay.
                d.discard(0, 65536);
                Tools.Result r = qemuIoWrite(p);
                assertNotEquals(0, r.exit());
                assertTrue(r.stderr().contains("Failed to get \"write\" lock"), r.stderr());
            }
            Tools.Result r = qemuIoWrite(p);
            assertEquals(0, r.exit(), r.stderr());
        }
    }

    @Test
    void weSeeQemuNbdWriting() {
        assertTimeoutPreemptively(Duration.ofSeconds(30), () -> {
            Path p = raw("disk.raw");
            Path sock = dir.resolve("q.sock");
            Process q = new ProcessBuilder("qemu-nbd", "-k", sock.toString(), "-f", "raw", p.toString())
                    .redirectErrorStream(true).redirectOutput(dir.resolve("qemu-nbd.log").toFile()).start();
            try (DiskImage d = open(p, true)) {
                // qemu-nbd may listen before it has opened the image: wait for its lock on byte 101 to show
                String held = ":" + Files.getAttribute(p, "unix:ino") + " 100 101";
                while (Files.readAllLines(Path.of("/proc/locks")).stream().noneMatch(l -> l.contains("OFDLCK") && l.endsWith(held))) Thread.sleep(20);
                ImageException e = assertThrows(ImageException.class, () -> ImageLock.acquire(d, true));
                assertTrue(e.getMessage().contains("is writing it"), e.getMessage());
                q.destroy();
                assertTrue(q.waitFor(10, TimeUnit.SECONDS));
                ImageLock.acquire(d, true).close();
            } finally {
                q.destroyForcibly();
            }
        });
    }

    @Test
    void backingFilesAreLockedForReading() throws Exception {
        Path base = raw("base.raw");
        Path top = dir.resolve("top.qcow2");
        Tools.check("qemu-img", "create", "-q", "-f", "qcow2", "-b", base.getFileName().toString(), "-F", "raw", top.toString());
        try (DiskImage d = Images.open(top, OpenOptions.DEFAULTS); ImageLock lock = ImageLock.acquire(d, false)) {
            assertNotEquals(0, qemuIoWrite(base).exit(), "nobody writes the backing file while it is served");
        }
        assertEquals(0, qemuIoWrite(base).exit());
    }
}
