package org.vdiskload.format.vhd;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The footer and dynamic header parsers on annotated bytes (see {@link VhdBytes}), one negative test per rule. */
class VhdHeaderTest {
    @TempDir
    Path dir;
    ImageFile file;

    @BeforeEach
    void open() throws Exception {
        Path p = dir.resolve("t.vhd");
        Files.write(p, new byte[4096]);
        file = ImageFile.open(p, false);
    }

    @AfterEach
    void close() throws Exception {
        file.close();
    }

    private static void assertFails(ImageException.Kind kind, String problem, org.junit.jupiter.api.function.Executable e) {
        ImageException ex = assertThrows(ImageException.class, e);
        assertEquals(kind, ex.kind(), ex.getMessage());
        assertTrue(ex.getMessage().contains(problem), ex.getMessage());
        assertFalse(ex.getMessage().contains("\n"), ex.getMessage());
    }

    @Test
    void parsesFooter() throws Exception {
        VhdFooter f = VhdFooter.parse(file, 0, VhdBytes.footer(3, 512, "qemu", 6_000_128));
        assertEquals(2, f.features());
        assertEquals(0x10000, f.formatVersion());
        assertEquals(512, f.dataOffset());
        assertEquals("qemu", f.creatorApp());
        assertEquals("Wi2k", f.creatorOs());
        assertEquals(0x50003, f.creatorVersion());
        assertEquals(6_000_128, f.currentSize());
        assertEquals(151, f.cylinders());
        assertEquals(4, f.heads());
        assertEquals(17, f.sectorsPerTrack());
        assertEquals(VhdFooter.TYPE_DYNAMIC, f.diskType());
        assertArrayEquals(new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, f.uniqueId());
        assertFalse(f.savedState());
    }

    @Test
    void sizeComesFromGeometryOrCurrentSizeByCreator() throws Exception {
        long current = 6_000_000; // 11718.75 sectors: qemu keeps whole sectors
        for (String app : new String[] {"vpc ", "qemu", "vs  ", "odd!"}) {
            assertEquals(VhdBytes.CHS_SIZE, VhdFooter.parse(file, 0, VhdBytes.footer(3, 512, app, current)).virtualSize(), app);
        }
        for (String app : new String[] {"win ", "qem2", "d2v ", "CTXS", "tap\0"}) {
            assertEquals(5_999_616, VhdFooter.parse(file, 0, VhdBytes.footer(3, 512, app, current)).virtualSize(), app);
        }
    }

    @Test
    void maximalGeometryMeansCurrentSize() throws Exception {
        ByteBuffer b = VhdBytes.footer(3, 512, "vpc ", 3L << 40);
        b.putShort(56, (short) 65535);      // cylinders
        b.put(58, (byte) 16);               // heads
        b.put(59, (byte) 255);              // sectors per track
        VhdFooter f = VhdFooter.parse(file, 0, VhdBytes.withChecksum(b, 64));
        assertEquals(3L << 40, f.virtualSize());
        assertFails(ImageException.Kind.UNSUPPORTED, "larger than 2040 GiB", () -> f.requireSupportedSize(file, 0));
    }

    @Test
    void rejectsBadFooterCookie() {
        ByteBuffer b = VhdBytes.footer(3, 512, "qemu", VhdBytes.CHS_SIZE);
        b.put(0, (byte) 'C');
        assertFails(ImageException.Kind.CORRUPT, "bad VHD footer cookie", () -> VhdFooter.parse(file, 0, b));
    }

    @Test
    void rejectsBadFooterChecksumAsQemuDoes() {
        ByteBuffer b = VhdBytes.footer(3, 512, "qemu", VhdBytes.CHS_SIZE);
        b.put(100, (byte) 1);               // a reserved byte changed, checksum not updated
        assertFails(ImageException.Kind.CORRUPT, "footer checksum mismatch", () -> VhdFooter.parse(file, 0, b));
    }

