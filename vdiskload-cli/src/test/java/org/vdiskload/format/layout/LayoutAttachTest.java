package org.vdiskload.format.layout;

import org.vdiskload.cli.CliRun;
import org.vdiskload.attach.Mounts;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.api.parallel.Isolated;
import org.vdiskload.testing.Tools;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code vdiskload layout.json}: the assembled disk attached (FUSE backend) as /dev/vdiskN, its partitions
 * mounted; written read-write, the write lands in the partition's source image.
 * Isolated: attach owns /dev/&lt;fmt&gt;N and /run/vdiskload while it runs.
 */
@Isolated
class LayoutAttachTest {
    private static final Duration LIMIT = Duration.ofMinutes(3);

    @TempDir
    Path dir;

    private Mounts mounts;
    private final List<String> devices = new ArrayList<>();

    @BeforeEach
    void trackMounts() {
        mounts = new Mounts(dir);
    }

    @AfterEach
    void cleanUp() throws Exception {
        mounts.unmountAll();
        for (String d : devices) vdiskload("-d", d);
    }

    static CliRun vdiskload(String... args) {
        return CliRun.run(LIMIT, args);
    }

    private String attach(String... args) {
        CliRun a = vdiskload(args);
        assertEquals(0, a.exit(), a.toString());
        String dev = a.lastLine();
        assertTrue(dev.startsWith("/dev/vdisk"), dev);
        devices.add(dev);
        return dev;
    }

    private void detach(String dev) {
        assertEquals(0, vdiskload("-d", dev).exit());
        devices.remove(dev);
    }

    private Path mount(String device, boolean readOnly) throws Exception {
        return mount(device, "ext4", readOnly);
    }

    private Path mount(String device, String type, boolean readOnly) throws Exception {
        return mounts.mount(device, type, readOnly);
    }

    private void umount(Path m) throws Exception {
        mounts.umount(m);
    }

    /** An ext4 file system holding hello.txt, built rootless with mke2fs -d, as a qcow2 image. */
    private Path ext4Qcow2() throws Exception {
        Path tree = Files.createDirectories(dir.resolve("tree"));
        Files.writeString(tree.resolve("hello.txt"), "hello from a layout partition\n");
        Path fs = dir.resolve("root.ext4");
        Tools.check("mke2fs", "-q", "-t", "ext4", "-d", tree.toString(), fs.toString(), "16M");
        Path q = dir.resolve("root.qcow2");
        Tools.check("qemu-img", "convert", "-O", "qcow2", fs.toString(), q.toString());
        Files.delete(fs);
        return q;
    }

    @Test
    void attachedLayoutMountsAndWritesReachTheSource() throws Exception {
        Path root = ext4Qcow2();
        Tools.check("qemu-img", "create", "-q", "-f", "raw", dir.resolve("esp.raw").toString(), "2M");
        Path layout = Files.writeString(dir.resolve("disk.json"), """
                { "vdiskload-layout": 1, "table": "gpt",
                  "partitions": [ { "source": "esp.raw", "type": "esp" }, { "source": "root.qcow2", "type": "linux-root-x86-64" } ] }""");

        String ro = attach("-r", "--show", layout.toString());
        Path m = mount(ro + "p2", true);
        assertEquals("hello from a layout partition\n", Files.readString(m.resolve("hello.txt")));
        umount(m);
        detach(ro);

        String rw = attach("--show", layout.toString());
        Path m2 = mount(rw + "p2", false);
        Files.writeString(m2.resolve("new.txt"), "written through the layout\n");
        umount(m2);
        detach(rw);

        Tools.check("qemu-img", "check", root.toString()); // fails the test on any error
        Path flat = dir.resolve("root.raw");
        Tools.check("qemu-img", "convert", "-O", "raw", root.toString(), flat.toString());
        assertEquals("written through the layout\n", Tools.check("debugfs", "-R", "cat /new.txt", flat.toString()));
    }

    @Test
    void aVfatPartitionBuiltFromADirectoryIsCleanOnTheAttachedDevice() throws Exception {
        Path tree = Files.createDirectories(dir.resolve("esp/EFI/BOOT"));
        Files.writeString(tree.resolve("BOOTX64.EFI"), "an ESP from a directory\n");
        // The attach daemon builds into the user's cache (a child JVM: no per-test cache); fixed times keep its key
        // the same each run, so runs share one entry instead of leaving one each
        for (Path p : List.of(tree.resolve("BOOTX64.EFI"), tree, tree.getParent(), dir.resolve("esp"))) {
            Files.setLastModifiedTime(p, java.nio.file.attribute.FileTime.fromMillis(1_700_000_000_000L));
        }
        Path layout = Files.writeString(dir.resolve("esp.json"), """
                { "vdiskload-layout": 1, "table": "gpt",
                  "partitions": [ { "source": "esp", "filesystem": "vfat", "type": "esp", "size": "40M" } ] }""");
        String dev = attach("-r", "--show", layout.toString());
        // fsck.fat and mtools read the partition's block device: no vfat driver needed
        Tools.check("fsck.fat", "-n", dev + "p1");
        assertEquals("an ESP from a directory\n", Tools.check("mtype", "-i", dev + "p1", "::/EFI/BOOT/BOOTX64.EFI"));
        boolean vfatDriver = Files.readAllLines(Path.of("/proc/filesystems")).stream().anyMatch(l -> l.trim().endsWith("vfat"));
        Assumptions.assumeTrue(vfatDriver, "mounting skipped: this kernel has no vfat file system (/proc/filesystems); "
                + "fsck.fat and mtype checked the attached partition");
        Path m = mount(dev + "p1", "vfat", true);
        assertEquals("an ESP from a directory\n", Files.readString(m.resolve("EFI/BOOT/BOOTX64.EFI")));
        umount(m);
    }
}
