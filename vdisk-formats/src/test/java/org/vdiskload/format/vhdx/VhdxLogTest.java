package org.vdiskload.format.vhdx;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.error.ImageException;

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
import static org.vdiskload.format.vhdx.TestImage.BLOCK0;
import static org.vdiskload.format.vhdx.TestImage.KB;
import static org.vdiskload.format.vhdx.TestImage.MB;

/** Replaying the log in memory (MS-VHDX 2.3.3): which entries count, in what order, and what they change. */
class VhdxLogTest {
    private static final Guid LOG = Guid.of("10101010-2020-3030-4040-505050505050");
    private static final long FILE = 5L * MB;

    @TempDir
    Path dir;

    private static byte[] sector(int value) {
        byte[] s = new byte[4096];
        Arrays.fill(s, (byte) value);
        s[0] = 1; // leading and trailing bytes travel in the descriptor: make them differ from the rest
        s[4095] = 2;
        return s;
    }

    /** The BAT's first sector with block 1 made FULLY_PRESENT at 4 MiB (where block 0 is). */
    private static byte[] batSector(TestImage img) {
        byte[] s = new byte[4096];
        img.b.get(BAT, s);
        ByteBuffer.wrap(s).order(java.nio.ByteOrder.LITTLE_ENDIAN).putLong(8, BLOCK0 | 6L);
        return s;
    }

