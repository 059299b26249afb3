package org.vdiskload.cli;

import org.vdiskload.attach.Backends;
import org.vdiskload.attach.fuse.FuseBackend;
import org.vdiskload.attach.kmod.KmodBackend;
import org.vdiskload.attach.nbd.NbdBackend;

import java.util.List;

/** Every attach backend this build has, in the order {@code --backend auto} tries them: the one place that names them. */
final class AttachBackends {
    static final Backends ALL = new Backends(List.of(KmodBackend.KIND, NbdBackend.KIND, FuseBackend.KIND));

    private AttachBackends() {}
}
