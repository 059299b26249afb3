package org.vdiskload.attach;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.api.parallel.Isolated;
import org.vdiskload.cli.CliRun;
import org.vdiskload.testing.Tools;

import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code vdiskload mount}, {@code umount} and {@code tar} on this machine's kernel (root; the FUSE backend,
 * which reads the partition table itself where the kernel's loop devices scan none), on the disks of
 * testdata/mount-disks.sh. Isolated: it owns /dev/&lt;fmt&gt;N and /run/vdiskload while it runs.
 */
@Isolated
class MountTest {
    private static final Duration LIMIT = Duration.ofMinutes(3);
    private static final String HELLO = "hello from a vdiskload mount test\n";
    private static final String UUID = "6b0c3a5e-2d47-4c1a-9e5b-3f1d2c4b5a69";

    @TempDir
    static Path disks;
    @TempDir
    Path dir;

    @BeforeAll
    static void makeDisks() throws Exception {
        Tools.generate("mount-disks.sh", disks);
    }

    @AfterEach
    void cleanUp() throws Exception {
        for (Attachment a : StateDir.system().list()) {
            if (a.image().startsWith(dir.toString()) || a.image().startsWith(disks.toString())) {
                if (!a.mountedOn().isEmpty()) Tools.run(List.of("umount", "-l", a.mountedOn()), null);
                vdiskload("-d", a.path());
            }
        }
    }

    static CliRun vdiskload(String... args) {
        return CliRun.run(LIMIT, args);
    }

    private Path image(String name) throws Exception {
        return Files.copy(disks.resolve(name), dir.resolve(name));
    }

    private Path newDir() throws Exception {
        return Files.createTempDirectory(dir, "mnt");
    }

    /** Mounts {@code args} (ending in DIR) and checks that the file system holds hello.txt. */
    private void mountAndRead(Path m, String... args) throws Exception {
        CliRun r = vdiskload(args);
        assertEquals(0, r.exit(), r.toString());
        assertTrue(BlockDevices.isMounted(m), m + " is mounted");
        assertEquals(HELLO, Files.readString(m.resolve("hello.txt")));
    }

    /** {@code vdiskload umount} and what it must leave: no mount, no attachment of ours, no names in /dev. */
    private void umountLeavingNothing(Path m) throws Exception {
        CliRun u = vdiskload("umount", m.toString());
        assertEquals(0, u.exit(), u.toString());
        assertFalse(BlockDevices.isMounted(m));
        assertNothingLeft();
    }

    private void assertNothingLeft() throws Exception {
        assertEquals("", vdiskload("-l").out(), "-l lists nothing");
        assertEquals(Set.of(), ours(), "no /dev names of attachments");
        try (DirectoryStream<Path> s = Files.newDirectoryStream(StateDir.DEFAULT, "*.json")) {
            assertFalse(s.iterator().hasNext(), "no records in /run/vdiskload");
        }
    }

    /** The names attaching makes in /dev (/dev/qcow0, /dev/qcow0p2, /dev/vmdk0...). */
    private static Set<String> ours() throws Exception {
        Set<String> names = new TreeSet<>();
        try (DirectoryStream<Path> s = Files.newDirectoryStream(Path.of("/dev"), "{qcow,vmdk}[0-9]*")) {
            for (Path p : s) names.add(p.getFileName().toString());
        }
        return names;
    }

