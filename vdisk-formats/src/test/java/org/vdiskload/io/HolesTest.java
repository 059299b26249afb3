package org.vdiskload.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.RandomAccessFile;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class HolesTest {
    private static final int MB = 1 << 20;

    @TempDir
    Path dir;

    /** Data in the first and third MiB of a 4 MiB file; the second and fourth are holes. */
    private Path sparseFile() throws Exception {
        Path f = dir.resolve("sparse.raw");
        try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
            raf.setLength(4L * MB);
            byte[] data = new byte[MB];
            java.util.Arrays.fill(data, (byte) 7);
            raf.seek(0);
            raf.write(data);
            raf.seek(2L * MB);
            raf.write(data);
        }
        return f;
    }

    @Test
    void probeFindsDataAndHolesIncludingTheTrailingHole() throws Exception {
        Path f = sparseFile();
        assumeTrue(Holes.dataBytes(f, 4L * MB) == 2L * MB, "the file system reports holes");
        try (Holes.Probe p = Holes.open(f)) {
            assertNotNull(p);
            long end = 4L * MB;
            assertEquals(0, p.nextData(0, end));
            assertEquals(MB, p.nextHole(0, end));
            assertEquals(2L * MB, p.nextData(MB, end));
            assertEquals(3L * MB, p.nextHole(2L * MB, end));
            // No data after the third MiB: lseek fails with ENXIO, which must read as "none before end".
            assertEquals(end, p.nextData(3L * MB, end));
            // Data further on than asked about: at most the end given.
            assertEquals(2L * MB - 4096, p.nextData(MB + 4096, 2L * MB - 4096));
        }
    }
}
