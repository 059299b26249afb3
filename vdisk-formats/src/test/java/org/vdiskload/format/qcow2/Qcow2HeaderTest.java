package org.vdiskload.format.qcow2;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The header and header-extension parser on annotated bytes: every field, then one negative test per rule. */
class Qcow2HeaderTest {
    @TempDir
    Path dir;

    /** A minimal valid v3 image of 512-byte clusters: header, refcount table, L1 table, padding. */
    static ByteBuffer validV3() {
        ByteBuffer b = ByteBuffer.allocate(4 * 512).order(ByteOrder.BIG_ENDIAN);
        b.put(new byte[] {'Q', 'F', 'I', (byte) 0xfb}); //  0 magic
        b.putInt(3);                                      //  4 version
        b.putLong(0);                                     //  8 backing_file_offset: none
        b.putInt(0);                                      // 16 backing_file_size
        b.putInt(9);                                      // 20 cluster_bits: 512-byte clusters
        b.putLong(64 << 10);                              // 24 size: 64 KiB (2 L1 entries of 32 KiB each)
        b.putInt(0);                                      // 32 crypt_method: none
        b.putInt(2);                                      // 36 l1_size
        b.putLong(1024);                                  // 40 l1_table_offset: cluster 2
        b.putLong(512);                                   // 48 refcount_table_offset: cluster 1
        b.putInt(1);                                      // 56 refcount_table_clusters
        b.putInt(0);                                      // 60 nb_snapshots
        b.putLong(0);                                     // 64 snapshots_offset
        b.putLong(0);                                     // 72 incompatible_features
        b.putLong(1);                                     // 80 compatible_features: lazy refcounts
        b.putLong(0);                                     // 88 autoclear_features
        b.putInt(4);                                      // 96 refcount_order: 16-bit refcounts
        b.putInt(112);                                    // 100 header_length
        b.put((byte) 0);                                  // 104 compression_type: zlib
        b.put(new byte[7]);                               // 105 padding
        b.putInt(0).putInt(0);                            // 112 end of header extensions
        return b.clear();
    }

    private Path write(ByteBuffer b) throws IOException {
        Path p = Files.createTempFile(dir, "h", ".qcow2");
        Files.write(p, java.util.Arrays.copyOf(b.array(), b.limit()));
        return p;
    }

    private record Parsed(Qcow2Header header, HeaderExtensions ext) {}

    private Parsed parse(ByteBuffer b) throws IOException {
        try (ImageFile f = ImageFile.open(write(b), false)) {
            Qcow2Header h = Qcow2Header.read(f);
            HeaderExtensions ext = HeaderExtensions.read(f, h);
            h.validate(f, ext);
            return new Parsed(h, ext);
        }
    }

    private ImageException refused(ImageException.Kind kind, String message, Consumer<ByteBuffer> change) {
        ByteBuffer b = validV3();
        change.accept(b);
        ImageException e = assertThrows(ImageException.class, () -> parse(b));
        assertEquals(kind, e.kind(), e.getMessage());
        assertTrue(e.getMessage().contains(message), "'" + e.getMessage() + "' should name: " + message);
        return e;
    }

    /** Appends a header extension at {@code at} and the end marker after it; returns the position after it. */
    private static int extension(ByteBuffer b, int at, int type, byte[] data) {
        b.putInt(at, type).putInt(at + 4, data.length).put(at + 8, data);
        int end = at + 8 + ((data.length + 7) & ~7);
        b.putLong(end, 0);
        return end;
    }

    @Test
    void parsesEveryField() throws IOException {
        Qcow2Header h = parse(validV3()).header();
        assertEquals(3, h.version());
        assertEquals(512, h.clusterSize());
        assertEquals(64 << 10, h.size());
        assertEquals(2, h.l1Size());
        assertEquals(1024, h.l1TableOffset());
        assertEquals(512, h.refcountTableOffset());
        assertEquals(1, h.refcountTableClusters());
        assertEquals(16, h.refcountBits());
        assertEquals(112, h.headerLength());
        assertTrue(h.lazyRefcounts());
        assertFalse(h.dirty());
        assertFalse(h.extendedL2());
        assertEquals(Qcow2Header.COMPRESSION_ZLIB, h.compressionType());
    }

    @Test
    void version2HasFixedDefaults() throws IOException {
        ByteBuffer b = validV3();
        b.putInt(4, 2);                  // version 2: the header ends at byte 72
        b.putLong(72, 0);                // end of extensions right there
        Qcow2Header h = parse(b).header();
        assertEquals(2, h.version());
        assertEquals(16, h.refcountBits());
        assertEquals(0, h.incompatibleFeatures());
        assertEquals(72, h.extensionsStart());
    }

