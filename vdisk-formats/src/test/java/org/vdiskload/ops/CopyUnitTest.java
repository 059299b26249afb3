package org.vdiskload.ops;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The copy plan covers the disk exactly once, in order, in units of at most 2 MiB that read back the disk's bytes. */
class CopyUnitTest {
    private static final int KIB = 1024;
    private static final int MIB = 1 << 20;

    @TempDir
    Path dir;

    @Test
    void unitsAndZerosTileTheDiskAndReadItsBytes() throws Exception {
        Path raw = dir.resolve("holes.raw");
        Random r = new Random(11);
        byte[] content = new byte[12 * MIB];
        // Short data runs with holes of 4 KiB to 3 MiB between them: many extents, some gaps too long to join.
        int pos = 4 * KIB;
        while (pos < content.length) {
            int run = Math.min(content.length - pos, (1 + r.nextInt(40)) * 4 * KIB);
            for (int i = pos; i < pos + run; i++) content[i] = (byte) (1 + r.nextInt(255));
            pos += run + (r.nextInt(5) == 0 ? (1 + r.nextInt(3)) * MIB : (1 + r.nextInt(16)) * 4 * KIB);
        }
        writeSparse(raw, content);

        List<long[]> pieces = new ArrayList<>(); // {start, length, 1 for a unit}
        List<byte[]> unitBytes = new ArrayList<>();
        try (DiskImage image = Images.open(raw, OpenOptions.DEFAULTS.withFormat("raw"))) {
            ByteBuffer buf = ByteBuffer.allocateDirect(CopyUnit.MAX);
            CopyUnit.plan(image, new CopyUnit.Visitor() {
                @Override
                public void unit(CopyUnit unit) throws IOException {
                    unit.read(image, buf);
                    byte[] b = new byte[buf.remaining()];
                    buf.get(b);
                    pieces.add(new long[] {unit.start(), unit.length(), 1});
                    unitBytes.add(b);
                }

                @Override
                public void zero(long start, long length) {
                    pieces.add(new long[] {start, length, 0});
                }
            });
        }

        long next = 0;
        int units = 0;
        for (long[] p : pieces) {
            assertEquals(next, p[0], "pieces follow each other without gap or overlap");
            assertTrue(p[1] > 0);
            if (p[2] == 1) {
                assertTrue(p[1] <= CopyUnit.MAX, "unit of " + p[1] + " bytes");
                byte[] expected = Arrays.copyOfRange(content, (int) p[0], (int) (p[0] + p[1]));
                assertArrayEquals(expected, unitBytes.get(units++), "unit at " + p[0]);
                assertTrue(expected[0] != 0 && expected[expected.length - 1] != 0, "a unit begins and ends with data");
            } else {
                for (long i = p[0]; i < p[0] + p[1]; i++) assertEquals(0, content[(int) i], "zero piece at " + i);
            }
            next = p[0] + p[1];
        }
        assertEquals(content.length, next);
        assertTrue(units > 1 && units < 40, "short extents joined into a few units: " + units);
    }

    /** Writes only the non-zero 4 KiB blocks, so the zero ones are holes the raw map reports as zero. */
    private static void writeSparse(Path p, byte[] content) throws IOException {
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
            ch.truncate(0);
            for (int g = 0; g < content.length; g += 4 * KIB) {
                ByteBuffer b = ByteBuffer.wrap(content, g, 4 * KIB);
                boolean zero = true;
                for (int i = g; i < g + 4 * KIB && zero; i++) zero = content[i] == 0;
                if (zero) continue;
                long at = g;
                while (b.hasRemaining()) at += ch.write(b, at);
            }
        }
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
            f.setLength(content.length); // a hole up to the end
        }
    }
}
