package org.vdiskload.attach;

import java.io.IOException;

/**
 * How long the kernel holds I/O that needs a serving process which died, waiting for {@code vdiskload
 * --reconnect}, before failing it with EIO: the nbd backend's dead-connection timeout and the kmod backend's
 * dead timeout alike. Set per attachment, at attach.
 */
public final class DeadTimeout {
    /**
     * The default: iSCSI's for the same wait (open-iscsi's replacement_timeout), long enough to notice a dead
     * serving process and run {@code vdiskload --reconnect}, short enough that I/O gets its EIO in minutes
     * when nobody does.
     */
    public static final long DEFAULT_SECONDS = 120;
    /** Overrides the default in the attaching command's environment (whole seconds; 0: fail at once): for tests and slow machines. */
    public static final String ENV = "VDISKLOAD_DEAD_TIMEOUT";
    private static final long MAX_SECONDS = 86_400;

    private DeadTimeout() {}

    /** The seconds this attachment's serving process was started with. */
    public static long seconds() throws IOException {
        String v = System.getenv(ENV);
        if (v == null || v.isEmpty()) return DEFAULT_SECONDS;
        if (!v.matches("[0-9]{1,5}") || Long.parseLong(v) > MAX_SECONDS) {
            throw new IOException(ENV + "=" + v + ": want whole seconds, 0 to " + MAX_SECONDS);
        }
        return Long.parseLong(v);
    }
}
