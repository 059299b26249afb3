package org.vdiskload.testing;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * The qemu-oracle checks for every image one testdata script makes: content equals qemu-img
 * convert's, and the map agrees with qemu-img map's (unless the image is flagged no-map).
 * A format's test extends this and names its script.
 */
public abstract class OracleSuite {
    @TempDir
    Path dir;

    /** The testdata script that makes this suite's images. */
    protected abstract String script();

    @TestFactory
    Stream<DynamicTest> readsAndMapsLikeQemu() throws Exception {
        Path images = dir.resolve("images");
        Path scratch = dir.resolve("scratch");
        java.nio.file.Files.createDirectories(images);
        java.nio.file.Files.createDirectories(scratch);
        List<DynamicTest> tests = new ArrayList<>();
        for (Tools.GeneratedImage img : Tools.generate(script(), images)) {
            tests.add(DynamicTest.dynamicTest(img + ": content", () -> QemuOracle.assertReadsLikeQemu(img, scratch)));
            if (!img.has("no-map")) tests.add(DynamicTest.dynamicTest(img + ": map", () -> QemuOracle.assertMapsLikeQemu(img)));
        }
        return tests.stream();
    }
}
