package org.vdiskload.image;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * What lies beneath the layer being written: its backing chain, as one disk. A layer filling a
 * partial cluster it allocates (copy-on-write) reads the rest of the cluster from here.
 */
public interface Beneath {
    /** Reads {@code dst.remaining()} bytes at {@code pos}: the backing chain's content, zeros where it has none. */
    void read(ByteBuffer dst, long pos) throws IOException;

    /** Whether there is a backing chain; if not, every unallocated range reads as zeros. */
    boolean exists();
}