    @Test
    void parsesExtensions() throws IOException {
        ByteBuffer b = validV3();
        int at = extension(b, 112, HeaderExtensions.BACKING_FORMAT, "raw".getBytes(StandardCharsets.US_ASCII));
        byte[] table = new byte[48];
        table[0] = 0;                    // incompatible
        table[1] = 9;                    // bit 9
        System.arraycopy("future feature".getBytes(StandardCharsets.US_ASCII), 0, table, 2, 14);
        at = extension(b, at, HeaderExtensions.FEATURE_TABLE, table);
        at = extension(b, at, 0x12345678, new byte[5]); // unknown: skipped
        HeaderExtensions ext = parse(b).ext();
        assertEquals("raw", ext.backingFormat());
        assertEquals("future feature", ext.incompatibleNames().get(9));
        assertNull(ext.dataFile());
        assertFalse(ext.encryption());
    }

    @Test
    void badMagic() {
        refused(ImageException.Kind.CORRUPT, "bad magic", b -> b.put(0, (byte) 'X'));
    }

    @Test
    void unknownVersion() {
        refused(ImageException.Kind.UNSUPPORTED, "version 4", b -> b.putInt(4, 4));
    }

    @Test
    void truncatedBelowVersion2Header() {
        refused(ImageException.Kind.CORRUPT, "truncated", b -> b.limit(71));
    }

    @Test
    void truncatedVersion3Header() {
        refused(ImageException.Kind.CORRUPT, "truncated", b -> b.limit(100));
    }

    @Test
    void truncatedCompressionType() {
        refused(ImageException.Kind.CORRUPT, "truncated", b -> b.limit(104));
    }

    @Test
    void headerLengthTooShort() {
        refused(ImageException.Kind.CORRUPT, "shorter than 104", b -> b.putInt(100, 96));
    }

    @Test
    void headerLengthHuge() {
        refused(ImageException.Kind.CORRUPT, "header length 4294967288 exceeds the cluster size", b -> b.putInt(100, -8));
    }

    @Test
    void headerLengthNotMultipleOf8() {
        refused(ImageException.Kind.CORRUPT, "not a multiple of 8", b -> b.putInt(100, 108));
    }

    @Test
    void headerLengthBeyondCluster() {
        refused(ImageException.Kind.CORRUPT, "exceeds the cluster size", b -> b.putInt(100, 520));
    }

    @Test
    void clusterBitsTooSmall() {
        refused(ImageException.Kind.CORRUPT, "cluster bits 8", b -> b.putInt(20, 8));
    }

    @Test
    void clusterBitsTooLarge() {
        refused(ImageException.Kind.CORRUPT, "cluster bits 22", b -> b.putInt(20, 22));
    }

    @Test
    void refcountOrderTooLarge() {
        refused(ImageException.Kind.CORRUPT, "refcount order 7", b -> b.putInt(96, 7));
    }

    @Test
    void unknownIncompatibleBit() {
        refused(ImageException.Kind.UNSUPPORTED, "incompatible feature bit(s) 9", b -> b.putLong(72, 1L << 9));
    }

    @Test
    void unknownIncompatibleBitNamedByFeatureTable() {
        refused(ImageException.Kind.UNSUPPORTED, "9 (future feature)", b -> {
            b.putLong(72, 1L << 9);
            byte[] table = new byte[48];
            table[1] = 9;
            System.arraycopy("future feature".getBytes(StandardCharsets.US_ASCII), 0, table, 2, 14);
            extension(b, 112, HeaderExtensions.FEATURE_TABLE, table);
        });
    }

    @Test
    void encryptedByCryptMethod() {
        refused(ImageException.Kind.UNSUPPORTED, "encrypted", b -> b.putInt(32, 1));
    }

    @Test
    void encryptedByExtension() {
        refused(ImageException.Kind.UNSUPPORTED, "encrypted", b -> extension(b, 112, HeaderExtensions.ENCRYPTION, new byte[16]));
    }

    @Test
    void externalDataFileBit() {
        refused(ImageException.Kind.UNSUPPORTED, "external data file", b -> b.putLong(72, Qcow2Header.INCOMPAT_DATA_FILE));
    }

    @Test
    void externalDataFileExtension() {
        refused(ImageException.Kind.UNSUPPORTED, "data file 'd.raw'", b -> extension(b, 112, HeaderExtensions.DATA_FILE, "d.raw".getBytes(StandardCharsets.US_ASCII)));
    }

