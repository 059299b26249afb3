package org.vdiskload.format.qcow2;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.testing.Tools;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vdiskload.format.qcow2.TestImages.header;
import static org.vdiskload.format.qcow2.TestImages.l1Entry;
import static org.vdiskload.format.qcow2.TestImages.l2Entry;
import static org.vdiskload.format.qcow2.TestImages.readLong;
import static org.vdiskload.format.qcow2.TestImages.writeInt;
import static org.vdiskload.format.qcow2.TestImages.writeLong;
import static org.vdiskload.format.qcow2.TestImages.writeShort;

/**
 * Damaged images made from small qemu-made ones: each damage gives an {@link ImageException} of the
 * right kind naming the problem, quickly and without large allocations.
 */
class Qcow2BadInputTest {
    @TempDir
    Path dir;

    Path make(String name, String options, String size, String... io) throws Exception {
        return TestImages.make(dir, name, options, size, io);
    }

    /** Reads the whole disk (map and data) through the library. */
    static void readAll(Path p, OpenOptions o) throws IOException {
        try (DiskImage disk = Images.open(p, o)) {
            disk.map(0, disk.size());
            ByteBuffer buf = ByteBuffer.allocate(1 << 20);
            for (long pos = 0; pos < disk.size(); pos += buf.capacity()) {
                buf.clear().limit((int) Math.min(buf.capacity(), disk.size() - pos));
                disk.read(buf, pos);
            }
        }
    }

    static void assertRefused(Path p, ImageException.Kind kind, String message) {
        ImageException e = assertTimeoutPreemptively(Duration.ofSeconds(5),
                () -> assertThrows(ImageException.class, () -> readAll(p, OpenOptions.DEFAULTS)));
        assertEquals(kind, e.kind(), e.getMessage());
        assertTrue(e.getMessage().contains(message), "'" + e.getMessage() + "' should say: " + message);
        assertTrue(e.getMessage().startsWith(p.toString()), e.getMessage());
    }

    Path plain() throws Exception {
        return make("plain.qcow2", "cluster_size=4k", "1M", "write -P 0x11 0 16k", "write -P 0x22 512k 4k");
    }

