package org.vdiskload.io;

import org.vdiskload.sys.Errno;
import org.vdiskload.sys.Libc;

import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Where a host file has data and where it has holes (lseek SEEK_DATA / SEEK_HOLE through JNA,
 * {@link Libc}). Used for raw images, whose holes qemu reports as zero, and for "disk size" figures.
 * Loaded lazily: JNA costs start-up time that most commands do not need.
 */
public final class Holes {
    private static final AtomicBoolean PREPARING = new AtomicBoolean();

    /**
     * Binds the C functions on a thread of its own, so that loading JNA (40 ms, most of it
     * java.util.logging's start, which JNA's logger sets off) overlaps the caller's work until its
     * first hole query. Called where a file will be asked, not at every start: in the background
     * it still costs a command that never asks (converting a VDI, say) some 15 ms of its start-up.
     */
    public static void prepareInBackground() {
        if (!PREPARING.compareAndSet(false, true)) return;
        Thread t = new Thread(Libc::available, "holes-init");
        t.setDaemon(true);
        t.start();
    }

    private Holes() {}

    /** An open descriptor for hole queries; holds no Java channel, only the kernel fd. */
    public static final class Probe implements AutoCloseable {
        private final int fd;

        private Probe(int fd) { this.fd = fd; }

        /**
         * The start of the first data at or after {@code pos}, or {@code end} if there is none
         * before it. Files systems without hole support report everything as data.
         */
        public long nextData(long pos, long end) {
            long r = Libc.lseek(fd, pos, Libc.SEEK_DATA);
            if (r < 0) return Libc.errno() == Errno.ENXIO ? end : pos;
            return Math.min(r, end);
        }

        /** The start of the first hole at or after {@code pos} (EOF counts as a hole), at most {@code end}. */
        public long nextHole(long pos, long end) {
            long r = Libc.lseek(fd, pos, Libc.SEEK_HOLE);
            if (r < 0) return end;
            return Math.min(r, end);
        }

        @Override
        public void close() {
            Libc.close(fd);
        }
    }

    /** Opens a hole probe on {@code path}, or returns null where the platform cannot tell. */
    public static Probe open(Path path) throws IOException {
        if (!Libc.available()) return null;
        int fd = Libc.open(path.toString(), Libc.O_RDONLY);
        if (fd < 0) return null;
        return new Probe(fd);
    }

    /**
     * Frees {@code [offset, offset+length)} of the file, which then reads as zeros (fallocate
     * PUNCH_HOLE). Returns false where the file system or platform cannot; the caller writes zeros.
     */
    public static boolean punchHole(Path path, long offset, long length) {
        return fallocate(path, Libc.FALLOC_FL_PUNCH_HOLE | Libc.FALLOC_FL_KEEP_SIZE, offset, length);
    }

    /** Reserves space for {@code [offset, offset+length)} (fallocate mode 0); false where it cannot. */
    public static boolean allocate(Path path, long offset, long length) {
        return fallocate(path, 0, offset, length);
    }

    private static boolean fallocate(Path path, int mode, long offset, long length) {
        if (!Libc.available() || length <= 0) return length <= 0;
        int fd = Libc.open(path.toString(), Libc.O_WRONLY);
        if (fd < 0) return false;
        try {
            return Libc.fallocate(fd, mode, offset, length) == 0;
        } finally {
            Libc.close(fd);
        }
    }

    /** Bytes of {@code path} that hold data (not holes): the "disk size" qemu-img info shows, roughly. */
    public static long dataBytes(Path path, long size) throws IOException {
        try (Probe p = open(path)) {
            if (p == null) return size;
            long total = 0;
            long pos = 0;
            while (pos < size) {
                long d = p.nextData(pos, size);
                if (d >= size) break;
                long h = p.nextHole(d, size);
                total += h - d;
                pos = h;
            }
            return total;
        }
    }
}
