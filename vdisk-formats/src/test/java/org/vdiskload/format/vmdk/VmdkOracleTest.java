package org.vdiskload.format.vmdk;

import org.vdiskload.testing.OracleSuite;

/** Every image testdata/vmdk.sh makes reads and maps as qemu reads and maps it. */
class VmdkOracleTest extends OracleSuite {
    @Override
    protected String script() {
        return "vmdk.sh";
    }
}
