package org.vdiskload.testing.fuzz;

import java.io.IOException;
import java.lang.management.ManagementFactory;

/**
 * The stated bounds on what the library may allocate (counted per thread with HotSpot's allocation counter,
 * garbage included), so that a size a header merely claims never becomes an allocation: a 2^31-entry table in
 * a 4 KiB file is a finding here before it is an OutOfMemoryError on a smaller machine.
 * <ul>
 *   <li>opening an image, and checking it: {@link #BASE} plus {@link #PER_FILE_BYTE} times the bytes of its
 *       files (it may hold tables as large as the files hold: a block map, a BAT, refcounts);</li>
 *   <li>one read or map of n bytes: {@link #PER_CALL} plus {@link #PER_READ_BYTE} times n (a compressed 2 MiB
 *       cluster is decompressed whole to read a byte of it; a map walks every cluster of the range).</li>
 * </ul>
 */
public final class AllocationBudget {
    public static final long BASE = 48L << 20;
    public static final long PER_FILE_BYTE = 8;
    public static final long PER_CALL = 8L << 20;
    public static final long PER_READ_BYTE = 4;

    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    private AllocationBudget() {}

    /**
     * A step allocated more than its bound. The first run of a code path allocates for class loading and
     * initialisation, so a target runs an input that exceeds a bound once more and reports only a repeat.
     */
    public static final class Exceeded extends Finding {
        Exceeded(String message) {
            super(message);
        }
    }

    /** Something that may allocate. */
    @FunctionalInterface
    public interface Step<T> {
        T run() throws IOException;
    }

    /** The bound for opening or checking images whose files hold {@code fileBytes}. */
    public static long forFiles(long fileBytes) {
        return BASE + PER_FILE_BYTE * fileBytes;
    }

    /** The bound for one read or map of {@code bytes}. */
    public static long forRead(long bytes) {
        return PER_CALL + PER_READ_BYTE * bytes;
    }

    /** Runs {@code step}; a {@link Finding} if it allocated more than {@code limit} bytes. */
    public static <T> T within(long limit, String what, Step<T> step) throws IOException {
        long start = THREADS.getCurrentThreadAllocatedBytes();
        T result;
        try {
            result = step.run();
        } finally {
            long used = THREADS.getCurrentThreadAllocatedBytes() - start;
            if (used > limit) throw new Exceeded(what + " allocated " + used + " bytes, more than the bound of " + limit);
        }
        return result;
    }
}