    @Test
    void unknownCompressionType() {
        refused(ImageException.Kind.UNSUPPORTED, "compression type 2", b -> {
            b.putLong(72, Qcow2Header.INCOMPAT_COMPRESSION);
            b.put(104, (byte) 2);
        });
    }

    @Test
    void zstdWithoutFeatureBit() {
        refused(ImageException.Kind.CORRUPT, "feature bit is not", b -> b.put(104, (byte) 1));
    }

    @Test
    void extendedL2WithSmallClusters() {
        refused(ImageException.Kind.CORRUPT, "at least 16 KiB", b -> b.putLong(72, Qcow2Header.INCOMPAT_EXTL2));
    }

    @Test
    void backingNameOffsetOutsideHeaderCluster() {
        refused(ImageException.Kind.CORRUPT, "outside the header cluster", b -> b.putLong(8, 512).putInt(16, 4));
    }

    @Test
    void backingNameTooLong() {
        refused(ImageException.Kind.CORRUPT, "too long", b -> b.putLong(8, 200).putInt(16, 400));
    }

    @Test
    void negativeSize() {
        refused(ImageException.Kind.CORRUPT, "virtual size", b -> b.putLong(24, -1L));
    }

    @Test
    void sizeTooLargeForClusters() {
        refused(ImageException.Kind.CORRUPT, "too large for the cluster size", b -> b.putLong(24, Long.MAX_VALUE));
    }

    @Test
    void l1TableTooLarge() {
        refused(ImageException.Kind.CORRUPT, "L1 table of 4194305 entries is too large", b -> b.putInt(36, 4194305));
    }

    @Test
    void l1TableTooSmall() {
        refused(ImageException.Kind.CORRUPT, "too small", b -> b.putInt(36, 1));
    }

    @Test
    void refcountTableTooLarge() {
        refused(ImageException.Kind.CORRUPT, "refcount table of 16385 clusters", b -> b.putInt(56, 16385));
    }

    @Test
    void noRefcountTable() {
        refused(ImageException.Kind.CORRUPT, "no refcount table", b -> b.putInt(56, 0));
    }

    @Test
    void tooManySnapshots() {
        refused(ImageException.Kind.CORRUPT, "too many snapshots", b -> b.putInt(60, 65537));
    }

    @Test
    void l1TableUnaligned() {
        ImageException e = refused(ImageException.Kind.CORRUPT, "not aligned", b -> b.putLong(40, 1000));
        assertEquals("l1_table_offset", e.field());
    }

    @Test
    void l1TableOverlapsHeader() {
        refused(ImageException.Kind.CORRUPT, "overlaps the header", b -> b.putLong(40, 0));
    }

    @Test
    void l1TablePastEof() {
        refused(ImageException.Kind.CORRUPT, "past the end of the file", b -> b.putLong(40, 1L << 40));
    }

    @Test
    void l1TableOverlapsRefcountTable() {
        refused(ImageException.Kind.CORRUPT, "overlaps the refcount table", b -> b.putLong(40, 512));
    }

    @Test
    void refcountTableUnaligned() {
        ImageException e = refused(ImageException.Kind.CORRUPT, "not aligned", b -> b.putLong(48, 513));
        assertEquals("refcount_table_offset", e.field());
    }

    @Test
    void refcountTablePastEof() {
        refused(ImageException.Kind.CORRUPT, "past the end of the file", b -> b.putInt(56, 8));
    }

    @Test
    void snapshotTablePastEof() {
        ImageException e = refused(ImageException.Kind.CORRUPT, "past the end of the file", b -> b.putInt(60, 100).putLong(64, 1536));
        assertEquals("snapshots_offset", e.field());
    }

    @Test
    void extensionRunsPastHeaderArea() {
        refused(ImageException.Kind.CORRUPT, "runs past the header area", b -> b.putInt(112, 0x12345678).putInt(116, 1000));
    }

    @Test
    void backingFormatExtensionTooLong() {
        refused(ImageException.Kind.CORRUPT, "too long", b -> extension(b, 112, HeaderExtensions.BACKING_FORMAT, new byte[16]));
    }

    @Test
    void featureTableBadLength() {
        refused(ImageException.Kind.CORRUPT, "not a multiple of 48", b -> extension(b, 112, HeaderExtensions.FEATURE_TABLE, new byte[40]));
    }

    @Test
    void bitmapsExtensionBadLength() {
        refused(ImageException.Kind.CORRUPT, "is not 24", b -> extension(b, 112, HeaderExtensions.BITMAPS, new byte[16]));
    }

    @Test
    void encryptionExtensionBadLength() {
        refused(ImageException.Kind.CORRUPT, "is not 16", b -> extension(b, 112, HeaderExtensions.ENCRYPTION, new byte[8]));
    }
}