    private byte[] readAll(Path p) throws IOException {
        try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS)) {
            ByteBuffer b = ByteBuffer.allocate((int) d.size());
            d.read(b, 0);
            d.map(0, d.size());
            return b.array();
        }
    }

    private boolean dirty(Path p) throws IOException {
        try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS)) {
            return d.layers().get(0).info().dirty();
        }
    }

    /** Sectors the entry of {@link #imageWithOneEntry} takes: one of header and descriptors, two of data. */
    private static final int ENTRY1_SECTORS = 3;

    private TestImage imageWithOneEntry() {
        TestImage img = new TestImage().logGuid(LOG);
        img.logEntry(0, 10, 0, LOG, FILE, FILE,
                List.of(new TestImage.Zero(BLOCK0 + 64 * KB, 8 * KB)),
                List.of(new TestImage.Data(BLOCK0, sector(0x77)), new TestImage.Data(BAT, batSector(img))));
        return img;
    }

    private static byte[] expectedAfterEntry1() {
        byte[] want = new byte[4 * MB];
        Arrays.fill(want, 0, MB, (byte) 0x5a);
        System.arraycopy(sector(0x77), 0, want, 0, 4096);
        Arrays.fill(want, 64 * KB, 72 * KB, (byte) 0);
        System.arraycopy(want, 0, want, MB, MB); // block 1 now maps onto block 0's data
        return want;
    }

    @Test
    void entryIsReplayedInMemoryAndTheFileIsLeftAlone() throws IOException {
        Path p = imageWithOneEntry().write(dir, "t.vhdx");
        byte[] before = Files.readAllBytes(p);
        assertArrayEquals(expectedAfterEntry1(), readAll(p));
        assertTrue(dirty(p));
        assertArrayEquals(before, Files.readAllBytes(p));
    }

    @Test
    void entriesOfOneSequenceApplyInOrder() throws IOException {
        TestImage img = imageWithOneEntry();
        img.logEntry(ENTRY1_SECTORS, 11, 0, LOG, FILE, FILE, List.of(), List.of(new TestImage.Data(BLOCK0, sector(0x78))));
        byte[] want = expectedAfterEntry1();
        System.arraycopy(sector(0x78), 0, want, 0, 4096);
        System.arraycopy(sector(0x78), 0, want, MB, 4096);
        assertArrayEquals(want, readAll(img.write(dir, "t.vhdx")));
    }

    @Test
    void entryNotRightAfterThePreviousOneIsNotPartOfItsSequence() throws IOException {
        TestImage img = imageWithOneEntry();
        img.logEntry(ENTRY1_SECTORS + 1, 11, 0, LOG, FILE, FILE, List.of(), List.of(new TestImage.Data(BLOCK0, sector(0x78))));
        assertArrayEquals(expectedAfterEntry1(), readAll(img.write(dir, "t.vhdx")));
    }

    @Test
    void entryWithBadChecksumIsNotReplayed() throws IOException {
        TestImage img = imageWithOneEntry();
        img.u32(TestImage.LOG + 4, 12345);
        Path p = img.write(dir, "t.vhdx");
        assertEquals(0x5a, readAll(p)[0]);
        assertEquals(false, dirty(p));
    }

    @Test
    void entryOfAnotherLogIsNotReplayed() throws IOException {
        TestImage img = new TestImage().logGuid(LOG);
        img.logEntry(0, 10, 0, Guid.of("99999999-2020-3030-4040-505050505050"), FILE, FILE, List.of(),
                List.of(new TestImage.Data(BLOCK0, sector(0x77))));
        assertEquals(0x5a, readAll(img.write(dir, "t.vhdx"))[0]);
    }

    @Test
    void headWhoseTailIsNotInItsSequenceIsNotReplayed() throws IOException {
        TestImage img = new TestImage().logGuid(LOG);
        img.logEntry(0, 10, 20 * 4096, LOG, FILE, FILE, List.of(), List.of(new TestImage.Data(BLOCK0, sector(0x77))));
        assertEquals(0x5a, readAll(img.write(dir, "t.vhdx"))[0]);
    }

    @Test
    void sequenceWithTheHighestHeadWins() throws IOException {
        TestImage img = new TestImage().logGuid(LOG);
        img.logEntry(0, 30, 0, LOG, FILE, FILE, List.of(), List.of(new TestImage.Data(BLOCK0, sector(0x31))));
        img.logEntry(10, 20, 10 * 4096, LOG, FILE, FILE, List.of(), List.of(new TestImage.Data(BLOCK0, sector(0x20))));
        assertEquals(0x31, readAll(img.write(dir, "t.vhdx"))[1]);
    }

    @Test
    void logGuidWithoutEntriesMeansNothingToReplay() throws IOException {
        Path p = new TestImage().logGuid(LOG).write(dir, "t.vhdx");
        assertEquals(0x5a, readAll(p)[0]);
        assertEquals(false, dirty(p));
    }

    @Test
    void logClaimingMoreFlushedThanTheFileHoldsIsCorrupt() throws IOException {
        TestImage img = new TestImage().logGuid(LOG);
        img.logEntry(0, 10, 0, LOG, FILE + MB, FILE, List.of(), List.of(new TestImage.Data(BLOCK0, sector(0x77))));
        Path p = img.write(dir, "t.vhdx");
        ImageException e = assertThrows(ImageException.class, () -> readAll(p));
        assertEquals(ImageException.Kind.CORRUPT, e.kind());
        assertTrue(e.getMessage().contains("truncated") && e.getMessage().contains("FlushedFileOffset"), e.getMessage());
    }

    @Test
    void lastFileOffsetExtendsTheFileWithZeros() throws IOException {
        // The entry allocates block 2 past the end of the file; replay extends the file, so it reads zeros.
        TestImage img = new TestImage().logGuid(LOG);
        byte[] bat = batSector(img);
        ByteBuffer.wrap(bat).order(java.nio.ByteOrder.LITTLE_ENDIAN).putLong(8, 2).putLong(16, FILE | 6L);
        img.logEntry(0, 10, 0, LOG, FILE, FILE + MB, List.of(), List.of(new TestImage.Data(BAT, bat)));
        Path p = img.write(dir, "t.vhdx");
        try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS)) {
            assertEquals(org.vdiskload.image.Extent.Kind.DATA, d.map(2L * MB, MB).get(0).kind());
        }
        byte[] all = readAll(p);
        for (int i = 2 * MB; i < 3 * MB; i++) assertEquals(0, all[i]);
    }

    @Test
    void logTooLargeToReplayIsUnsupported() throws IOException {
        TestImage img = new TestImage().logGuid(LOG).bothHeaders(68, 64L * MB, 4);
        Path p = img.write(dir, "t.vhdx");
        ImageException e = assertThrows(ImageException.class, () -> readAll(p));
        assertEquals(ImageException.Kind.UNSUPPORTED, e.kind());
        assertTrue(e.getMessage().contains("the log needs replay"), e.getMessage());
    }

    @Test
    void overlayKeepsTheLatestWriteOfEachByte() {
        LogOverlay o = new LogOverlay();
        byte[] a = new byte[8192];
        Arrays.fill(a, (byte) 1);
        o.put(4096, 8192, a);         // [4096, 12288) = 1
        o.put(8192, 8192, null);      // [8192, 16384) = 0
        byte[] c = new byte[4096];
        Arrays.fill(c, (byte) 3);
        o.put(0, 4096, c);            // [0, 4096) = 3
        o.put(5 * 4096, 4096, c);     // [20480, 24576) = 3
        ByteBuffer b = ByteBuffer.allocate(7 * 4096);
        Arrays.fill(b.array(), (byte) 9);
        o.apply(b, 0);
        int[] want = {3, 1, 0, 0, 9, 3, 9};
        for (int s = 0; s < want.length; s++) {
            for (int i = 0; i < 4096; i++) assertEquals(want[s], b.get(s * 4096 + i), "sector " + s);
        }
        assertEquals(4096 * 5, o.nextPatched(4096 * 4, 4096 * 7));
        assertEquals(4096 * 4, o.patchedUntil(0, 4096 * 7));
    }
}
