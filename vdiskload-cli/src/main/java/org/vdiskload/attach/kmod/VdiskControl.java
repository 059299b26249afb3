package org.vdiskload.attach.kmod;

import com.sun.jna.Memory;
import com.sun.jna.Pointer;
import org.vdiskload.sys.Errno;
import org.vdiskload.sys.Libc;
import org.vdiskload.sys.SysCallException;

import java.io.Closeable;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * One open file of /dev/vdisk-control and the ioctls on it (see kmod/include/uapi/linux/vdisk.h). A
 * serving process opens one per disk it serves: ADD binds the disk to it, and its closing (the process's
 * death included) tells the module the daemon is gone. Other commands (INFO, DEL) open one of their own.
 */
final class VdiskControl implements Closeable {
    static final Path DEVICE = Path.of("/dev/" + VdiskAbi.VDISK_CONTROL_NAME);

    private final int fd;

    private VdiskControl(int fd) {
        this.fd = fd;
    }

    static VdiskControl open() throws IOException {
        Libc.require();
        int fd = Libc.open(DEVICE.toString(), Libc.O_RDWR | Libc.O_CLOEXEC);
        if (fd < 0) throw Libc.failure("open " + DEVICE);
        return new VdiskControl(fd);
    }

    private void call(String what, long request, Pointer arg) throws SysCallException {
        if (Libc.ioctl(fd, request, Pointer.nativeValue(arg)) != 0) throw Libc.failure(what);
    }

    /** The module's version, features and limits. */
    record Features(long version, long features, int maxFiles, int maxExtents, int maxIoBytes) {}

    Features features() throws IOException {
        try (Memory m = new Memory(VdiskAbi.Features.SIZE)) {
            m.clear();
            call("VDISK_IOC_FEATURES", VdiskAbi.VDISK_IOC_FEATURES, m);
            return new Features(m.getInt(VdiskAbi.Features.VERSION) & 0xffffffffL, m.getLong(VdiskAbi.Features.FEATURES),
                    m.getInt(VdiskAbi.Features.MAX_FILES), m.getInt(VdiskAbi.Features.MAX_EXTENTS),
                    m.getInt(VdiskAbi.Features.MAX_IO_BYTES));
        }
    }

    /** A file the kernel is to do I/O on: the serving process's descriptor. */
    record FileRef(int fd, boolean writable) {}

    /** What ADD asks for. {@code index} -1: the lowest free. */
    record AddRequest(long size, int logicalBlockSize, int physicalBlockSize, long granularity, long features,
                      boolean readOnly, int deadTimeoutSeconds, int index, String family, String format, String model,
                      String serial, String firmware, String image, String backing, List<FileRef> files,
                      ExtentTable.Encoded extents) {}

    /** What ADD answered: the disk's name and index, the features granted, the largest upcall. */
    record Added(String name, int index, long features, int maxIoBytes) {}

