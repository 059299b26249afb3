package org.vdiskload.attach;

import java.util.ArrayList;
import java.util.List;

/**
 * One attached image, as recorded in the state directory: what {@code -l}, {@code -j} and {@code -d}
 * read from any shell. Written by the attaching command (state {@code starting}) and completed by the
 * serving process once every device is usable (state {@code ready}).
 *
 * @param name       the device name, e.g. {@code qcow0} for {@code /dev/qcow0}
 * @param backend    {@code fuse} (later {@code nbd}, {@code kmod})
 * @param state      {@link #STARTING} or {@link #READY}
 * @param pid        the serving process
 * @param image      the image's absolute path
 * @param format     the image's format, as {@code info} names it
 * @param backing    the backing files, nearest first
 * @param size       virtual size in bytes
 * @param mountPoint where the backend keeps the files its loop devices sit on ("" if none)
 * @param device     the kernel's device for the whole disk, e.g. {@code /dev/loop3}
 * @param partitions one device per partition, by number
 * @param allowRefs  the directories the image's references may lead to beyond its own (--allow-refs and
 *                   VDISKLOAD_ALLOW_REFS when it was attached, real paths): the serving process, and one
 *                   started by --reconnect, open the image under them
 * @param mountedOn  the directory {@code vdiskload mount} mounted one of its file systems on ("" if none): what
 *                   {@code umount} and {@code -d} unmount before detaching (a mount made by hand is refused instead)
 */
public record Attachment(String name, String backend, String state, long pid, String image, String format,
                         List<String> backing, long size, boolean readOnly, boolean snapshot, String mountPoint,
                         String device, List<PartitionDevice> partitions, List<String> allowRefs,
                         String mountedOn) {
    public static final String STARTING = "starting";
    public static final String READY = "ready";

    /** A partition's device: {@code /dev/qcow0p1} (name {@code qcow0p1}) made by {@code device}. */
    public record PartitionDevice(int number, String name, String device, long start, long size) {}

    public Attachment {
        backing = List.copyOf(backing);
        partitions = List.copyOf(partitions);
        allowRefs = allowRefs == null ? List.of() : List.copyOf(allowRefs); // absent from records of older versions
        mountedOn = mountedOn == null ? "" : mountedOn;
    }

    /** The reservation the attaching command writes before it starts the serving process. */
    static Attachment starting(String name, String backend, long pid, String image, String format, boolean readOnly, boolean snapshot,
                               List<String> allowRefs) {
        return new Attachment(name, backend, STARTING, pid, image, format, List.of(), 0, readOnly, snapshot, "", "", List.of(), allowRefs, "");
    }

    /** The record while the attaching command {@code pid} starts a new serving process for these devices. */
    Attachment reconnecting(long newPid) {
        return new Attachment(name, backend, STARTING, newPid, image, format, backing, size, readOnly, snapshot, mountPoint, device, partitions,
                allowRefs, mountedOn);
    }

    Attachment withPid(long newPid) {
        return new Attachment(name, backend, state, newPid, image, format, backing, size, readOnly, snapshot, mountPoint, device, partitions,
                allowRefs, mountedOn);
    }

    Attachment ready(List<String> backingFiles, long virtualSize, String mount, String disk, List<PartitionDevice> parts) {
        return new Attachment(name, backend, READY, pid, image, format, backingFiles, virtualSize, readOnly, snapshot, mount, disk, parts,
                allowRefs, mountedOn);
    }

    /** This record with {@code dir} as where {@code vdiskload mount} mounted it ("" once unmounted). */
    public Attachment withMountedOn(String dir) {
        return new Attachment(name, backend, state, pid, image, format, backing, size, readOnly, snapshot, mountPoint, device, partitions,
                allowRefs, dir);
    }

    /** Every kernel device this attachment holds: the whole disk's first, then its partitions'. */
    public List<String> kernelDevices() {
        List<String> all = new ArrayList<>();
        if (!device.isEmpty()) all.add(device);
        for (PartitionDevice p : partitions) all.add(p.device());
        return all;
    }

    /** The path users see: {@code /dev/qcow0}. */
    public String path() {
        return DeviceNames.DEV + "/" + name;
    }
}
