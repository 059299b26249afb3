package org.vdiskload.format.qcow2;

import org.vdiskload.testing.OracleSuite;

/** Every variant testdata/qcow2.sh makes reads and maps like qemu (qemu-img convert -l for snapshots). */
class Qcow2OracleTest extends OracleSuite {
    @Override
    protected String script() {
        return "qcow2.sh";
    }
}