    Added add(AddRequest r) throws IOException {
        try (Memory a = new Memory(VdiskAbi.Add.SIZE);
             Memory image = cString(r.image());
             Memory backing = r.backing() == null ? null : cString(r.backing());
             Memory files = files(r.files())) {
            a.clear();
            a.setInt(VdiskAbi.Add.VERSION, (int) VdiskAbi.VDISK_VERSION);
            a.setInt(VdiskAbi.Add.FLAGS, r.readOnly() ? (int) VdiskAbi.VDISK_ADD_READ_ONLY : 0);
            a.setLong(VdiskAbi.Add.FEATURES, r.features());
            a.setLong(VdiskAbi.Add.SIZE_, r.size());
            a.setInt(VdiskAbi.Add.LOGICAL_BLOCK_SIZE, r.logicalBlockSize());
            a.setInt(VdiskAbi.Add.PHYSICAL_BLOCK_SIZE, r.physicalBlockSize());
            a.setLong(VdiskAbi.Add.GRANULARITY, r.granularity());
            a.setInt(VdiskAbi.Add.DEAD_TIMEOUT, r.deadTimeoutSeconds());
            a.setInt(VdiskAbi.Add.INDEX, r.index());
            text(a, VdiskAbi.Add.FAMILY, VdiskAbi.Add.LEN_FAMILY, r.family());
            text(a, VdiskAbi.Add.FORMAT, VdiskAbi.Add.LEN_FORMAT, r.format());
            text(a, VdiskAbi.Add.MODEL, VdiskAbi.Add.LEN_MODEL, r.model());
            text(a, VdiskAbi.Add.SERIAL, VdiskAbi.Add.LEN_SERIAL, r.serial());
            text(a, VdiskAbi.Add.FIRMWARE, VdiskAbi.Add.LEN_FIRMWARE, r.firmware());
            a.setPointer(VdiskAbi.Add.IMAGE, image);
            a.setPointer(VdiskAbi.Add.BACKING, backing);
            a.setPointer(VdiskAbi.Add.FILES, files);
            a.setInt(VdiskAbi.Add.NR_FILES, r.files().size());
            a.setPointer(VdiskAbi.Add.EXTENTS, r.extents().count() == 0 ? null : r.extents().memory());
            a.setInt(VdiskAbi.Add.NR_EXTENTS, r.extents().count());
            call("VDISK_IOC_ADD", VdiskAbi.VDISK_IOC_ADD, a);
            return new Added(readText(a, VdiskAbi.Add.NAME, VdiskAbi.Add.LEN_NAME), a.getInt(VdiskAbi.Add.INDEX),
                    a.getLong(VdiskAbi.Add.FEATURES), a.getInt(VdiskAbi.Add.MAX_IO_BYTES));
        }
    }

    /** Adds the disk ADD made; returns once its partition table is read (the upcall threads must be serving). */
    void start() throws IOException {
        call("VDISK_IOC_START", VdiskAbi.VDISK_IOC_START, null);
    }

    /** Takes over disk {@code name}, whose serving process died, with the same files. */
    void recover(String name, List<FileRef> fileRefs) throws IOException {
        try (Memory r = new Memory(VdiskAbi.Recover.SIZE); Memory files = files(fileRefs)) {
            r.clear();
            text(r, VdiskAbi.Recover.NAME, VdiskAbi.Recover.LEN_NAME, name);
            r.setPointer(VdiskAbi.Recover.FILES, files);
            r.setInt(VdiskAbi.Recover.NR_FILES, fileRefs.size());
            call("VDISK_IOC_RECOVER " + name, VdiskAbi.VDISK_IOC_RECOVER, r);
        }
    }

    /** Removes disk {@code name}; refused (EBUSY) while it is open, unless {@code force}. */
    void delete(String name, boolean force) throws IOException {
        try (Memory d = new Memory(VdiskAbi.Del.SIZE)) {
            d.clear();
            text(d, VdiskAbi.Del.NAME, VdiskAbi.Del.LEN_NAME, name);
            d.setInt(VdiskAbi.Del.FLAGS, force ? (int) VdiskAbi.VDISK_DEL_FORCE : 0);
            call("VDISK_IOC_DEL " + name, VdiskAbi.VDISK_IOC_DEL, d);
        }
    }

    /** A disk as the module sees it. */
    record Info(String name, int state, long features, long size, int daemonPid, int openCount, long upcalls,
                long kernelReads, long kernelWrites, int extents) {
        boolean daemonGone() {
            return state == VdiskAbi.VDISK_STATE_NO_DAEMON || state == VdiskAbi.VDISK_STATE_FAILING;
        }
    }

