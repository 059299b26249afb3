package org.vdiskload.format.vhdx;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Extent;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.image.error.ImageException.Kind;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vdiskload.format.vhdx.TestImage.BAT;
import static org.vdiskload.format.vhdx.TestImage.KB;
import static org.vdiskload.format.vhdx.TestImage.MB;
import static org.vdiskload.format.vhdx.TestImage.METADATA;

/** The on-disk structures, parsed from {@link TestImage}'s annotated bytes, and one refusal per validation rule. */
class VhdxStructureTest {
    private static final int H1 = 64 * KB, H2 = 128 * KB, RT1 = 192 * KB, RT2 = 256 * KB;

    @TempDir
    Path dir;

    private DiskImage open(TestImage img) throws IOException {
        return Images.open(img.write(dir, "t.vhdx"), OpenOptions.DEFAULTS.withFormat("vhdx"));
    }

    /** Opens, maps and reads the whole disk (BAT problems surface on map), expecting a refusal. */
    private ImageException refused(TestImage img, Kind kind, String problem) {
        ImageException e = assertThrows(ImageException.class, () -> {
            try (DiskImage d = open(img)) {
                d.map(0, d.size());
                d.read(ByteBuffer.allocate((int) d.size()), 0);
            }
        });
        assertEquals(kind, e.kind(), e.getMessage());
        assertTrue(e.getMessage().contains(problem), "message '" + e.getMessage() + "' should mention '" + problem + "'");
        assertTrue(e.getMessage().startsWith(dir.resolve("t.vhdx").toString()), e.getMessage());
        return e;
    }

    @Test
    void validImageParsesAndMapsEveryBlockState() throws IOException {
        try (DiskImage d = open(new TestImage())) {
            VhdxLayer layer = (VhdxLayer) d.layers().get(0);
            assertEquals(4 * MB, d.size());
            assertEquals(MB, layer.metadata().blockSize());
            assertEquals(512, layer.metadata().logicalSectorSize());
            assertEquals(4096, layer.metadata().physicalSectorSize());
            assertEquals(4096, layer.metadata().chunkRatio());
            assertEquals(TestImage.DATA_WRITE_2, layer.header().dataWriteGuid(), "header 2 has the higher sequence number");
            List<Extent> map = d.map(0, d.size());
            assertEquals(Extent.Kind.DATA, map.get(0).kind());
            assertEquals(TestImage.BLOCK0, map.get(0).fileOffset());
            assertEquals(MB, map.get(0).length());
            assertEquals(Extent.Kind.ZERO, map.get(1).kind());   // ZERO
            assertTrue(map.get(1).allocated());
            assertEquals(Extent.Kind.ZERO, map.get(2).kind());   // NOT_PRESENT, no parent
            assertEquals(false, map.get(2).allocated());
            assertEquals(Extent.Kind.ZERO, map.get(3).kind());   // UNMAPPED reads as zeros
            assertEquals(new org.vdiskload.image.LayerInfo("vhdx", 4L * MB, (long) MB, false, List.of(), java.util.Map.of()),
                    layer.info());
            ByteBuffer all = ByteBuffer.allocate(4 * MB);
            d.read(all, 0);
            for (int i = 0; i < 4 * MB; i++) assertEquals(i < MB ? 0x5a : 0, all.get(i), "byte " + i);
        }
    }

    @Test
    void guidTextRoundTripsInMicrosoftByteOrder() {
        Guid g = Guid.of("2DC27766-F623-4200-9D64-115E9BFD4A08");
        ByteBuffer b = ByteBuffer.allocate(16).order(java.nio.ByteOrder.LITTLE_ENDIAN).putLong(g.low()).putLong(g.high());
        assertEquals(0x66, b.get(0) & 0xff, "Data1 is little-endian");
        assertEquals(0x9d, b.get(8) & 0xff, "Data4 is stored as written");
        assertEquals("2dc27766-f623-4200-9d64-115e9bfd4a08", g.toString());
        assertEquals(g, Guid.parse("{2dc27766-f623-4200-9d64-115e9bfd4a08}"));
        assertEquals(null, Guid.parse("not-a-guid"));
    }

