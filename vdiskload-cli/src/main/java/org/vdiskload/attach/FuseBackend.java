package org.vdiskload.attach;

import org.vdiskload.attach.fuse.FuseFile;
import org.vdiskload.attach.fuse.FuseMount;
import org.vdiskload.image.DiskImage;
import org.vdiskload.partition.Partition;
import org.vdiskload.partition.PartitionTable;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Backend {@code fuse}: the image shown as files on a FUSE mount under the state directory — the whole
 * disk ({@code disk}) and each partition ({@code pN}) — with a loop device on each. Works on any Linux
 * with FUSE and loop devices, including kernels with no modules, no nbd and no partition support.
 *
 * <p>Partitions get loop devices on partition files of their own because the kernel may have no
 * partition support (loop's partscan then finds nothing); where the kernel does find partitions on
 * the whole disk's loop device, its devices are used instead, as the kernel's own scan knows best.
 */
final class FuseBackend implements Backend {
    static final Kind KIND = new Kind() {
        @Override
        public String name() {
            return "fuse";
        }

        @Override
        public Backend create(StateDir state) {
            return new FuseBackend(state);
        }

        @Override
        public void releaseOrphan(Attachment a, StateDir state) throws IOException {
            Teardown.release(a.name(), state.mountPoint(a.name()));
        }
    };

    /** FUSE worker threads: the loop driver keeps several requests in flight, and image reads block. */
    private static final int WORKERS = Math.max(4, Runtime.getRuntime().availableProcessors());

    private final StateDir state;
    private String name;
    private FuseMount mount;

    private FuseBackend(StateDir state) {
        this.state = state;
    }

    @Override
    public Devices start(String attachment, DiskImage disk, PartitionTable table, boolean writable) throws IOException {
        name = attachment;
        Path mountPoint = state.mountPoint(name);
        Files.createDirectories(mountPoint);
        List<FuseFile> files = new ArrayList<>();
        files.add(new FuseFile("disk", disk, 0, disk.size(), writable));
        for (Partition p : table.partitions()) files.add(new FuseFile("p" + p.number(), disk, p.start(), p.length(), writable));
        mount = FuseMount.mount(mountPoint, files, WORKERS);

        String whole = LoopDevices.attach(mount.file("disk"), !writable, table.sectorSize(), true);
        Map<Integer, String> kernelParts = LoopDevices.kernelPartitions(whole);
        List<Attachment.PartitionDevice> parts = new ArrayList<>();
        if (kernelParts.isEmpty()) {
            for (Partition p : table.partitions()) {
                String dev = LoopDevices.attach(mount.file("p" + p.number()), !writable, table.sectorSize(), false);
                parts.add(new Attachment.PartitionDevice(p.number(), DeviceNames.partition(name, p.number()), dev, p.start(), p.length()));
            }
        } else {
            for (Map.Entry<Integer, String> k : kernelParts.entrySet()) {
                Partition p = table.partitions().stream().filter(x -> x.number() == k.getKey()).findFirst().orElse(null);
                parts.add(new Attachment.PartitionDevice(k.getKey(), DeviceNames.partition(name, k.getKey()), k.getValue(),
                        p == null ? -1 : p.start(), p == null ? -1 : p.length()));
            }
        }
        Teardown.link(name, whole);
        for (Attachment.PartitionDevice p : parts) Teardown.link(p.name(), p.device());
        return new Devices(mountPoint.toString(), whole, parts);
    }

    @Override
    public void awaitEnd() throws InterruptedException {
        mount.awaitUnmounted();
    }

    @Override
    public void stop() throws IOException {
        if (name == null) return;
        try {
            Teardown.release(name, state.mountPoint(name));
        } finally {
            if (mount != null) mount.close();
        }
    }
}
