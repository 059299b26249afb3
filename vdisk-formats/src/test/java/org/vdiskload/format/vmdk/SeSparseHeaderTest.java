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
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.vdiskload.format.vmdk.DescriptorTest.assertRefused;

/** The seSparse const and volatile headers, field by field, and the grain table entry's grain number. */
class SeSparseHeaderTest {
    @TempDir
    Path dir;

    /** The const header of a 100 MiB seSparse extent with the layout ESXi logs for one (qemu's commit message). */
    static ByteBuffer constHeader() {
        ByteBuffer b = ByteBuffer.allocate(512).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(0xcafebabeL);                  //   0 magic
        b.putLong(0x0000000200000001L);          //   8 version 2.1
        b.putLong(204800);                       //  16 capacity: 204800 sectors (100 MiB)
        b.putLong(8);                            //  24 grain_size: 8 sectors (4 KiB)
        b.putLong(64);                           //  32 grain_table_size: 64 sectors (4096 entries)
        b.putLong(0);                            //  40 flags
        b.putLong(0).putLong(0).putLong(0).putLong(0); // 48 reserved1..4
        b.putLong(1).putLong(1);                 //  80 volatile header: sector 1, 1 sector
        b.putLong(2).putLong(2);                 //  96 journal header: sector 2, 2 sectors
        b.putLong(2048).putLong(2048);           // 112 journal
        b.putLong(4096).putLong(2048);           // 128 grain directory: 2048 sectors (131072 entries)
        b.putLong(6144).putLong(2048);           // 144 grain tables: 2048 sectors (32 tables)
        b.putLong(8192).putLong(2048);           // 160 free bitmap
        b.putLong(10240).putLong(2048);          // 176 backmap
        b.putLong(12288).putLong(204800);        // 192 grains: a grain for every sector of the capacity
        return b.clear();                        // 208 304 bytes of zero padding
    }

    private ImageFile file(ByteBuffer content) throws IOException {
        Path p = Files.createTempFile(dir, "h", ".vmdk");
        byte[] a = new byte[content.remaining()];
        content.duplicate().get(a);
        Files.write(p, a);
        return ImageFile.open(p, false);
    }

    private SeSparseHeader parse(ByteBuffer b) throws IOException {
        try (ImageFile f = file(b)) {
            return SeSparseHeader.parse(b, f);
        }
    }

    private ImageException refused(ByteBuffer b) throws IOException {
        try (ImageFile f = file(b)) {
            return assertThrows(ImageException.class, () -> SeSparseHeader.parse(b, f));
        }
    }

    @Test
    void parsesEveryField() throws IOException {
        SeSparseHeader h = parse(constHeader());
        assertEquals(204800, h.capacity());
        assertEquals(new SeSparseHeader.Region("volatile_header", 1, 1, 80), h.volatileHeader());
        assertEquals(new SeSparseHeader.Region("journal_header", 2, 2, 96), h.journalHeader());
        assertEquals(new SeSparseHeader.Region("journal", 2048, 2048, 112), h.journal());
        assertEquals(new SeSparseHeader.Region("grain_dir", 4096, 2048, 128), h.grainDirectory());
        assertEquals(new SeSparseHeader.Region("grain_tables", 6144, 2048, 144), h.grainTables());
        assertEquals(new SeSparseHeader.Region("free_bitmap", 8192, 2048, 160), h.freeBitmap());
        assertEquals(new SeSparseHeader.Region("backmap", 10240, 2048, 176), h.backmap());
        assertEquals(new SeSparseHeader.Region("grains", 12288, 204800, 192), h.grains());
        assertEquals(131072, h.directoryEntries());
        assertEquals(32, h.tableCount());
        assertEquals(25600, h.grainCount());
    }

