package org.vdiskload.format.vmdk;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.check.CheckReport;
import org.vdiskload.check.RepairMode;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Extent;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.testing.Tools;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vdiskload.format.vmdk.DescriptorTest.assertRefused;

/**
 * ESXi seSparse extents made by testdata/sesparse_make.py (its docstring lays out the file and the grains):
 * read against the bytes the script says they hold, mapped grain kind by grain kind, over a parent, refused for
 * writing, and every corruption of headers, directory and tables refused in one line (where qemu refuses it too,
 * qemu-img is checked to refuse it). {@link VmdkOracleTest} compares the same images with qemu-img.
 */
class SeSparseTest {
    @TempDir
    static Path dir;

    private static final OpenOptions RO = OpenOptions.DEFAULTS.withFormat("vmdk");
    private static final long MIB = 1 << 20;
    private static final int GRAIN = 4096;
    /** Where the script puts things in the extent file (bytes). */
    private static final long GD = 8 * 512, TABLES = 16 * 512, TABLE = 32768, GRAINS = 224 * 512;
    /** Grain table 1 serves directory entry 0 (the disk's first 16 MiB): its entry for disk grain g. */
    private static long entry(int g) {
        return TABLES + TABLE + g * 8L;
    }

    @BeforeAll
    static void make() throws Exception {
        Files.createDirectories(dir.resolve("good"));
        make(dir.resolve("good"), "se.vmdk");
        Path base = dir.resolve("good/base.vmdk");
        Tools.check("qemu-img", "create", "-q", "-f", "vmdk", base.toString(), "40M");
        Tools.check("qemu-io", "-f", "vmdk", "-c", "write -P 0x61 0 1M", "-c", "write -P 0x63 32M 64k", base.toString());
        Tools.check("qemu-img", "convert", "-f", "vmdk", "-O", "raw", base.toString(), dir.resolve("good/base.raw").toString());
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("\nCID=([0-9a-f]{1,8})")
                .matcher(new String(Files.readAllBytes(base), java.nio.charset.StandardCharsets.ISO_8859_1));
        assertTrue(m.find(), "base.vmdk has a CID");
        String cid = m.group(1);
        Tools.check("python3", script(), dir.resolve("good/delta.vmdk").toString(), "40", "--parent", "base.vmdk", cid,
                "--expected", dir.resolve("good/base.raw").toString());
    }

    private static String script() {
        return Tools.repo().resolve("testdata/sesparse_make.py").toString();
    }

    /** A fresh standalone 40 MiB seSparse disk in {@code d}: {@code name} and its extent. */
    private static Path make(Path d, String name) throws Exception {
        Path p = d.resolve(name);
        Tools.check("python3", script(), p.toString(), "40", "--expected");
        return p;
    }

    private static Path extentOf(Path descriptor) {
        String n = descriptor.getFileName().toString();
        return descriptor.resolveSibling(n.substring(0, n.length() - 5) + "-sesparse.vmdk");
    }

    private static byte[] readAll(Path p) throws IOException {
        return readAll(p, RO);
    }

    private static byte[] readAll(Path p, OpenOptions o) throws IOException {
        try (DiskImage d = Images.open(p, o)) {
            ByteBuffer b = ByteBuffer.allocate((int) d.size());
            d.read(b, 0);
            return b.array();
        }
    }

    private static byte[] expected(Path descriptor) throws IOException {
        String n = descriptor.getFileName().toString();
        return Files.readAllBytes(descriptor.resolveSibling(n.substring(0, n.length() - 5) + ".expected.raw"));
    }

    @Test
    void readsWhatTheScriptWrote() throws Exception {
        Path se = dir.resolve("good/se.vmdk");
        byte[] want = expected(se);
        assertArrayEquals(want, readAll(se));
        // the script's grains are really there: data, and zeros where an unmapped entry names a stale grain
        assertEquals(0, want[28 * GRAIN]);
        assertNotEquals(0, want[48 * GRAIN]);
    }

    @Test
    void readsThroughToTheParentWhereTheDeltaHasNoGrain() throws Exception {
        Path delta = dir.resolve("good/delta.vmdk");
        byte[] got = readAll(delta);
        assertArrayEquals(expected(delta), got);
        assertEquals(0x61, got[40 * GRAIN]);           // unallocated: the parent's byte
        assertEquals(0, got[24 * GRAIN]);              // zero grain over the parent's data
        assertEquals(0, got[28 * GRAIN]);              // unmapped grain over the parent's data
        assertEquals(0x63, got[(int) (32 * MIB) + 8192]);  // 32 MiB + 2 grains: unallocated under a table
    }

