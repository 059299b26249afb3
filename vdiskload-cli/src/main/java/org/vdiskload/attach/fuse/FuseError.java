package org.vdiskload.attach.fuse;

/** A request answered with an errno. Thrown for expected refusals, so it carries no stack trace. */
final class FuseError extends Exception {
    final int errno;

    FuseError(int errno) {
        super("errno " + errno, null, false, false);
        this.errno = errno;
    }
}
