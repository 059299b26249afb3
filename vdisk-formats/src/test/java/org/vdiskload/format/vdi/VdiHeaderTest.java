package org.vdiskload.format.vdi;

import org.junit.jupiter.api.Test;
import org.vdiskload.image.error.ImageException;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The VDI header parser on annotated bytes: every field, and one failing case per validation rule. */
class VdiHeaderTest {
    private static final Path FILE = Path.of("test.vdi");

    /** A valid dynamic header: 3 MiB disk, 3 blocks (2 allocated), map at 0x200, data at 0x400. */
    static ByteBuffer header() {
        ByteBuffer b = ByteBuffer.allocate(VdiHeader.LENGTH).order(ByteOrder.LITTLE_ENDIAN);
        b.put("<<< QEMU VM Virtual Disk Image >>>\n".getBytes(StandardCharsets.US_ASCII)); // 0x000 pre-header text
        b.putInt(0x40, 0xbeda107f);     // 0x040 signature
        b.putInt(0x44, 0x00010001);     // 0x044 version 1.1
        b.putInt(0x48, 0x180);          // 0x048 header_size
        b.putInt(0x4c, 1);              // 0x04c image_type: dynamic
        b.putInt(0x50, 0);              // 0x050 image_flags
                                        // 0x054 description: 256 bytes, empty
        b.putInt(0x154, 0x200);         // 0x154 offset_bmap
        b.putInt(0x158, 0x400);         // 0x158 offset_data
        b.putInt(0x15c, 0);             // 0x15c cylinders (unused)
        b.putInt(0x160, 0);             // 0x160 heads (unused)
        b.putInt(0x164, 0);             // 0x164 sectors (unused)
        b.putInt(0x168, 512);           // 0x168 sector_size
        b.putInt(0x16c, 0);             // 0x16c unused1
        b.putLong(0x170, 3 << 20);      // 0x170 disk_size: 3 MiB
        b.putInt(0x178, 1 << 20);       // 0x178 block_size: 1 MiB
        b.putInt(0x17c, 0);             // 0x17c block_extra
        b.putInt(0x180, 3);             // 0x180 blocks_in_image
        b.putInt(0x184, 2);             // 0x184 blocks_allocated
        b.putLong(0x188, 0x1122334455667788L).putLong(0x190, 1); // 0x188 uuid_image
        b.putLong(0x198, 0x99aabbccddeeff00L).putLong(0x1a0, 2); // 0x198 uuid_last_snap
                                        // 0x1a8 uuid_link: null; 0x1b8 uuid_parent: null; 0x1c8 unused2
        return b.clear();
    }

    private static VdiHeader parse(Consumer<ByteBuffer> patch) throws ImageException {
        ByteBuffer b = header();
        patch.accept(b);
        return VdiHeader.parse(b, FILE);
    }

    private static void assertRefused(ImageException.Kind kind, String problem, Consumer<ByteBuffer> patch) {
        ImageException e = assertThrows(ImageException.class, () -> parse(patch));
        assertEquals(kind, e.kind(), e.getMessage());
        assertTrue(e.getMessage().contains(problem), e.getMessage());
        assertTrue(e.getMessage().startsWith(FILE + ": "), e.getMessage());
    }

    @Test
    void parsesEveryField() throws Exception {
        VdiHeader h = parse(b -> { });
        assertEquals(0x00010001, h.version());
        assertEquals(0x180, h.headerSize());
        assertEquals(VdiHeader.TYPE_DYNAMIC, h.imageType());
        assertEquals(0, h.imageFlags());
        assertEquals(0x200, h.offsetBmap());
        assertEquals(0x400, h.offsetData());
        assertEquals(512, h.sectorSize());
        assertEquals(3 << 20, h.diskSize());
        assertEquals(1 << 20, h.blockSize());
        assertEquals(0, h.blockExtra());
        assertEquals(3, h.blocksInImage());
        assertEquals(2, h.blocksAllocated());
        // RTUUID: time_low, time_mid, time_hi little-endian, the last 8 bytes as stored
        assertEquals(java.util.UUID.fromString("55667788-3344-1122-0100-000000000000"), h.uuidCreate());
        assertEquals(java.util.UUID.fromString("ddeeff00-bbcc-99aa-0200-000000000000"), h.uuidModify());
        assertEquals(VdiUuid.NONE, h.uuidLinkage());
        assertEquals(VdiUuid.NONE, h.uuidParentModify());
        assertFalse(h.isDiff());
        assertEquals(3 << 20, h.virtualSize());
        assertEquals(3, h.blocksUsed());
        assertEquals(0x200 + 12, h.bmapEnd());
        assertEquals(0x400 + (2L << 20), h.blockOffset(2));
    }

    @Test
    void staticImagesAndUnknownTypesReadTheSameAsQemuDoes() throws Exception {
        assertEquals(VdiHeader.TYPE_STATIC, parse(b -> b.putInt(0x4c, 2)).imageType());
        assertEquals(3, parse(b -> b.putInt(0x4c, 3)).imageType());
    }