    private static String sha256(Path f) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(f)));
    }

    @Test
    void theGptRootByDefaultListedAndUnmountedWithItsImage() throws Exception {
        Assumptions.assumeTrue(System.getProperty("os.arch").equals("amd64"), "the disk's root partition is x86-64's");
        Path image = image("root.qcow2");
        Path m = newDir();
        mountAndRead(m, "mount", image.toString(), m.toString());
        String row = vdiskload("-l").out().lines().filter(l -> l.contains(image.toString())).findFirst().orElseThrow();
        assertTrue(row.matches("/dev/qcow[0-9]+ +fuse .* qcow2 +" + m + " +" + image + ".*"), "-l shows the mount point: " + row);
        umountLeavingNothing(m);
    }

    @Test
    void aPartitionChosenByNumberGptNameLabelOrUuid() throws Exception {
        Path image = image("two.qcow2");
        for (String part : new String[] {"2", "root", "rootfs", UUID.toUpperCase()}) {
            Path m = newDir();
            mountAndRead(m, "mount", "-r", image + ":" + part, m.toString());
            assertTrue(Files.readAllLines(Path.of("/proc/self/mountinfo")).stream()
                    .anyMatch(l -> l.split(" ")[4].equals(m.toString()) && l.split(" ")[5].startsWith("ro")), "-r mounts read-only");
            umountLeavingNothing(m);
        }
    }

    @Test
    void noPlainChoiceListsTheCandidatesAndLeavesNothing() throws Exception {
        Path image = image("two.qcow2");
        CliRun r = vdiskload("mount", image.toString(), newDir().toString());
        assertEquals(1, r.exit(), r.toString());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().contains("name one as " + image + ":PART"), r.err());
        assertTrue(r.err().contains("1 (20 MiB, vfat, label \"EFI\", name \"esp\"); 2 (30 MiB, ext4, label \"rootfs\", name \"root\")"), r.err());
        assertNothingLeft();
    }

    @Test
    void aFailedMountDetachesAgain() throws Exception {
        Path image = image("two.qcow2");
        Path m = newDir();
        CliRun r = vdiskload("mount", "-o", "no_such_option_anywhere", image + ":2", m.toString());
        assertEquals(1, r.exit(), r.toString());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().startsWith("vdiskload: " + image + ": mounting partition 2 (ext4) failed: "), r.err());
        assertFalse(BlockDevices.isMounted(m));
        assertNothingLeft();
    }

    @Test
    void aWholeDiskFileSystemAndDetachUnmountingWhatMountMounted() throws Exception {
        Path image = image("whole.vmdk");
        Path m = newDir();
        mountAndRead(m, "mount", image.toString(), m.toString());
        Attachment a = StateDir.system().list().stream().filter(x -> x.image().equals(image.toString())).findFirst().orElseThrow();
        assertEquals(m.toString(), a.mountedOn());
        CliRun d = vdiskload("-d", a.path());
        assertEquals(0, d.exit(), d.toString());
        assertFalse(BlockDevices.isMounted(m), "-d unmounted what vdiskload mount mounted");
        assertNothingLeft();
    }

    @Test
    void anImageWhoseNameHoldsAColon() throws Exception {
        Path image = Files.copy(disks.resolve("two.qcow2"), dir.resolve("disk:2"));
        Path m = newDir();
        mountAndRead(m, "mount", image + ":2", m.toString());
        umountLeavingNothing(m);
        // disk:2 alone is the image, not partition 2 of "disk"
        CliRun r = vdiskload("mount", image.toString(), m.toString());
        assertTrue(r.err().contains("vdiskload: " + image + ": 2 file systems"), r.toString());
        assertNothingLeft();
    }

    @Test
    void aJournalNeedingRecoveryAsksForSnapshotAndSnapshotLeavesTheImage() throws Exception {
        Path image = image("dirty.qcow2");
        String before = sha256(image);
        Path m = newDir();
        CliRun r = vdiskload("mount", "-r", image.toString(), m.toString());
        assertEquals(1, r.exit(), r.toString());
        assertTrue(r.err().contains("journal that needs recovery") && r.err().contains("use --snapshot"), r.err());
        assertNothingLeft();
        mountAndRead(m, "mount", "--snapshot", image.toString(), m.toString());
        umountLeavingNothing(m);
        assertEquals(before, sha256(image), "--snapshot wrote nothing to the image");

        Path out = dir.resolve("dirty.tar");
        CliRun t = vdiskload("tar", "-r", "-f", out.toString(), image.toString());
        assertEquals(1, t.exit(), t.toString());
        assertTrue(t.err().contains("leave out -r"), t.err());
        assertFalse(Files.exists(out));
        assertEquals(0, vdiskload("tar", "-f", out.toString(), image.toString()).exit());
        assertTrue(Tools.check("tar", "-tf", out.toString()).lines().anyMatch("./hello.txt"::equals));
        assertEquals(before, sha256(image), "tar wrote nothing to the image");
        assertNothingLeft();
    }

    @Test
    void vfat() throws Exception {
        Assumptions.assumeTrue(Files.readString(Path.of("/proc/filesystems")).contains("\tvfat\n"),
                "this kernel has no vfat file system (/proc/filesystems): the VM check mount.sh mounts vfat");
        Path image = image("vfat.qcow2");
        Path m = newDir();
        mountAndRead(m, "mount", image.toString(), m.toString());
        umountLeavingNothing(m);
        mountAndRead(m, "mount", "-r", image + ":ONLYFAT", m.toString());
        umountLeavingNothing(m);
    }

    @Test
    void tarOfAPartitionLeavesNoMountNoAttachment() throws Exception {
        Path image = image("two.qcow2");
        Path out = dir.resolve("two.tar");
        CliRun r = vdiskload("tar", "-f", out.toString(), image + ":rootfs");
        assertEquals(0, r.exit(), r.toString());
        List<String> names = Tools.check("tar", "-tf", out.toString()).lines().toList();
        assertTrue(names.contains("./hello.txt") && names.contains("./lost+found/"), names.toString());
        assertNothingLeft();
        assertTrue(Files.readAllLines(Path.of("/proc/self/mountinfo")).stream().noneMatch(l -> l.contains("vdiskload-tar")),
                "the mount stayed in tar's namespace");
        // a failure to pick detaches again
        CliRun bad = vdiskload("tar", "-f", out.toString(), image + ":9");
        assertEquals(1, bad.exit());
        assertNothingLeft();
    }
}
