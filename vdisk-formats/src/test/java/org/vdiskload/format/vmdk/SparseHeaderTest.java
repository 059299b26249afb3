package org.vdiskload.format.vmdk;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The hosted sparse extent header (KDMV), the stream footer and the COWD header, field by field. */
class SparseHeaderTest {
    @TempDir
    Path dir;

    /** A valid header of a 4 MiB monolithic sparse extent, as qemu-img writes it (little-endian). */
    static ByteBuffer header() {
        ByteBuffer b = ByteBuffer.allocate(512).order(ByteOrder.LITTLE_ENDIAN);
        b.put(new byte[] {'K', 'D', 'M', 'V'}); //  0 magic
        b.putInt(1);                            //  4 version
        b.putInt(0x3);                          //  8 flags: newline detection, redundant grain directory
        b.putLong(8192);                        // 12 capacity: 8192 sectors (4 MiB)
        b.putLong(128);                         // 20 grainSize: 128 sectors (64 KiB)
        b.putLong(1);                           // 28 descriptorOffset: sector 1
        b.putLong(20);                          // 36 descriptorSize: 20 sectors
        b.putInt(512);                          // 44 numGTEsPerGT
        b.putLong(21);                          // 48 rgdOffset: sector 21
        b.putLong(26);                          // 56 gdOffset: sector 26
        b.putLong(128);                         // 64 overHead: grains start at sector 128
        b.put((byte) 0);                        // 72 uncleanShutdown
        b.put(new byte[] {'\n', ' ', '\r', '\n'}); // 73 newline check bytes
        b.putShort((short) 0);                  // 77 compressAlgorithm: none
        return b.clear();
    }

    private ImageFile file(ByteBuffer content) throws IOException {
        Path p = Files.createTempFile(dir, "h", ".vmdk");
        byte[] a = new byte[content.remaining()];
        content.duplicate().get(a);
        Files.write(p, a);
        return ImageFile.open(p, false);
    }

    private SparseHeader parse(ByteBuffer b) throws IOException {
        try (ImageFile f = file(b)) {
            return SparseHeader.parse(b, f, 0);
        }
    }

    private ImageException refused(ByteBuffer b) throws IOException {
        try (ImageFile f = file(b)) {
            return assertThrows(ImageException.class, () -> SparseHeader.parse(b, f, 0));
        }
    }

    private static void assertRefused(ImageException e, ImageException.Kind kind, String words) {
        assertEquals(kind, e.kind(), e.getMessage());
        assertTrue(e.getMessage().contains(words), e.getMessage());
        assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
    }

    @Test
    void parsesEveryField() throws IOException {
        SparseHeader h = parse(header());
        assertEquals(1, h.version());
        assertEquals(3, h.flags());
        assertEquals(8192, h.capacity());
        assertEquals(128, h.grainSize());
        assertEquals(1, h.descriptorOffset());
        assertEquals(20, h.descriptorSize());
        assertEquals(512, h.numGTEsPerGT());
        assertEquals(21, h.rgdOffset());
        assertEquals(26, h.gdOffset());
        assertEquals(128, h.overhead());
        assertFalse(h.compressed());
        assertFalse(h.hasMarkers());
        assertFalse(h.zeroGrains());
    }

    @Test
    void streamOptimizedFlags() throws IOException {
        ByteBuffer b = header().putInt(8, 0x30007).putShort(77, (short) 1);
        SparseHeader h = parse(b);
        assertTrue(h.compressed());
        assertTrue(h.hasMarkers());
        assertTrue(h.zeroGrains());
    }

    @Test
    void refusesBadMagic() throws IOException {
        assertRefused(refused(header().put(0, (byte) 'X')), ImageException.Kind.CORRUPT, "no KDMV magic");
    }

    @Test
    void refusesVersionAbove3() throws IOException {
        assertRefused(refused(header().putInt(4, 4)), ImageException.Kind.UNSUPPORTED, "unsupported VMDK sparse extent version 4");
    }

    @Test
    void refusesDamagedNewlineBytesWhenChecked() throws IOException {
        assertRefused(refused(header().put(75, (byte) '\n')), ImageException.Kind.CORRUPT, "newline check bytes are damaged");
        // without the newline-detection flag the bytes are not looked at
        assertEquals(1, parse(header().putInt(8, 0x2).put(75, (byte) '\n')).version());
    }

    @Test
    void refusesUnknownCompression() throws IOException {
        assertRefused(refused(header().putShort(77, (short) 2)), ImageException.Kind.UNSUPPORTED, "unknown compression algorithm 2");
    }

    @Test
    void refusesGrainSizeOutOfRange() throws IOException {
        assertRefused(refused(header().putLong(20, 0)), ImageException.Kind.CORRUPT, "grain size of 0 sectors");
        assertRefused(refused(header().putLong(20, 0x200001)), ImageException.Kind.CORRUPT, "grain size of 2097153 sectors");
    }

    @Test
    void refusesGrainTableSizeOutOfRange() throws IOException {
        assertRefused(refused(header().putInt(44, 0)), ImageException.Kind.CORRUPT, "grain tables of 0 entries");
        assertRefused(refused(header().putInt(44, 513)), ImageException.Kind.CORRUPT, "grain tables of 513 entries");
    }

    @Test
    void refusesHugeCapacity() throws IOException {
        assertRefused(refused(header().putLong(12, -2)), ImageException.Kind.CORRUPT, "capacity of 18446744073709551614 sectors is too large");
    }

    @Test
    void refusesGrainDirectoryInHeaderOrOutOfRange() throws IOException {
        assertRefused(refused(header().putLong(56, 0)), ImageException.Kind.CORRUPT, "grain directory offset 0");
        assertRefused(refused(header().putLong(56, -5)), ImageException.Kind.CORRUPT, "grain directory offset 18446744073709551611");
        // a header of capacity 0 that only carries a descriptor needs no grain directory
        assertEquals(0, parse(header().putLong(12, 0).putLong(56, 0)).gdOffset());
    }

