package org.vdiskload.attach;

import org.vdiskload.attach.fuse.LoopDevices;
import org.vdiskload.cli.CliRun;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.api.parallel.Isolated;
import org.vdiskload.testing.Tools;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code vdiskload FILE} end to end on this machine's kernel (root; FUSE and loop, no partition
 * support): real devices under /dev, real mounts, real ext4, checked by qemu-img afterwards.
 * Isolated: it owns /dev/&lt;fmt&gt;N and /run/vdiskload while it runs.
 */
@Isolated
class AttachTest {
    private static final Duration LIMIT = Duration.ofMinutes(3);

    @TempDir
    static Path disks;
    @TempDir
    Path dir;

    private Mounts mounts;

    /** One line of disks.txt: FILE FORMAT TABLE PARTITION FS_FILE SHA256. */
    record Disk(Path file, String format, String table, String partition, String fsFile, String sha256) {}

    private static final List<Disk> DISKS = new ArrayList<>();

    @BeforeAll
    static void makeDisks() throws Exception {
        Tools.generate("disks.sh", disks);
        for (String line : Files.readAllLines(disks.resolve("disks.txt"))) {
            String[] f = line.trim().split("\\s+");
            // FS_FILE is absolute inside the file system: /hello.txt
            if (f.length == 6 && !f[0].startsWith("#")) DISKS.add(new Disk(disks.resolve(f[0]), f[1], f[2], f[3], f[4].replaceFirst("^/+", ""), f[5]));
        }
    }

    @BeforeEach
    void trackMounts() {
        mounts = new Mounts(dir);
    }

    @AfterEach
    void cleanUp() throws Exception {
        mounts.unmountAll();
        // Only this test's attachments: never the machine's others (a user's, another checkout's).
        for (Attachment a : StateDir.system().list()) {
            if (a.image().startsWith(dir.toString()) || a.image().startsWith(disks.toString())) vdiskload("-d", a.path());
        }
    }

    static CliRun vdiskload(String... args) {
        return CliRun.run(LIMIT, args);
    }

    private static Disk disk(String file) {
        return DISKS.stream().filter(d -> d.file().getFileName().toString().equals(file)).findFirst()
                .orElseThrow(() -> new AssertionError(file + " not in disks.txt: " + DISKS));
    }

    private Path mount(String device, boolean readOnly) throws Exception {
        return mounts.mount(device, "ext4", readOnly);
    }

    private void umount(Path m) throws Exception {
        mounts.umount(m);
    }

