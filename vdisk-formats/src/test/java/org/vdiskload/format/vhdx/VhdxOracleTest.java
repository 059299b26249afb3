package org.vdiskload.format.vhdx;

import org.vdiskload.testing.OracleSuite;

/**
 * Content of every qemu-made VHDX variant against qemu-img convert. The map comparison is off (no-map):
 * qemu 7.2's vhdx driver has no block status; {@link VhdxGeneratedImagesTest} checks the map instead.
 */
class VhdxOracleTest extends OracleSuite {
    @Override
    protected String script() {
        return "vhdx.sh";
    }
}
