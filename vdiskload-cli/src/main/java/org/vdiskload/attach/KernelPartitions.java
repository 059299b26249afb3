package org.vdiskload.attach;

import org.vdiskload.partition.Partition;
import org.vdiskload.partition.PartitionTable;
import org.vdiskload.sys.Libc;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The partitions the kernel made of a disk, as sysfs shows them (a directory per partition under
 * /sys/block/DISK holding its number in {@code partition}, whatever the kernel named it: nbd0p1, vdi0p1),
 * waited for, and matched with the table vdiskload read.
 */
public final class KernelPartitions {
    private static final Path SYS_BLOCK = Path.of("/sys/block");
    private static final long POLL_MILLIS = 20;

    private KernelPartitions() {}

    /** The kernel's partitions of {@code device} (/dev/nbd0) whose device node exists, by number (1 → /dev/nbd0p1). */
    public static TreeMap<Integer, String> of(String device) throws IOException {
        String disk = Path.of(device).getFileName().toString();
        TreeMap<Integer, String> parts = new TreeMap<>();
        Path dir = SYS_BLOCK.resolve(disk);
        if (!Files.isDirectory(dir)) return parts;
        try (DirectoryStream<Path> s = Files.newDirectoryStream(dir, disk + "*")) {
            for (Path p : s) {
                String number;
                try {
                    number = Files.readString(p.resolve("partition")).strip();
                } catch (IOException notAPartition) { // no such attribute, or gone meanwhile
                    continue;
                }
                if (number.isEmpty() || number.length() > 5 || !number.chars().allMatch(Character::isDigit)) continue;
                Path node = Path.of(DeviceNames.DEV, p.getFileName().toString());
                if (Files.exists(node)) parts.put(Integer.parseInt(number), node.toString());
            }
        }
        return parts;
    }

    /**
     * Waits for {@code device}'s node, opens it once (a disk a driver just added has its table read at
     * the first open, unless udev's probe did already), and waits until the kernel has a device for
     * every partition {@code table} names; returns the kernel's partitions. Fails after {@code timeout}.
     */
    public static TreeMap<Integer, String> await(String device, PartitionTable table, Duration timeout) throws IOException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!Files.exists(Path.of(device))) pause(deadline, device + " did not appear");
        openOnce(device);
        while (true) {
            TreeMap<Integer, String> parts = of(device);
            if (table.partitions().stream().allMatch(p -> parts.containsKey(p.number()))) return parts;
            pause(deadline, device + ": the kernel did not find the partitions " + table.partitions().stream()
                    .map(p -> Integer.toString(p.number())).toList() + " (it has " + parts.keySet() + ")");
        }
    }

    /**
     * One device per partition of the kernel's, by number, named NAMEpN after attachment {@code name},
     * with the start and size the table gives that number (-1 where the table has none: the kernel knows best).
     */
    public static List<Attachment.PartitionDevice> match(String name, Map<Integer, String> kernel, PartitionTable table) {
        List<Attachment.PartitionDevice> parts = new ArrayList<>();
        for (Map.Entry<Integer, String> k : new TreeMap<>(kernel).entrySet()) {
            Partition p = table.partitions().stream().filter(x -> x.number() == k.getKey()).findFirst().orElse(null);
            parts.add(new Attachment.PartitionDevice(k.getKey(), DeviceNames.partition(name, k.getKey()), k.getValue(),
                    p == null ? -1 : p.start(), p == null ? -1 : p.length()));
        }
        return parts;
    }

    private static void openOnce(String device) throws IOException {
        Libc.require();
        int fd = Libc.open(device, Libc.O_RDONLY | Libc.O_CLOEXEC);
        if (fd < 0) throw Libc.failure("open " + device);
        Libc.close(fd);
    }

    private static void pause(long deadline, String failure) throws IOException {
        if (System.nanoTime() > deadline) throw new IOException(failure);
        try {
            Thread.sleep(POLL_MILLIS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while waiting: " + failure);
        }
    }
}
