package org.vdiskload.format.vdi;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Extent;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.testing.Tools;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A VDI built byte by byte from {@link VdiHeaderTest#header()}: read and mapped as expected, and
 * refused with a clear error for every kind of broken block map.
 * <pre>
 *   0x000  header
 *   0x200  block map: [0] = 1, [1] = 0xfffffffe (zero), [2] = 0 ... patched per test
 *   0x400  data block 0 (1 MiB of 0xbb), then data block 1 (1 MiB of 0xaa)
 * </pre>
 */
class VdiImageTest {
    private static final int BMAP = 0x200;
    private static final int DATA = 0x400;
    private static final int MIB = 1 << 20;
    private static final OpenOptions VDI = OpenOptions.DEFAULTS.withFormat("vdi");

    @TempDir
    Path dir;

    static byte[] bytes() {
        ByteBuffer b = ByteBuffer.allocate(DATA + 2 * MIB).order(ByteOrder.LITTLE_ENDIAN);
        b.put(VdiHeaderTest.header());
        b.putInt(BMAP, 1).putInt(BMAP + 4, 0xfffffffe).putInt(BMAP + 8, 0);
        byte[] a = b.array();
        Arrays.fill(a, DATA, DATA + MIB, (byte) 0xbb);
        Arrays.fill(a, DATA + MIB, DATA + 2 * MIB, (byte) 0xaa);
        return a;
    }

    private Path write(String name, byte[] bytes) throws Exception {
        Path p = dir.resolve(name);
        Files.write(p, bytes);
        return p;
    }

    private Path write(Consumer<ByteBuffer> patch) throws Exception {
        byte[] img = bytes();
        patch.accept(ByteBuffer.wrap(img).order(ByteOrder.LITTLE_ENDIAN));
        return write("bad.vdi", img);
    }

    private static byte[] readAll(DiskImage disk) throws Exception {
        ByteBuffer b = ByteBuffer.allocate((int) disk.size());
        disk.read(b, 0);
        return b.array();
    }

    @Test
    void readsAndMapsTheBuiltImage() throws Exception {
        Path p = write("built.vdi", bytes());
        try (DiskImage disk = Images.open(p, OpenOptions.DEFAULTS)) {
            assertEquals("vdi", disk.formatName());
            byte[] expected = new byte[3 * MIB];
            Arrays.fill(expected, 0, MIB, (byte) 0xaa);
            Arrays.fill(expected, 2 * MIB, 3 * MIB, (byte) 0xbb);
            assertArrayEquals(expected, readAll(disk));
            List<Extent> map = disk.map(0, disk.size());
            assertEquals(List.of(Extent.data(0, MIB, 0, disk.layers().get(0).file(), DATA + MIB),
                    Extent.zero(MIB, MIB, 0, true),
                    Extent.data(2 * MIB, MIB, 0, disk.layers().get(0).file(), DATA)), map);
            assertEquals(1L << 20, disk.layers().get(0).info().clusterSize());
        }
        Path raw = dir.resolve("built.raw");
        Tools.check("qemu-img", "convert", "-f", "vdi", "-O", "raw", p.toString(), raw.toString());
        try (DiskImage disk = Images.open(p, VDI)) {
            assertArrayEquals(Files.readAllBytes(raw), readAll(disk), "qemu-img convert reads the same");
        }
    }

    @Test
    void unallocatedBlocksReadAsZeros() throws Exception {
        try (DiskImage disk = Images.open(write(b -> b.putInt(BMAP + 4, 0xffffffff)), VDI)) {
            assertEquals(List.of(Extent.zero(MIB, MIB, 0, false)), disk.map(MIB, MIB));
        }
    }

    @Test
    void mergesBlocksConsecutiveInTheFile() throws Exception {
        try (DiskImage disk = Images.open(write(b -> b.putInt(BMAP, 0).putInt(BMAP + 4, 1)), VDI)) {
            assertEquals(2L * MIB, disk.layers().get(0).map(0, 3L * MIB).length());
            assertEquals(5, disk.layers().get(0).map(MIB - 2, 5).length());
        }
    }

    private void assertRefused(ImageException.Kind kind, String problem, Path p) {
        ImageException e = assertThrows(ImageException.class, () -> {
            try (DiskImage disk = Images.open(p, VDI)) {
                readAll(disk);
            }
        });
        assertEquals(kind, e.kind(), e.getMessage());
        assertTrue(e.getMessage().contains(problem), e.getMessage());
        assertTrue(e.getMessage().startsWith(p + ": "), e.getMessage());
    }

    @Test
    void truncatedHeader() throws Exception {
        assertRefused(ImageException.Kind.CORRUPT, "VDI header", write("bad.vdi", Arrays.copyOf(bytes(), 300)));
    }

    @Test
    void blockMapPastEof() throws Exception {
        assertRefused(ImageException.Kind.CORRUPT, "block map", write(b -> b.putInt(0x154, 0x7fff0000).putInt(0x158, 0x7fff1000)));
    }

    @Test
    void hugeBlockMapIsRefusedWithoutAllocatingIt() throws Exception {
        // 2^32 - 1 entries (16 GiB of map) claimed by a 2 MiB file: the 32-bit data offset cannot lie past such a map.
        assertRefused(ImageException.Kind.CORRUPT, "overlaps the block map (512..17179869692)",
                write(b -> b.putInt(0x180, -1).putInt(0x158, 0x7fff0000)));
    }

    @Test
    void entryBeyondTheAllocatedBlocks() throws Exception {
        assertRefused(ImageException.Kind.CORRUPT, "points to data block 2 but only 2 are allocated (block map entry 2 at offset 520)",
                write(b -> b.putInt(BMAP + 8, 2)));
    }

    @Test
    void entryPastEof() throws Exception {
        Path p = write("bad.vdi", Arrays.copyOf(bytes(), DATA + MIB)); // block 1 is gone
        assertRefused(ImageException.Kind.CORRUPT, "points to data block 1 at 1049600, past the end of the file (1049600 bytes) (block map entry 0", p);
    }

    @Test
    void blockSizeQemuRefusesIsRefused() throws Exception {
        // Made with testdata/structpatch.py from a qemu image, as a user would meet it; qemu refuses it too.
        Path p = dir.resolve("big-blocks.vdi");
        Tools.check("qemu-img", "create", "-q", "-f", "vdi", p.toString(), "4M");
        Tools.check("python3", Tools.repo().resolve("testdata/structpatch.py").toString(), p.toString(), "0x178", "<I", "0x200000");
        Tools.Result qemu = Tools.run(List.of("qemu-img", "info", "-f", "vdi", p.toString()), null);
        assertTrue(qemu.exit() != 0 && qemu.stderr().contains("block size 2097152"), qemu.stderr());
        assertRefused(ImageException.Kind.UNSUPPORTED, "VDI block size 2097152 is not supported", p);
    }

    @Test
    void snapshotsAreRefused() throws Exception {
        Path p = write("built.vdi", bytes());
        ImageException e = assertThrows(ImageException.class, () -> Images.open(p, VDI.withSnapshot("s")).close());
        assertEquals(ImageException.Kind.INVALID, e.kind());
        assertTrue(e.getMessage().contains("no internal snapshots"), e.getMessage());
    }
}
