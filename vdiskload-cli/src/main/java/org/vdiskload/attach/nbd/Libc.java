package org.vdiskload.attach.nbd;

import com.sun.jna.Library;
import com.sun.jna.Native;
import org.vdiskload.io.CLibrary;

import java.io.IOException;

/** The libc calls the nbd backend makes: sockets (Unix and netlink), and the block device's flush. */
interface Libc extends Library {
    int AF_UNIX = 1;
    int AF_NETLINK = 16;
    int SOCK_STREAM = 1;
    int SOCK_RAW = 3;
    int SOCK_CLOEXEC = 0x80000;
    int SOL_SOCKET = 1;
    int SO_RCVTIMEO = 20;
    int O_RDONLY = 0;
    int O_RDWR = 2;
    int O_CLOEXEC = 0x80000;
    /** BLKFLSBUF: write back and drop the device's buffer cache. */
    long BLKFLSBUF = 0x1261;

    int socket(int domain, int type, int protocol);

    int connect(int fd, byte[] address, int length);

    int setsockopt(int fd, int level, int option, byte[] value, int length);

    long send(int fd, byte[] buf, long length, int flags);

    long recv(int fd, byte[] buf, long length, int flags);

    int open(String path, int flags);

    int ioctl(int fd, long request, long arg);

    int fsync(int fd);

    int close(int fd);

    String strerror(int errno);

    final class Holder {
        private static final Libc LIBC = CLibrary.load(Libc.class);

        private Holder() {}
    }

    static Libc get() throws IOException {
        if (Holder.LIBC == null) throw new IOException("cannot load the C library (JNA)");
        return Holder.LIBC;
    }

    /** "what: the error's text (errno N)" for the last failed call. */
    static IOException error(String what) {
        int e = Native.getLastError();
        return new IOException(what + ": " + Holder.LIBC.strerror(e) + " (errno " + e + ")");
    }
}
