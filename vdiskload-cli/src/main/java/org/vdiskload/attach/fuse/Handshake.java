package org.vdiskload.attach.fuse;

import java.nio.ByteBuffer;

import static org.vdiskload.attach.fuse.Fuse.*;
import static org.vdiskload.sys.Errno.*;

/** The INIT negotiation: protocol 7.x, 1 MiB reads and writes, parallel reads, no writeback cache. */
final class Handshake {
    private Handshake() {}

    /** What we ask for, where the kernel offers it. Never WRITEBACK_CACHE: a write must reach the image before its reply. */
    private static final int WANTED = ASYNC_READ | ASYNC_DIO | BIG_WRITES | MAX_PAGES;
    /** The compat size of fuse_init_out before 7.23. */
    private static final int INIT_OUT_7_22 = 24;

    /** Writes the fuse_init_out for the kernel's fuse_init_in; returns its length. */
    static int reply(Request in, ByteBuffer out) throws FuseError {
        in.require(INIT_IN_V7_6);
        int major = in.u32(0), minor = in.u32(4), readahead = in.u32(8), flags = in.u32(12);
        if (major != KERNEL_MAJOR) throw new FuseError(EPROTO);
        minor = Math.min(minor, KERNEL_MINOR);
        int p = OUT_HEADER;
        for (int i = p; i < p + INIT_OUT; i++) out.put(i, (byte) 0);
        out.putInt(p, KERNEL_MAJOR).putInt(p + 4, minor).putInt(p + 8, readahead).putInt(p + 12, flags & WANTED)
                .putShort(p + 16, (short) 64).putShort(p + 18, (short) 48) // max_background, congestion_threshold
                .putInt(p + 20, MAX_IO).putInt(p + 24, 1) // max_write, time_gran
                .putShort(p + 28, (short) MAX_PAGES_COUNT);
        return minor < 23 ? INIT_OUT_7_22 : INIT_OUT;
    }
}
