package org.vdiskload.format.qcow;

import com.code_intelligence.jazzer.junit.DictionaryFile;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.vdiskload.testing.fuzz.Companions;
import org.vdiskload.testing.fuzz.ImageTarget;

import java.io.IOException;

/**
 * Coverage-guided fuzzing of the qcow (version 1) reader: header, L1/L2 tables, compressed clusters, the backing
 * file name (beside the image: base.raw). Input: see {@link ImageTarget}.
 */
class QcowFuzzTarget {
    private static final ImageTarget TARGET = new ImageTarget("qcow", "image.qcow")
            .companion("base.raw", Companions.pattern(64 << 10, 5));

    @FuzzTest
    @DictionaryFile(resourcePath = "qcow.dict")
    void image(byte[] input) throws IOException {
        TARGET.run(input);
    }
}