    @Test
    void truncatedHeader() throws Exception {
        Path p = plain();
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
            ch.truncate(50);
        }
        assertRefused(p, ImageException.Kind.CORRUPT, "truncated");
    }

    @Test
    void truncatedAfterHeaderCluster() throws Exception {
        Path p = plain();
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
            ch.truncate(4096);
        }
        assertRefused(p, ImageException.Kind.CORRUPT, "past the end of the file");
    }

    @Test
    void l2TablePastEof() throws Exception {
        Path p = plain();
        writeLong(p, l1Entry(p), (1L << 40) | (1L << 63));
        assertRefused(p, ImageException.Kind.CORRUPT, "past the end of the file");
    }

    @Test
    void l2TableHugeOffset() throws Exception {
        Path p = plain();
        writeLong(p, l1Entry(p), ClusterMap.L1_OFFSET_MASK & ~4095L);
        assertRefused(p, ImageException.Kind.CORRUPT, "past the end of the file");
    }

    @Test
    void l2TableUnaligned() throws Exception {
        Path p = plain();
        writeLong(p, l1Entry(p), readLong(p, l1Entry(p)) + 512);
        assertRefused(p, ImageException.Kind.CORRUPT, "not aligned");
    }

    @Test
    void l1ReservedBits() throws Exception {
        Path p = plain();
        writeLong(p, l1Entry(p), readLong(p, l1Entry(p)) | 1);
        assertRefused(p, ImageException.Kind.CORRUPT, "reserved bits");
    }

    @Test
    void l2ReservedBits() throws Exception {
        Path p = plain();
        writeLong(p, l2Entry(p, 0), readLong(p, l2Entry(p, 0)) | (1L << 57));
        assertRefused(p, ImageException.Kind.CORRUPT, "reserved bits");
    }

    @Test
    void dataClusterUnaligned() throws Exception {
        Path p = plain();
        writeLong(p, l2Entry(p, 1), readLong(p, l2Entry(p, 1)) + 2048);
        assertRefused(p, ImageException.Kind.CORRUPT, "not aligned to the cluster size");
    }

    @Test
    void dataClusterPastEof() throws Exception {
        Path p = plain();
        writeLong(p, l2Entry(p, 1), (1L << 63) | (1L << 40));
        assertRefused(p, ImageException.Kind.CORRUPT, "data cluster at 1099511627776 is past the end of the file");
    }

    @Test
    void zeroFlagIsReservedInVersion2() throws Exception {
        Path p = make("v2.qcow2", "compat=0.10,cluster_size=4k", "1M", "write -P 0x11 0 16k");
        writeLong(p, l2Entry(p, 0), readLong(p, l2Entry(p, 0)) | 1);
        assertRefused(p, ImageException.Kind.CORRUPT, "reserved bits");
    }

    Path compressed(String type) throws Exception {
        return make("c-" + type + ".qcow2", "cluster_size=4k,compression_type=" + type, "1M", "write -c -P 0x33 0 4k", "write -c -P 0x34 4k 4k");
    }

    @Test
    void compressedPastEof() throws Exception {
        Path p = compressed("zlib");
        // 4k clusters: 50 bits of host offset, then 4 bits of additional sectors.
        writeLong(p, l2Entry(p, 0), L2Entry.COMPRESSED | (1L << 45));
        assertRefused(p, ImageException.Kind.CORRUPT, "compressed data at 35184372088832 is past the end of the file");
    }

    @Test
    void compressedOverHeader() throws Exception {
        Path p = compressed("zlib");
        writeLong(p, l2Entry(p, 0), L2Entry.COMPRESSED | 100);
        assertRefused(p, ImageException.Kind.CORRUPT, "compressed data overlaps the header");
    }

    @Test
    void compressedWithCopiedFlag() throws Exception {
        Path p = compressed("zlib");
        writeLong(p, l2Entry(p, 0), readLong(p, l2Entry(p, 0)) | L2Entry.COPIED);
        assertRefused(p, ImageException.Kind.CORRUPT, "copied flag");
    }

    @Test
    void compressedGarbageZlib() throws Exception {
        Path p = compressed("zlib");
        long entry = readLong(p, l2Entry(p, 0));
        long host = entry & ((1L << 50) - 1);
        writeLong(p, host, 0xffffffffffffffffL);
        assertRefused(p, ImageException.Kind.CORRUPT, "bad deflate data");
    }

    @Test
    void compressedGarbageZstd() throws Exception {
        Path p = compressed("zstd");
        long host = readLong(p, l2Entry(p, 0)) & ((1L << 50) - 1);
        writeLong(p, host, 0x0123456789abcdefL);
        assertRefused(p, ImageException.Kind.CORRUPT, "bad zstd data");
    }

    /** A valid deflate stream of 100 bytes where a whole 4 KiB cluster is expected. */
    @Test
    void compressedStreamEndsEarly() throws Exception {
        Path p = compressed("zlib");
        long host = readLong(p, l2Entry(p, 0)) & ((1L << 50) - 1);
        java.util.zip.Deflater deflater = new java.util.zip.Deflater(6, true);
        deflater.setInput(new byte[100]);
        deflater.finish();
        byte[] stream = new byte[64];
        int n = deflater.deflate(stream);
        deflater.end();
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(stream, 0, n), host);
        }
        assertRefused(p, ImageException.Kind.CORRUPT, "decodes to 100 bytes, not a whole cluster of 4096");
    }

    Path extended() throws Exception {
        return make("x.qcow2", "extended_l2=on,cluster_size=16k", "1M", "write -P 0x41 0 2k", "write -z 2k 1k");
    }

    @Test
    void subclusterBothAllocatedAndZero() throws Exception {
        Path p = extended();
        long bitmapAt = l2Entry(p, 0) + 8;
        writeLong(p, bitmapAt, readLong(p, bitmapAt) | (1L << 32));
        assertRefused(p, ImageException.Kind.CORRUPT, "both allocated and zero");
    }

    @Test
    void unallocatedClusterWithAllocatedSubclusters() throws Exception {
        Path p = extended();
        writeLong(p, l2Entry(p, 1) + 8, 1);
        assertRefused(p, ImageException.Kind.CORRUPT, "subclusters marked allocated");
    }

    @Test
    void zeroFlagIsReservedWithExtendedL2() throws Exception {
        Path p = extended();
        writeLong(p, l2Entry(p, 0), readLong(p, l2Entry(p, 0)) | 1);
        assertRefused(p, ImageException.Kind.CORRUPT, "reserved bits");
    }

    @Test
    void compressedClusterWithBitmap() throws Exception {
        Path p = make("xc.qcow2", "extended_l2=on,cluster_size=16k", "1M", "write -c -P 0x42 0 16k");
        writeLong(p, l2Entry(p, 0) + 8, 1);
        assertRefused(p, ImageException.Kind.CORRUPT, "non-zero subcluster bitmap");
    }

    Path snapshotted() throws Exception {
        Path p = make("s.qcow2", "cluster_size=4k", "1M", "write -P 0x51 0 8k");
        Tools.check("qemu-img", "snapshot", "-c", "one", p.toString());
        return p;
    }

    @Test
    void snapshotExtraDataTooLarge() throws Exception {
        Path p = snapshotted();
        writeInt(p, header(p).snapshotsOffset() + 36, 4096);
        assertRefused(p, ImageException.Kind.CORRUPT, "extra data of 4096 bytes is too large");
    }

    @Test
    void snapshotL1Unaligned() throws Exception {
        Path p = snapshotted();
        long at = header(p).snapshotsOffset();
        writeLong(p, at, readLong(p, at) + 8);
        assertRefused(p, ImageException.Kind.CORRUPT, "snapshot L1 table offset");
    }

    @Test
    void snapshotL1PastEof() throws Exception {
        Path p = snapshotted();
        writeLong(p, header(p).snapshotsOffset(), 1L << 40);
        assertRefused(p, ImageException.Kind.CORRUPT, "past the end of the file");
    }

    @Test
    void snapshotL1TooLarge() throws Exception {
        Path p = snapshotted();
        writeInt(p, header(p).snapshotsOffset() + 8, Integer.MAX_VALUE);
        assertRefused(p, ImageException.Kind.CORRUPT, "snapshot L1 table of 2147483647 entries is too large");
    }

    @Test
    void snapshotEmptyId() throws Exception {
        Path p = snapshotted();
        writeShort(p, header(p).snapshotsOffset() + 12, (short) 0);
        assertRefused(p, ImageException.Kind.CORRUPT, "empty id");
    }

    @Test
    void snapshotCountBeyondTable() throws Exception {
        Path p = snapshotted();
        writeInt(p, 60, 2);
        assertRefused(p, ImageException.Kind.CORRUPT, "past the end of the file");
    }

    @Test
    void snapshotNamesPastEof() throws Exception {
        Path p = snapshotted();
        writeShort(p, header(p).snapshotsOffset() + 14, (short) 0xffff);
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
            ch.truncate(header(p).snapshotsOffset() + 64);
        }
        assertRefused(p, ImageException.Kind.CORRUPT, "past the end of the file");
    }

    @Test
    void duplicateSnapshotId() throws Exception {
        Path p = snapshotted();
        Tools.check("qemu-img", "snapshot", "-c", "two", p.toString());
        // Both ids are one character ("1", "2"): make the second "1".
        Qcow2Header h = header(p);
        long second = h.snapshotsOffset() + 40 + 24 + 1 + 3; // first entry: 40 fixed + 24 extra + id "1" + name "one"
        second = (second + 7) & ~7L;
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(new byte[] {'1'}), second + 40 + 24);
        }
        assertRefused(p, ImageException.Kind.CORRUPT, "snapshot id '1' appears twice");
    }

    /** The L2 cache is bounded: with room for a single table, every read still comes out right. */
    @Test
    void tinyL2CacheReadsTheSame() throws Exception {
        Path p = make("many.qcow2", "cluster_size=512", "4M", "write -P 0x61 0 1M", "write -P 0x62 2M 1M", "write -z 1M 4k");
        ByteBuffer big = ByteBuffer.allocate(4 << 20);
        ByteBuffer small = ByteBuffer.allocate(4 << 20);
        try (DiskImage a = Images.open(p, OpenOptions.DEFAULTS); DiskImage b = Images.open(p, OpenOptions.DEFAULTS.withCacheBytes(1))) {
            a.read(big, 0);
            for (long pos = 0; pos < b.size(); pos += 3000) {
                ByteBuffer part = small.slice((int) pos, (int) Math.min(3000, b.size() - pos));
                b.read(part, pos);
            }
        }
        assertArrayEquals(big.array(), small.array());
    }

    /** Reads from several threads at once give the same bytes as one thread. */
    @Test
    void concurrentReads() throws Exception {
        Path p = make("conc.qcow2", "cluster_size=4k,compression_type=zstd", "2M", "write -c -P 0x71 0 256k", "write -P 0x72 1M 512k");
        try (DiskImage disk = Images.open(p, OpenOptions.DEFAULTS.withCacheBytes(8192))) {
            ByteBuffer expected = ByteBuffer.allocate((int) disk.size());
            disk.read(expected, 0);
            List<Thread> threads = new ArrayList<>();
            List<Throwable> failures = java.util.Collections.synchronizedList(new ArrayList<>());
            for (int t = 0; t < 4; t++) {
                int seed = t;
                Thread thread = new Thread(() -> {
                    try {
                        java.util.Random r = new java.util.Random(seed);
                        for (int i = 0; i < 200; i++) {
                            int pos = r.nextInt((int) disk.size() - 10000);
                            ByteBuffer b = ByteBuffer.allocate(1 + r.nextInt(9999));
                            disk.read(b, pos);
                            if (b.flip().mismatch(expected.slice(pos, b.limit())) >= 0) throw new AssertionError("mismatch at " + pos);
                        }
                    } catch (Throwable e) {
                        failures.add(e);
                    }
                });
                thread.start();
                threads.add(thread);
            }
            for (Thread t : threads) t.join();
            assertEquals(List.of(), failures);
        }
    }
}
