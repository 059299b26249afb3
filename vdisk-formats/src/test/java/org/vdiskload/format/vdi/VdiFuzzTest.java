package org.vdiskload.format.vdi;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.testing.MutationFuzz;
import org.vdiskload.testing.Tools;

import java.nio.file.Path;
import java.util.List;

/** Corrupts the header and block map of valid images: only ImageExceptions may come out. */
class VdiFuzzTest {
    @TempDir
    static Path dir;

    @BeforeAll
    static void generate() throws Exception {
        Tools.generate("vdi.sh", dir);
    }

    /** The header fields after the text, and the block map (qemu puts it at 0x200; these images have few blocks). */
    private static void fuzz(String name, long seed) throws Exception {
        List<MutationFuzz.Region> regions = List.of(new MutationFuzz.Region(0x40, 0x1c0), new MutationFuzz.Region(0x200, 32));
        MutationFuzz.run(dir.resolve(name), "vdi", regions, 300, seed);
    }

    @Test
    void dynamicImage() throws Exception {
        fuzz("dynamic.vdi", 11);
    }

    @Test
    void staticImage() throws Exception {
        fuzz("static.vdi", 12);
    }

    @Test
    void shortImage() throws Exception {
        fuzz("short.vdi", 13);
    }
}