    @Test
    void refusesHugeOverhead() throws IOException {
        assertRefused(refused(header().putLong(64, Long.MAX_VALUE)), ImageException.Kind.CORRUPT, "overhead of");
    }

    @Test
    void refusesDescriptorLocationOutOfRange() throws IOException {
        assertRefused(refused(header().putLong(36, -1)), ImageException.Kind.CORRUPT, "embedded descriptor location");
    }

    // ---- stream footer: footer marker, footer (a header), end-of-stream marker

    /** Header sector with GD_AT_END, then the three footer sectors. */
    static ByteBuffer streamWithFooter() {
        ByteBuffer b = ByteBuffer.allocate(4 * 512).order(ByteOrder.LITTLE_ENDIAN);
        b.put(header().putLong(56, -1).putInt(8, 0x30001).putShort(77, (short) 1));
        b.putLong(512, 1);                      // footer marker: value 1 (sector of metadata)
        b.putInt(520, 0);                       //   size 0
        b.putInt(524, StreamMarker.FOOTER);     //   type 3
        b.put(1024, header().putLong(56, 26).putInt(8, 0x30001).putShort(77, (short) 1), 0, 512); // footer: the real gdOffset
        b.putLong(1536, 0);                     // end-of-stream marker: value 0
        b.putInt(1544, 0);                      //   size 0
        b.putInt(1548, StreamMarker.END_OF_STREAM); // type 0
        return b.clear();
    }

    private ImageException footerRefused(ByteBuffer b) throws IOException {
        try (ImageFile f = file(b)) {
            return assertThrows(ImageException.class, () -> StreamFooter.read(f));
        }
    }

    @Test
    void footerReplacesHeader() throws IOException {
        try (ImageFile f = file(streamWithFooter())) {
            SparseHeader h = StreamFooter.read(f);
            assertEquals(26, h.gdOffset());
            assertTrue(h.compressed());
        }
    }

    @Test
    void refusesMissingFooterMarker() throws IOException {
        assertRefused(footerRefused(streamWithFooter().putInt(524, StreamMarker.GRAIN_TABLE)), ImageException.Kind.CORRUPT, "no footer marker");
    }

    @Test
    void refusesMissingEndOfStream() throws IOException {
        assertRefused(footerRefused(streamWithFooter().putLong(1536, 7)), ImageException.Kind.CORRUPT, "no end-of-stream marker");
    }

    @Test
    void refusesFooterWithoutGrainDirectory() throws IOException {
        assertRefused(footerRefused(streamWithFooter().putLong(1024 + 56, -1)), ImageException.Kind.CORRUPT, "does not say where the grain directory is");
    }

    @Test
    void refusesFooterInTooShortFile() throws IOException {
        assertRefused(footerRefused(header().putLong(56, -1)), ImageException.Kind.CORRUPT, "too short for a footer");
    }

    @Test
    void refusesFooterThatIsNoHeader() throws IOException {
        assertRefused(footerRefused(streamWithFooter().put(1024, (byte) 'X')), ImageException.Kind.CORRUPT, "no KDMV magic");
    }

    // ---- COWD

    /** A COWD header of a 4 MiB extent with 4 KiB grains. */
    static ByteBuffer cowd() {
        ByteBuffer b = ByteBuffer.allocate(2048).order(ByteOrder.LITTLE_ENDIAN);
        b.put(new byte[] {'C', 'O', 'W', 'D'}); //  0 magic
        b.putInt(1);                            //  4 version
        b.putInt(3);                            //  8 flags
        b.putInt(8192);                         // 12 disk sectors
        b.putInt(8);                            // 16 granularity: 8 sectors
        b.putInt(4);                            // 20 l1dir_offset: sector 4
        b.putInt(1);                            // 24 l1dir_size: 1 entry (one table covers 4096 grains)
        b.putInt(0);                            // 28 file sectors
        b.putInt(0).putInt(0).putInt(0);        // 32 cylinders, heads, sectors per track
        return b.clear();
    }

    private CowdHeader cowdParse(ByteBuffer b) throws IOException {
        try (ImageFile f = file(b)) {
            return CowdHeader.parse(b, f);
        }
    }

    private ImageException cowdRefused(ByteBuffer b) throws IOException {
        try (ImageFile f = file(b)) {
            return assertThrows(ImageException.class, () -> CowdHeader.parse(b, f));
        }
    }

    @Test
    void parsesCowd() throws IOException {
        CowdHeader h = cowdParse(cowd());
        assertEquals(8192, h.capacity());
        assertEquals(8, h.grainSize());
        assertEquals(4, h.gdOffset());
        assertEquals(1, h.gdEntries());
    }

    @Test
    void refusesCowdBadMagic() throws IOException {
        assertRefused(cowdRefused(cowd().put(0, (byte) 'X')), ImageException.Kind.CORRUPT, "no COWD magic");
    }

    @Test
    void refusesCowdGrainSize() throws IOException {
        assertRefused(cowdRefused(cowd().putInt(16, 0)), ImageException.Kind.CORRUPT, "grain size of 0 sectors");
    }

    @Test
    void refusesCowdDirectoryInHeader() throws IOException {
        assertRefused(cowdRefused(cowd().putInt(20, 0)), ImageException.Kind.CORRUPT, "grain directory offset 0");
    }

    @Test
    void refusesCowdDirectoryTooSmall() throws IOException {
        assertRefused(cowdRefused(cowd().putInt(12, 4096 * 8 + 1)), ImageException.Kind.CORRUPT, "does not cover the capacity");
    }
}
