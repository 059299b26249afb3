package org.vdiskload.serving;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.testing.Tools;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Each way of serving an image: what clients may do with it, and what the locks leave to everyone else. */
class ServedImageTest {
    private static final OpenOptions RAW = OpenOptions.DEFAULTS.withFormat("raw");

    @TempDir
    Path dir;

    private Path raw() throws Exception {
        Path p = dir.resolve("disk.raw");
        Tools.check("truncate", "-s", "1M", p.toString());
        return p;
    }

    private static ServedImage open(Path p, ServedImage.Access access) throws Exception {
        return ServedImage.open(p, RAW, access, "serve");
    }

    /** Whether qemu may write {@code p} now (it takes the same locks). */
    private static boolean qemuMayWrite(Path p) throws Exception {
        return Tools.run(List.of("qemu-io", "-f", "raw", "-c", "write -P 0x42 0 512", p.toString()), null).exit() == 0;
    }

    @Test
    void readWriteWritesTheImageAndKeepsEveryoneElseAway() throws Exception {
        Path p = raw();
        try (ServedImage s = open(p, ServedImage.Access.READ_WRITE)) {
            assertTrue(s.disk().isWritable() && s.writesImage());
            s.disk().write(ByteBuffer.wrap(new byte[] {7, 7, 7}), 4096);
            ImageException e = assertThrows(ImageException.class, () -> open(p, ServedImage.Access.READ_ONLY));
            assertTrue(e.getMessage().contains("is in use"), e.getMessage());
            assertFalse(qemuMayWrite(p));
        }
        assertArrayEquals(new byte[] {7, 7, 7}, Arrays.copyOfRange(Files.readAllBytes(p), 4096, 4099), "closed: written and flushed");
        open(p, ServedImage.Access.READ_WRITE).close(); // the lock went with it
    }

    @Test
    void readOnlySharesReadingOnly() throws Exception {
        Path p = raw();
        try (ServedImage s = open(p, ServedImage.Access.READ_ONLY); ServedImage other = open(p, ServedImage.Access.READ_ONLY)) {
            assertFalse(s.disk().isWritable() || s.writesImage());
            assertThrows(ImageException.class, () -> open(p, ServedImage.Access.READ_WRITE));
            assertFalse(qemuMayWrite(p));
        }
    }

    @Test
    void readOnlyUnlockedLetsOthersWrite() throws Exception {
        Path p = raw();
        try (ServedImage s = open(p, ServedImage.Access.READ_ONLY_UNLOCKED)) {
            assertFalse(s.disk().isWritable());
            open(p, ServedImage.Access.READ_WRITE).close();
            assertTrue(qemuMayWrite(p));
        }
    }

    @Test
    void snapshotTakesWritesThatNeverReachTheImage() throws Exception {
        Path p = raw();
        byte[] before = Files.readAllBytes(p);
        try (ServedImage s = open(p, ServedImage.Access.SNAPSHOT)) {
            assertTrue(s.disk().isWritable());
            assertFalse(s.writesImage(), "nothing to flush into the image");
            s.disk().write(ByteBuffer.wrap(new byte[] {9, 9}), 100);
            ByteBuffer back = ByteBuffer.allocate(2);
            s.disk().read(back, 100);
            assertArrayEquals(new byte[] {9, 9}, back.array());
            assertThrows(ImageException.class, () -> open(p, ServedImage.Access.READ_WRITE), "locked as for reading");
            assertFalse(qemuMayWrite(p));
        }
        assertArrayEquals(before, Files.readAllBytes(p));
    }

    @Test
    void aFailedOpenLeavesNoLockBehind() throws Exception {
        Path p = raw();
        // The overlay cannot be made (its directory is missing): the open fails after the lock was taken.
        assertThrows(java.nio.file.NoSuchFileException.class,
                () -> ServedImage.open(p, RAW, ServedImage.Access.SNAPSHOT, "serve", dir.resolve("no-such-dir")));
        open(p, ServedImage.Access.READ_WRITE).close();
    }
}