    /** Disk {@code name}, or null if the module has none of that name. */
    Info info(String name) throws IOException {
        try (Memory m = new Memory(VdiskAbi.Info.SIZE)) {
            m.clear();
            text(m, VdiskAbi.Info.NAME, VdiskAbi.Info.LEN_NAME, name);
            try {
                call("VDISK_IOC_INFO " + name, VdiskAbi.VDISK_IOC_INFO, m);
            } catch (SysCallException e) {
                if (e.errno() == Errno.ENXIO) return null;
                throw e;
            }
            return new Info(readText(m, VdiskAbi.Info.NAME, VdiskAbi.Info.LEN_NAME), m.getInt(VdiskAbi.Info.STATE),
                    m.getLong(VdiskAbi.Info.FEATURES), m.getLong(VdiskAbi.Info.SIZE_), m.getInt(VdiskAbi.Info.DAEMON_PID),
                    m.getInt(VdiskAbi.Info.OPEN_COUNT), m.getLong(VdiskAbi.Info.UPCALLS),
                    m.getLong(VdiskAbi.Info.KERNEL_READS), m.getLong(VdiskAbi.Info.KERNEL_WRITES),
                    m.getInt(VdiskAbi.Info.NR_EXTENTS));
        }
    }

    /** Waits for an upcall, described into {@code upcall} (a VdiskAbi.Upcall whose buffer fields are set). */
    void fetch(Memory upcall) throws SysCallException {
        call("VDISK_IOC_FETCH", VdiskAbi.VDISK_IOC_FETCH, upcall);
    }

    /** Answers an upcall ({@code reply}: a VdiskAbi.Reply). */
    void complete(Memory reply) throws SysCallException {
        call("VDISK_IOC_COMPLETE", VdiskAbi.VDISK_IOC_COMPLETE, reply);
    }

    @Override
    public void close() {
        Libc.close(fd);
    }

    /** Opens {@code path} for the kernel to do I/O on (closed once handed over: the kernel keeps its own reference). */
    static int openFile(Path path, boolean writable) throws IOException {
        Libc.require();
        int fd = Libc.open(path.toString(), (writable ? Libc.O_RDWR : Libc.O_RDONLY) | Libc.O_CLOEXEC);
        if (fd < 0) throw Libc.failure("open " + path);
        return fd;
    }

    static void closeFile(int fd) {
        Libc.close(fd);
    }

    private static Memory files(List<FileRef> refs) {
        Memory m = new Memory((long) refs.size() * VdiskAbi.File.SIZE);
        m.clear();
        for (int i = 0; i < refs.size(); i++) {
            long at = (long) i * VdiskAbi.File.SIZE;
            m.setInt(at + VdiskAbi.File.FD, refs.get(i).fd());
            m.setInt(at + VdiskAbi.File.FLAGS, refs.get(i).writable() ? (int) VdiskAbi.VDISK_FILE_WRITABLE : 0);
        }
        return m;
    }

    private static Memory cString(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        Memory m = new Memory(b.length + 1L);
        m.write(0, b, 0, b.length);
        m.setByte(b.length, (byte) 0);
        return m;
    }

    /** A text field, NUL-terminated within its {@code size} (the caller keeps it short enough). */
    private static void text(Memory m, long offset, int size, String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        if (b.length >= size) throw new IllegalArgumentException("'" + s + "' does not fit in " + (size - 1) + " bytes");
        m.write(offset, b, 0, b.length);
        m.setByte(offset + b.length, (byte) 0);
    }

    private static String readText(Memory m, long offset, int size) {
        byte[] b = m.getByteArray(offset, size);
        int n = 0;
        while (n < b.length && b[n] != 0) n++;
        return new String(b, 0, n, StandardCharsets.UTF_8);
    }

    /** Whether the module is there: loaded, or loadable now (modprobe vdisk). */
    static boolean available() {
        if (Files.exists(DEVICE)) return true;
        try {
            Process p = new ProcessBuilder("modprobe", "vdisk").redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            if (!p.waitFor(30, java.util.concurrent.TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return false;
            }
            if (p.exitValue() != 0) return false;
            for (int i = 0; i < 100 && !Files.exists(DEVICE); i++) Thread.sleep(20); // udev or devtmpfs makes the node
            return Files.exists(DEVICE);
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }
}
