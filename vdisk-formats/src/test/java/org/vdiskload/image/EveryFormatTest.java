package org.vdiskload.image;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.testing.OracleSuite;
import org.vdiskload.testing.Tools;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * One image of every format with the same content: each is detected by content alone (no -f, and
 * file names that say nothing), and reads and maps like qemu.
 */
class EveryFormatTest extends OracleSuite {
    @TempDir
    Path own;

    @Override
    protected String script() {
        return "every-format.sh";
    }

    @TestFactory
    Stream<DynamicTest> detectedByContentNotByName() throws Exception {
        List<DynamicTest> tests = new ArrayList<>();
        for (Tools.GeneratedImage img : Tools.generate(script(), own)) {
            tests.add(DynamicTest.dynamicTest(img + ": detected as " + img.format(), () -> {
                // A misleading name: detection must not look at it.
                Path renamed = Files.copy(img.path(), own.resolve("disguised-" + img.path().getFileName() + ".img"));
                Path withBacking = img.path().getFileName().toString().startsWith("chain-") ? img.path() : renamed;
                try (DiskImage d = Images.open(withBacking, OpenOptions.DEFAULTS)) {
                    assertEquals(img.format(), d.formatName());
                }
            }));
        }
        return tests.stream();
    }
}
