package org.vdiskload.attach;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.testing.Tools;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The /dev names of an attachment, in a directory standing for /dev, with real device nodes in it. */
class DeviceLinksTest {
    @TempDir
    Path dev;

    /** A character device node (the numbers of /dev/null), as the kernel makes for its disks. */
    private Path node(String name) throws Exception {
        Path p = dev.resolve(name);
        Tools.check("mknod", p.toString(), "c", "1", "3");
        return p;
    }

    private static Backend.Devices devices(String disk, String... partitions) {
        List<Attachment.PartitionDevice> parts = new java.util.ArrayList<>();
        for (int i = 0; i < partitions.length; i += 2) {
            parts.add(new Attachment.PartitionDevice(i / 2 + 1, partitions[i], partitions[i + 1], -1, -1));
        }
        return new Backend.Devices("", disk, parts);
    }

    @Test
    void namesPointAtTheKernelsDevicesAndGoAgain() throws Exception {
        node("nbd3");
        node("nbd3p1");
        DeviceLinks links = new DeviceLinks(dev);
        links.link("qcow0", devices(dev.resolve("nbd3").toString(), "qcow0p1", dev.resolve("nbd3p1").toString()));
        assertEquals(Path.of("nbd3"), Files.readSymbolicLink(dev.resolve("qcow0")), "relative, as udev's");
        assertEquals(Path.of("nbd3p1"), Files.readSymbolicLink(dev.resolve("qcow0p1")));
        links.link("qcow0", devices(dev.resolve("nbd3").toString())); // a reconnect names them again
        Files.createSymbolicLink(dev.resolve("qcow01"), Path.of("nbd3")); // someone else's, by its name
        links.unlink("qcow0");
        assertFalse(Files.exists(dev.resolve("qcow0"), java.nio.file.LinkOption.NOFOLLOW_LINKS));
        assertFalse(Files.exists(dev.resolve("qcow0p1"), java.nio.file.LinkOption.NOFOLLOW_LINKS));
        assertTrue(Files.isSymbolicLink(dev.resolve("qcow01")), "qcow01 is not qcow0's");
        assertTrue(Files.exists(dev.resolve("nbd3")) && Files.exists(dev.resolve("nbd3p1")));
    }

    @Test
    void aDeviceTheKernelNamesSoItselfIsNeitherLinkedNorRemoved() throws Exception {
        Path disk = node("vdi0");
        Path part = node("vdi0p1");
        DeviceLinks links = new DeviceLinks(dev);
        links.link("vdi0", devices(disk.toString(), "vdi0p1", part.toString()));
        assertFalse(Files.isSymbolicLink(disk));
        assertFalse(Files.isSymbolicLink(part));
        links.unlink("vdi0");
        assertTrue(Files.exists(disk) && Files.exists(part), "real device nodes stay");
    }

    @Test
    void whatIsNotALinkOfOursIsNotReplaced() throws Exception {
        node("qcow0");
        node("loop7");
        IOException e = assertThrows(IOException.class, () -> new DeviceLinks(dev).link("qcow0", devices(dev.resolve("loop7").toString())));
        assertEquals(dev.resolve("qcow0") + " exists and is not vdiskload's: cannot name the device", e.getMessage());
        assertFalse(Files.isSymbolicLink(dev.resolve("qcow0")));
    }
}
