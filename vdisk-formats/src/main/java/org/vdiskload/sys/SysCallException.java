package org.vdiskload.sys;

import java.io.IOException;

/**
 * A system call that failed: which call (with what it was called on), and the errno it left, so that
 * callers act on the number ({@code EBUSY}: try the next device) instead of on a message, and a server
 * passes the number on ({@link Errno#of}).
 */
public class SysCallException extends IOException implements CarriesErrno {
    private final String call;
    private final int errno;

    public SysCallException(String call, int errno) {
        super(call + ": " + Errno.describe(errno));
        this.call = call;
        this.errno = errno;
    }

    /** The failed call and its object, e.g. "open /dev/fuse" or "nbd netlink DISCONNECT of /dev/nbd0". */
    public String call() {
        return call;
    }

    @Override
    public int errno() {
        return errno;
    }
}
