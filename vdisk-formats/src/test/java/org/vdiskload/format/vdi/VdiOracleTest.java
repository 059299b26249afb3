package org.vdiskload.format.vdi;

import org.vdiskload.testing.OracleSuite;

/**
 * qemu-img map reports unallocated VDI blocks as present and zero; the oracle compares data against
 * zero only, so vdiskload's UNALLOCATED (zeros: VDI has no backing file) agrees.
 */
class VdiOracleTest extends OracleSuite {
    @Override
    protected String script() {
        return "vdi.sh";
    }
}
