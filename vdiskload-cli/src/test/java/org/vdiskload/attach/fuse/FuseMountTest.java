package org.vdiskload.attach.fuse;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.partition.PartitionTable;
import org.vdiskload.testing.Tools;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A qcow2 made by qemu, mounted through FUSE: what reads, writes and loop devices on the files see. */
class FuseMountTest {
    private static final long MIB = 1 << 20;
    private static final long SIZE = 64 * MIB;
    private static final long PART_OFFSET = 1 * MIB, PART_LENGTH = 40 * MIB;

    @TempDir
    Path dir;
    private Path qcow2;
    private Path raw;
    private Path mnt;
    private final List<Runnable> cleanups = new ArrayList<>();
    /** Closed after the cleanups, unless a test closed them itself (DiskImage.close is not idempotent). */
    private final List<DiskImage> images = new ArrayList<>();

    /** Data, zeroed and never-written ranges, some crossing the partition's edges. */
    @BeforeEach
    void makeImage() throws Exception {
        qcow2 = dir.resolve("disk.qcow2");
        raw = dir.resolve("disk.raw");
        mnt = Files.createDirectory(dir.resolve("mnt"));
        Tools.check("qemu-img", "create", "-q", "-f", "qcow2", qcow2.toString(), String.valueOf(SIZE));
        Tools.check("qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 1536k", "-c", "write -P 0xa5 10M 3M",
                "-c", "write -z 11M 64k", "-c", "write -P 0x11 40M 2M", "-c", "write -P 0x77 63M 1M", qcow2.toString());
        Tools.check("qemu-img", "convert", "-f", "qcow2", "-O", "raw", qcow2.toString(), raw.toString());
    }

    @AfterEach
    void cleanUp() throws IOException {
        for (int i = cleanups.size() - 1; i >= 0; i--) cleanups.get(i).run();
        for (DiskImage d : images) d.close();
    }

    /** Closes an image in the middle of a test, to look at it with qemu-img. */
    private void closeImage(DiskImage d) throws IOException {
        images.remove(d);
        d.close();
    }

    private DiskImage open(boolean writable) throws IOException {
        DiskImage d = Images.open(qcow2, OpenOptions.DEFAULTS.withWritable(writable));
        images.add(d);
        return d;
    }

    private FuseMount mount(DiskImage d, int workers) throws IOException {
        FuseMount m = FuseMount.mount(mnt, List.of(new FuseFile("disk", d, 0, SIZE, true),
                new FuseFile("part1", d, PART_OFFSET, PART_LENGTH, true),
                new FuseFile("ro", d, 0, SIZE, false)), workers);
        cleanups.add(m::close);
        return m;
    }

    /** A loop device on {@code file}, detached by the cleanups. */
    private String losetup(Path file) throws Exception {
        String loop = Tools.check("losetup", "--find", "--show", file.toString()).trim();
        cleanups.add(() -> quietly("losetup", "-d", loop));
        return loop;
    }

