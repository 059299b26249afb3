package org.vdiskload.format.qcow;

import org.junit.jupiter.api.Test;
import org.vdiskload.image.error.ImageException;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The qcow header parser on annotated bytes: every field, and one failing case per validation rule. */
class QcowHeaderTest {
    private static final Path FILE = Path.of("test.qcow");

    /** A valid header: 64 KiB disk, 512-byte clusters, 64-entry L2 tables, L1 table at 48. */
    static ByteBuffer header() {
        ByteBuffer b = ByteBuffer.allocate(QcowHeader.LENGTH).order(ByteOrder.BIG_ENDIAN);
        b.putInt(0x514649fb);     //  0 magic "QFI\xfb"
        b.putInt(1);              //  4 version
        b.putLong(0);             //  8 backing_file_offset: none
        b.putInt(0);              // 16 backing_file_size
        b.putInt(0x5f000000);     // 20 mtime (ignored)
        b.putLong(65536);         // 24 size: 64 KiB
        b.put((byte) 9);          // 32 cluster_bits: 512-byte clusters
        b.put((byte) 6);          // 33 l2_bits: 64 entries (512 bytes) per L2 table
        b.putShort((short) 0);    // 34 padding
        b.putInt(0);              // 36 crypt_method: none
        b.putLong(48);            // 40 l1_table_offset: right after the header
        return b.flip();
    }

    private static QcowHeader parse(Consumer<ByteBuffer> patch) throws ImageException {
        ByteBuffer b = header();
        patch.accept(b);
        return QcowHeader.parse(b, FILE);
    }

    private static void assertRefused(ImageException.Kind kind, String problem, Consumer<ByteBuffer> patch) {
        ImageException e = assertThrows(ImageException.class, () -> parse(patch));
        assertEquals(kind, e.kind(), e.getMessage());
        assertTrue(e.getMessage().contains(problem), e.getMessage());
        assertTrue(e.getMessage().startsWith(FILE + ": "), e.getMessage());
    }

    @Test
    void parsesEveryField() throws Exception {
        QcowHeader h = parse(b -> { });
        assertEquals(0, h.backingFileOffset());
        assertEquals(0x5f000000, h.mtime());
        assertEquals(65536, h.size());
        assertEquals(512, h.clusterSize());
        assertEquals(64, h.l2Entries());
        assertEquals(2, h.l1Entries()); // one L2 table covers 64 * 512 = 32 KiB
        assertEquals(48, h.l1TableOffset());
        assertEquals(65536, h.virtualSize());
        assertFalse(h.hasBackingFile());
    }

    @Test
    void backingFileNameFields() throws Exception {
        QcowHeader h = parse(b -> b.putLong(8, 48).putInt(16, 8));
        assertTrue(h.hasBackingFile());
        assertEquals(48, h.backingFileOffset());
        assertEquals(8, h.backingFileSize());
    }

    @Test
    void sizeIsRoundedDownToSectorsAsQemuDoes() throws Exception {
        assertEquals(65024, parse(b -> b.putLong(24, 65535)).virtualSize());
        assertEquals(0, parse(b -> b.putLong(24, 2)).virtualSize());
    }

    @Test
    void l1SizeRoundsUpAPartialL2Span() throws Exception {
        assertEquals(3, parse(b -> b.putLong(24, 65536 + 512)).l1Entries());
    }

    @Test
    void refusesBadMagic() {
        assertRefused(ImageException.Kind.CORRUPT, "bad magic", b -> b.putInt(0, 0x514649fa));
    }

    @Test
    void refusesOtherVersions() {
        assertRefused(ImageException.Kind.UNSUPPORTED, "qcow version 2 is not supported", b -> b.putInt(4, 2));
    }

    @Test
    void refusesTinySize() {
        assertRefused(ImageException.Kind.CORRUPT, "image size 1 is too small", b -> b.putLong(24, 1));
    }

    @Test
    void refusesClusterBitsBelow9() {
        assertRefused(ImageException.Kind.CORRUPT, "cluster size 2^8 is not between 512 and 64k", b -> b.put(32, (byte) 8));
    }

    @Test
    void refusesClusterBitsAbove16() {
        assertRefused(ImageException.Kind.CORRUPT, "cluster size 2^17", b -> b.put(32, (byte) 17));
    }

    @Test
    void refusesL2BitsBelow6() {
        assertRefused(ImageException.Kind.CORRUPT, "L2 table size of 2^5 entries", b -> b.put(33, (byte) 5));
    }

    @Test
    void refusesL2BitsAbove13() {
        assertRefused(ImageException.Kind.CORRUPT, "L2 table size of 2^14 entries", b -> b.put(33, (byte) 14));
    }

    @Test
    void refusesAesEncryptionAsUnsupported() {
        assertRefused(ImageException.Kind.UNSUPPORTED, "AES-encrypted qcow images are not supported", b -> b.putInt(36, 1));
    }

    @Test
    void refusesUnknownEncryptionMethod() {
        assertRefused(ImageException.Kind.CORRUPT, "invalid encryption method 2", b -> b.putInt(36, 2));
    }

    @Test
    void refusesSizeAbove2To63() {
        assertRefused(ImageException.Kind.CORRUPT, "image size 18446744073709551615 is too large", b -> b.putLong(24, -1));
    }

    @Test
    void refusesL1TableLargerThanQemuAllows() {
        // 512-byte clusters, 64-entry tables: 32 KiB per L1 entry, so 2^43 bytes need 2^28 entries > INT_MAX / 8.
        assertRefused(ImageException.Kind.CORRUPT, "is too large", b -> b.putLong(24, 1L << 43));
    }

    @Test
    void acceptsTheLargestL1TableQemuAllows() throws Exception {
        long entries = Integer.MAX_VALUE / 8;
        assertEquals(entries, parse(b -> b.putLong(24, entries << 15)).l1Entries());
    }

    @Test
    void refusesBackingFileNameLongerThan1023() {
        assertRefused(ImageException.Kind.CORRUPT, "backing file name of 1024 bytes is too long",
                b -> b.putLong(8, 48).putInt(16, 1024));
    }
}