    @Test
    void mapsGrainsByKind() throws Exception {
        Path se = dir.resolve("good/se.vmdk");
        try (DiskImage d = Images.open(se, RO)) {
            List<Extent> m = d.map(0, 64L * GRAIN);
            // grains 0..15 are one run in the file, at the start of the grain region
            assertEquals(Extent.Kind.DATA, m.get(0).kind());
            assertEquals(16 * GRAIN, m.get(0).length());
            assertEquals(GRAINS, m.get(0).fileOffset());
            assertEquals(extentOf(se).toAbsolutePath().normalize(), m.get(0).file().path().toAbsolutePath().normalize());
            // grain 16 is grain number 31: one grain per run from there
            assertEquals(GRAINS + 31L * GRAIN, m.get(1).fileOffset());
            assertEquals(GRAIN, m.get(1).length());
            Extent zeros = at(m, 24L * GRAIN);
            assertEquals(Extent.Kind.ZERO, zeros.kind());
            assertEquals(24L * GRAIN, zeros.start());
            assertEquals(32L * GRAIN, zeros.end(), "zero and unmapped grains are one zero run");
            assertTrue(zeros.allocated());
            Extent hole = at(m, 32L * GRAIN);
            assertEquals(Extent.Kind.ZERO, hole.kind());
            assertTrue(!hole.allocated(), "unallocated and no parent: zeros, not allocated");
            Extent high = at(m, 48L * GRAIN);
            assertEquals(GRAINS + (4096L + 7) * GRAIN, high.fileOffset(), "grain number 4103: its high part decoded");
            assertEquals(GRAINS + 8191L * GRAIN, at(m, 49L * GRAIN).fileOffset());
        }
        try (DiskImage d = Images.open(dir.resolve("good/delta.vmdk"), RO)) {
            Extent through = d.map(40L * GRAIN, GRAIN).get(0);
            assertEquals(1, through.depth(), "an unallocated grain maps to the parent");
            assertEquals(Extent.Kind.DATA, through.kind());
            Extent zero = d.map(24L * GRAIN, GRAIN).get(0);
            assertEquals(0, zero.depth());
            assertEquals(Extent.Kind.ZERO, zero.kind());
        }
    }

    private static Extent at(List<Extent> map, long pos) {
        return map.stream().filter(e -> e.start() <= pos && pos < e.end()).findFirst().orElseThrow();
    }

    @Test
    void infoAndCheck() throws Exception {
        try (DiskImage d = Images.open(dir.resolve("good/delta.vmdk"), RO)) {
            assertEquals("seSparse", d.layers().get(0).info().formatSpecific().get("create-type"));
            assertEquals(4096L, d.layers().get(0).info().clusterSize());
            CheckReport r = d.layers().get(0).check(RepairMode.NONE);
            assertEquals(0, r.corruptions(), r.toString());
        }
    }

    /** Writing seSparse is refused at open, in one line naming the descriptor, and nothing changes. */
    @Test
    void refusesWriting() throws Exception {
        Path se = copyOfGood(Files.createDirectories(dir.resolve("rw")));
        byte[] before = Files.readAllBytes(extentOf(se));
        ImageException e = assertThrows(ImageException.class, () -> Images.open(se, RO.withWritable(true)).close());
        assertRefused(e, ImageException.Kind.UNSUPPORTED, se + ": extent on descriptor line 10 is an ESXi seSparse extent, which can only be opened read-only");
        assertArrayEquals(before, Files.readAllBytes(extentOf(se)));
        // a bare extent file (which qemu would take for raw) is detected, and points at its descriptor
        ImageException bare = assertThrows(ImageException.class, () -> Images.open(extentOf(se), OpenOptions.DEFAULTS).close());
        assertRefused(bare, ImageException.Kind.UNSUPPORTED, "an ESXi seSparse extent has no descriptor of its own");
    }

    /** The extent and the parent are references: followed only inside the image's directory (or an allowed one). */
    @Test
    void followsTheReferenceRule() throws Exception {
        Path sub = Files.createDirectories(dir.resolve("refs/sub"));
        Path extentAbove = Files.writeString(sub.resolve("extent-above.vmdk"),
                Files.readString(dir.resolve("good/se.vmdk")).replace("\"se-sesparse.vmdk\"", "\"../../good/se-sesparse.vmdk\""));
        assertRefused(assertThrows(ImageException.class, () -> Images.open(extentAbove, RO).close()),
                ImageException.Kind.INVALID, "outside the image's directory");
        Tools.check("cp", "--sparse=always", dir.resolve("good/delta-sesparse.vmdk").toString(), sub.resolve("delta-sesparse.vmdk").toString());
        Path parentAbove = Files.writeString(sub.resolve("delta.vmdk"),
                Files.readString(dir.resolve("good/delta.vmdk")).replace("parentFileNameHint=\"base.vmdk\"", "parentFileNameHint=\"../../good/base.vmdk\""));
        assertRefused(assertThrows(ImageException.class, () -> Images.open(parentAbove, RO).close()),
                ImageException.Kind.INVALID, "outside the image's directory");
        // allowed, the same delta reads as it does beside its parent
        assertArrayEquals(readAll(dir.resolve("good/delta.vmdk")), readAll(parentAbove, RO.withRefs(org.vdiskload.image.ReferencePolicy.allowing(List.of(dir.resolve("good"))))));
    }

