package org.vdiskload.format.qcow;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Extent;
import org.vdiskload.image.Images;
import org.vdiskload.image.LayerInfo;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.testing.Tools;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The hand-built image of {@link QcowTestImage} (512-byte clusters, a size qemu-img cannot create):
 * read like qemu reads it, and refused with a clear error for every kind of broken table.
 */
class QcowImageTest {
    @TempDir
    Path dir;

    private static final OpenOptions QCOW = OpenOptions.DEFAULTS.withFormat("qcow");

    private static byte[] read(DiskImage disk) throws Exception {
        ByteBuffer b = ByteBuffer.allocate((int) disk.size());
        disk.read(b, 0);
        return b.array();
    }

    @Test
    void readsAndMapsTheBuiltImage() throws Exception {
        Path p = QcowTestImage.write(dir);
        try (DiskImage disk = Images.open(p, OpenOptions.DEFAULTS)) {
            assertEquals("qcow", disk.formatName());
            byte[] all = read(disk);
            byte[] expected = new byte[65536];
            System.arraycopy(QcowTestImage.filled(0xab), 0, expected, 0, 512);
            System.arraycopy(QcowTestImage.filled(0xcd), 0, expected, 512, 512);
            assertArrayEquals(expected, all);
            List<Extent> map = disk.map(0, disk.size());
            assertEquals(Extent.data(0, 512, 0, disk.layers().get(0).file(), QcowTestImage.DATA), map.get(0));
            assertEquals(Extent.needsLibrary(512, 512, 0), map.get(1));
            assertEquals(Extent.zero(1024, 65536 - 1024, 0, false), map.get(2));
            LayerInfo info = disk.layers().get(0).info();
            assertEquals("qcow", info.format());
            assertEquals(65536, info.virtualSize());
            assertEquals(512L, info.clusterSize());
        }
    }

    @Test
    void qemuReadsTheBuiltImageTheSame() throws Exception {
        Path p = QcowTestImage.write(dir);
        Path raw = dir.resolve("built.raw");
        Tools.check("qemu-img", "convert", "-f", "qcow", "-O", "raw", p.toString(), raw.toString());
        try (DiskImage disk = Images.open(p, QCOW)) {
            assertArrayEquals(Files.readAllBytes(raw), read(disk));
        }
    }

    @Test
    void mergesClustersContiguousInTheFile() throws Exception {
        byte[] img = QcowTestImage.bytes();
        ByteBuffer b = ByteBuffer.wrap(img).order(ByteOrder.BIG_ENDIAN);
        b.putLong(QcowTestImage.L2 + 8, QcowTestImage.DATA + 512); // cluster 1 right after cluster 0
        try (DiskImage disk = Images.open(QcowTestImage.write(dir, "merge.qcow", img), QCOW)) {
            assertEquals(1024, disk.layers().get(0).map(0, 65536).length());
            assertEquals(100, disk.layers().get(0).map(0, 100).length());
        }
    }

    private ImageException refused(Consumer<ByteBuffer> patch) throws Exception {
        byte[] img = QcowTestImage.bytes();
        patch.accept(ByteBuffer.wrap(img).order(ByteOrder.BIG_ENDIAN));
        Path p = QcowTestImage.write(dir, "bad.qcow", img);
        return assertThrows(ImageException.class, () -> {
            try (DiskImage disk = Images.open(p, QCOW)) {
                read(disk);
                disk.map(0, disk.size());
            }
        });
    }

    private void assertCorrupt(String problem, Consumer<ByteBuffer> patch) throws Exception {
        ImageException e = refused(patch);
        assertEquals(ImageException.Kind.CORRUPT, e.kind(), e.getMessage());
        assertTrue(e.getMessage().contains(problem), e.getMessage());
        assertTrue(e.getMessage().contains("bad.qcow"), e.getMessage());
    }

    @Test
    void truncatedHeader() throws Exception {
        Path p = QcowTestImage.write(dir, "bad.qcow", java.util.Arrays.copyOf(QcowTestImage.bytes(), 30));
        ImageException e = assertThrows(ImageException.class, () -> Images.open(p, QCOW).close());
        assertEquals(ImageException.Kind.CORRUPT, e.kind());
        assertTrue(e.getMessage().contains("qcow header"), e.getMessage());
    }

