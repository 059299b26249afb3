package org.vdiskload.format.raw;

import org.vdiskload.testing.OracleSuite;

class RawOracleTest extends OracleSuite {
    @Override
    protected String script() {
        return "raw.sh";
    }
}