    @Test
    void refusesEachFieldQemuChecks() throws IOException {
        assertRefused(refused(constHeader().putLong(0, 0xcafebabe00000000L)), ImageException.Kind.CORRUPT, "bad const header magic");
        assertRefused(refused(constHeader().putLong(8, 0x0000000100000001L)), ImageException.Kind.UNSUPPORTED, "version 0x0000000100000001");
        assertRefused(refused(constHeader().putLong(24, 1)), ImageException.Kind.UNSUPPORTED, "grain_size 1 (only 8 is known)");
        assertRefused(refused(constHeader().putLong(32, 32)), ImageException.Kind.UNSUPPORTED, "grain_table_size 32 (only 64 is known)");
        assertRefused(refused(constHeader().putLong(40, 2)), ImageException.Kind.UNSUPPORTED, "flags 2");
        for (int i = 0; i < 4; i++) {
            assertRefused(refused(constHeader().putLong(48 + 8 * i, 1)), ImageException.Kind.UNSUPPORTED, "reserved" + (i + 1) + " 1");
        }
        assertRefused(refused(constHeader().put(511, (byte) 1)), ImageException.Kind.UNSUPPORTED, "padding (padding at offset 511)");
    }

    @Test
    void refusesRegionsBeyondQemu() throws IOException {
        assertRefused(refused(constHeader().putLong(16, -1)), ImageException.Kind.CORRUPT, "capacity of 18446744073709551615 sectors is too large");
        assertRefused(refused(constHeader().putLong(88, 0)), ImageException.Kind.CORRUPT, "volatile_header region is empty");
        assertRefused(refused(constHeader().putLong(136, 0)), ImageException.Kind.CORRUPT, "grain_dir region is empty");
        assertRefused(refused(constHeader().putLong(160, 4097)), ImageException.Kind.CORRUPT,
                "free_bitmap region (sectors 4097..6145) overlaps the grain_dir region (sectors 4096..6144)");
        assertRefused(refused(constHeader().putLong(192, 0)), ImageException.Kind.CORRUPT, "grains region overlaps the const header");
        assertRefused(refused(constHeader().putLong(152, 1L << 62)), ImageException.Kind.CORRUPT, "grain_tables region at sector 6144");
    }

    @Test
    void volatileHeader() throws IOException {
        ByteBuffer v = ByteBuffer.allocate(512).order(ByteOrder.LITTLE_ENDIAN);
        v.putLong(0xcafecafeL);                  //  0 magic
        v.putLong(3);                            //  8 free_gt_number
        v.putLong(17);                           // 16 next_txn_seq_number
        v.putLong(0);                            // 24 replay_journal: clean
        v.clear();                               // 32 480 bytes of zero padding
        try (ImageFile f = file(v)) {
            SeSparseVolatileHeader.check(v, f, 512);
            assertRefused(assertThrows(ImageException.class, () -> SeSparseVolatileHeader.check(dup(v).putLong(0, 0xcafebabeL), f, 512)),
                    ImageException.Kind.CORRUPT, "volatile header magic 0x00000000cafebabe (volatile header magic at offset 512)");
            assertRefused(assertThrows(ImageException.class, () -> SeSparseVolatileHeader.check(dup(v).putLong(24, 1), f, 512)),
                    ImageException.Kind.UNSUPPORTED, "opens the disk (replay_journal at offset 536)");
            assertRefused(assertThrows(ImageException.class, () -> SeSparseVolatileHeader.check(dup(v).put(100, (byte) 1), f, 512)),
                    ImageException.Kind.UNSUPPORTED, "volatile header padding at offset 612");
        }
    }

    private static ByteBuffer dup(ByteBuffer b) {
        ByteBuffer c = ByteBuffer.allocate(b.capacity()).order(ByteOrder.LITTLE_ENDIAN);
        c.put(0, b, 0, b.capacity());
        return c;
    }

    /** qemu's decoding of an allocated grain table entry: bits 48..59 are the low 12 bits, bits 0..47 the rest. */
    @Test
    void grainNumbers() {
        assertEquals(0, SeSparseExtent.grainNumber(0x3000000000000000L));
        assertEquals(1, SeSparseExtent.grainNumber(0x3001000000000000L));
        assertEquals(0xfff, SeSparseExtent.grainNumber(0x3fff000000000000L));
        assertEquals(0x1000, SeSparseExtent.grainNumber(0x3000000000000001L));
        assertEquals(0x1007, SeSparseExtent.grainNumber(0x3007000000000001L));
        assertEquals((0xffffffffffffL << 12) | 0xabc, SeSparseExtent.grainNumber(0x3abcffffffffffffL));
    }
}
