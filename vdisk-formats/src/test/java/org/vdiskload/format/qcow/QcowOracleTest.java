package org.vdiskload.format.qcow;

import org.vdiskload.testing.OracleSuite;

class QcowOracleTest extends OracleSuite {
    @Override
    protected String script() {
        return "qcow.sh";
    }
}
