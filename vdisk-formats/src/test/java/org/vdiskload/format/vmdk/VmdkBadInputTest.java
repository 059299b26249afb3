package org.vdiskload.format.vmdk;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
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
import static org.vdiskload.format.vmdk.DescriptorTest.assertRefused;

/**
 * Broken and hostile VMDKs: each is refused with one clear line, quickly. Also the behaviours qemu is
 * not the oracle for (ZERO extents, vmfsThin, parentCID mismatches).
 */
class VmdkBadInputTest {
    @TempDir
    Path dir;

    private static final String HEAD = "# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\n";

    /** A 4 MiB monolithicSparse image with data in its first 128 KiB. */
    private Path sparse(String name) throws Exception {
        Path p = dir.resolve(name);
        Tools.check("qemu-img", "create", "-q", "-f", "vmdk", p.toString(), "4M");
        Tools.check("qemu-io", "-f", "vmdk", "-c", "write -P 0x11 0 128k", p.toString());
        return p;
    }

    private static long u32(Path p, long at) throws IOException {
        try (FileChannel ch = FileChannel.open(p)) {
            ByteBuffer b = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
            ch.read(b, at);
            return Integer.toUnsignedLong(b.getInt(0));
        }
    }

    private static long u64(Path p, long at) throws IOException {
        try (FileChannel ch = FileChannel.open(p)) {
            ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            ch.read(b, at);
            return b.getLong(0);
        }
    }

