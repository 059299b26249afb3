package org.vdiskload.format.vdi;

import com.code_intelligence.jazzer.junit.DictionaryFile;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.vdiskload.testing.fuzz.ImageTarget;

import java.io.IOException;

/** Coverage-guided fuzzing of the VDI reader: pre-header, header (v1.1), block map, and check. Input: see {@link ImageTarget}. */
class VdiFuzzTarget {
    private static final ImageTarget TARGET = new ImageTarget("vdi", "image.vdi");

    @FuzzTest
    @DictionaryFile(resourcePath = "vdi.dict")
    void image(byte[] input) throws IOException {
        TARGET.run(input);
    }
}
