package org.vdiskload.format.raw;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Extent;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.Holes;
import org.vdiskload.ops.Create;
import org.vdiskload.ops.Resize;
import org.vdiskload.testing.WriteTorture;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RawWriteTest {
    @TempDir
    Path dir;

    private Path create(String name, long size, String prealloc) throws Exception {
        Path p = dir.resolve(name);
        Create.create(p, new RawFormat(), size, prealloc == null ? Map.of() : Map.of("preallocation", prealloc), null, null);
        return p;
    }

    @Test
    void tortureAgainstAModel() throws Exception {
        Path img = create("t.raw", 8 << 20, null);
        WriteTorture.run(img, "raw", new WriteTorture.Plan(1500, 250, 4096, 42));
    }

    @Test
    void everyByteIsWritableInPlaceOnlyWhenOpenForWriting() throws Exception {
        Path img = create("m.raw", 1 << 20, null);
        try (DiskImage d = Images.open(img, OpenOptions.DEFAULTS.withWritable(true))) {
            d.write(ByteBuffer.wrap(new byte[] {1, 2, 3}), 4096);
            List<Extent> map = d.map(0, d.size());
            assertTrue(map.stream().allMatch(Extent::inPlace), map.toString());
            assertTrue(map.stream().anyMatch(e -> e.kind() == Extent.Kind.DATA));
        }
        try (DiskImage d = Images.open(img, OpenOptions.DEFAULTS)) {
            assertTrue(d.map(0, d.size()).stream().noneMatch(Extent::inPlace));
            assertFalse(d.isWritable());
            assertThrows(ImageException.class, () -> d.write(ByteBuffer.allocate(1), 0));
        }
    }

    @Test
    void discardPunchesAHole() throws Exception {
        Path img = create("h.raw", 1 << 20, "full");
        assertEquals(1 << 20, Holes.dataBytes(img, 1 << 20));
        try (DiskImage d = Images.open(img, OpenOptions.DEFAULTS.withWritable(true))) {
            d.discard(0, 512 << 10);
        }
        assertTrue(Holes.dataBytes(img, 1 << 20) <= 512 << 10);
    }

    @Test
    void resizeGrowsAndShrinksOnlyWhenAsked() throws Exception {
        Path img = create("r.raw", 1 << 20, null);
        Resize.resize(img, "raw", 2 << 20, false);
        assertEquals(2 << 20, Files.size(img));
        ImageException e = assertThrows(ImageException.class, () -> Resize.resize(img, "raw", 1 << 20, false));
        assertTrue(e.getMessage().contains("--shrink"), e.getMessage());
        Resize.resize(img, "raw", 1 << 20, true);
        assertEquals(1 << 20, Files.size(img));
    }

    @Test
    void createRefusesUnknownOptionsBeforeWritingAnything() {
        Path p = dir.resolve("x.raw");
        ImageException e = assertThrows(ImageException.class,
                () -> Create.create(p, new RawFormat(), 1 << 20, Map.of("cluster_size", "64k"), null, null));
        assertTrue(e.getMessage().contains("unknown option 'cluster_size'"), e.getMessage());
        assertFalse(Files.exists(p));
        assertThrows(ImageException.class, () -> Create.create(p, new RawFormat(), 1 << 20, Map.of("preallocation", "bogus"), null, null));
        assertFalse(Files.exists(p));
    }
}