    @Test
    void rejectsUnknownDiskType() {
        ByteBuffer b = VhdBytes.withChecksum(VhdBytes.footer(5, 512, "qemu", VhdBytes.CHS_SIZE), 64);
        assertFails(ImageException.Kind.CORRUPT, "unknown disk type 5", () -> VhdFooter.parse(file, 0, b));
    }

    @Test
    void parsesDynamicHeaderAndLocators() throws Exception {
        ByteBuffer h = VhdBytes.dynamicHeader(1536, 3, 2 << 20, "parent.vhd");
        VhdBytes.locator(h, 0, "W2ku", 40, 4096);
        VhdBytes.locator(h, 1, "W2ru", 28, 4608);
        VhdDynamicHeader d = VhdDynamicHeader.parse(file, 512, h);
        assertEquals(512, d.at());
        assertEquals(1536, d.tableOffset());
        assertEquals(0x10000, d.headerVersion());
        assertEquals(3, d.maxTableEntries());
        assertEquals(2 << 20, d.blockSize());
        assertEquals(512, d.bitmapSize());
        assertEquals("parent.vhd", d.parentName());
        assertEquals(2, d.locators().size());
        VhdParentLocator w2ru = d.locators().get(1);
        assertEquals("W2ru", w2ru.platform());
        assertEquals(VhdParentLocator.W2RU, w2ru.platformCode());
        assertEquals(28, w2ru.dataLength());
        assertEquals(4608, w2ru.dataOffset());
        assertEquals(512 + 576 + 24, w2ru.entryAt());
    }

    @Test
    void bitmapSizeIsOneBitPerSectorPaddedToASector() throws Exception {
        assertEquals(512, VhdDynamicHeader.parse(file, 512, VhdBytes.dynamicHeader(1536, 3, 4096, "")).bitmapSize());
        assertEquals(1024, VhdDynamicHeader.parse(file, 512, VhdBytes.dynamicHeader(1536, 3, 4 << 20, "")).bitmapSize());
    }

    @Test
    void rejectsBadHeaderCookie() {
        ByteBuffer h = VhdBytes.dynamicHeader(1536, 3, 2 << 20, "");
        h.put(0, (byte) 'X');
        assertFails(ImageException.Kind.CORRUPT, "bad dynamic disk header cookie", () -> VhdDynamicHeader.parse(file, 512, h));
    }

    @Test
    void rejectsBlockSizeNotAPowerOfTwo() {
        ByteBuffer h = VhdBytes.dynamicHeader(1536, 3, 3 << 20, "");
        assertFails(ImageException.Kind.CORRUPT, "block size 3145728 is not a power of two", () -> VhdDynamicHeader.parse(file, 512, h));
        ByteBuffer zero = VhdBytes.dynamicHeader(1536, 3, 0, "");
        assertFails(ImageException.Kind.CORRUPT, "block size 0 is not a power of two", () -> VhdDynamicHeader.parse(file, 512, zero));
    }

    @Test
    void refusesBlocksBelowFourKiB() {
        ByteBuffer h = VhdBytes.dynamicHeader(1536, 3, 2048, "");
        assertFails(ImageException.Kind.UNSUPPORTED, "block size 2048 is below 4096", () -> VhdDynamicHeader.parse(file, 512, h));
    }

    @Test
    void rejectsHugeMaxTableEntries() {
        ByteBuffer h = VhdBytes.dynamicHeader(1536, -1, 2 << 20, "");
        assertFails(ImageException.Kind.CORRUPT, "max table entries 4294967295 is too large", () -> VhdDynamicHeader.parse(file, 512, h));
    }

    @Test
    void rejectsTableOffsetBeyondSignedRange() {
        ByteBuffer h = VhdBytes.dynamicHeader(-512, 3, 2 << 20, "");
        assertFails(ImageException.Kind.CORRUPT, "BAT offset 18446744073709551104 is past the end", () -> VhdDynamicHeader.parse(file, 512, h));
    }
}