    // ---- corruptions: each refused in one line

    private interface Damage {
        void apply(Path descriptor, Path extent) throws Exception;
    }

    /** A fresh image damaged by {@code damage}: vdiskload refuses it; with {@code qemuToo}, so does qemu-img. */
    private static ImageException refused(String name, boolean qemuToo, Damage damage) throws Exception {
        Path d = Files.createDirectories(dir.resolve(name));
        Path se = copyOfGood(d);
        damage.apply(se, extentOf(se));
        ImageException e = assertTimeoutPreemptively(java.time.Duration.ofSeconds(10), () -> assertThrows(ImageException.class, () -> {
            try (DiskImage img = Images.open(se, RO)) {
                img.map(0, img.size());
                ByteBuffer b = ByteBuffer.allocate(1 << 20);
                for (long pos = 0; pos < img.size(); pos += b.capacity()) img.read(b.clear(), pos);
            }
        }));
        if (qemuToo) {
            Tools.Result q = Tools.run(List.of("qemu-img", "convert", "-f", "vmdk", "-O", "raw", se.toString(), d.resolve("q.raw").toString()), d);
            assertNotEquals(0, q.exit(), name + ": qemu-img reads it");
        }
        return e;
    }

    /** A copy of the standalone image in {@code d} (the extent copied sparse: most of it is a hole). */
    private static Path copyOfGood(Path d) throws Exception {
        Path good = dir.resolve("good/se.vmdk");
        Path se = Files.copy(good, d.resolve("se.vmdk"));
        Tools.check("cp", "--sparse=always", extentOf(good).toString(), extentOf(se).toString());
        return se;
    }