    private static void quietly(String... cmd) {
        try {
            Tools.run(List.of(cmd), null);
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    private byte[] slice(long offset, long length) throws IOException {
        try (FileChannel c = FileChannel.open(raw)) {
            ByteBuffer b = ByteBuffer.allocate((int) length);
            while (b.hasRemaining() && c.read(b, offset + b.position()) > 0) { }
            return b.array();
        }
    }

    @Test
    void filesReadAsQemuConvertsAndStatRight() {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            FuseMount m = mount(open(true), 2);
            assertArrayEquals(Files.readAllBytes(raw), Files.readAllBytes(m.file("disk")));
            assertArrayEquals(slice(PART_OFFSET, PART_LENGTH), Files.readAllBytes(m.file("part1")));
            assertEquals(SIZE, Files.size(m.file("disk")));
            assertEquals(PART_LENGTH, Files.size(m.file("part1")));
            assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(m.file("disk"))));
            assertEquals("r--------", PosixFilePermissions.toString(Files.getPosixFilePermissions(m.file("ro"))));
            try (var names = Files.list(mnt)) {
                assertEquals(List.of("disk", "part1", "ro"), names.map(p -> p.getFileName().toString()).sorted().toList());
            }
            assertTrue(Tools.check("stat", "-c", "%b %B", m.file("disk").toString()).trim().equals(SIZE / 512 + " 512"));
        });
    }

    @Test
    void readOnlyFileRefusesWritersAndMetadataStaysPut() {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            FuseMount m = mount(open(true), 1);
            FileSystemException e = assertThrows(FileSystemException.class, () -> FileChannel.open(m.file("ro"), StandardOpenOption.WRITE));
            assertTrue(String.valueOf(e.getMessage()).contains("Read-only"), e.getMessage());
            assertThrows(IOException.class, () -> FileChannel.open(m.file("disk"), StandardOpenOption.WRITE).truncate(1).close());
            assertThrows(IOException.class, () -> Files.createFile(mnt.resolve("new")));
            assertThrows(IOException.class, () -> Files.delete(m.file("disk")));
            assertEquals(SIZE, Files.size(m.file("disk")));
        });
    }

    @Test
    void readOnlyImageShowsReadOnlyFiles() {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            FuseMount m = mount(open(false), 1);
            assertEquals("r--------", PosixFilePermissions.toString(Files.getPosixFilePermissions(m.file("disk"))));
            assertThrows(FileSystemException.class, () -> FileChannel.open(m.file("disk"), StandardOpenOption.WRITE));
            assertArrayEquals(Files.readAllBytes(raw), Files.readAllBytes(m.file("disk")));
        });
    }

    @Test
    void concurrentReadersSeeTheImage() {
        assertTimeoutPreemptively(Duration.ofSeconds(120), () -> {
            FuseMount m = mount(open(true), 4);
            byte[] model = Files.readAllBytes(raw);
            ExecutorService pool = Executors.newFixedThreadPool(6);
            try {
                List<Future<?>> done = new ArrayList<>();
                for (int t = 0; t < 6; t++) {
                    long seed = t;
                    done.add(pool.submit(() -> {
                        Random r = new Random(seed);
                        try (FileChannel c = FileChannel.open(m.file(seed % 2 == 0 ? "disk" : "part1"))) {
                            long base = seed % 2 == 0 ? 0 : PART_OFFSET, len = seed % 2 == 0 ? SIZE : PART_LENGTH;
                            for (int i = 0; i < 200; i++) {
                                int n = 1 + r.nextInt(3 << 20);
                                long at = (long) (r.nextDouble() * (len - n));
                                ByteBuffer b = ByteBuffer.allocate(n);
                                while (b.hasRemaining()) assertTrue(c.read(b, at + b.position()) > 0);
                                assertArrayEquals(Arrays.copyOfRange(model, (int) (base + at), (int) (base + at + n)), b.array());
                            }
                        }
                        return null;
                    }));
                }
                for (Future<?> f : done) f.get();
            } finally {
                pool.shutdownNow();
            }
        });
    }

    @Test
    void writesReachTheImage() {
        assertTimeoutPreemptively(Duration.ofSeconds(120), () -> {
            DiskImage d = open(true);
            FuseMount m = mount(d, 2);
            Random r = new Random(7);
            try (FileChannel model = FileChannel.open(raw, StandardOpenOption.WRITE);
                 FileChannel disk = FileChannel.open(m.file("disk"), StandardOpenOption.WRITE);
                 FileChannel part = FileChannel.open(m.file("part1"), StandardOpenOption.WRITE)) {
                for (int i = 0; i < 40; i++) {
                    boolean inPart = i % 2 == 1;
                    long len = inPart ? PART_LENGTH : SIZE;
                    byte[] b = new byte[1 + r.nextInt(3 << 20)];
                    r.nextBytes(b);
                    long at = (long) (r.nextDouble() * (len - b.length));
                    write(inPart ? part : disk, b, at);
                    write(model, b, (inPart ? PART_OFFSET : 0) + at);
                }
                disk.force(true);
                part.force(true);
                // Writes never grow a file: one at the end fails, one across it stops there.
                assertThrows(IOException.class, () -> part.write(ByteBuffer.wrap(new byte[512]), PART_LENGTH));
                assertEquals(100, part.write(ByteBuffer.allocate(512), PART_LENGTH - 100));
                write(model, new byte[100], PART_OFFSET + PART_LENGTH - 100);
            }
            assertEquals(SIZE, Files.size(m.file("disk")));
            m.close();
            closeImage(d);
            Tools.check("qemu-img", "check", "-q", qcow2.toString());
            Tools.check("qemu-img", "compare", "-q", "-f", "raw", "-F", "qcow2", raw.toString(), qcow2.toString());
        });
    }

    private static void write(FileChannel c, byte[] b, long at) throws IOException {
        ByteBuffer buf = ByteBuffer.wrap(b);
        while (buf.hasRemaining()) c.write(buf, at + buf.position());
    }

    @Test
    void loopDeviceOnTheFileReadsTheImage() {
        assertTimeoutPreemptively(Duration.ofSeconds(120), () -> {
            FuseMount m = mount(open(true), 2);
            String loop = losetup(m.file("disk"));
            String loopPart = losetup(m.file("part1"));
            Path copy = dir.resolve("copy.raw");
            Tools.check("dd", "if=" + loop, "of=" + copy, "bs=1M", "iflag=direct", "status=none");
            assertArrayEquals(Files.readAllBytes(raw), Files.readAllBytes(copy));
            Tools.check("dd", "if=" + loopPart, "of=" + copy, "bs=1M", "iflag=direct", "status=none");
            assertArrayEquals(slice(PART_OFFSET, PART_LENGTH), Files.readAllBytes(copy));
        });
    }

    @Test
    void blkdiscardOnTheLoopDeviceUnmapsInTheImage() {
        assertTimeoutPreemptively(Duration.ofSeconds(120), () -> {
            DiskImage d = open(true);
            FuseMount m = mount(d, 2);
            String loop = losetup(m.file("part1"));
            // part1 byte 9 MiB = disk byte 10 MiB: 3 MiB of data there
            Tools.check("blkdiscard", "-o", String.valueOf(9 * MIB), "-l", String.valueOf(2 * MIB), loop);
            quietly("losetup", "-d", loop);
            m.close();
            closeImage(d);
            Tools.check("qemu-img", "check", "-q", qcow2.toString());
            String map = Tools.check("qemu-img", "map", "--output=json", qcow2.toString());
            assertTrue(map.contains("\"start\": " + 10 * MIB + ", \"length\": " + 2 * MIB + ", \"depth\": 0, \"present\": false, \"zero\": true")
                    || map.contains("\"start\": " + 10 * MIB + ", \"length\": " + 2 * MIB + ", \"depth\": 0, \"present\": true, \"zero\": true"), map);
            Tools.check("qemu-img", "convert", "-f", "qcow2", "-O", "raw", qcow2.toString(), raw.toString());
            assertArrayEquals(new byte[(int) (2 * MIB)], slice(10 * MIB, 2 * MIB));
            assertArrayEquals(filled(0xa5, MIB), slice(12 * MIB, MIB));
        });
    }

    /**
     * Writes 64 KiB at a time to {@code file} from another process until a write fails or 4 MiB are
     * written; returns the failure's errno name (EIO, ENOSPC...) or "none".
     */
    private static String firstWriteError(Path file, long offset) throws Exception {
        return Tools.check("python3", "-c", """
                import errno, os, sys
                fd = os.open(sys.argv[1], os.O_WRONLY)
                at = int(sys.argv[2])
                try:
                    while at < int(sys.argv[2]) + (4 << 20):
                        at += os.pwrite(fd, os.urandom(65536), at)
                    print("none")
                except OSError as e:
                    print(errno.errorcode[e.errno])
                """, file.toString(), Long.toString(offset)).trim();
    }

    @Test
    void aFullHostFileSystemIsEnospcThroughTheFile() {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            Path small = Files.createDirectory(dir.resolve("small"));
            Tools.check("mount", "-t", "tmpfs", "-o", "size=1m", "vdiskload-test", small.toString());
            cleanups.add(() -> quietly("umount", "--lazy", small.toString())); // the image closes after the cleanups
            Path img = small.resolve("big.raw");
            Tools.check("truncate", "-s", "8M", img.toString());
            DiskImage d = Images.open(img, OpenOptions.DEFAULTS.withWritable(true));
            images.add(d);
            FuseMount m = FuseMount.mount(mnt, List.of(new FuseFile("disk", d, 0, d.size(), true)), 2);
            cleanups.add(m::close);
            assertEquals("ENOSPC", firstWriteError(m.file("disk"), 0));
        });
    }

    @Test
    void aRangeTheImageKeepsIsErofsThroughTheFile() {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            Files.write(dir.resolve("a.raw"), new byte[(int) MIB]);
            try (var gz = new java.util.zip.GZIPOutputStream(Files.newOutputStream(dir.resolve("z.gz")))) {
                gz.write(new byte[(int) MIB]);
            }
            Path layout = Files.writeString(dir.resolve("disk.json"), """
                    { "vdiskload-layout": 1, "table": "gpt", "partitions": [ { "source": "a.raw" }, { "source": "z.gz" } ] }""");
            DiskImage d = Images.open(layout, OpenOptions.DEFAULTS.withWritable(true));
            images.add(d);
            var compressed = PartitionTable.read(d).partitions().get(1);
            FuseMount m = FuseMount.mount(mnt, List.of(new FuseFile("disk", d, 0, d.size(), true),
                    new FuseFile("p2", d, compressed.start(), compressed.length(), true)), 1);
            cleanups.add(m::close);
            assertEquals("EROFS", firstWriteError(m.file("p2"), 0), "a compressed source takes no writes");
            assertEquals("EROFS", firstWriteError(m.file("disk"), 0), "nor does the partition table");
        });
    }

    private static byte[] filled(int value, long length) {
        byte[] b = new byte[(int) length];
        Arrays.fill(b, (byte) value);
        return b;
    }

    @Test
    void ext4OnALoopDeviceOverTheFileChecksClean() {
        assertTimeoutPreemptively(Duration.ofSeconds(180), () -> {
            DiskImage d = open(true);
            FuseMount m = mount(d, 2);
            String loop = losetup(m.file("part1"));
            Tools.check("mkfs.ext4", "-q", "-F", loop);
            Path fs = Files.createDirectory(dir.resolve("fs"));
            Tools.check("mount", loop, fs.toString());
            cleanups.add(() -> quietly("umount", fs.toString()));
            byte[] content = new byte[5 << 20];
            new Random(3).nextBytes(content);
            Files.write(fs.resolve("hello.bin"), content);
            Tools.umount(fs);
            Tools.check("losetup", "-d", loop);
            m.close();
            closeImage(d);
            Tools.check("qemu-img", "check", "-q", qcow2.toString());
            Tools.check("qemu-img", "convert", "-f", "qcow2", "-O", "raw", qcow2.toString(), raw.toString());
            Path partRaw = dir.resolve("part.raw");
            Files.write(partRaw, slice(PART_OFFSET, PART_LENGTH));
            Tools.check("e2fsck", "-fn", partRaw.toString());
            String listing = Tools.check("debugfs", "-R", "stat /hello.bin", partRaw.toString());
            assertTrue(listing.contains("Size: " + content.length), listing);
        });
    }

    @Test
    void closeTwiceAndUnmountByAnyoneEndTheSession() {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            FuseMount m = mount(open(true), 3);
            Tools.umount(mnt);
            m.awaitUnmounted();
            m.close();
            m.close();
            FuseMount again = mount(open(true), 1);
            again.close();
            again.close();
            again.awaitUnmounted();
            assertTrue(!Tools.check("cat", "/proc/self/mounts").contains(mnt.toString()));
        });
    }
}
