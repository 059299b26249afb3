package org.vdiskload.serving;

import com.sun.jna.Memory;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;
import org.vdiskload.sys.Libc;

import java.io.Closeable;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Keeps other writers away from the files of a served or attached image, with the locks qemu uses, so that
 * vdiskload and qemu (qemu-nbd, qemu-img, qemu-io, a VM) see each other.
 *
 * <p>qemu's file-posix driver takes a shared lock on byte 100+i of a file for each permission i it
 * holds (0 read, 1 write, 2 write-unchanged, 3 resize) and on byte 200+i for each it does not let
 * others have. Before taking them it asks whether anyone else holds 200+i for a permission it wants
 * (someone forbids it) or 100+i for one it forbids (someone has it). The top file of an image served
 * read-write holds read and write (100, 101); every file holds read (100); and no file lets others
 * write or resize it (201, 203), as with a qemu writer. So a second read-write server, qemu-img
 * without -U, or a VM on the same image is refused, and this class refuses while one of them is on it.
 *
 * <p>These are open file description locks (F_OFD_SETLK), as qemu's, held on a descriptor of their
 * own. FileChannel.lock's POSIX locks would not do: they never conflict within one process, and the
 * process loses them when it closes any descriptor of the file (the library opens and closes some
 * to punch holes). OFD and POSIX locks do conflict with each other, so tools using either see these.
 */
public final class ImageLock implements Closeable {
    private static final int READ = 0;
    private static final int WRITE = 1;
    private static final int RESIZE = 3;
    private static final int PERM_BASE = 100;
    private static final int SHARED_BASE = 200;
    private static final int[] NOT_SHARED = {WRITE, RESIZE};
    /** What a process holding byte 100+i is doing. */
    private static final String[] DOING = {"reading", "writing", "writing", "resizing"};

    private static final short F_RDLCK = 0;
    private static final short F_WRLCK = 1;
    private static final short F_UNLCK = 2;
    /** struct flock on 64-bit Linux: l_type, l_whence (shorts), l_start, l_len (longs at 8, 16), l_pid (int at 24). */
    private static final int FLOCK_SIZE = 32;

    private final List<Integer> fds;

    private ImageLock(List<Integer> fds) {
        this.fds = fds;
    }

    /**
     * Locks every file of {@code disk}: its top layer's for writing when {@code write}, the rest (the
     * backing chain, or all of it when only read) for reading, none of them writable by others.
     *
     * @throws ImageException naming the file and who is in the way, if another process holds a lock that conflicts
     */
    public static ImageLock acquire(DiskImage disk, boolean write) throws IOException {
        if (!Libc.available()) throw new IOException(disk.path() + ": cannot lock the image: the C library is not available");
        List<Integer> fds = new ArrayList<>();
        ImageLock lock = new ImageLock(fds);
        try {
            List<ImageLayer> layers = disk.layers();
            for (int depth = 0; depth < layers.size(); depth++) {
                int[] perms = write && depth == 0 ? new int[] {READ, WRITE} : new int[] {READ};
                for (ImageFile f : layers.get(depth).files()) fds.add(lockFile(f.path(), perms));
            }
            return lock;
        } catch (IOException | RuntimeException e) {
            lock.close();
            throw e;
        }
    }

    private static int lockFile(Path path, int[] perms) throws IOException {
        int fd = Libc.open(path.toString(), Libc.O_RDONLY | Libc.O_CLOEXEC);
        if (fd < 0) throw Libc.failure(path + ": cannot open to lock it");
        try {
            for (int p : NOT_SHARED) {
                if (heldByOthers(fd, path, PERM_BASE + p)) throw inUse(path, "is " + DOING[p] + " it");
            }
            for (int p : perms) {
                if (heldByOthers(fd, path, SHARED_BASE + p)) throw inUse(path, "does not let others " + (p == READ ? "read" : "write") + " it");
            }
            for (int p : perms) setLock(fd, path, PERM_BASE + p);
            for (int p : NOT_SHARED) setLock(fd, path, SHARED_BASE + p);
            return fd;
        } catch (IOException | RuntimeException e) {
            Libc.close(fd);
            throw e;
        }
    }

    private static ImageException inUse(Path path, String what) {
        return ImageException.invalid(path, "is in use: another process (a vdiskload or qemu-nbd server, qemu-img, a VM...) "
                + what + "; stop it, or open this image read-only (-r) or with --snapshot");
    }

    private static Memory flock(short type, long start) {
        Memory m = new Memory(FLOCK_SIZE);
        m.clear();
        m.setShort(0, type);
        m.setShort(2, (short) 0); // SEEK_SET
        m.setLong(8, start);
        m.setLong(16, 1);
        return m;
    }

    /** Whether another descriptor (in any process, or this one) holds a lock on {@code offset} that a write lock would meet. */
    private static boolean heldByOthers(int fd, Path path, long offset) throws IOException {
        Memory m = flock(F_WRLCK, offset);
        if (Libc.fcntl(fd, Libc.F_OFD_GETLK, m) != 0) throw lockFailed(path, offset);
        return m.getShort(0) != F_UNLCK;
    }

    private static void setLock(int fd, Path path, long offset) throws IOException {
        if (Libc.fcntl(fd, Libc.F_OFD_SETLK, flock(F_RDLCK, offset)) != 0) throw lockFailed(path, offset);
    }

    private static IOException lockFailed(Path path, long offset) {
        return Libc.failure(path + ": cannot lock byte " + offset);
    }

    /** Releases every lock (closing their descriptors). */
    @Override
    public void close() {
        for (int fd : fds) Libc.close(fd);
        fds.clear();
    }
}