    @Test
    void batEntryDecodesStateAndOffset() {
        BatEntry e = BatEntry.decode((5L << 20) | (0x1234L << 3) | 6); // FileOffsetMB 5, reserved bits, state 6
        assertEquals(6, e.state());
        assertEquals(5L * MB, e.fileOffset());
    }

    // --- headers ---

    @Test
    void badFileIdentifierIsRefused() {
        TestImage img = new TestImage();
        img.b.put(0, (byte) 'X');
        refused(img, Kind.CORRUPT, "no 'vhdxfile' signature");
    }

    @Test
    void headerWithBadChecksumFallsBackToTheOther() throws IOException {
        TestImage img = new TestImage();
        img.u32(H2 + 8, 99); // sequence changed without a new checksum: header 2 is invalid
        try (DiskImage d = open(img)) {
            assertEquals(TestImage.DATA_WRITE_1, ((VhdxLayer) d.layers().get(0)).header().dataWriteGuid());
        }
    }

    @Test
    void headerWithBadSignatureFallsBackToTheOther() throws IOException {
        TestImage img = new TestImage();
        img.u32(H2, 0x12345678).crc(H2, 4096);
        try (DiskImage d = open(img)) {
            assertEquals(TestImage.DATA_WRITE_1, ((VhdxLayer) d.layers().get(0)).header().dataWriteGuid());
        }
    }

    @Test
    void bothHeadersInvalidIsCorrupt() {
        TestImage img = new TestImage();
        img.u32(H1 + 4, 1).u32(H2, 0);
        refused(img, Kind.CORRUPT, "no valid VHDX header (header 1: bad CRC-32C checksum, header 2: bad signature)");
    }

    @Test
    void equalSequenceNumbersOnDifferentHeadersAreCorrupt() {
        TestImage img = new TestImage();
        img.u64(H2 + 8, 1).crc(H2, 4096);
        refused(img, Kind.CORRUPT, "same sequence number");
    }

    @Test
    void identicalHeadersWithEqualSequenceNumbersAreAccepted() throws IOException {
        TestImage img = new TestImage();
        img.b.put(H2, img.b.array(), H1, 4096);
        open(img).close();
    }

    @Test
    void unknownVersionIsUnsupported() {
        refused(new TestImage().bothHeaders(66, 2, 2), Kind.UNSUPPORTED, "unsupported VHDX version 2");
    }

    @Test
    void unknownLogVersionIsUnsupported() {
        refused(new TestImage().bothHeaders(64, 1, 2), Kind.UNSUPPORTED, "unsupported VHDX log version 1");
    }

    @Test
    void misalignedLogOffsetIsCorrupt() {
        refused(new TestImage().bothHeaders(72, MB + 4096, 8), Kind.CORRUPT, "log offset 1052672 is not a multiple of 1 MiB");
    }

    @Test
    void logLengthNotInMegabytesIsCorrupt() {
        refused(new TestImage().bothHeaders(68, 4096, 4), Kind.CORRUPT, "log length 4096 is not a multiple of 1 MiB");
    }

    // --- region tables ---

    @Test
    void regionTableWithBadChecksumFallsBackToTheCopy() throws IOException {
        TestImage img = new TestImage();
        img.u32(RT1 + 32, 7 * MB); // BAT offset changed without a checksum
        open(img).close();
    }

    @Test
    void bothRegionTablesInvalidIsCorrupt() {
        TestImage img = new TestImage();
        img.u32(RT1 + 4, 0).u32(RT2, 0);
        refused(img, Kind.CORRUPT, "no valid region table (table 1: bad CRC-32C checksum, table 2: bad signature)");
    }