    private static void patch64(Path p, long at, long v) throws IOException {
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, v), at);
        }
    }

    private static void patchByte(Path p, long at, int v) throws IOException {
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(new byte[] {(byte) v}), at);
        }
    }

    @Test
    void refusesBadConstHeaders() throws Exception {
        assertRefused(refused("magic", true, (s, x) -> patch64(x, 0, 0xcafebabfL)),
                ImageException.Kind.CORRUPT, "bad const header magic 0x00000000cafebabf");
        assertRefused(refused("version", true, (s, x) -> patch64(x, 8, 0x0000000200000002L)),
                ImageException.Kind.UNSUPPORTED, "unsupported seSparse version 0x0000000200000002");
        assertRefused(refused("grain", true, (s, x) -> patch64(x, 24, 16)),
                ImageException.Kind.UNSUPPORTED, "unsupported seSparse grain_size 16");
        assertRefused(refused("gtsize", true, (s, x) -> patch64(x, 32, 128)),
                ImageException.Kind.UNSUPPORTED, "unsupported seSparse grain_table_size 128");
        assertRefused(refused("flags", true, (s, x) -> patch64(x, 40, 1)),
                ImageException.Kind.UNSUPPORTED, "unsupported seSparse flags 1");
        assertRefused(refused("reserved", true, (s, x) -> patch64(x, 64, 1)),
                ImageException.Kind.UNSUPPORTED, "unsupported seSparse reserved3 1");
        assertRefused(refused("padding", true, (s, x) -> patchByte(x, 300, 1)),
                ImageException.Kind.UNSUPPORTED, "non-zero seSparse const header padding");
    }

    @Test
    void refusesBadVolatileHeaders() throws Exception {
        assertRefused(refused("vmagic", true, (s, x) -> patch64(x, 512, 0xcafecaffL)),
                ImageException.Kind.CORRUPT, "bad seSparse volatile header magic 0x00000000cafecaff");
        assertRefused(refused("dirty", true, (s, x) -> patch64(x, 512 + 24, 1)),
                ImageException.Kind.UNSUPPORTED, "its journal needs replaying");
        assertRefused(refused("vpadding", true, (s, x) -> patchByte(x, 512 + 40, 1)),
                ImageException.Kind.UNSUPPORTED, "non-zero seSparse volatile header padding");
        // the volatile header named past the end of the file
        assertRefused(refused("vpast", true, (s, x) -> patch64(x, 80, 1L << 30)),
                ImageException.Kind.CORRUPT, "volatile header");
    }

    @Test
    void refusesRegionsOutsideTheFileOrOnEachOther() throws Exception {
        assertRefused(refused("gdpast", false, (s, x) -> patch64(x, 128, 1L << 30)),
                ImageException.Kind.CORRUPT, "past the end of the file");
        assertRefused(refused("overlap", false, (s, x) -> patch64(x, 144, 8)),
                ImageException.Kind.CORRUPT, "grain_tables region (sectors 8..200) overlaps the grain_dir region (sectors 8..9)");
        assertRefused(refused("onheader", false, (s, x) -> patch64(x, 96, 0)),
                ImageException.Kind.CORRUPT, "journal_header region overlaps the const header");
        assertRefused(refused("huge", false, (s, x) -> patch64(x, 200, Long.MIN_VALUE + 8)),
                ImageException.Kind.CORRUPT, "grains region at sector 224");
        // a directory far past the file, large enough to be a huge allocation: refused before anything is read
        assertRefused(refused("gdsize", false, (s, x) -> {
            patch64(x, 128, 1L << 40);
            patch64(x, 136, 1L << 30);
        }), ImageException.Kind.CORRUPT, "over qemu's limit of 33554432");
        // a capacity the directory does not cover (the descriptor agrees with the header)
        assertRefused(refused("short-gd", false, (s, x) -> {
            patch64(x, 16, 4L << 21);
            Files.writeString(s, Files.readString(s).replace("RW 81920 ", "RW 8388608 "));
        }), ImageException.Kind.CORRUPT, "grain directory of 64 entries does not cover the capacity of 8388608 sectors");
        assertRefused(refused("capacity", false, (s, x) -> Files.writeString(s, Files.readString(s).replace("RW 81920 ", "RW 81928 "))),
                ImageException.Kind.CORRUPT, "is 81928 sectors but its file");
    }

    @Test
    void refusesBadDirectoryEntries() throws Exception {
        assertRefused(refused("gdtype", true, (s, x) -> patch64(x, GD, 0x2000000000000001L)),
                ImageException.Kind.CORRUPT, "grain directory entry 0x2000000000000001 is not a grain table reference (grain directory entry 0 at offset 4096)");
        assertRefused(refused("gdnumber", false, (s, x) -> patch64(x, GD, 0x1000000000000003L)),
                ImageException.Kind.CORRUPT, "grain table 3 is outside the grain table region (3 tables)");
    }

    @Test
    void refusesBadGrainTableEntries() throws Exception {
        assertRefused(refused("gttype", true, (s, x) -> patch64(x, entry(5), 0x4000000000000000L)),
                ImageException.Kind.CORRUPT, "grain table entry 0x4000000000000000 has unknown type 4");
        assertRefused(refused("gtbits", true, (s, x) -> patch64(x, entry(40), 7)),
                ImageException.Kind.CORRUPT, "unallocated grain table entry 0x0000000000000007 has bits set");
        // grain number 10240, one past the grain region (81920 sectors: 10240 grains): 10240 = 2 << 12 | 2048
        assertRefused(refused("outside", false, (s, x) -> patch64(x, entry(5), 0x3800000000000002L)),
                ImageException.Kind.CORRUPT, "grain 10240 is outside the grain region (10240 grains)");
        // the extent cut after its first grains: grain 31 (disk grain 16) now lies past the end
        assertRefused(refused("truncated", false, (s, x) -> {
            try (RandomAccessFile f = new RandomAccessFile(x.toFile(), "rw")) {
                f.setLength(GRAINS + 16L * GRAIN);
            }
        }), ImageException.Kind.CORRUPT, "grain 31 at 241664 is past the end of the file (180224 bytes)");
    }

    /** check reports a bad table entry as qemu-img check does (one error, the first, its sector), where open alone succeeds. */
    @Test
    void checkFindsABadTable() throws Exception {
        Path se = copyOfGood(Files.createDirectories(dir.resolve("check")));
        patch64(extentOf(se), TABLES + 8, 0x5000000000000000L); // grain table 0 (32 MiB on), entry 1
        try (DiskImage d = Images.open(se, RO)) {
            CheckReport r = d.layers().get(0).check(RepairMode.NONE);
            assertEquals(1, r.corruptions(), r.toString());
            assertTrue(r.messages().get(0).contains("could not get cluster_offset for sector 65544")
                    && r.messages().get(0).contains("unknown type 5"), r.messages().toString());
        }
    }
}
