package org.vdiskload.attach;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.partition.PartitionTable;
import org.vdiskload.testing.Tools;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The kernel's partitions named after the attachment, with the table's geometry where it has the number. */
class KernelPartitionsTest {
    @TempDir
    Path dir;

    @Test
    void theKernelsPartitionsGetTheTablesStartAndSize() throws Exception {
        Path img = dir.resolve("disk.raw");
        Tools.check("truncate", "-s", "8M", img.toString());
        Tools.check("sgdisk", "-n", "1:2048:6143", "-n", "2:6144:10239", img.toString());
        try (DiskImage d = Images.open(img, OpenOptions.DEFAULTS.withFormat("raw"))) {
            PartitionTable table = PartitionTable.read(d);
            List<Attachment.PartitionDevice> parts = KernelPartitions.match("img0", Map.of(1, "/dev/nbd2p1", 3, "/dev/nbd2p3"), table);
            assertEquals(List.of(new Attachment.PartitionDevice(1, "img0p1", "/dev/nbd2p1", 2048 * 512, 4096 * 512),
                    new Attachment.PartitionDevice(3, "img0p3", "/dev/nbd2p3", -1, -1)), parts);
        }
    }
}
