package org.vdiskload.attach;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.attach.fuse.FuseBackend;
import org.vdiskload.attach.nbd.NbdBackend;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * {@link Attacher#reconnect}'s refusals and its failure path, on records in a private state directory:
 * no kernel device is involved (the VM check nbd-reconnect.sh covers the real reconnect).
 */
class ReconnectTest {
    @TempDir
    Path dir;

    private static Attachment nbd(String state, long pid, boolean snapshot) {
        return new Attachment("qcow7", "nbd", state, pid, "/images/a.qcow2", "qcow2", List.of(), 1 << 20, false, snapshot,
                "", "/dev/nbd3", List.of(), List.of(), "");
    }

    /** A pid no process has: one that ran and was reaped. */
    private static long deadPid() throws Exception {
        Process p = new ProcessBuilder("true").start();
        p.waitFor();
        return p.pid();
    }

    private Attacher attacher(StateDir state, List<String> daemon) {
        return new Attacher(state, new Backends(List.of(NbdBackend.KIND, FuseBackend.KIND)), daemon, Duration.ofSeconds(30));
    }

    @Test
    void refusesSnapshotAttachments() throws Exception {
        StateDir state = new StateDir(dir);
        Attachment a = nbd(Attachment.READY, deadPid(), true);
        state.write(a);
        IOException e = assertThrows(IOException.class, () -> attacher(state, List.of("false")).reconnect(a));
        assertEquals("/dev/qcow7: attached with --snapshot, whose overlay died with its serving process; detach it (-d)", e.getMessage());
        assertEquals(a, state.find("qcow7").orElseThrow());
    }

    @Test
    void refusesWhileTheServingProcessRuns() throws Exception {
        StateDir state = new StateDir(dir);
        // A process whose arguments name the attachment, as the serving process's do.
        Process serving = new ProcessBuilder("sh", "-c", "sleep 60", "qcow7").start();
        try {
            Attachment a = nbd(Attachment.READY, serving.pid(), false);
            state.write(a);
            IOException e = assertThrows(IOException.class, () -> attacher(state, List.of("false")).reconnect(a));
            assertEquals("/dev/qcow7: its serving process (pid " + serving.pid() + ") runs: nothing to reconnect", e.getMessage());
            assertEquals(a, state.find("qcow7").orElseThrow());
        } finally {
            serving.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void refusesWhileAnotherReconnectRuns() throws Exception {
        StateDir state = new StateDir(dir);
        Attachment a = nbd(Attachment.STARTING, deadPid(), false);
        state.write(a);
        IOException e = assertThrows(IOException.class, () -> attacher(state, List.of("false")).reconnect(nbd(Attachment.READY, a.pid(), false)));
        assertEquals("/dev/qcow7: being attached or reconnected (by pid " + a.pid() + ")", e.getMessage());
    }

    @Test
    void aFailedServingProcessLeavesTheRecordAsItWas() throws Exception {
        StateDir state = new StateDir(dir);
        Attachment a = nbd(Attachment.READY, deadPid(), false);
        state.write(a);
        // The "serving process" says why it failed, as AttachDaemon does, and exits.
        List<String> daemon = List.of("sh", "-c", "echo 'vdiskload: no luck'; exit 3", "daemon");
        IOException e = assertThrows(IOException.class, () -> attacher(state, daemon).reconnect(a));
        assertEquals("no luck", e.getMessage());
        assertEquals(a, state.find("qcow7").orElseThrow());
    }
}
