package org.vdiskload.format.qcow2;

import com.code_intelligence.jazzer.junit.DictionaryFile;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.vdiskload.testing.fuzz.Companions;
import org.vdiskload.testing.fuzz.ImageTarget;

import java.io.IOException;
import java.util.Map;

/**
 * Coverage-guided fuzzing of the qcow2 reader: header and its extensions, L1/L2 tables (standard and extended),
 * compressed clusters (zlib, zstd), refcounts (through check), snapshots, backing files. Input: see
 * {@link ImageTarget}; flag bit 4 opens the first internal snapshot. Beside the image: base.raw and base.qcow2.
 */
class Qcow2FuzzTarget {
    private static final ImageTarget TARGET = new ImageTarget("qcow2", "image.qcow2")
            .companion("base.raw", Companions.pattern(64 << 10, 3))
            .companionImage("base.qcow2", "qcow2", 1 << 20, Map.of("cluster_size", "512"))
            .options((o, flags) -> (flags & 16) != 0 ? o.withSnapshot("1") : o);

    @FuzzTest
    @DictionaryFile(resourcePath = "qcow2.dict")
    void image(byte[] input) throws IOException {
        TARGET.run(input);
    }
}
