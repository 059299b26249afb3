package org.vdiskload.format.vhd;

import org.vdiskload.testing.OracleSuite;

/**
 * Fixed, dynamic (2 MiB blocks from qemu, 4 KiB-512 KiB from vhdtool.py), force_size and the
 * creator-application size quirks, against qemu-img convert and map. Differencing disks are not
 * here: see {@link VhdDifferencingTest}.
 */
class VhdOracleTest extends OracleSuite {
    @Override
    protected String script() {
        return "vhd.sh";
    }
}
