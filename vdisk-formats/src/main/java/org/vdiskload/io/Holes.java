package org.vdiskload.io;

import com.sun.jna.Library;
import com.sun.jna.Native;

import java.io.IOException;
import java.nio.file.Path;

/**
 * Where a host file has data and where it has holes (lseek SEEK_DATA / SEEK_HOLE through JNA).
 * Used for raw images, whose holes qemu reports as zero, and for "disk size" figures.
 * Loaded lazily: JNA costs start-up time that most commands do not need.
 */
public final class Holes {
    private static final int O_RDONLY = 0;
    private static final int SEEK_DATA = 3;
    private static final int SEEK_HOLE = 4;
    private static final int ENXIO = 6;

    private static final int O_WRONLY = 1;
    private static final int FALLOC_FL_KEEP_SIZE = 0x01;
    private static final int FALLOC_FL_PUNCH_HOLE = 0x02;

    private interface LibC extends Library {
        int open(String path, int flags);
        int fallocate(int fd, int mode, long offset, long len);
        int close(int fd);
    }

    private static final class Lazy {
        static final LibC LIBC = load();

        private static LibC load() {
            return CLibrary.load(LibC.class);
        }
    }

    /**
     * lseek bound by JNA's direct mapping, a plain native method: a call through the {@link LibC} proxy
     * costs microseconds of reflection, and serving a raw image asks twice per read request.
     */
    private static final class Seek {
        static final boolean BOUND = bind();

        static native long lseek(int fd, long offset, int whence);

        private static boolean bind() {
            for (String name : new String[] {"libc.so.6", "c"}) {
                try {
                    Native.register(Seek.class, name);
                    return true;
                } catch (UnsatisfiedLinkError | RuntimeException e) {
                    // try the next name
                }
            }
            return false;
        }
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
            long r = Seek.lseek(fd, pos, SEEK_DATA);
            if (r < 0) return Native.getLastError() == ENXIO ? end : pos;
            return Math.min(r, end);
        }

        /** The start of the first hole at or after {@code pos} (EOF counts as a hole), at most {@code end}. */
        public long nextHole(long pos, long end) {
            long r = Seek.lseek(fd, pos, SEEK_HOLE);
            if (r < 0) return end;
            return Math.min(r, end);
        }

        @Override
        public void close() {
            Lazy.LIBC.close(fd);
        }
    }

    /** Opens a hole probe on {@code path}, or returns null where the platform cannot tell. */
    public static Probe open(Path path) throws IOException {
        if (Lazy.LIBC == null || !Seek.BOUND) return null;
        int fd = Lazy.LIBC.open(path.toString(), O_RDONLY);
        if (fd < 0) return null;
        return new Probe(fd);
    }

    /**
     * Frees {@code [offset, offset+length)} of the file, which then reads as zeros (fallocate
     * PUNCH_HOLE). Returns false where the file system or platform cannot; the caller writes zeros.
     */
    public static boolean punchHole(Path path, long offset, long length) {
        return fallocate(path, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
    }

    /** Reserves space for {@code [offset, offset+length)} (fallocate mode 0); false where it cannot. */
    public static boolean allocate(Path path, long offset, long length) {
        return fallocate(path, 0, offset, length);
    }

    private static boolean fallocate(Path path, int mode, long offset, long length) {
        if (Lazy.LIBC == null || length <= 0) return length <= 0;
        int fd = Lazy.LIBC.open(path.toString(), O_WRONLY);
        if (fd < 0) return false;
        try {
            return Lazy.LIBC.fallocate(fd, mode, offset, length) == 0;
        } finally {
            Lazy.LIBC.close(fd);
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
