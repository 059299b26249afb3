package org.vdiskload.attach.fuse;

import com.sun.jna.Memory;
import com.sun.jna.Pointer;
import org.vdiskload.sys.Errno;
import org.vdiskload.sys.Libc;
import org.vdiskload.sys.SysCallException;

import java.io.Closeable;
import java.io.IOException;

/**
 * An open /dev/fuse and the eventfd that wakes its readers for a stop. The device is non-blocking:
 * several workers read it at once, and one that finds it empty polls it together with the eventfd, so
 * {@link #stop()} reaches workers that wait for requests without closing a descriptor under them.
 */
final class FuseChannel implements Closeable {
    /** {@link #receive} results besides a request length. */
    static final long ENDED = -1, STOPPED = -2;

    final int fd;
    private final int stopFd;
    private volatile boolean stopped;

    private FuseChannel(int fd, int stopFd) {
        this.fd = fd;
        this.stopFd = stopFd;
    }

    static FuseChannel open() throws IOException {
        Libc.require();
        int fd = Libc.open("/dev/fuse", Libc.O_RDWR | Libc.O_NONBLOCK | Libc.O_CLOEXEC);
        if (fd < 0) throw Libc.failure("open /dev/fuse");
        int stopFd = Libc.eventfd(0, Libc.O_CLOEXEC);
        if (stopFd < 0) {
            SysCallException e = Libc.failure("eventfd");
            Libc.close(fd);
            throw e;
        }
        return new FuseChannel(fd, stopFd);
    }

    /** A poll set for one reader thread: the device and the stop eventfd. */
    Memory pollSet() {
        Memory m = new Memory(16);
        m.setInt(0, fd);
        m.setShort(4, Libc.POLLIN);
        m.setInt(8, stopFd);
        m.setShort(12, Libc.POLLIN);
        return m;
    }

    /**
     * Reads one request into {@code buf}; returns its length, {@link #ENDED} once the kernel ended the
     * session, {@link #STOPPED} after {@link #stop()}, or 0 when none came within {@code timeoutMillis}
     * (negative: wait forever).
     */
    long receive(Pointer buf, long size, Memory pollSet, int timeoutMillis) throws IOException {
        while (!stopped) {
            long n = Libc.read(fd, buf, size);
            if (n > 0) return n;
            int e = n < 0 ? Libc.errno() : Errno.EIO;
            switch (e) {
                case Errno.ENODEV:
                    return ENDED;
                case Errno.EINTR, Errno.ENOENT: // ENOENT: the request was interrupted before we got it
                    continue;
                case Errno.EAGAIN:
                    int r = Libc.poll(pollSet, 2, timeoutMillis);
                    if (r == 0) return 0;
                    if (r < 0 && Libc.errno() != Errno.EINTR) throw Libc.failure("poll /dev/fuse");
                    continue;
                default:
                    throw new SysCallException("read /dev/fuse", e);
            }
        }
        return STOPPED;
    }

    /**
     * Sends one reply in one write. Returns false once the session ended; a reply to a request the kernel
     * already dropped (interrupted, ENOENT) counts as sent.
     */
    boolean send(Pointer buf, int length) throws IOException {
        while (true) {
            long n = Libc.write(fd, buf, length);
            if (n == length) return true;
            int e = n < 0 ? Libc.errno() : Errno.EIO;
            if (e == Errno.EINTR) continue;
            if (e == Errno.ENOENT) return true;
            if (e == Errno.ENODEV) return false;
            throw new SysCallException("write /dev/fuse (" + length + " bytes)", e);
        }
    }

    /** Makes every reader return {@link #STOPPED}: the eventfd stays readable once written. */
    void stop() {
        stopped = true;
        try (Memory one = new Memory(8)) {
            one.setLong(0, 1);
            Libc.write(stopFd, one, 8);
        }
    }

    /** Closes the device: if the kernel still holds the connection, this aborts it. */
    @Override
    public void close() {
        Libc.close(stopFd);
        Libc.close(fd);
    }
}
