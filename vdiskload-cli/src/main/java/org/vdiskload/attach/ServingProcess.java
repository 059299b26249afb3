package org.vdiskload.attach;

import org.vdiskload.sys.Errno;
import org.vdiskload.sys.Libc;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Makes the serving process fit to serve a disk the machine may need in order to free memory: the disk
 * holding the root file system or a swap file. A process that waits for memory only its own disk could free
 * deadlocks (Lunev's argument for dm-qcow2, kernel-6.1-facts §7); so, as ublksrv does:
 * <ul>
 * <li>{@code PR_SET_IO_FLUSHER}: its allocations never recurse into I/O (PF_MEMALLOC_NOIO) and its writes
 *     are throttled only by their own device. The flag belongs to a thread and passes to the threads and
 *     processes it starts, through exec; set in a running JVM it would miss the threads already running. So
 *     the attaching command sets it on the thread that starts the serving process ({@link #start}), and
 *     every thread of the new JVM has it from its first instruction.</li>
 * <li>{@code oom_score_adj} -1000: the OOM killer takes anything else first.</li>
 * <li>{@code mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)}: what it has touched stays in RAM (no swap-in
 *     from a disk it serves), without locking the JVM's large reservations it never touches. Its heap is fixed
 *     and touched at start ({@link Attacher#thisJava}), so it never needs more.</li>
 * </ul>
 * Where the kernel is too old or refuses (no CAP_SYS_RESOURCE, a memory-lock limit), the serving process says
 * so in one line of its log and serves all the same.
 */
public final class ServingProcess {
    private static final Path OOM_SCORE_ADJ = Path.of("/proc/self/oom_score_adj");

    private ServingProcess() {}

    /** Starts {@code builder}'s process as an I/O flusher (where this kernel and this process may make one). */
    static Process start(ProcessBuilder builder) throws IOException {
        boolean flusher = Libc.available() && Libc.prctl(Libc.PR_GET_IO_FLUSHER, 0, 0, 0, 0) == 0
                && Libc.prctl(Libc.PR_SET_IO_FLUSHER, 1, 0, 0, 0) == 0;
        try {
            return builder.start();
        } finally {
            // This thread goes on as an ordinary one; the new process keeps the flag.
            if (flusher) Libc.prctl(Libc.PR_SET_IO_FLUSHER, 0, 0, 0, 0);
        }
    }

    /** In the serving process, before it serves: checks it was started as an I/O flusher, and the rest. */
    public static void harden(PrintStream log) {
        if (!Libc.available()) {
            log.println("vdiskload: warning: the C library is not available: the serving process cannot protect itself from memory pressure");
            return;
        }
        int flusher = Libc.prctl(Libc.PR_GET_IO_FLUSHER, 0, 0, 0, 0);
        if (flusher < 0) {
            log.println("vdiskload: warning: PR_GET_IO_FLUSHER (Linux 5.6, CAP_SYS_RESOURCE): " + Errno.describe(Libc.errno()));
        } else if (flusher == 0) {
            log.println("vdiskload: warning: not started as an I/O flusher (PR_SET_IO_FLUSHER): under memory pressure, serving may wait for its own disk");
        }
        try {
            Files.writeString(OOM_SCORE_ADJ, "-1000\n");
        } catch (IOException e) {
            log.println("vdiskload: warning: oom_score_adj: " + e.getMessage());
        }
        if (Libc.mlockall(Libc.MCL_CURRENT | Libc.MCL_FUTURE | Libc.MCL_ONFAULT) != 0) {
            log.println("vdiskload: warning: mlockall: " + Errno.describe(Libc.errno()));
        }
    }
}