    @Test
    void l1TableOverlappingTheHeader() throws Exception {
        assertCorrupt("L1 table at 0 overlaps the header", b -> b.putLong(40, 0));
    }

    @Test
    void l1TableMisaligned() throws Exception {
        assertCorrupt("is not aligned to 8", b -> b.putLong(40, 52));
    }

    @Test
    void l1TablePastEof() throws Exception {
        assertCorrupt("past the end of the file", b -> b.putLong(40, 1L << 40));
    }

    @Test
    void hugeL1TableIsRefusedWithoutAllocatingIt() throws Exception {
        // 2^42 bytes of 32 KiB spans: 2^27 entries (1 GiB of table) claimed by a 2 KiB file.
        assertCorrupt("past the end of the file", b -> b.putLong(24, 1L << 42));
    }

    @Test
    void l2TablePastEof() throws Exception {
        assertCorrupt("past the end of the file", b -> b.putLong(QcowTestImage.L1, 1L << 40));
    }

    @Test
    void l2TableMisaligned() throws Exception {
        assertCorrupt("is not aligned to 512", b -> b.putLong(QcowTestImage.L1, QcowTestImage.L2 + 8));
    }

    @Test
    void l2TableWithNegativeOffset() throws Exception {
        assertCorrupt("L2 table offset", b -> b.putLong(QcowTestImage.L1, -512));
    }

    @Test
    void l2EntryPastEof() throws Exception {
        assertCorrupt("data cluster at 1099511627776 is past the end of the file", b -> b.putLong(QcowTestImage.L2, 1L << 40));
    }

    @Test
    void l2EntryMisaligned() throws Exception {
        assertCorrupt("is not aligned to 512", b -> b.putLong(QcowTestImage.L2, QcowTestImage.DATA + 1));
    }

    @Test
    void compressedClusterPastEof() throws Exception {
        assertCorrupt("past the end of the file", b -> b.putLong(QcowTestImage.L2 + 8, QcowTestImage.compressedEntry(1 << 20, 20)));
    }

    @Test
    void compressedClusterOfSizeZero() throws Exception {
        assertCorrupt("compressed cluster has a size of 0 bytes", b -> b.putLong(QcowTestImage.L2 + 8, QcowTestImage.compressedEntry(QcowTestImage.COMPRESSED, 0)));
    }

    @Test
    void compressedClusterWithInvalidDeflateData() throws Exception {
        assertCorrupt("invalid deflate data", b -> b.put(QcowTestImage.COMPRESSED, (byte) 0xff));
    }

    @Test
    void compressedClusterDecompressingShort() throws Exception {
        byte[] shortData = QcowTestImage.deflate(new byte[100]);
        assertCorrupt("decompresses to 100 bytes instead of the cluster size 512", b -> b
                .put(QcowTestImage.COMPRESSED, shortData)
                .putLong(QcowTestImage.L2 + 8, QcowTestImage.compressedEntry(QcowTestImage.COMPRESSED, shortData.length)));
    }

    @Test
    void backingFileNamePastEof() throws Exception {
        assertCorrupt("backing file name", b -> b.putLong(8, 1L << 30).putInt(16, 10));
    }

    @Test
    void encryptedImageIsUnsupported() throws Exception {
        ImageException e = refused(b -> b.putInt(36, 1));
        assertEquals(ImageException.Kind.UNSUPPORTED, e.kind());
        assertTrue(e.getMessage().contains("AES-encrypted qcow images are not supported"), e.getMessage());
    }

    @Test
    void snapshotsAreRefused() throws Exception {
        Path p = QcowTestImage.write(dir);
        ImageException e = assertThrows(ImageException.class, () -> Images.open(p, QCOW.withSnapshot("s1")).close());
        assertEquals(ImageException.Kind.INVALID, e.kind());
        assertTrue(e.getMessage().contains("no internal snapshots"), e.getMessage());
    }
}