    @Test
    void unknownRequiredRegionIsUnsupported() {
        TestImage img = new TestImage();
        for (int at : new int[] {RT1, RT2}) {
            img.u32(at + 8, 3).guid(at + 80, Guid.of("01234567-89ab-cdef-0123-456789abcdef")).u64(at + 96, 5 * MB)
                    .u32(at + 104, MB).u32(at + 108, 1);
        }
        refused(img.fixCrcs(), Kind.UNSUPPORTED, "unknown required region 01234567-89ab-cdef-0123-456789abcdef");
    }

    @Test
    void unknownOptionalRegionIsIgnored() throws IOException {
        TestImage img = new TestImage();
        for (int at : new int[] {RT1, RT2}) {
            img.u32(at + 8, 3).guid(at + 80, Guid.of("01234567-89ab-cdef-0123-456789abcdef")).u64(at + 96, 5 * MB)
                    .u32(at + 104, MB).u32(at + 108, 0);
        }
        open(img.fixCrcs()).close();
    }

    @Test
    void tooManyRegionsAreCorrupt() {
        refused(new TestImage().bothRegionTables(8, 2048, 4), Kind.CORRUPT, "region table has 2048 entries");
    }

    @Test
    void misalignedRegionIsCorrupt() {
        refused(new TestImage().bothRegionTables(32, BAT + 4096, 8), Kind.CORRUPT, "offset 3149824 is not a multiple of 1 MiB");
    }

    @Test
    void regionLengthNotInMegabytesIsCorrupt() {
        refused(new TestImage().bothRegionTables(40, 4096, 4), Kind.CORRUPT, "length 4096 is not a non-zero multiple of 1 MiB");
    }

    @Test
    void regionPastEndOfFileIsCorrupt() {
        refused(new TestImage().bothRegionTables(32, 1L << 40, 8), Kind.CORRUPT, "extends past the end of the file");
    }

    @Test
    void overlappingRegionsAreCorrupt() {
        refused(new TestImage().bothRegionTables(32, METADATA, 8), Kind.CORRUPT, "the BAT and metadata regions overlap");
    }

    @Test
    void regionOverlappingTheLogIsCorrupt() {
        refused(new TestImage().bothRegionTables(32, MB, 8), Kind.CORRUPT, "overlaps the log");
    }

    @Test
    void missingBatRegionIsCorrupt() {
        TestImage img = new TestImage();
        for (int at : new int[] {RT1, RT2}) img.guid(at + 16, Guid.of("01234567-89ab-cdef-0123-456789abcdef")).u32(at + 44, 0);
        refused(img.fixCrcs(), Kind.CORRUPT, "region table has no BAT region");
    }

    @Test
    void duplicateRegionIsCorrupt() {
        TestImage img = new TestImage();
        for (int at : new int[] {RT1, RT2}) img.guid(at + 48, RegionTable.BAT);
        refused(img.fixCrcs(), Kind.CORRUPT, "lists the BAT region twice");
    }

    // --- metadata ---

    @Test
    void badMetadataSignatureIsCorrupt() {
        TestImage img = new TestImage();
        img.b.put(METADATA, (byte) 'M');
        refused(img, Kind.CORRUPT, "bad metadata table signature");
    }

    @Test
    void blockSizeBelowOneMegabyteIsCorrupt() {
        refused(new TestImage().u32(METADATA + TestImage.ITEM_PARAMS, 512 * KB), Kind.CORRUPT, "block size 524288 is not a power of two from 1 MiB to 256 MiB");
    }

    @Test
    void blockSizeAbove256MegabytesIsCorrupt() {
        refused(new TestImage().u32(METADATA + TestImage.ITEM_PARAMS, 512 * MB), Kind.CORRUPT, "block size 536870912 is not a power of two");
    }

    @Test
    void blockSizeNotAPowerOfTwoIsCorrupt() {
        refused(new TestImage().u32(METADATA + TestImage.ITEM_PARAMS, 3 * MB), Kind.CORRUPT, "block size 3145728 is not a power of two");
    }

