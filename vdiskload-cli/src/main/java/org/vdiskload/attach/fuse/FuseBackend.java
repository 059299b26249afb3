package org.vdiskload.attach.fuse;

import org.vdiskload.attach.Attachment;
import org.vdiskload.attach.Backend;
import org.vdiskload.attach.BlockDevices;
import org.vdiskload.attach.DeviceNames;
import org.vdiskload.attach.Exec;
import org.vdiskload.attach.KernelPartitions;
import org.vdiskload.attach.StateDir;
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
public final class FuseBackend implements Backend {
    public static final Kind KIND = new Kind() {
        @Override
        public String name() {
            return "fuse";
        }

        /** Where /dev/fuse is: the kernel has FUSE (loaded, or loaded at the node's first open). */
        @Override
        public boolean available() {
            return Files.exists(Path.of(DeviceNames.DEV, "fuse"));
        }

        @Override
        public Backend create(StateDir state) {
            return new FuseBackend(state);
        }

        @Override
        public void releaseOrphan(Attachment a, StateDir state) throws IOException {
            release(state.mountPoint(a.name()));
        }
    };

    /** FUSE worker threads: the loop driver keeps several requests in flight, and image reads block. */
    private static final int WORKERS = Math.max(4, Runtime.getRuntime().availableProcessors());

    private final StateDir state;
    private Path mountPoint;
    private FuseMount mount;

    private FuseBackend(StateDir state) {
        this.state = state;
    }

    @Override
    public Devices start(String name, DiskImage disk, PartitionTable table, boolean writable) throws IOException {
        mountPoint = state.mountPoint(name);
        Files.createDirectories(mountPoint);
        List<FuseFile> files = new ArrayList<>();
        files.add(new FuseFile("disk", disk, 0, disk.size(), writable));
        for (Partition p : table.partitions()) files.add(new FuseFile("p" + p.number(), disk, p.start(), p.length(), writable));
        mount = FuseMount.mount(mountPoint, files, WORKERS);

        String whole = LoopDevices.attach(mount.file("disk"), !writable, table.sectorSize(), true);
        Map<Integer, String> kernelParts = KernelPartitions.of(whole);
        if (!kernelParts.isEmpty()) return new Devices(mountPoint.toString(), whole, KernelPartitions.match(name, kernelParts, table));
        List<Attachment.PartitionDevice> parts = new ArrayList<>();
        for (Partition p : table.partitions()) {
            String dev = LoopDevices.attach(mount.file("p" + p.number()), !writable, table.sectorSize(), false);
            parts.add(new Attachment.PartitionDevice(p.number(), DeviceNames.partition(name, p.number()), dev, p.start(), p.length()));
        }
        return new Devices(mountPoint.toString(), whole, parts);
    }

    @Override
    public void awaitEnd() throws InterruptedException {
        mount.awaitUnmounted();
    }

    @Override
    public void stop() throws IOException {
        if (mountPoint == null) return;
        try {
            release(mountPoint);
        } finally {
            if (mount != null) mount.close();
        }
    }

    /**
     * Undoes the kernel side from whatever state it is in — complete, half-built by a serving process that
     * failed, or orphaned by one that was killed: detaches the loop devices on files under
     * {@code mountPoint} (their last writes reach the image), then unmounts it.
     */
    private static void release(Path mountPoint) throws IOException {
        IOException first = null;
        for (String loop : LoopDevices.under(mountPoint)) {
            try {
                LoopDevices.detach(loop);
            } catch (IOException e) {
                if (first == null) first = e;
            }
        }
        if (BlockDevices.isMounted(mountPoint)) {
            try {
                Exec.run(List.of("umount", "--lazy", mountPoint.toString()));
            } catch (IOException e) {
                if (first == null) first = e;
            }
        }
        if (first != null) throw first;
    }
}