    private static String sha256(Path f) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(f)));
    }

    private static String family(String format) {
        return DeviceNames.family(format);
    }

    /** Attach rw, check a file, write one, detach; qemu-img check clean; re-attach -r and find it. */
    private void roundTrip(Disk d) throws Exception {
        Path image = Files.copy(d.file(), dir.resolve(d.file().getFileName()));
        CliRun a = vdiskload("--show", image.toString());
        assertEquals(0, a.exit(), a.toString());
        String dev = a.lastLine();
        assertTrue(dev.startsWith("/dev/" + family(d.format())), dev);
        Path m = mount(dev + "p" + d.partition(), false);
        assertEquals(d.sha256(), sha256(m.resolve(d.fsFile())), "sha256 of " + d.fsFile() + " through " + dev);
        byte[] news = ("written through " + dev + " at " + System.nanoTime() + "\n").repeat(5000).getBytes();
        Files.write(m.resolve("new.txt"), news);
        umount(m);
        CliRun det = vdiskload("-d", dev);
        assertEquals(0, det.exit(), det.toString());
        assertFalse(Files.exists(Path.of(dev)), dev + " is gone after -d");
        Tools.Result check = Tools.run(List.of("qemu-img", "check", "-f", d.format(), image.toString()), null);
        // qemu-img has no checks for raw, qcow and vpc (exit 63): for those the re-read below is the check.
        int expected = List.of("raw", "qcow", "vpc").contains(d.format()) ? 63 : 0;
        assertEquals(expected, check.exit(), "qemu-img check after a write through " + dev + ": " + check.stdout() + check.stderr());

        CliRun ro = vdiskload("-r", "--show", image.toString());
        assertEquals(0, ro.exit(), ro.toString());
        Path m2 = mount(ro.lastLine() + "p" + d.partition(), true);
        assertEquals(HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(news)), sha256(m2.resolve("new.txt")));
        assertEquals(d.sha256(), sha256(m2.resolve(d.fsFile())));
        umount(m2);
        assertEquals(0, vdiskload("-d", ro.lastLine()).exit());
    }

    @Test
    void raw() throws Exception {
        roundTrip(disk("gpt-ext4.raw"));
    }

    @Test
    void qcow() throws Exception {
        roundTrip(disk("gpt-ext4.qcow"));
    }

    @Test
    void qcow2() throws Exception {
        roundTrip(disk("gpt-ext4.qcow2"));
    }

    @Test
    void vmdk() throws Exception {
        roundTrip(disk("gpt-ext4.vmdk"));
    }

    @Test
    void vdi() throws Exception {
        roundTrip(disk("gpt-ext4.vdi"));
    }

    @Test
    void vhd() throws Exception {
        roundTrip(disk("gpt-ext4.vhd"));
    }

    @Test
    void vhdx() throws Exception {
        roundTrip(disk("gpt-ext4.vhdx"));
    }

    @Test
    void mbrWithLogicalPartitions() throws Exception {
        Disk d = disk("mbr-logical.qcow2");
        CliRun a = vdiskload("-r", "--show", d.file().toString());
        assertEquals(0, a.exit(), a.toString());
        String dev = a.lastLine();
        for (String p : List.of("p1", "p2", "p5", "p6", "p7")) assertTrue(Files.exists(Path.of(dev + p)), dev + p + " exists: " + a.out());
        Path m = mount(dev + "p" + d.partition(), true);
        assertEquals(d.sha256(), sha256(m.resolve(d.fsFile())));
    }

    @Test
    void diskWithoutPartitionTable() throws Exception {
        Disk d = disk("notable.qcow2");
        CliRun a = vdiskload("-r", "--show", d.file().toString());
        assertEquals(0, a.exit(), a.toString());
        assertEquals(1, a.out().lines().count(), "no partitions: " + a.out());
        Path m = mount(a.lastLine(), true);
        assertEquals(d.sha256(), sha256(m.resolve(d.fsFile())));
    }

    @Test
    void listAssociatedAndDetachRefusedWhileMounted() throws Exception {
        Disk d = disk("gpt-ext4.qcow2");
        Path image = Files.copy(d.file(), dir.resolve("listed.qcow2"));
        CliRun a = vdiskload("--show", image.toString());
        assertEquals(0, a.exit(), a.toString());
        String dev = a.lastLine();

        CliRun l = vdiskload("-l");
        assertTrue(l.out().lines().findFirst().orElse("").matches("NAME +BACKEND +DEVICE +SIZE +RO +FORMAT +MOUNTPOINT +IMAGE +BACKING"), l.out());
        String row = l.out().lines().filter(x -> x.startsWith(dev + " ")).findFirst().orElseThrow(() -> new AssertionError(l.out()));
        assertTrue(row.matches(".* fuse +/dev/loop[0-9]+ +[0-9]+ +0 +qcow2 +- +" + image + ".*"), row);
        assertTrue(vdiskload("-l", "--json").out().contains("\"partitions\""));
        assertTrue(vdiskload("-j", image.toString()).out().contains(dev));
        assertEquals("", vdiskload("-j", d.file().toString()).out(), "another file is not associated");
        // The shipped udev helper names each kernel device as attach did.
        Attachment rec = StateDir.system().list().stream().filter(x -> x.path().equals(dev)).findFirst().orElseThrow();
        Path devname = Tools.repo().resolve("udev/vdiskload-devname");
        assertEquals(rec.name(), Tools.check("sh", devname.toString(), Path.of(rec.device()).getFileName().toString()).strip());
        for (Attachment.PartitionDevice p : rec.partitions()) {
            assertEquals(p.name(), Tools.check("sh", devname.toString(), Path.of(p.device()).getFileName().toString()).strip());
        }
        assertNotEquals(0, Tools.run(List.of("sh", devname.toString(), "sda"), null).exit(), "not ours");

        Path m = mount(dev + "p1", false);
        assertTrue(vdiskload("-l").out().lines().anyMatch(x -> x.startsWith(dev + " ") && x.matches(".* qcow2 +" + m + " .*")), "-l shows the mount point");
        CliRun refused = vdiskload("-d", dev); // a mount made by hand is its maker's to undo
        assertEquals(1, refused.exit());
        assertEquals(1, refused.err().lines().count(), refused.err());
        assertTrue(refused.err().contains(dev + "p1 is busy: mounted on " + m), refused.err());
        assertTrue(Files.exists(Path.of(dev)), "still attached");
        umount(m);

        CliRun b = vdiskload("-r", "--show", d.file().toString());
        assertEquals(0, b.exit(), b.toString());
        assertNotEquals(dev, b.lastLine(), "the next free index");
        assertEquals(0, vdiskload("-D").exit(), "-D detaches every attachment");
        assertTrue(vdiskload("-l").out().lines().noneMatch(x -> x.startsWith(dev + " ") || x.startsWith(b.lastLine() + " ")));
        assertFalse(Files.exists(Path.of(dev)));
        assertFalse(Files.exists(Path.of(b.lastLine())));
    }

    @Test
    void secondReadWriteAttachIsRefused() throws Exception {
        Path image = Files.copy(disk("gpt-ext4.vhdx").file(), dir.resolve("twice.vhdx"));
        assertEquals(0, vdiskload(image.toString()).exit());
        CliRun second = vdiskload(image.toString());
        assertEquals(1, second.exit());
        assertEquals(1, second.err().lines().count(), second.err());
        assertTrue(second.err().contains("is in use"), second.err());
        assertEquals(1, vdiskload("-j", image.toString()).out().lines().count() - 1, "one attachment (plus the header line)");
    }

    @Test
    void imageOpenReadWriteByQemuIsRefused() throws Exception {
        Path image = Files.copy(disk("gpt-ext4.qcow2").file(), dir.resolve("qemu-has-it.qcow2"));
        Process q = new ProcessBuilder("qemu-nbd", "-k", dir.resolve("q.sock").toString(), "-f", "qcow2", image.toString())
                .redirectErrorStream(true).redirectOutput(dir.resolve("qemu-nbd.log").toFile()).start();
        try {
            // qemu-nbd may listen before it has opened the image: wait for its write lock (byte 101) to show
            String held = ":" + Files.getAttribute(image, "unix:ino") + " 100 101";
            assertTimeoutPreemptively(Duration.ofSeconds(30), () -> {
                while (Files.readAllLines(Path.of("/proc/locks")).stream().noneMatch(l -> l.contains("OFDLCK") && l.endsWith(held))) Thread.sleep(20);
            });
            CliRun r = vdiskload(image.toString());
            assertEquals(1, r.exit(), r.toString());
            assertEquals(1, r.err().lines().count(), r.err());
            assertTrue(r.err().contains("is in use") && r.err().contains("is writing it"), r.err());
            assertTrue(vdiskload("-j", image.toString()).out().isEmpty(), "nothing left behind");
        } finally {
            q.destroy();
            q.waitFor(10, TimeUnit.SECONDS);
            q.destroyForcibly();
        }
    }

    @Test
    void corruptImageLeavesNothingBehind() throws Exception {
        Path image = Files.copy(disk("gpt-ext4.qcow2").file(), dir.resolve("corrupt.qcow2"));
        try (var ch = java.nio.channels.FileChannel.open(image, java.nio.file.StandardOpenOption.WRITE)) {
            ch.write(java.nio.ByteBuffer.wrap(new byte[] {0x7f, 0, 0, 0, 0, 0, 0, 0}), 40); // l1_table_offset far past EOF
        }
        List<String> loopsBefore = Tools.check("losetup", "-n", "-O", "NAME").lines().toList();
        List<String> namesBefore = Tools.check("sh", "-c", "ls /dev | grep '^qcow' || true").lines().toList();
        CliRun r = vdiskload(image.toString());
        assertEquals(1, r.exit());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().startsWith("vdiskload: " + image), r.err());
        assertTrue(vdiskload("-j", image.toString()).out().isEmpty(), "no record left");
        assertEquals(loopsBefore, Tools.check("losetup", "-n", "-O", "NAME").lines().toList());
        assertEquals(namesBefore, Tools.check("sh", "-c", "ls /dev | grep '^qcow' || true").lines().toList(), "no /dev name left");
    }

    @Test
    void streamOptimizedVmdkIsRefusedReadWriteAndServedReadOnlyOrAsSnapshot() throws Exception {
        Disk d = disk("gpt-ext4.raw");
        Path image = dir.resolve("stream.vmdk");
        Tools.check("qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", d.file().toString(), image.toString());
        byte[] before = Files.readAllBytes(image);
        CliRun rw = vdiskload(image.toString());
        assertEquals(1, rw.exit(), rw.toString());
        assertEquals(1, rw.err().lines().count(), rw.err());
        assertTrue(rw.err().startsWith("vdiskload: " + image) && rw.err().contains("-r") && rw.err().contains("--snapshot"), rw.err());
        assertTrue(vdiskload("-j", image.toString()).out().isEmpty(), "nothing left behind");
        for (String mode : List.of("-r", "--snapshot")) {
            CliRun a = vdiskload(mode, "--show", image.toString());
            assertEquals(0, a.exit(), a.toString());
            Path m = mount(a.lastLine() + "p" + d.partition(), mode.equals("-r"));
            assertEquals(d.sha256(), sha256(m.resolve(d.fsFile())), mode);
            umount(m);
            assertEquals(0, vdiskload("-d", a.lastLine()).exit());
        }
        assertTrue(java.util.Arrays.equals(before, Files.readAllBytes(image)), "the image is untouched");
    }

    @Test
    void killedServingProcessIsCleanedByDetachAndImageRepairs() throws Exception {
        Path image = Files.copy(disk("gpt-ext4.qcow2").file(), dir.resolve("killed.qcow2"));
        CliRun a = vdiskload("--show", image.toString());
        assertEquals(0, a.exit(), a.toString());
        String dev = a.lastLine();
        Attachment rec = StateDir.system().list().stream().filter(x -> x.path().equals(dev)).findFirst().orElseThrow();
        // Writes answered before the server dies are in the image (its metadata is written through);
        // writes in flight then fail, and the image is left for check -r (leaks at most).
        // The partition's last 4 MiB: clusters the image has not allocated, so the writes change metadata.
        Attachment.PartitionDevice p1 = rec.partitions().get(0);
        long at = p1.size() / 65536 - 64;
        Path written = dir.resolve("written.bin");
        Tools.check("dd", "if=/dev/urandom", "of=" + written, "bs=64k", "count=64");
        Tools.check("dd", "if=" + written, "of=" + dev + "p1", "bs=64k", "seek=" + at, "oflag=direct");
        ProcessHandle daemon = ProcessHandle.of(rec.pid()).orElseThrow();
        daemon.destroyForcibly();
        daemon.onExit().orTimeout(30, TimeUnit.SECONDS).join();
        Tools.Result io = Tools.run(List.of("dd", "if=" + dev, "of=/dev/null", "bs=4k", "count=1", "iflag=direct"), null);
        assertNotEquals(0, io.exit(), "I/O to a device whose server is gone fails: " + io);
        CliRun again = vdiskload("--reconnect", dev);
        assertEquals(1, again.exit(), again.toString());
        assertEquals("vdiskload: " + dev + ": backend fuse cannot reconnect; detach it (-d) and attach the image again", again.err().strip());
        CliRun d = vdiskload("-d", dev);
        assertEquals(0, d.exit(), d.toString());
        assertFalse(Files.exists(Path.of(dev)));
        assertTrue(vdiskload("-j", image.toString()).out().isEmpty(), "no record left");
        assertTrue(LoopDevices.under(StateDir.system().mountPoint(rec.name())).isEmpty());
        Tools.Result check = Tools.run(List.of("qemu-img", "check", "-r", "leaks", image.toString()), null);
        assertEquals(0, check.exit(), check.stdout() + check.stderr());
        Path back = dir.resolve("back.raw");
        Tools.check("qemu-img", "convert", "-f", "qcow2", "-O", "raw", image.toString(), back.toString());
        byte[] found = new byte[64 * 65536];
        try (RandomAccessFile raw = new RandomAccessFile(back.toFile(), "r")) {
            raw.seek(p1.start() + at * 65536);
            raw.readFully(found);
        }
        assertArrayEquals(Files.readAllBytes(written), found, "the answered writes are in the image");
    }

    @Test
    void wrongUsageIsOneLine() {
        for (String[] args : new String[][] {{"-d"}, {"-l", "-D"}, {"--backend", "nbd", "x.qcow2"}, {"-r", "--snapshot", "x"}, {"a", "b"}, {"-d", "/dev/qcow99"},
                {"--reconnect"}, {"--reconnect", "/dev/qcow99"}, {"--reconnect", "-d", "/dev/qcow0"}}) {
            CliRun r = vdiskload(args);
            assertEquals(1, r.exit(), String.join(" ", args) + ": " + r);
            assertEquals(1, r.err().lines().count(), String.join(" ", args) + ": " + r.err());
        }
    }

    @Test
    void snapshotWritesAreDropped() throws Exception {
        Disk d = disk("gpt-ext4.vmdk");
        Path image = Files.copy(d.file(), dir.resolve("snap.vmdk"));
        byte[] before = Files.readAllBytes(image);
        CliRun a = vdiskload("--snapshot", "--show", image.toString());
        assertEquals(0, a.exit(), a.toString());
        Path m = mount(a.lastLine() + "p1", false);
        Files.writeString(m.resolve("gone.txt"), "dropped at detach");
        umount(m);
        assertEquals(0, vdiskload("-d", a.lastLine()).exit());
        assertTrue(java.util.Arrays.equals(before, Files.readAllBytes(image)), "the image is untouched");
    }
}