    @Test
    void logicalSectorSizeMustBe512Or4096() {
        refused(new TestImage().u32(METADATA + TestImage.ITEM_LOGICAL, 1024), Kind.CORRUPT, "logical sector size 1024 is not 512 or 4096");
    }

    @Test
    void physicalSectorSizeMustBe512Or4096() {
        refused(new TestImage().u32(METADATA + TestImage.ITEM_PHYSICAL, 2048), Kind.CORRUPT, "physical sector size 2048 is not 512 or 4096");
    }

    @Test
    void virtualSizeMustBeWholeSectors() {
        refused(new TestImage().u64(METADATA + TestImage.ITEM_SIZE, 4 * MB - 100), Kind.CORRUPT, "is not a multiple of the 512-byte sector");
    }

    @Test
    void virtualSizeAbove64TerabytesIsCorrupt() {
        refused(new TestImage().u64(METADATA + TestImage.ITEM_SIZE, (64L << 40) + 512), Kind.CORRUPT, "up to 64 TiB");
    }

    @Test
    void unknownRequiredMetadataItemIsUnsupported() {
        TestImage img = new TestImage();
        img.u16(METADATA + 10, 6).metadataEntry(5, Guid.of("fedcba98-7654-3210-fedc-ba9876543210"), 0, 0, 4);
        refused(img, Kind.UNSUPPORTED, "unknown required metadata item fedcba98-7654-3210-fedc-ba9876543210");
    }

    @Test
    void unknownOptionalAndUserMetadataItemsAreIgnored() throws IOException {
        TestImage img = new TestImage();
        img.u16(METADATA + 10, 7)
                .metadataEntry(5, Guid.of("fedcba98-7654-3210-fedc-ba9876543210"), 0, 0, 0)
                .metadataEntry(6, VhdxMetadata.FILE_PARAMETERS, 128 * KB, 8, 1); // a user item named like a system one
        open(img).close();
    }

    @Test
    void missingRequiredItemIsCorrupt() {
        refused(new TestImage().u16(METADATA + 10, 4), Kind.CORRUPT, "required metadata item 'physical sector size' is missing");
    }

    @Test
    void metadataItemInsideTheTableIsCorrupt() {
        refused(new TestImage().u32(METADATA + 32 + 16, 4096), Kind.CORRUPT, "is not inside the metadata region");
    }

    @Test
    void metadataItemPastTheRegionIsCorrupt() {
        refused(new TestImage().u32(METADATA + 32 + 16, MB - 4), Kind.CORRUPT, "is not inside the metadata region");
    }

    @Test
    void overlappingMetadataItemsAreCorrupt() {
        refused(new TestImage().u32(METADATA + 64 + 16, TestImage.ITEM_PARAMS + 4), Kind.CORRUPT, "overlap");
    }

    @Test
    void metadataItemOfWrongLengthIsCorrupt() {
        refused(new TestImage().u32(METADATA + 64 + 20, 4), Kind.CORRUPT, "virtual disk size item is 4 bytes, not 8");
    }

    @Test
    void differencingImageWithoutParentLocatorIsCorrupt() {
        refused(new TestImage().u32(METADATA + TestImage.ITEM_PARAMS + 4, 2), Kind.CORRUPT, "differencing VHDX has no parent locator");
    }

    // --- BAT ---

    @Test
    void batTooSmallForTheDiskIsCorrupt() {
        // 1 GiB of 1 MiB blocks needs 1024 entries (8 KiB): fits; 1 TiB needs 1 MiB + 8 KiB of entries.
        refused(new TestImage().u64(METADATA + TestImage.ITEM_SIZE, 1L << 40), Kind.CORRUPT,
                "BAT region holds 131072 entries but a 1099511627776-byte disk with 1048576-byte blocks needs 1048831");
    }

    @Test
    void reservedBlockStateIsCorrupt() {
        refused(new TestImage().u64(BAT + 16, 4), Kind.CORRUPT, "payload block 2 has reserved state 4");
    }

