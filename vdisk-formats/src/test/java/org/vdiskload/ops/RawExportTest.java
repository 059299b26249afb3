package org.vdiskload.ops;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Extent;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.io.Holes;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** convert -O raw: same bytes as the source, holes exactly where 4 KiB grains are zero, no partial output. */
class RawExportTest {
    private static final int MIB = 1 << 20;
    private static final int GRAIN = 4096;

    @TempDir
    Path dir;

    /** A raw file crossing many 2 MiB chunks: data, written zeros, holes, zero grains inside data. */
    private Path source() throws IOException {
        Path p = dir.resolve("source.raw");
        Random r = new Random(7);
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
            ch.truncate(0);
            write(ch, 0, random(r, 5 * MIB + 12288));                 // data across chunk edges
            write(ch, 5 * MIB + 12288, new byte[3 * MIB]);             // written zeros
            byte[] text = random(r, 7 * MIB);                          // 10M..17M: holes punched by zero grains
            for (int g = 0; g < text.length; g += GRAIN) if (r.nextInt(4) == 0) java.util.Arrays.fill(text, g, g + GRAIN, (byte) 0);
            write(ch, 10 * MIB, text);
            write(ch, 24 * MIB - GRAIN, random(r, GRAIN));             // last grain, after a hole
        }
        return p;
    }

    private static byte[] random(Random r, int n) {
        byte[] b = new byte[n];
        r.nextBytes(b);
        for (int i = 0; i < n; i += 512) b[i] |= 1; // no all-zero grain by chance
        return b;
    }

    private static void write(FileChannel ch, long pos, byte[] data) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(data);
        while (b.hasRemaining()) pos += ch.write(b, pos);
    }

    private static long nonZeroGrainBytes(byte[] content) {
        long n = 0;
        for (int g = 0; g < content.length; g += GRAIN) {
            for (int i = g; i < Math.min(content.length, g + GRAIN); i++) {
                if (content[i] != 0) {
                    n += GRAIN;
                    break;
                }
            }
        }
        return n;
    }

    @Test
    void copiesEveryByteAndLeavesZeroGrainsAsHoles() throws Exception {
        Path src = source();
        Path dst = dir.resolve("out.raw");
        List<Double> progress = new ArrayList<>();
        try (DiskImage disk = Images.open(src, OpenOptions.DEFAULTS.withFormat("raw"))) {
            RawExport.export(disk, dst, progress::add);
        }
        byte[] expected = Files.readAllBytes(src);
        byte[] actual = Files.readAllBytes(dst);
        assertArrayEquals(expected, actual);
        assertEquals(nonZeroGrainBytes(expected), Holes.dataBytes(dst, actual.length), "allocated bytes of the output");
        for (int i = 1; i < progress.size(); i++) assertTrue(progress.get(i) >= progress.get(i - 1), "progress went back");
        assertEquals(1.0, progress.get(progress.size() - 1));
    }

    @Test
    void libraryExtentsAreReadThroughTheImage() throws Exception {
        Path src = source();
        Path dst = dir.resolve("out.raw");
        try (DiskImage raw = Images.open(src, OpenOptions.DEFAULTS.withFormat("raw"))) {
            RawExport.export(new LibraryOnly(raw, -1), dst, Progress.NONE);
        }
        assertArrayEquals(Files.readAllBytes(src), Files.readAllBytes(dst));
    }

    @Test
    void aFailedReadRemovesTheTargetAndReportsTheError() throws Exception {
        Path src = source();
        Path dst = dir.resolve("out.raw");
        try (DiskImage raw = Images.open(src, OpenOptions.DEFAULTS.withFormat("raw"))) {
            IOException e = assertThrows(IOException.class,
                    () -> RawExport.export(new LibraryOnly(raw, 11L * MIB), dst, Progress.NONE));
            assertTrue(e.getMessage().contains("broken at 11534336"), e.getMessage());
        }
        assertFalse(Files.exists(dst), "partial output left behind");
    }

    /** Reports the whole disk as NEEDS_LIBRARY, so every byte goes through read(); can fail at one chunk. */
    private record LibraryOnly(DiskImage inner, long failAt) implements DiskImage {
        @Override public Path path() { return inner.path(); }
        @Override public String formatName() { return "test"; }
        @Override public long size() { return inner.size(); }
        @Override public List<ImageLayer> layers() { return inner.layers(); }

        @Override
        public void read(ByteBuffer dst, long pos) throws IOException {
            if (failAt >= pos && failAt < pos + dst.remaining()) throw new IOException("broken at " + failAt);
            inner.read(dst, pos);
        }

        @Override
        public List<Extent> map(long pos, long length) {
            return List.of(Extent.needsLibrary(pos, length, 0));
        }

        @Override public boolean isWritable() { return false; }
        @Override public void write(ByteBuffer src, long pos) { throw new UnsupportedOperationException(); }
        @Override public void writeZeroes(long pos, long length, boolean mayUnmap) { throw new UnsupportedOperationException(); }
        @Override public void flush() { }
        @Override public void close() { }
    }
}
