package org.vdiskload.format.qcow2;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.zip.Deflater;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Decoding compressed clusters (zlib type): libdeflate's fast path and zlib's rules agree on every stream. */
class CompressionTest {
    static final int CLUSTER = 64 << 10;
    static final int ZLIB = 0;

    @TempDir
    Path dir;

    /** A cluster like a used disk's: text over a small alphabet, a random stretch, zero blocks. */
    private static byte[] cluster(long seed) {
        Random r = new Random(seed);
        byte[] c = new byte[CLUSTER];
        byte[] alphabet = "etaoinshrdlucmf ".getBytes();
        for (int i = 0; i < CLUSTER; i++) c[i] = alphabet[r.nextInt(alphabet.length)];
        for (int i = 8192; i < 12288; i++) c[i] = (byte) r.nextInt();
        Arrays.fill(c, 40960, 45056, (byte) 0);
        return c;
    }

    /** Raw deflate of {@code data}, as qemu stores it, padded with {@code garbage} random bytes. */
    private static byte[] deflate(byte[] data, int garbage) {
        Deflater d = new Deflater(Deflater.DEFAULT_COMPRESSION, true);
        d.setInput(data);
        d.finish();
        byte[] out = new byte[data.length * 2 + 64];
        int n = 0;
        while (!d.finished()) n += d.deflate(out, n, out.length - n);
        d.end();
        byte[] tail = new byte[garbage];
        new Random(7).nextBytes(tail);
        byte[] padded = Arrays.copyOf(out, n + garbage);
        System.arraycopy(tail, 0, padded, n, garbage);
        return padded;
    }

    private ImageFile file() throws Exception {
        return ImageFile.open(Files.write(dir.resolve("img"), new byte[512]), false);
    }

    @Test
    void libdeflateIsThereForTheTests() {
        assertTrue(Libdeflate.AVAILABLE, "libdeflate0 (scripts/deps.sh) should be installed, or the fast path goes untested");
    }

    @Test
    void streamsEndingAtTheClusterEndDecodeOnTheFastPath() throws Exception {
        try (ImageFile f = file()) {
            for (long seed = 1; seed <= 5; seed++) {
                byte[] c = cluster(seed);
                for (int garbage : new int[] {0, 1, 511}) {
                    byte[] in = deflate(c, garbage);
                    assertTrue(Libdeflate.decompressExactly(in, new byte[CLUSTER]), "seed " + seed + ", garbage " + garbage);
                    assertArrayEquals(c, Compression.decompress(ZLIB, in, CLUSTER, f, 0));
                }
            }
            byte[] zeros = new byte[CLUSTER];
            assertArrayEquals(zeros, Compression.decompress(ZLIB, deflate(zeros, 300), CLUSTER, f, 0));
        }
    }

    @Test
    void aLongerStreamFillsTheClusterAsZlibDoes() throws Exception {
        byte[] twice = new byte[2 * CLUSTER];
        System.arraycopy(cluster(3), 0, twice, 0, CLUSTER);
        System.arraycopy(cluster(4), 0, twice, CLUSTER, CLUSTER);
        byte[] in = deflate(twice, 0);
        assertFalse(Libdeflate.decompressExactly(in, new byte[CLUSTER]));
        try (ImageFile f = file()) {
            assertArrayEquals(Arrays.copyOf(twice, CLUSTER), Compression.decompress(ZLIB, in, CLUSTER, f, 0));
        }
    }

    @Test
    void shortOrBrokenStreamsAreCorruptClusters() throws Exception {
        byte[] in = deflate(cluster(5), 0);
        byte[] truncated = Arrays.copyOf(in, in.length / 2);
        byte[] shorter = deflate(Arrays.copyOf(cluster(5), CLUSTER - 4096), 0);
        byte[] garbage = new byte[4096];
        new Random(9).nextBytes(garbage);
        try (ImageFile f = file()) {
            for (byte[] bad : new byte[][] {truncated, shorter, garbage}) {
                assertFalse(Libdeflate.decompressExactly(bad, new byte[CLUSTER]));
                assertThrows(ImageException.class, () -> Compression.decompress(ZLIB, bad, CLUSTER, f, 4096));
            }
        }
    }
}
