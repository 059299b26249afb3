package org.vdiskload.attach;

import org.vdiskload.sys.Errno;
import org.vdiskload.sys.Libc;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Makes the serving process fit to serve a disk the machine may need in order to free memory: the disk
 * holding the root file system or a swap file. A process that waits for memory only its own disk could free
 * deadlocks (Lunev's argument for dm-qcow2, kernel-6.1-facts §7); so, before anything else, as ublksrv does:
 * <ul>
 * <li>{@code PR_SET_IO_FLUSHER}: its allocations never recurse into I/O (PF_MEMALLOC_NOIO) and its writes
 *     are throttled only by their own device. Set on one thread it holds for that thread and those it starts
 *     later, not for the JVM's threads already running; so the process sets it and then runs itself again
 *     ({@code execv}: same pid, same argv[0] and output), and every thread of the new JVM inherits it.</li>
 * <li>{@code oom_score_adj} -1000: the OOM killer takes anything else first.</li>
 * <li>{@code mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)}: what it has touched stays in RAM (no swap-in
 *     from a disk it serves), without locking the JVM's large reservations it never touches. Its heap is fixed
 *     and touched at start ({@link Attacher#thisJava}), so it never needs more.</li>
 * </ul>
 * Where the kernel is too old or refuses (no CAP_SYS_RESOURCE, a memory-lock limit), it says so in one line
 * and serves all the same.
 */
public final class ServingProcess {
    private static final Path SELF = Path.of("/proc/self");

    private ServingProcess() {}

    /** Sets it all up; returns only in the process that will serve (the first one runs itself again). */
    public static void harden(PrintStream log) {
        if (!Libc.available()) {
            log.println("vdiskload: warning: the C library is not available: the serving process cannot protect itself from memory pressure");
            return;
        }
        int flusher = Libc.prctl(Libc.PR_GET_IO_FLUSHER, 0, 0, 0, 0);
        if (flusher == 0) {
            if (Libc.prctl(Libc.PR_SET_IO_FLUSHER, 1, 0, 0, 0) != 0) {
                log.println("vdiskload: warning: PR_SET_IO_FLUSHER: " + Errno.describe(Libc.errno()));
            } else {
                adjustOomScore(log);
                reexec(log);
            }
        } else if (flusher < 0) {
            log.println("vdiskload: warning: this kernel has no PR_SET_IO_FLUSHER (Linux 5.6): " + Errno.describe(Libc.errno()));
        }
        adjustOomScore(log);
        if (Libc.mlockall(Libc.MCL_CURRENT | Libc.MCL_FUTURE | Libc.MCL_ONFAULT) != 0) {
            log.println("vdiskload: warning: mlockall: " + Errno.describe(Libc.errno()));
        }
    }

    private static void adjustOomScore(PrintStream log) {
        try {
            Files.writeString(SELF.resolve("oom_score_adj"), "-1000\n");
        } catch (IOException e) {
            log.println("vdiskload: warning: oom_score_adj: " + e.getMessage());
        }
    }

    /** Runs this process's command line again in its place; on failure, says so and returns. */
    private static void reexec(PrintStream log) {
        try {
            byte[] raw = Files.readAllBytes(SELF.resolve("cmdline"));
            List<String> argv = new ArrayList<>();
            int start = 0;
            for (int i = 0; i < raw.length; i++) {
                if (raw[i] == 0) {
                    argv.add(new String(raw, start, i - start, StandardCharsets.UTF_8));
                    start = i + 1;
                }
            }
            log.flush();
            Libc.execv(SELF.resolve("exe").toString(), argv);
            log.println("vdiskload: warning: running again with PR_SET_IO_FLUSHER: " + Errno.describe(Libc.errno()));
        } catch (IOException e) {
            log.println("vdiskload: warning: running again with PR_SET_IO_FLUSHER: " + e.getMessage());
        }
    }
}