    @Test
    void blockPastEndOfFileIsCorrupt() {
        refused(new TestImage().u64(BAT, (5L * MB) | 6), Kind.CORRUPT, "payload block 0 at 5242880+1048576 lies outside the file");
    }

    @Test
    void blockInTheHeaderAreaIsCorrupt() {
        refused(new TestImage().u64(BAT, 6), Kind.CORRUPT, "payload block 0 at 0+1048576 lies outside the file (5242880 bytes) or in its header area");
    }

    @Test
    void blockOverMetadataIsCorrupt() {
        refused(new TestImage().u64(BAT, (long) METADATA | 6), Kind.CORRUPT, "overlaps the metadata or log region");
    }

    @Test
    void partiallyPresentBlockWithoutParentIsCorrupt() {
        refused(new TestImage().u64(BAT, (long) TestImage.BLOCK0 | 7), Kind.CORRUPT, "PARTIALLY_PRESENT in an image without a parent");
    }

    @Test
    void metadataTableWithTooManyEntriesIsCorrupt() {
        refused(new TestImage().u16(METADATA + 10, 2048), Kind.CORRUPT, "metadata table has 2048 entries");
    }

    @Test
    void metadataItemListedTwiceIsCorrupt() {
        refused(new TestImage().u16(METADATA + 10, 6).metadataEntry(5, VhdxMetadata.PAGE_83, 128 * KB, 16, 6),
                Kind.CORRUPT, "is listed twice");
    }

    @Test
    void emptyMetadataItemWithAnOffsetIsCorrupt() {
        refused(new TestImage().u16(METADATA + 10, 6).metadataEntry(5, Guid.of("fedcba98-7654-3210-fedc-ba9876543210"), 128 * KB, 0, 0),
                Kind.CORRUPT, "is empty but has offset 131072");
    }

    // --- differencing ---

    private Path parent() throws IOException {
        return new TestImage().write(dir, "base.vhdx"); // current header 2: DataWriteGuid DATA_WRITE_2
    }

    @Test
    void differencingChildReadsItsSectorsAndTheParentsElsewhere() throws IOException {
        parent();
        try (DiskImage d = open(TestImage.differencing(TestImage.DATA_WRITE_2, ".\\base.vhdx"))) {
            assertEquals(2, d.layers().size());
            assertEquals(new org.vdiskload.image.BackingRef("base.vhdx", "vhdx"), d.layers().get(0).backing().orElseThrow());
            ByteBuffer all = ByteBuffer.allocate(4 * MB);
            d.read(all, 0);
            for (int i = 0; i < 4 * MB; i++) {
                int want = i < 2048 ? 0x6b : i < MB ? 0x5a : 0; // 4 child sectors, then the parent's block 0
                assertEquals(want, all.get(i), "byte " + i);
            }
            List<Extent> map = d.map(0, MB);
            assertEquals(0, map.get(0).depth());
            assertEquals(2048, map.get(0).length());
            assertEquals(TestImage.BLOCK0, map.get(0).fileOffset());
            assertEquals(1, map.get(1).depth());
        }
    }

    @Test
    void parentWithAnotherDataWriteGuidIsRefused() throws IOException {
        parent();
        refused(TestImage.differencing(TestImage.DATA_WRITE_1, "base.vhdx"), Kind.INVALID,
                "has DataWriteGuid {66666666-7777-8888-9999-aaaaaaaaaaaa} but this differencing image was made against {11111111-2222-3333-4444-555555555555}");
    }

    @Test
    void sectorBitmapNotPresentIsCorrupt() throws IOException {
        parent();
        refused(TestImage.differencing(TestImage.DATA_WRITE_2, "base.vhdx").u64(BAT + 4096 * 8, 0), Kind.CORRUPT,
                "payload block 0 is PARTIALLY_PRESENT but its sector bitmap block has state 0");
    }