    private static void patch(Path p, long at, ByteBuffer bytes) throws IOException {
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
            ch.write(bytes, at);
        }
    }

    private static void patch32(Path p, long at, long v) throws IOException {
        patch(p, at, ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(0, (int) v));
    }

    private static void patch64(Path p, long at, long v) throws IOException {
        patch(p, at, ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, v));
    }

    /** Opens, maps and reads everything; returns the refusal. */
    private static ImageException refused(Path p) {
        return assertTimeoutPreemptively(java.time.Duration.ofSeconds(10), () -> assertThrows(ImageException.class, () -> {
            try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS.withFormat("vmdk"))) {
                d.map(0, d.size());
                ByteBuffer b = ByteBuffer.allocate(1 << 20);
                for (long pos = 0; pos < d.size(); pos += b.capacity()) {
                    d.read(b.clear().limit((int) Math.min(b.capacity(), d.size() - pos)), pos);
                }
            }
        }));
    }

    private static byte[] readAll(Path p) throws IOException {
        try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS)) {
            ByteBuffer b = ByteBuffer.allocate((int) d.size());
            d.read(b, 0);
            return b.array();
        }
    }

    private Path text(String name, String content) throws IOException {
        return Files.writeString(dir.resolve(name), content);
    }

    // ---- extent files the descriptor names

    @Test
    void refusesExtentOnBlockDevice() throws IOException {
        ImageException e = refused(text("dev.vmdk", HEAD + "createType=\"monolithicFlat\"\nRW 8 FLAT \"/dev/sda\" 0\n"));
        // /dev/sda is refused whether or not this machine has one: not a regular file, or no such file
        assertRefused(e, ImageException.Kind.INVALID, "cannot open extent file /dev/sda (descriptor line 6)");
    }

    @Test
    void refusesExtentOnCharacterDevice() throws IOException {
        assertRefused(refused(text("zero.vmdk", HEAD + "createType=\"vmfs\"\nRW 8 VMFS \"/dev/zero\"\n")),
                ImageException.Kind.INVALID, "/dev/zero (descriptor line 6): is not a regular file");
    }

    @Test
    void refusesExtentOnFifo() throws Exception {
        Tools.check("mkfifo", dir.resolve("fifo").toString());
        assertRefused(refused(text("fifo.vmdk", HEAD + "createType=\"vmfsSparse\"\nRW 8 VMFSSPARSE \"fifo\"\n")),
                ImageException.Kind.INVALID, "is not a regular file");
    }

    @Test
    void refusesMissingExtentFile() throws IOException {
        assertRefused(refused(text("missing.vmdk", HEAD + "createType=\"twoGbMaxExtentSparse\"\nRW 8 SPARSE \"gone-s001.vmdk\"\n")),
                ImageException.Kind.INVALID, "gone-s001.vmdk (descriptor line 6): no such file");
    }

    @Test
    void refusesSparseExtentThatIsNot() throws IOException {
        Files.write(dir.resolve("text.bin"), new byte[1024]);
        assertRefused(refused(text("t.vmdk", HEAD + "createType=\"vmfsSparse\"\nRW 2 VMFSSPARSE \"text.bin\"\n")),
                ImageException.Kind.CORRUPT, "no KDMV magic");
    }

    @Test
    void refusesCapacityThatDisagreesWithDescriptor() throws Exception {
        sparse("s-s001.vmdk");
        assertRefused(refused(text("cap.vmdk", HEAD + "createType=\"twoGbMaxExtentSparse\"\nRW 4096 SPARSE \"s-s001.vmdk\"\n")),
                ImageException.Kind.CORRUPT, "is 4096 sectors but its file");
    }

    @Test
    void refusesNestedDescriptorInExtent() throws Exception {
        Path s = sparse("n-s001.vmdk");
        patch64(s, 12, 0);
        assertRefused(refused(text("n.vmdk", HEAD + "createType=\"twoGbMaxExtentSparse\"\nRW 8192 SPARSE \"n-s001.vmdk\"\n")),
                ImageException.Kind.UNSUPPORTED, "nested descriptors are refused");
    }

    @Test
    void refusesStandaloneCowd() throws IOException {
        ByteBuffer b = SparseHeaderTest.cowd();
        Path p = dir.resolve("c.vmdk");
        Files.write(p, b.array());
        assertRefused(refused(p), ImageException.Kind.UNSUPPORTED, "COWD (VMDK3) extent has no descriptor");
    }

    // ---- sparse metadata

    @Test
    void refusesGrainDirectoryPastEof() throws Exception {
        Path p = sparse("gd.vmdk");
        patch64(p, 56, 1 << 20);
        assertRefused(refused(p), ImageException.Kind.CORRUPT, "grain directory");
    }

    @Test
    void refusesHugeGrainDirectoryWithoutAllocating() throws Exception {
        Path p = sparse("huge.vmdk");
        patch64(p, 12, 1L << 50); // capacity: 2^50 sectors => 2^34 directory entries
        assertRefused(refused(p), ImageException.Kind.CORRUPT, "over qemu's limit of 33554432");
        patch64(p, 12, 1L << 40); // 2^24 entries: within qemu's limit, but 64 MiB past the end of the file
        assertRefused(refused(p), ImageException.Kind.CORRUPT, "past the end of the file");
    }

    @Test
    void refusesGrainTablePastEof() throws Exception {
        Path p = sparse("gt.vmdk");
        long gd = u64(p, 56) * 512;
        patch32(p, gd, 0x7fffffffL);
        assertRefused(refused(p), ImageException.Kind.CORRUPT, "grain table (grain directory entry 0)");
    }

    @Test
    void refusesGrainPastEof() throws Exception {
        Path p = sparse("grain.vmdk");
        long gt = u32(p, u64(p, 56) * 512) * 512;
        patch32(p, gt + 4, 0x10000000L);
        ImageException e = refused(p);
        assertRefused(e, ImageException.Kind.CORRUPT, "is past the end of the file");
        assertEquals(0x10000000L * 512, e.offset());
    }

    @Test
    void refusesTruncatedFiles() throws Exception {
        Path p = sparse("trunc.vmdk");
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
            f.setLength(u64(p, 64) * 512 - 512); // ends before the first grain
        }
        assertRefused(refused(p), ImageException.Kind.CORRUPT, "file is truncated");
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
            f.setLength(300);
        }
        assertRefused(refused(p), ImageException.Kind.CORRUPT, "past the end of the file");
    }

    @Test
    void refusesSparseImageWithoutDescriptor() throws Exception {
        Path p = sparse("nodesc.vmdk");
        patch64(p, 28, 0);
        assertRefused(refused(p), ImageException.Kind.CORRUPT, "no embedded descriptor");
    }

    @Test
    void refusesOversizedEmbeddedDescriptor() throws Exception {
        Path p = sparse("bigdesc.vmdk");
        patch64(p, 36, 4096);
        assertRefused(refused(p), ImageException.Kind.CORRUPT, "over the 1048575-byte limit");
    }

    @Test
    void refusesOversizedGrainTables() throws Exception {
        Path p = sparse("gtes.vmdk");
        patch32(p, 44, 1024);
        assertRefused(refused(p), ImageException.Kind.CORRUPT, "grain tables of 1024 entries");
    }

    // ---- compressed grains

    private Path stream(String name) throws Exception {
        Path raw = dir.resolve(name + ".raw");
        Tools.check("qemu-img", "create", "-q", "-f", "raw", raw.toString(), "1M");
        Tools.check("qemu-io", "-f", "raw", "-c", "write -P 0x5a 0 64k", raw.toString());
        Path p = dir.resolve(name);
        Tools.check("qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", raw.toString(), p.toString());
        return p;
    }

    private long firstGrain(Path p) throws IOException {
        return u32(p, u32(p, u64(p, 56) * 512) * 512) * 512;
    }

    @Test
    void refusesCorruptCompressedGrain() throws Exception {
        Path p = stream("bad-zlib.vmdk");
        patch(p, firstGrain(p) + 12, ByteBuffer.wrap(new byte[] {1, 2, 3, 4}));
        assertRefused(refused(p), ImageException.Kind.CORRUPT, "compressed grain is not valid zlib data");
    }

    /** Looking for the encoding entry once scanned every following blank line from each line's start: hours for 1 MiB. */
    @Test
    void encodingSearchIsLinearInBlankLines() throws IOException {
        String blank = "# Disk DescriptorFile\n" + " \n".repeat((Descriptor.MAX_BYTES - 32) / 2);
        assertRefused(refused(text("blank.vmdk", blank)), ImageException.Kind.CORRUPT, "no createType");
    }

    @Test
    void refusesOversizedGrainMarker() throws Exception {
        Path p = stream("marker.vmdk");
        patch32(p, firstGrain(p) + 8, 0x7fffffff);
        assertRefused(refused(p), ImageException.Kind.CORRUPT, "compressed grain size 2147483647 is out of range");
    }

    @Test
    void refusesGrainMarkerSizePastDeflatesWorstCase() throws Exception {
        // qemu accepts up to two grains; no deflate encoder needs more than SparseExtent.maxCompressed(64 KiB)
        byte[] noise = new byte[1 << 20];
        new java.util.Random(20).nextBytes(noise); // incompressible: the first grain has a megabyte of file after it
        Path raw = Files.write(dir.resolve("noise.raw"), noise);
        Path p = dir.resolve("deflate-bound.vmdk");
        Tools.check("qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", raw.toString(), p.toString());
        long size = SparseExtent.maxCompressed(64 << 10) + 1;
        patch32(p, firstGrain(p) + 8, (int) size);
        assertRefused(refused(p), ImageException.Kind.CORRUPT, "compressed grain size " + size + " is out of range");
    }

    @Test
    void refusesGrainMarkerSizePastTheFilesEnd() throws Exception {
        Path p = stream("past-end.vmdk");
        long size = Files.size(p) - firstGrain(p) - 12 + 1;
        patch32(p, firstGrain(p) + 8, (int) size);
        assertRefused(refused(p), ImageException.Kind.CORRUPT, "compressed grain size " + size + " is out of range");
    }

    @Test
    void refusesTruncatedCompressedGrain() throws Exception {
        Path p = stream("short-zlib.vmdk");
        patch32(p, firstGrain(p) + 8, 10);
        assertRefused(refused(p), ImageException.Kind.CORRUPT, "compressed grain is truncated");
    }

    // ---- what qemu is no oracle for

    @Test
    void zeroExtentsReadAsZeros() throws IOException {
        byte[] a = new byte[1024];
        java.util.Arrays.fill(a, (byte) 0x61);
        Files.write(dir.resolve("a.bin"), a);
        // qemu skips ZERO extent lines (so its disk would be 4 sectors); VMware and we read them as zeros
        Path p = text("z.vmdk", HEAD + "createType=\"monolithicFlat\"\nRW 2 FLAT \"a.bin\" 0\nRW 8 ZERO\nRDONLY 2 FLAT \"a.bin\" 0\n");
        byte[] expected = new byte[12 * 512];
        java.util.Arrays.fill(expected, 0, 1024, (byte) 0x61);
        java.util.Arrays.fill(expected, 10 * 512, 12 * 512, (byte) 0x61);
        assertArrayEquals(expected, readAll(p));
        try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS)) {
            List<Extent> map = d.map(0, d.size());
            assertEquals(3, map.size());
            assertEquals(Extent.Kind.ZERO, map.get(1).kind());
            assertEquals(1024, map.get(1).start());
            assertEquals(4096, map.get(1).length());
        }
    }

    @Test
    void vmfsThinReadsAsItsVmfsTwin() throws Exception {
        Path flat = dir.resolve("thin-flat.vmdk");
        Tools.check("qemu-img", "create", "-q", "-f", "raw", flat.toString(), "1M");
        Tools.check("qemu-io", "-f", "raw", "-c", "write -P 0x7e 4k 8k", flat.toString());
        String extent = "RW 2048 VMFS \"thin-flat.vmdk\"\nddb.thinProvisioned = \"1\"\n";
        Path thin = text("thin.vmdk", HEAD + "createType=\"vmfsThin\"\n" + extent);
        Path twin = text("twin.vmdk", HEAD + "createType=\"vmfs\"\n" + extent);
        // qemu refuses createType vmfsThin; it reads the twin, and we must read both alike
        Path out = dir.resolve("twin.raw");
        Tools.check("qemu-img", "convert", "-f", "vmdk", "-O", "raw", twin.toString(), out.toString());
        assertArrayEquals(Files.readAllBytes(out), readAll(thin));
    }

    @Test
    void parentCidMismatchIsRefusedAtOpen() throws Exception {
        Path base = sparse("cid-base.vmdk");
        Path top = dir.resolve("cid-top.vmdk");
        Tools.check("qemu-img", "create", "-q", "-f", "vmdk", "-b", base.toString(), "-F", "vmdk", top.toString());
        Tools.check("qemu-io", "-f", "vmdk", "-c", "write -P 0x22 1M 64k", top.toString());
        try (DiskImage d = Images.open(top, OpenOptions.DEFAULTS)) {
            assertEquals(2, d.layers().size(), "a fresh delta opens");
        }
        // writing the base after the delta was made gives it a new CID
        Tools.check("qemu-io", "-f", "vmdk", "-c", "write -P 0x33 2M 64k", base.toString());
        Tools.Result qemu = Tools.run(List.of("qemu-img", "convert", "-f", "vmdk", "-O", "raw", top.toString(),
                dir.resolve("x.raw").toString()), null);
        assertNotEquals(0, qemu.exit(), "qemu refuses to read through a stale parent");
        // qemu opens it and fails the reads that fall through; we refuse it whole, at open
        ImageException e = assertThrows(ImageException.class, () -> Images.open(top, OpenOptions.DEFAULTS).close());
        assertRefused(e, ImageException.Kind.CORRUPT, "does not match the CID");
    }
}
