package org.vdiskload.attach.kmod;

import org.vdiskload.attach.Attachment;
import org.vdiskload.attach.Backend;
import org.vdiskload.attach.DeadTimeout;
import org.vdiskload.attach.DeviceNames;
import org.vdiskload.attach.KernelPartitions;
import org.vdiskload.attach.StateDir;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.partition.PartitionTable;
import org.vdiskload.sys.Errno;
import org.vdiskload.sys.SysCallException;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Properties;

/**
 * Backend {@code kmod}: vdisk.ko (kmod/) serves the image itself. The kernel's own disk is /dev/NAME
 * (vdi0, qcow1...), with the kernel's partitions /dev/NAMEpM: no symlinks. This process hands the module
 * the extent table built from the image's map and the image's files, then answers only what the kernel
 * cannot do itself — allocating writes, copy-on-write, compressed reads, discards — through the library
 * ({@link UpcallServer}).
 *
 * <p><b>When this process dies</b> the disk stays. Reads of allocated data and overwrites of data in place
 * go on in the kernel; what needs this process waits for a new one up to the dead timeout, then fails
 * with EIO (and later upcalls at once) until one comes. {@code vdiskload --reconnect} starts it: it opens
 * the image again, takes the disk over (VDISK_IOC_RECOVER), and the upcalls the dead one had taken and not
 * answered are handed to it (VDISK_F_REISSUE; the library's operations may be replayed). {@code -d} removes
 * the disk whatever its state.
 */
public final class KmodBackend implements Backend {
    /**
     * What every disk asks the module for. Direct I/O (where the image's file system takes it, for aligned
     * pieces) keeps the image out of a second page cache, as {@code losetup --direct-io=on} does for the
     * fuse backend's loop devices, and keeps page-cache allocation off the write path a swap-out takes.
     */
    static final long FEATURES = VdiskAbi.VDISK_F_DIRECT_IO | VdiskAbi.VDISK_F_DISCARD | VdiskAbi.VDISK_F_WRITE_ZEROES
            | VdiskAbi.VDISK_F_REISSUE;

    public static final Kind KIND = new Kind() {
        @Override
        public String name() {
            return "kmod";
        }

        @Override
        public boolean available() {
            return VdiskControl.available();
        }

        @Override
        public Backend create(StateDir state) {
            return new KmodBackend();
        }

        @Override
        public boolean reconnects() {
            return true;
        }

        @Override
        public void releaseOrphan(Attachment a, StateDir state) throws IOException {
            if (!Files.exists(VdiskControl.DEVICE)) return; // no module: nothing of it left
            try (VdiskControl control = VdiskControl.open()) {
                delete(control, a.name());
            }
        }
    };

    private static final int PHYSICAL_BLOCK = 4096;
    private static final int THREADS = Math.max(4, Runtime.getRuntime().availableProcessors());
    private static final Duration SETTLE = Duration.ofSeconds(20);
    private static final long DELETE_RETRY_MILLIS = 5_000;

    private VdiskControl control;
    private UpcallServer server;
    private String name;

    private KmodBackend() {}

    @Override
    public Devices start(String attachment, DiskImage disk, PartitionTable table, boolean writable) throws IOException {
        if (!VdiskControl.available()) throw new IOException("the kernel has no vdisk module (modprobe vdisk failed); use --backend nbd or fuse");
        String family = DeviceNames.family(disk.formatName());
        int index = indexOf(attachment, family);
        int blockSize = table.sectorSize();
        if (writable) disk.prepareForWrites();
        control = VdiskControl.open();
        try {
            VdiskControl.Features f = control.features();
            ExtentTable extents = new ExtentTable(disk, writable, blockSize, f.maxExtents());
            List<VdiskControl.FileRef> refs = openFiles(extents);
            VdiskControl.Added added;
            try {
                ExtentTable.Encoded encoded = extents.map(disk, 0, disk.size());
                long granularity = Math.max(blockSize, disk.mappingUnit());
                added = control.add(new VdiskControl.AddRequest(disk.size(), blockSize, Math.max(blockSize, PHYSICAL_BLOCK),
                        granularity, FEATURES,
                        !writable, (int) DeadTimeout.seconds(), index, family, shortFormat(disk.formatName()),
                        "vdiskload " + disk.formatName(), serial(disk.path()), firmware(), disk.path().toString(),
                        backing(disk), refs, encoded));
                if (encoded.memory() != null) encoded.memory().close();
            } finally {
                for (VdiskControl.FileRef r : refs) VdiskControl.closeFile(r.fd());
            }
            if (!added.name().equals(attachment)) {
                throw new IOException("vdisk.ko named the disk " + added.name() + ", not " + attachment);
            }
            name = added.name();
            server = new UpcallServer(control, disk, extents, added.maxIoBytes(), THREADS, System.err::println);
            server.start();
            control.start();
            return devices(table);
        } catch (SysCallException e) {
            if (e.errno() == Errno.EEXIST) throw new IOException("/dev/" + attachment + ": the kernel has a device of that name already");
            throw e;
        }
    }