    @Test
    void sectorBitmapPastEndOfFileIsCorrupt() throws IOException {
        parent();
        refused(TestImage.differencing(TestImage.DATA_WRITE_2, "base.vhdx").u64(BAT + 4096 * 8, (6L * MB) | 6), Kind.CORRUPT,
                "sector bitmap block for payload block 0 at 6291456+1048576 lies outside the file");
    }

    /**
     * Block 1 FULLY_PRESENT on chunk 0's sector bitmap block: neither mapped nor written (a write there would
     * change which of block 0's sectors the child has), the file unchanged.
     */
    @Test
    void payloadBlockOnTheSectorBitmapIsCorrupt() throws IOException {
        parent();
        TestImage img = TestImage.differencing(TestImage.DATA_WRITE_2, "base.vhdx").u64(BAT + 8, TestImage.BITMAP | 6L);
        String problem = "payload block 1 at " + TestImage.BITMAP + " overlaps the sector bitmap block at " + TestImage.BITMAP;
        refused(img, Kind.CORRUPT, problem);
        Path p = img.write(dir, "w.vhdx");
        byte[] before = Files.readAllBytes(p);
        try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS.withFormat("vhdx").withWritable(true))) {
            ImageException e = assertThrows(ImageException.class, () -> d.write(ByteBuffer.wrap(new byte[] {7}), MB + 100));
            assertEquals(Kind.CORRUPT, e.kind());
            assertTrue(e.getMessage().contains(problem), e.getMessage());
        }
        byte[] after = Files.readAllBytes(p);
        // The headers (64 to 192 KiB) take a new FileWriteGuid and sequence number, as qemu's do; nothing else changes.
        Arrays.fill(before, 64 * KB, 192 * KB, (byte) 0);
        Arrays.fill(after, 64 * KB, 192 * KB, (byte) 0);
        assertArrayEquals(before, after, "the refused write changed the file");
    }

    @Test
    void differencingBatMustHoldWholeChunks() throws IOException {
        // 1 GiB of 1 MiB blocks: one chunk, 4097 entries; 512 GiB needs 128 chunks of 4097 entries (4 MiB).
        refused(TestImage.differencing(TestImage.DATA_WRITE_2, "base.vhdx").u64(METADATA + TestImage.ITEM_SIZE, 512L << 30),
                Kind.CORRUPT, "needs 524416");
    }

    // --- bad input ---

    @Test
    void truncatedFileIsCorrupt() throws IOException {
        Path p = new TestImage().write(dir, "t.vhdx");
        try (var ch = java.nio.channels.FileChannel.open(p, java.nio.file.StandardOpenOption.WRITE)) {
            ch.truncate(100 * KB);
        }
        ImageException e = assertThrows(ImageException.class, () -> Images.open(p, OpenOptions.DEFAULTS).close());
        assertEquals(Kind.CORRUPT, e.kind());
        assertTrue(e.getMessage().contains("header 2"), e.getMessage());
    }

    @Test
    void fileCutBeforeTheBatIsCorrupt() throws IOException {
        Path p = new TestImage().write(dir, "t.vhdx");
        try (var ch = java.nio.channels.FileChannel.open(p, java.nio.file.StandardOpenOption.WRITE)) {
            ch.truncate(3 * MB);
        }
        ImageException e = assertThrows(ImageException.class, () -> Images.open(p, OpenOptions.DEFAULTS).close());
        assertEquals(Kind.CORRUPT, e.kind());
        assertTrue(e.getMessage().contains("BAT region"), e.getMessage());
    }

    @Test
    void probeNeedsTheFileIdentifier() throws IOException {
        Path p = new TestImage().write(dir, "t.vhdx");
        try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS)) {
            assertEquals("vhdx", d.formatName());
        }
        Files.write(p, new byte[] {'v', 'h', 'd', 'x'});
        try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS)) {
            assertEquals("raw", d.formatName());
        }
    }
}
