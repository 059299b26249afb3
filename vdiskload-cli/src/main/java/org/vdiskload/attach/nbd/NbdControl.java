package org.vdiskload.attach.nbd;

import java.io.IOException;
import java.util.List;

/**
 * How the backend drives the kernel's nbd driver: its generic-netlink interface ({@link NbdNetlink}), or,
 * only where the kernel has none (before Linux 4.12), the NBD_SET_SOCK ioctls ({@link NbdIoctl}). The rest
 * of the backend does not know which.
 */
interface NbdControl {
    /** Test-only: {@code VDISKLOAD_NBD_IOCTL=1} takes the ioctl path on a kernel that has netlink, to test it. */
    String FORCE_IOCTL_ENV = "VDISKLOAD_NBD_IOCTL";

    /**
     * What a connect tells the driver. Timeouts in seconds; {@code backend} shows in /sys/block/nbdN/backend
     * (netlink only).
     */
    record Connect(long size, int blockSize, long serverFlags, long timeout, long deadConnTimeout, String backend, List<Integer> fds) {}

    /** The control for this kernel: netlink where the driver has it, else the ioctls. */
    static NbdControl forKernel() {
        if ("1".equals(System.getenv(FORCE_IOCTL_ENV)) || !NbdNetlink.available()) return new NbdIoctl();
        return new NbdNetlink();
    }

    /** How many connections a device may have: several (CAN_MULTI_CONN) through netlink, one through the ioctls. */
    boolean multipleConnections();

    /** Connects a device to {@code c}'s sockets; returns its index N (/dev/nbdN). */
    int connect(Connect c) throws IOException;

    /** Whether /dev/nbd{@code index} is still connected, by this control, for the backend identifier {@code backend}. */
    boolean holds(int index, String backend) throws IOException;

    /** Gives /dev/nbd{@code index}'s dead connections the sockets {@code fds} (its serving process died). */
    void reconnect(int index, String backend, List<Integer> fds) throws IOException;

    /** Disconnects /dev/nbd{@code index}; returns once the driver has let go of its sockets. */
    void disconnect(int index) throws IOException;
}
