package org.vdiskload.attach;

import org.junit.jupiter.api.Test;
import org.vdiskload.sys.Libc;

import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The serving process starts as an I/O flusher, and only it: the starting thread is an ordinary one again. */
class ServingProcessTest {
    private static final long PF_MEMALLOC_NOIO = 0x80000, PF_LOCAL_THROTTLE = 0x100000;

    /** The task flags of the process {@code builder} runs, as it reads them from its own /proc/self/stat. */
    private static long flagsOf(ProcessBuilder builder, boolean asFlusher) throws Exception {
        Process p = asFlusher ? ServingProcess.start(builder) : builder.start();
        String stat = new String(p.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
        assertEquals(0, p.waitFor());
        // After "pid (comm) ": state ppid pgrp session tty_nr tpgid flags
        return Long.parseLong(stat.substring(stat.lastIndexOf(") ") + 2).split(" ")[6]);
    }

    @Test
    void startsTheProcessWithTheFlusherFlagsAndClearsThemHere() throws Exception {
        assumeTrue(Libc.available() && Libc.prctl(Libc.PR_GET_IO_FLUSHER, 0, 0, 0, 0) == 0,
                "a kernel with PR_SET_IO_FLUSHER (5.6) and a thread that is not a flusher yet");
        ProcessBuilder stat = new ProcessBuilder("cat", "/proc/self/stat");
        long both = PF_MEMALLOC_NOIO | PF_LOCAL_THROTTLE;
        assertEquals(both, flagsOf(stat, true) & both);
        assertEquals(0, Libc.prctl(Libc.PR_GET_IO_FLUSHER, 0, 0, 0, 0));
        assertEquals(0, flagsOf(stat, false) & both);
    }
}