    @Override
    public Devices reconnect(Attachment previous, DiskImage disk, PartitionTable table) throws IOException {
        if (!VdiskControl.available()) throw new IOException("the kernel has no vdisk module");
        try (VdiskControl probe = VdiskControl.open()) {
            VdiskControl.Info info = probe.info(previous.name());
            if (info == null) throw new IOException(previous.path() + ": the kernel has no such disk any more; detach it (-d) and attach the image again");
            if (!info.daemonGone()) throw new IOException(previous.path() + ": the kernel still has a serving process for it (pid " + info.daemonPid() + ")");
            if (info.size() != disk.size()) {
                throw new IOException(previous.image() + ": is " + disk.size() + " bytes now, " + info.size()
                        + " when attached; detach " + previous.path() + " (-d) and attach it again");
            }
        }
        boolean writable = !previous.readOnly();
        if (writable) disk.prepareForWrites();
        int blockSize = table.sectorSize();
        control = VdiskControl.open();
        try {
            ExtentTable extents = new ExtentTable(disk, writable, blockSize, control.features().maxExtents());
            List<VdiskControl.FileRef> refs = openFiles(extents);
            try {
                control.recover(previous.name(), refs);
            } finally {
                for (VdiskControl.FileRef r : refs) VdiskControl.closeFile(r.fd());
            }
            server = new UpcallServer(control, disk, extents, control.features().maxIoBytes(), THREADS, System.err::println);
            server.start();
        } catch (IOException | RuntimeException e) {
            control.close(); // the module goes on waiting for a serving process
            control = null;
            throw e;
        }
        name = previous.name();
        return devices(table);
    }

    /** The kernel's descriptors for the table's files, opened again by path (the kernel keeps its own reference). */
    private static List<VdiskControl.FileRef> openFiles(ExtentTable extents) throws IOException {
        List<VdiskControl.FileRef> refs = new ArrayList<>();
        try {
            for (ExtentTable.TableFile f : extents.files()) {
                int fd = VdiskControl.openFile(f.path(), f.writable());
                refs.add(new VdiskControl.FileRef(fd, f.writable()));
                Object opened = Files.getAttribute(Path.of("/proc/self/fd/" + fd), "unix:ino");
                if (!opened.equals(Files.getAttribute(f.path(), "unix:ino"))) {
                    throw new IOException(f.path() + ": replaced while it was being attached");
                }
            }
            return refs;
        } catch (IOException | RuntimeException e) {
            for (VdiskControl.FileRef r : refs) VdiskControl.closeFile(r.fd());
            throw e;
        }
    }

    /** The disk and the partitions the kernel found (its own names: no links needed), once their device nodes exist. */
    private Devices devices(PartitionTable table) throws IOException {
        String disk = DeviceNames.DEV + "/" + name;
        return new Devices("", disk, KernelPartitions.match(name, KernelPartitions.await(disk, table, SETTLE), table));
    }

    @Override
    public void awaitEnd() throws InterruptedException {
        server.awaitEnd();
    }

    /** Removes the disk (the kernel drains its I/O and syncs what it wrote), then waits for the upcall threads. */
    @Override
    public void stop() throws IOException {
        if (control == null) return;
        try {
            if (name != null) delete(control, name);
            if (server != null) {
                try {
                    server.awaitEnd();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        } finally {
            control.close();
            control = null;
        }
    }

    /** DEL, waiting out short opens (udev's probes) for a few seconds; a disk already gone is fine. */
    private static void delete(VdiskControl control, String name) throws IOException {
        long deadline = System.currentTimeMillis() + DELETE_RETRY_MILLIS;
        while (true) {
            try {
                control.delete(name, false);
                return;
            } catch (SysCallException e) {
                if (e.errno() == Errno.ENXIO) return;
                if (e.errno() != Errno.EBUSY) throw e;
                pause(deadline, "/dev/" + name + " is in use (mounted or open): cannot remove it");
            }
        }
    }

    private static int indexOf(String attachment, String family) throws IOException {
        String n = attachment.startsWith(family) ? attachment.substring(family.length()) : "";
        if (n.isEmpty() || n.length() > 6 || !n.chars().allMatch(Character::isDigit)) {
            throw new IOException(attachment + ": not a " + family + "N name");
        }
        return Integer.parseInt(n);
    }

    /** The backing files, nearest first, one per line (as sysfs shows them). */
    private static String backing(DiskImage disk) {
        List<ImageLayer> layers = disk.layers();
        if (layers.size() < 2) return null;
        StringBuilder b = new StringBuilder();
        for (int i = 1; i < layers.size(); i++) {
            if (i > 1) b.append('\n');
            b.append(printable(layers.get(i).file().path().toString()));
        }
        return b.toString();
    }

    private static String shortFormat(String format) {
        return format.length() > 15 ? format.substring(0, 15) : format;
    }

    /** 20 characters naming the image: from a hash of its path, so re-attaching the same file gives the same serial. */
    private static String serial(Path image) {
        try {
            byte[] h = MessageDigest.getInstance("SHA-256").digest(image.toAbsolutePath().toString().getBytes(StandardCharsets.UTF_8));
            return "VDL" + HexFormat.of().formatHex(h).substring(0, 17).toUpperCase(Locale.ROOT);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** vdiskload's version, at most 8 characters (the identify firmware field). */
    private static String firmware() {
        Properties p = new Properties();
        try (InputStream in = KmodBackend.class.getResourceAsStream("/org/vdiskload/cli/version.properties")) {
            if (in != null) p.load(in);
        } catch (IOException e) {
            // no version to show
        }
        String v = p.getProperty("version", "unknown");
        return v.length() > 8 ? v.substring(0, 8) : v;
    }

    /** Text for the kernel, which takes no control characters: a file name from an image may hold any. */
    private static String printable(String s) {
        StringBuilder b = new StringBuilder();
        for (char c : s.toCharArray()) {
            if (c < 0x20 || c == 0x7f) b.append(String.format("\\x%02x", (int) c));
            else b.append(c);
        }
        return b.toString();
    }

    private static void pause(long deadline, String failure) throws IOException {
        if (System.currentTimeMillis() > deadline) throw new IOException(failure);
        try {
            Thread.sleep(20);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while waiting: " + failure);
        }
    }
}
