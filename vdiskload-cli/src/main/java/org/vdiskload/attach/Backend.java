package org.vdiskload.attach;

import org.vdiskload.image.DiskImage;
import org.vdiskload.partition.PartitionTable;

import java.io.IOException;
import java.util.List;

/**
 * How the kernel gets an image: block devices for the whole disk and its partitions, served by the
 * serving process. One instance per attachment, in that process; {@link Kind} also cleans up after a
 * serving process that died, from the detaching command. Which backends there are, and auto's order,
 * is {@link Backends}'. What every backend needs the same is done once outside it: the image opened
 * and locked ({@link AttachDaemon}), the /dev names ({@link DeviceLinks}), the kernel's partitions
 * matched with the table ({@link KernelPartitions}).
 */
public interface Backend {
    /**
     * The devices a backend made: where it keeps its files ("" if nowhere), the kernel's device for the
     * whole disk, its partitions'. /dev/NAME and /dev/NAMEpN are made to point at them, unless the kernel
     * calls them so itself.
     */
    record Devices(String mountPoint, String disk, List<Attachment.PartitionDevice> partitions) {}

    /** Makes the devices for {@code disk}; {@code name} is the attachment's (qcow0). Undone by {@link #stop}, even if it fails. */
    Devices start(String name, DiskImage disk, PartitionTable table, boolean writable) throws IOException;

    /**
     * Serves {@code disk} again on the kernel devices that {@code previous} recorded, whose serving process
     * died (only for a {@link Kind#reconnects} backend); undone by {@link #stop} once it succeeded, while a
     * failure leaves the devices as they were.
     */
    default Devices reconnect(Attachment previous, DiskImage disk, PartitionTable table) throws IOException {
        throw new IOException(previous.path() + ": backend " + previous.backend() + " cannot reconnect");
    }

    /** Blocks until the kernel side goes away by itself (its mount or connection gone). */
    void awaitEnd() throws InterruptedException;

    /** Removes the devices (their pending writes reach the image first) and stops serving; safe to call twice. The /dev names are not its business. */
    void stop() throws IOException;

    /** A backend by name, as {@code --backend} and the records call it. */
    interface Kind {
        String name();

        /** Whether this kernel can run the backend now (its driver loaded, or loadable): what {@code --backend auto} asks. */
        boolean available();

        Backend create(StateDir state);

        /** Whether a new serving process can take over the devices of one that died ({@link #reconnect}). */
        default boolean reconnects() {
            return false;
        }

        /** Removes what a dead serving process of {@code a} left in the kernel (devices, mounts; not the /dev names). */
        void releaseOrphan(Attachment a, StateDir state) throws IOException;
    }
}
