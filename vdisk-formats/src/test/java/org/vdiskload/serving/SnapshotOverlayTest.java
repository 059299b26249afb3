package org.vdiskload.serving;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Extent;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.testing.Tools;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The --snapshot overlay against a byte model: every change visible through it, none in the image. */
class SnapshotOverlayTest {
    static final int B = SnapshotOverlay.BLOCK;

    @TempDir
    Path dir;

    /** A raw base whose size is not a whole number of blocks, with data, a hole and a tail. */
    private Path base() throws Exception {
        byte[] b = new byte[16 * B + 1536];
        new Random(7).nextBytes(b);
        Arrays.fill(b, 4 * B, 6 * B, (byte) 0);
        return Files.write(dir.resolve("base.raw"), b);
    }

    private static byte[] readAll(DiskImage d) throws Exception {
        ByteBuffer b = ByteBuffer.allocate((int) d.size());
        d.read(b, 0);
        return b.array();
    }

    /** The map covers the disk without gaps, and says zero only where the model holds zeros. */
    private static void assertMapAgrees(DiskImage d, byte[] model) throws Exception {
        long pos = 0;
        for (Extent e : d.map(0, d.size())) {
            assertEquals(pos, e.start(), "extents are contiguous");
            assertFalse(e.inPlace(), "nothing of an overlay is written in place");
            if (e.kind() == Extent.Kind.ZERO) {
                byte[] part = Arrays.copyOfRange(model, (int) e.start(), (int) e.end());
                assertEquals(-1, Arrays.mismatch(part, new byte[part.length]), "zero extent at " + e.start() + " reads zeros");
            }
            pos = e.end();
        }
        assertEquals(d.size(), pos);
    }

    @Test
    void randomChangesReadBackAndNeverReachTheImage() throws Exception {
        Path file = base();
        byte[] original = Files.readAllBytes(file);
        Path tmp = Files.createDirectories(dir.resolve("tmp"));
        try (DiskImage d = SnapshotOverlay.over(Images.open(file, OpenOptions.DEFAULTS.withFormat("raw")), tmp)) {
            assertTrue(d.isWritable());
            assertEquals(List.of(), Files.list(tmp).toList(), "the block store is unlinked at once");
            byte[] model = original.clone();
            Random r = new Random(42);
            for (int op = 0; op < 2000; op++) {
                int size = model.length;
                int pos = r.nextInt(size);
                int len = Math.min(size - pos, r.nextInt(4) == 0 ? r.nextInt(3 * B) : r.nextInt(4096));
                if (r.nextInt(5) == 0) { // whole blocks too
                    pos = r.nextInt(size / B) * B;
                    len = Math.min(size - pos, (1 + r.nextInt(3)) * B);
                }
                switch (r.nextInt(4)) {
                    case 0, 1 -> {
                        byte[] data = new byte[len];
                        r.nextBytes(data);
                        d.write(ByteBuffer.wrap(data), pos);
                        System.arraycopy(data, 0, model, pos, len);
                    }
                    case 2 -> {
                        d.writeZeroes(pos, len, r.nextBoolean());
                        Arrays.fill(model, pos, pos + len, (byte) 0);
                    }
                    default -> {
                        ByteBuffer got = ByteBuffer.allocate(len);
                        d.read(got, pos);
                        assertArrayEquals(Arrays.copyOfRange(model, pos, pos + len), got.array(), "op " + op + ": read " + pos + "+" + len);
                    }
                }
                if (op % 250 == 0) assertMapAgrees(d, model);
            }
            assertArrayEquals(model, readAll(d));
            assertMapAgrees(d, model);
        }
        assertArrayEquals(original, Files.readAllBytes(file), "the image is untouched");
    }

    @Test
    void worksOverAnyFormatAndReadsConcurrentlyWithWrites() throws Exception {
        Path raw = base();
        Path qcow2 = dir.resolve("base.qcow2");
        Tools.check("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw.toString(), qcow2.toString());
        byte[] original = Files.readAllBytes(raw);
        try (DiskImage d = SnapshotOverlay.over(Images.open(qcow2, OpenOptions.DEFAULTS), dir)) {
            // writers change the first half, readers check the untouched second half meanwhile
            int half = 8 * B;
            CompletableFuture<Void> writer = CompletableFuture.runAsync(() -> {
                try {
                    Random r = new Random(1);
                    for (int i = 0; i < 500; i++) d.write(ByteBuffer.wrap(new byte[] {(byte) i}), r.nextInt(half));
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            });
            while (!writer.isDone()) {
                ByteBuffer b = ByteBuffer.allocate(original.length - half);
                d.read(b, half);
                assertArrayEquals(Arrays.copyOfRange(original, half, original.length), b.array());
            }
            writer.get();
        }
        Tools.check("qemu-img", "compare", "-f", "raw", "-F", "qcow2", raw.toString(), qcow2.toString()); // the image is untouched
    }

    @Test
    void zeroingIsFastExactlyForWholeBlocks() throws Exception {
        try (SnapshotOverlay d = SnapshotOverlay.over(Images.open(base(), OpenOptions.DEFAULTS.withFormat("raw")), dir)) {
            assertTrue(d.zeroesFast(0, 2L * B, false));
            assertTrue(d.zeroesFast(15L * B, d.size() - 15L * B, true), "up to the short last block");
            assertFalse(d.zeroesFast(512, B, true), "a partial first block needs copying");
            assertFalse(d.zeroesFast(0, B + 512, true), "a partial last block needs copying");
            d.writeZeroes(B, 2L * B, false);
            List<Extent> m = d.map(B, 2L * B);
            assertEquals(1, m.size());
            assertEquals(Extent.Kind.ZERO, m.get(0).kind());
            assertEquals(0, m.get(0).depth(), "the overlay's own zeros");
            assertEquals(1, d.map(3L * B, B).get(0).depth(), "the base, one level down");
        }
    }
}
