package org.vdiskload.cli;

import org.vdiskload.attach.AttachDaemon;
import org.vdiskload.attach.ServingProcess;
import org.vdiskload.attach.StateDir;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.util.concurrent.Callable;

/** The serving process that {@code vdiskload FILE} and {@code vdiskload --reconnect DEV} start (hidden: not for users to run). */
@Command(name = "attach-daemon", hidden = true, description = "Serve an attachment reserved in /run/vdiskload (started by vdiskload FILE).")
final class AttachDaemonCommand implements Callable<Integer> {
    @Option(names = "--reconnect", description = "Take over the recorded devices of a serving process that died.")
    boolean reconnect;

    @Parameters(paramLabel = "NAME")
    String name;

    @Override
    public Integer call() throws Exception {
        ServingProcess.harden(System.err);
        AttachDaemon.run(StateDir.system(), AttachBackends.ALL, name, reconnect, System.err);
        return 0;
    }
}
