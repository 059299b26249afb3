package org.vdiskload.format.vhd;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.BackingRef;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenContext;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.ProbeData;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Whole images, valid and broken, built from {@link VhdBytes}: every problem is a quick one-line ImageException. */
class VhdBadInputTest {
    private static final OpenContext CONTEXT = new OpenContext(null, 1 << 20, false);

    @TempDir
    Path dir;

    private void assertRefused(ByteBuffer image, ImageException.Kind kind, String problem) throws IOException {
        Path p = VhdBytes.write(dir, "bad.vhd", image);
        ImageException e = assertThrows(ImageException.class, () -> assertTimeoutPreemptively(Duration.ofSeconds(5), () -> {
            try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS.withFormat("vpc"))) {
                d.read(ByteBuffer.allocate(512), 0);
            }
        }));
        assertEquals(kind, e.kind(), e.getMessage());
        assertTrue(e.getMessage().contains(problem), e.getMessage());
        assertTrue(e.getMessage().startsWith(p.toString()), e.getMessage());
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
    }

    private ImageLayer openLayer(ByteBuffer image) throws IOException {
        ImageFile f = ImageFile.open(VhdBytes.write(dir, "layer.vhd", image), false);
        return new VhdFormat().open(f, CONTEXT);
    }

    private static ByteBuffer truncated(ByteBuffer image, int length) {
        return ByteBuffer.wrap(image.array(), 0, length).slice();
    }

    @Test
    void readsAValidDynamicImage() throws IOException {
        Path p = VhdBytes.write(dir, "ok.vhd", VhdBytes.dynamicImage(3));
        try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS)) {
            assertEquals("vpc", d.formatName());
            assertEquals(VhdBytes.CHS_SIZE, d.size());
            ByteBuffer b = ByteBuffer.allocate(1024);
            d.read(b, (2 << 20) - 512);
            assertEquals(0x5a, b.get(0));
            assertEquals(0, b.get(600));
            assertEquals(Long.valueOf(2 << 20), d.layers().get(0).info().clusterSize());
        }
    }

    @Test
    void readsAValidFixedImage() throws IOException {
        try (ImageLayer l = openLayer(VhdBytes.fixedImage())) {
            assertEquals(1 << 20, l.size());
            assertNull(l.info().clusterSize());
            assertEquals(1 << 20, l.map(0, 1 << 20).length());
        }
    }

    @Test
    void probesByHeadOrByFixedFooter() {
        VhdFormat f = new VhdFormat();
        ByteBuffer dyn = VhdBytes.dynamicImage(3);
        assertEquals(100, f.probe(new ProbeData(ByteBuffer.wrap(dyn.array(), 0, 4096).slice(), ByteBuffer.allocate(1024), dyn.capacity())));
        ByteBuffer fixed = VhdBytes.fixedImage();
        ByteBuffer tail = ByteBuffer.wrap(fixed.array(), fixed.capacity() - 1024, 1024).slice();
        assertEquals(50, f.probe(new ProbeData(ByteBuffer.wrap(fixed.array(), 0, 4096).slice(), tail, fixed.capacity())));
        ByteBuffer shifted = ByteBuffer.allocate(1024);
        shifted.put(513, tail.array(), tail.arrayOffset() + 512, 511); // a 511-byte footer: qemu sees raw
        assertEquals(0, f.probe(new ProbeData(ByteBuffer.allocate(4096), shifted, 1 << 20)));
        assertEquals(0, f.probe(new ProbeData(ByteBuffer.allocate(10), ByteBuffer.allocate(10), 10)));
    }

    @Test
    void refusesAFileTooSmallForAFooter() throws IOException {
        assertRefused(ByteBuffer.allocate(100), ImageException.Kind.CORRUPT, "too small for a VHD footer");
    }

    @Test
    void refusesAFileWithoutFooter() throws IOException {
        assertRefused(ByteBuffer.allocate(4096), ImageException.Kind.CORRUPT, "no VHD footer");
    }

    @Test
    void refusesA511ByteFooter() throws IOException {
        ByteBuffer fixed = VhdBytes.fixedImage();
        ByteBuffer old = ByteBuffer.allocate(fixed.capacity());
        old.put(0, fixed.array(), 0, 1 << 20);
        old.put((1 << 20) + 1, fixed.array(), 1 << 20, 511);
        assertRefused(old, ImageException.Kind.UNSUPPORTED, "511-byte footer");
    }

    @Test
    void refusesATruncatedFixedImage() throws IOException {
        ByteBuffer fixed = VhdBytes.fixedImage();
        fixed.put(1 << 20, VhdBytes.footer(2, -1L, "win ", 2 << 20).array());
        assertRefused(fixed, ImageException.Kind.CORRUPT, "does not fit in the 1048576 bytes before the footer");
    }

    @Test
    void refusesADynamicTypeInAFooterOnlyAtTheEnd() throws IOException {
        ByteBuffer fixed = VhdBytes.fixedImage();
        fixed.put(1 << 20, VhdBytes.footer(3, 512, "win ", 1 << 20).array());
        assertRefused(fixed, ImageException.Kind.CORRUPT, "needs a footer copy at the start");
    }

    @Test
    void refusesAFixedTypeInTheFooterCopy() throws IOException {
        ByteBuffer img = VhdBytes.dynamicImage(3);
        img.put(0, VhdBytes.footer(2, 512, "qemu", VhdBytes.CHS_SIZE).array());
        assertRefused(img, ImageException.Kind.CORRUPT, "says fixed disk");
    }

    @Test
    void refusesABadChecksum() throws IOException {
        ByteBuffer img = VhdBytes.dynamicImage(3);
        img.put(30, (byte) 'X');
        assertRefused(img, ImageException.Kind.CORRUPT, "footer checksum mismatch");
    }

    @Test
    void refusesATooLargeDisk() throws IOException {
        ByteBuffer img = VhdBytes.dynamicImage(3);
        img.put(0, VhdBytes.footer(3, 512, "win ", 2041L << 30).array());
        assertRefused(img, ImageException.Kind.UNSUPPORTED, "larger than 2040 GiB");
    }

    @Test
    void refusesADynamicHeaderPastTheEnd() throws IOException {
        ByteBuffer img = VhdBytes.dynamicImage(3);
        img.put(0, VhdBytes.footer(3, 1L << 40, "qemu", VhdBytes.CHS_SIZE).array());
        assertRefused(img, ImageException.Kind.CORRUPT, "past the end of the file");
        img.put(0, VhdBytes.footer(3, -1L, "qemu", VhdBytes.CHS_SIZE).array());
        assertRefused(img, ImageException.Kind.CORRUPT, "dynamic header offset 18446744073709551615 is past the end");
    }

    @Test
    void refusesABatPastTheEnd() throws IOException {
        ByteBuffer img = VhdBytes.dynamicImage(3);
        img.put(512, VhdBytes.dynamicHeader(img.capacity() - 8, 3, 2 << 20, "").array());
        assertRefused(img, ImageException.Kind.CORRUPT, "BAT at offset");
    }

    @Test
    void refusesAHugeBatQuicklyWithoutAllocating() throws IOException {
        ByteBuffer img = VhdBytes.dynamicImage(3);
        img.put(512, VhdBytes.dynamicHeader(1536, Integer.MAX_VALUE / 4, 2 << 20, "").array());
        assertRefused(img, ImageException.Kind.CORRUPT, "past the end of the file");
    }

    @Test
    void refusesABatTooSmallForTheDisk() throws IOException {
        ByteBuffer img = VhdBytes.dynamicImage(3);
        img.put(512, VhdBytes.dynamicHeader(1536, 2, 2 << 20, "").array());
        assertRefused(img, ImageException.Kind.CORRUPT, "less than the virtual size");
    }

    @Test
    void refusesABlockPastTheEnd() throws IOException {
        ByteBuffer img = VhdBytes.dynamicImage(3);
        img.putInt(1544, 0x7fffff00);       // BAT[2] far past the end
        assertRefused(img, ImageException.Kind.CORRUPT, "BAT entry 2");
    }

    @Test
    void refusesATruncatedDynamicImage() throws IOException {
        ByteBuffer img = VhdBytes.dynamicImage(3);
        assertRefused(truncated(img, 1 << 20), ImageException.Kind.CORRUPT, "the image is truncated");
    }

    /** A differencing image with locator data {@code data} in {@code slot} of platform {@code code}, stored at the end. */
    private static ByteBuffer differencing(String parentName, String code, byte[] data, int declaredLength, long dataOffset) {
        ByteBuffer base = VhdBytes.dynamicImage(4);
        ByteBuffer img = ByteBuffer.allocate(base.capacity() + 1024);
        img.put(0, base.array());
        ByteBuffer h = VhdBytes.dynamicHeader(1536, 3, 2 << 20, parentName);
        if (code != null) {
            VhdBytes.locator(h, 0, code, declaredLength, dataOffset);
            img.put(base.capacity(), data);
        }
        img.put(512, h.array());
        return img;
    }

    private static byte[] utf16le(String s) {
        return s.getBytes(StandardCharsets.UTF_16LE);
    }

    @Test
    void namesTheParentFromTheLocator() throws IOException {
        int end = VhdBytes.dynamicImage(4).capacity();
        byte[] rel = utf16le(".\\sub\\base.vhd");
        try (ImageLayer l = openLayer(differencing("base.vhd", "W2ru", rel, rel.length, end))) {
            assertEquals(new BackingRef("sub/base.vhd", "vpc"), l.backing().orElseThrow());
        }
        byte[] mac = "file:///srv/my%20disks/base.vhd".getBytes(StandardCharsets.UTF_8);
        try (ImageLayer l = openLayer(differencing("base.vhd", "MacX", mac, mac.length, end))) {
            assertEquals(new BackingRef("/srv/my disks/base.vhd", "vpc"), l.backing().orElseThrow());
        }
    }

    @Test
    void fallsBackToTheParentNameForADrivePath() throws IOException {
        byte[] abs = utf16le("C:\\VMs\\base.vhd");
        try (ImageLayer l = openLayer(differencing("C:\\VMs\\base.vhd", "W2ku", abs, abs.length, VhdBytes.dynamicImage(4).capacity()))) {
            assertEquals(new BackingRef("base.vhd", "vpc"), l.backing().orElseThrow());
        }
    }

    @Test
    void refusesADifferencingDiskWithoutUsableParent() throws IOException {
        byte[] abs = utf16le("C:\\VMs\\base.vhd");
        assertRefused(differencing("", "W2ku", abs, abs.length, VhdBytes.dynamicImage(4).capacity()),
                ImageException.Kind.CORRUPT, "names no parent file usable on this host");
    }

    @Test
    void refusesLocatorDataPastTheEnd() throws IOException {
        byte[] rel = utf16le(".\\base.vhd");
        assertRefused(differencing("base.vhd", "W2ru", rel, rel.length, 1L << 40),
                ImageException.Kind.CORRUPT, "parent locator 0 (W2ru) data");
    }

    @Test
    void refusesAHugeLocatorLength() throws IOException {
        byte[] rel = utf16le(".\\base.vhd");
        assertRefused(differencing("base.vhd", "W2ru", rel, -1, VhdBytes.dynamicImage(4).capacity()),
                ImageException.Kind.CORRUPT, "locator data length 4294967295 is not between 1 and 65536");
    }

    @Test
    void refusesAMacLocatorThatIsNotAFileUrl() throws IOException {
        byte[] mac = "http://example.com/base.vhd".getBytes(StandardCharsets.UTF_8);
        assertRefused(differencing("base.vhd", "MacX", mac, mac.length, VhdBytes.dynamicImage(4).capacity()),
                ImageException.Kind.CORRUPT, "not a local file:// URL");
    }
}
