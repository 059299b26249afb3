package org.vdiskload.image;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.error.ImageException;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The backing-chain logic every format shares, tested with {@link ScriptedFormat} layers over raw files. */
class ChainImageTest {
    @BeforeAll
    static void registerScriptedFormat() {
        Images.register(new ScriptedFormat());
    }

    @TempDir
    Path dir;

    /** Writes a ScriptedFormat image: header lines, then {@code payload} at offset 4096. */
    private Path scripted(String name, byte[] payload, String... lines) throws IOException {
        byte[] header = (ScriptedFormat.MAGIC_LINE + String.join("\n", lines) + "\n\n").getBytes(StandardCharsets.US_ASCII);
        byte[] file = new byte[4096 + payload.length];
        System.arraycopy(header, 0, file, 0, header.length);
        System.arraycopy(payload, 0, file, 4096, payload.length);
        Path p = dir.resolve(name);
        Files.write(p, file);
        return p;
    }

    private Path raw(String name, int size, byte fill) throws IOException {
        byte[] b = new byte[size];
        Arrays.fill(b, fill);
        Path p = dir.resolve(name);
        Files.write(p, b);
        return p;
    }

    private static byte[] read(DiskImage d, long pos, int len) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(len);
        d.read(b, pos);
        return b.array();
    }

    private static byte[] filled(int len, int value) {
        byte[] b = new byte[len];
        Arrays.fill(b, (byte) value);
        return b;
    }

    @Test
    void overlayReadsItsOwnDataThenZerosThenBacking() throws IOException {
        raw("base.raw", 16384, (byte) 0xbb);
        byte[] payload = filled(4096, 0x11);
        Path top = scripted("top.img", payload, "size=16384", "backing=base.raw", "backing-format=raw",
                "data=4096:4096:4096", "zero=8192:4096", "encoded=12288:4096:119");
        try (DiskImage d = Images.open(top, OpenOptions.DEFAULTS)) {
            assertEquals(2, d.layers().size());
            assertArrayEquals(filled(4096, 0xbb), read(d, 0, 4096));
            assertArrayEquals(filled(4096, 0x11), read(d, 4096, 4096));
            assertArrayEquals(filled(4096, 0), read(d, 8192, 4096));
            assertArrayEquals(filled(4096, 119), read(d, 12288, 4096));
            List<Extent> map = d.map(0, 16384);
            assertEquals(4, map.size());
            assertEquals(Extent.Kind.DATA, map.get(0).kind());
            assertEquals(1, map.get(0).depth());
            assertEquals(0, map.get(0).fileOffset());
            assertEquals(Extent.Kind.DATA, map.get(1).kind());
            assertEquals(0, map.get(1).depth());
            assertEquals(4096, map.get(1).fileOffset());
            assertEquals(Extent.Kind.ZERO, map.get(2).kind());
            assertTrue(map.get(2).allocated());
            assertEquals(Extent.Kind.NEEDS_LIBRARY, map.get(3).kind());
        }
    }

    @Test
    void closingTwiceDoesNothingTheSecondTime() throws IOException {
        Path file = raw("disk.raw", 8192, (byte) 0);
        DiskImage d = Images.open(file, OpenOptions.DEFAULTS.withWritable(true));
        d.write(ByteBuffer.wrap(filled(512, 0x5a)), 512);
        d.close();
        d.close();
        assertArrayEquals(filled(512, 0x5a), Arrays.copyOfRange(Files.readAllBytes(file), 512, 1024));
    }

    @Test
    void readsAcrossRunBoundariesInOneCall() throws IOException {
        raw("base.raw", 16384, (byte) 0xbb);
        Path top = scripted("top.img", filled(4096, 0x11), "size=16384", "backing=base.raw", "backing-format=raw",
                "data=4096:4096:4096", "zero=8192:4096");
        try (DiskImage d = Images.open(top, OpenOptions.DEFAULTS)) {
            byte[] b = read(d, 4000, 4300);
            for (int i = 0; i < 96; i++) assertEquals((byte) 0xbb, b[i]);
            for (int i = 96; i < 4192; i++) assertEquals((byte) 0x11, b[i]);
            for (int i = 4192; i < 4300; i++) assertEquals(0, b[i]);
        }
    }

    @Test
    void pastTheEndOfAShorterBackingFileReadsZerosAtTheChildsDepth() throws IOException {
        raw("base.raw", 4096, (byte) 0xbb);
        Path top = scripted("top.img", new byte[0], "size=16384", "backing=base.raw", "backing-format=raw");
        try (DiskImage d = Images.open(top, OpenOptions.DEFAULTS)) {
            assertArrayEquals(filled(4096, 0xbb), read(d, 0, 4096));
            assertArrayEquals(filled(12288, 0), read(d, 4096, 12288));
            List<Extent> map = d.map(0, 16384);
            assertEquals(2, map.size());
            assertEquals(Extent.zero(4096, 12288, 0, false), map.get(1));
        }
    }

    @Test
    void unallocatedWithoutBackingIsUnallocatedZero() throws IOException {
        Path top = scripted("top.img", new byte[0], "size=8192");
        try (DiskImage d = Images.open(top, OpenOptions.DEFAULTS)) {
            assertEquals(List.of(Extent.zero(0, 8192, 0, false)), d.map(0, 8192));
            assertArrayEquals(filled(8192, 0), read(d, 0, 8192));
        }
    }

    @Test
    void threeDeepChainReportsDepths() throws IOException {
        raw("base.raw", 12288, (byte) 0xbb);
        scripted("mid.img", filled(4096, 0x22), "size=12288", "backing=base.raw", "backing-format=raw", "data=4096:4096:4096");
        Path top = scripted("top.img", filled(4096, 0x33), "size=12288", "backing=mid.img", "backing-format=vdltest", "data=8192:4096:4096");
        try (DiskImage d = Images.open(top, OpenOptions.DEFAULTS)) {
            List<Extent> map = d.map(0, 12288);
            assertEquals(List.of(2, 1, 0), map.stream().map(Extent::depth).toList());
            assertArrayEquals(filled(4096, 0x22), read(d, 4096, 4096));
        }
    }

    @Test
    void aCycleIsRefused() throws IOException {
        scripted("a.img", new byte[0], "size=4096", "backing=b.img", "backing-format=vdltest");
        Path b = scripted("b.img", new byte[0], "size=4096", "backing=a.img", "backing-format=vdltest");
        ImageException e = assertThrows(ImageException.class, () -> Images.open(b, OpenOptions.DEFAULTS));
        assertTrue(e.getMessage().contains("cycle"), e.getMessage());
        Path self = scripted("self.img", new byte[0], "size=4096", "backing=self.img", "backing-format=vdltest");
        assertTrue(assertThrows(ImageException.class, () -> Images.open(self, OpenOptions.DEFAULTS)).getMessage().contains("cycle"));
    }

    @Test
    void aMissingBackingFileIsNamed() throws IOException {
        Path top = scripted("top.img", new byte[0], "size=4096", "backing=gone.raw", "backing-format=raw");
        ImageException e = assertThrows(ImageException.class, () -> Images.open(top, OpenOptions.DEFAULTS));
        assertTrue(e.getMessage().contains("gone.raw") && e.getMessage().contains("no such file"), e.getMessage());
    }

    @Test
    void aBackingDeviceOrFifoIsRefused() throws Exception {
        Path top = scripted("top.img", new byte[0], "size=4096", "backing=/dev/null", "backing-format=raw");
        ImageException e = assertThrows(ImageException.class, () -> Images.open(top, OpenOptions.DEFAULTS));
        assertTrue(e.getMessage().contains("not a regular file"), e.getMessage());
        Path fifo = dir.resolve("fifo");
        assertEquals(0, new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor());
        Path top2 = scripted("top2.img", new byte[0], "size=4096", "backing=fifo", "backing-format=raw");
        assertThrows(ImageException.class, () -> Images.open(top2, OpenOptions.DEFAULTS));
    }

    @Test
    void anUnnamedBackingFormatIsRawOnlyIfItLooksRaw() throws IOException {
        raw("base.raw", 4096, (byte) 0xbb);
        Path top = scripted("top.img", new byte[0], "size=4096", "backing=base.raw");
        try (DiskImage d = Images.open(top, OpenOptions.DEFAULTS)) {
            assertEquals("raw", d.layers().get(1).formatName());
        }
        scripted("base.img", new byte[0], "size=4096");
        Path top2 = scripted("top2.img", new byte[0], "size=4096", "backing=base.img");
        ImageException e = assertThrows(ImageException.class, () -> Images.open(top2, OpenOptions.DEFAULTS));
        assertEquals(ImageException.Kind.UNSUPPORTED, e.kind());
        assertTrue(e.getMessage().contains("refusing to guess") && e.getMessage().contains("--backing-format vdltest"), e.getMessage());
        try (DiskImage d = Images.open(top2, OpenOptions.DEFAULTS.withBackingFormat("vdltest"))) {
            assertEquals("vdltest", d.layers().get(1).formatName());
        }
    }

    @Test
    void aNamedBackingFormatIsNotProbed() throws IOException {
        scripted("base.img", new byte[0], "size=4096");
        Path top = scripted("top.img", new byte[0], "size=4096", "backing=base.img", "backing-format=raw");
        try (DiskImage d = Images.open(top, OpenOptions.DEFAULTS)) {
            assertEquals("raw", d.layers().get(1).formatName());
        }
    }

    @Test
    void anUnknownBackingFormatIsRefused() throws IOException {
        raw("base.raw", 4096, (byte) 0);
        Path top = scripted("top.img", new byte[0], "size=4096", "backing=base.raw", "backing-format=nosuch");
        ImageException e = assertThrows(ImageException.class, () -> Images.open(top, OpenOptions.DEFAULTS));
        assertTrue(e.getMessage().contains("unknown image format 'nosuch'"), e.getMessage());
    }

    @Test
    void outOfRangeRequestsAreRefused() throws IOException {
        Path top = scripted("top.img", new byte[0], "size=4096");
        try (DiskImage d = Images.open(top, OpenOptions.DEFAULTS)) {
            assertThrows(ImageException.class, () -> d.read(ByteBuffer.allocate(2), 4095));
            assertThrows(ImageException.class, () -> d.map(-1, 1));
            assertThrows(ImageException.class, () -> d.map(0, 4097));
        }
    }

    @Test
    void topLevelFilesThatAreNotImagesAreRefused() throws Exception {
        assertTrue(assertThrows(ImageException.class, () -> Images.open(dir, OpenOptions.DEFAULTS)).getMessage().contains("is a directory"));
        Path empty = Files.createFile(dir.resolve("empty"));
        assertTrue(assertThrows(ImageException.class, () -> Images.open(empty, OpenOptions.DEFAULTS)).getMessage().contains("is empty"));
        assertTrue(assertThrows(ImageException.class, () -> Images.open(dir.resolve("nope"), OpenOptions.DEFAULTS)).getMessage().contains("no such file"));
        assertTrue(assertThrows(ImageException.class, () -> Images.open(Path.of("/dev/null"), OpenOptions.DEFAULTS)).getMessage().contains("not a regular file"));
    }

    @Test
    void aParserCrashOnHostileInputBecomesOneCorruptError() throws IOException {
        Path bad = scripted("bad.img", new byte[0], "size=notanumber");
        ImageException e = assertThrows(ImageException.class, () -> Images.open(bad, OpenOptions.DEFAULTS));
        assertEquals(ImageException.Kind.CORRUPT, e.kind());
        assertTrue(e.getMessage().startsWith(bad + ": malformed vdltest image"), e.getMessage());
    }
}