    @Test
    void oddDiskSizeIsRoundedUpToSectorsAsQemuDoes() throws Exception {
        VdiHeader h = parse(b -> b.putLong(0x170, 2000000));
        assertEquals(2000384, h.virtualSize());
        assertEquals(2, h.blocksUsed());
    }

    @Test
    void refusesBadSignature() {
        assertRefused(ImageException.Kind.CORRUPT, "not a VDI image (bad signature beda1070)", b -> b.putInt(0x40, 0xbeda1070));
    }

    @Test
    void refusesOtherVersions() {
        assertRefused(ImageException.Kind.UNSUPPORTED, "VDI version 1.0 is not supported", b -> b.putInt(0x44, 0x00010000));
    }

    @Test
    void refusesUnalignedBlockMap() {
        assertRefused(ImageException.Kind.CORRUPT, "block map offset 768 is not aligned to 512", b -> b.putInt(0x154, 0x300));
    }

    @Test
    void refusesUnalignedDataOffset() {
        assertRefused(ImageException.Kind.CORRUPT, "data offset 1025 is not aligned to 512", b -> b.putInt(0x158, 0x401));
    }

    @Test
    void refusesOtherSectorSizes() {
        assertRefused(ImageException.Kind.UNSUPPORTED, "VDI sector size 4096 is not supported", b -> b.putInt(0x168, 4096));
    }

    @Test
    void refusesBlockSizesQemuRefuses() {
        assertRefused(ImageException.Kind.UNSUPPORTED, "VDI block size 2097152 is not supported", b -> b.putInt(0x178, 2 << 20));
    }

    @Test
    void refusesBlockExtra() {
        assertRefused(ImageException.Kind.UNSUPPORTED, "per-block extra data (block_extra 512)", b -> b.putInt(0x17c, 512));
    }

    @Test
    void refusesDiskSizeAboveQemusMaximum() {
        assertRefused(ImageException.Kind.UNSUPPORTED, "is larger than the maximum", b -> b.putLong(0x170, VdiHeader.MAX_DISK_SIZE + 512));
    }

    @Test
    void refusesNegativeDiskSize() {
        assertRefused(ImageException.Kind.UNSUPPORTED, "VDI disk size 18446744073709551104", b -> b.putLong(0x170, -512));
    }

    @Test
    void refusesDiskSizeBeyondTheBlockMap() {
        assertRefused(ImageException.Kind.CORRUPT, "disk size 3146240 is larger than the block map covers (3 blocks",
                b -> b.putLong(0x170, (3 << 20) + 1));
    }

    @Test
    void refusesLinkUuidOutsideADifferencingImage() {
        assertRefused(ImageException.Kind.UNSUPPORTED, "VDI images of type 1 with a link UUID or parent UUID are not supported",
                b -> b.put(0x1b7, (byte) 1));
    }

    @Test
    void refusesParentModificationUuidOutsideADifferencingImage() {
        assertRefused(ImageException.Kind.UNSUPPORTED, "only differencing images, type 4, name a parent", b -> b.put(0x1b8, (byte) 1));
    }

    @Test
    void parsesADifferencingHeader() throws Exception {
        VdiHeader h = parse(b -> {
            b.putInt(0x4c, 4);                                       // image_type: diff
            b.putLong(0x1a8, 0x0706050403020100L).putLong(0x1b0, 0x0f0e0d0c0b0a0908L); // uuidLinkage
            b.putLong(0x1b8, 0x1716151413121110L).putLong(0x1c0, 0x1f1e1d1c1b1a1918L); // uuidParentModify
        });
        assertTrue(h.isDiff());
        assertEquals(java.util.UUID.fromString("03020100-0504-0706-0809-0a0b0c0d0e0f"), h.uuidLinkage());
        assertEquals(java.util.UUID.fromString("13121110-1514-1716-1819-1a1b1c1d1e1f"), h.uuidParentModify());
    }

    @Test
    void refusesADifferencingImageWithoutAParentUuid() {
        assertRefused(ImageException.Kind.CORRUPT, "differencing VDI image without a parent UUID", b -> b.putInt(0x4c, 4));
    }

    @Test
    void refusesBlockMapOverlappingTheHeader() {
        assertRefused(ImageException.Kind.CORRUPT, "block map at 0 overlaps the header", b -> b.putInt(0x154, 0));
    }

    @Test
    void refusesDataOverlappingTheBlockMap() {
        assertRefused(ImageException.Kind.CORRUPT, "data area at 512 overlaps the block map", b -> b.putInt(0x158, 0x200));
    }

    @Test
    void refusesMoreAllocatedBlocksThanTheImageHas() {
        assertRefused(ImageException.Kind.CORRUPT, "4 blocks allocated but the image has only 3", b -> b.putInt(0x184, 4));
    }
}
