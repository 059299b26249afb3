package org.vdiskload.format.vhd;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.vdiskload.image.OpenContext;
import org.vdiskload.io.ImageFile;
import org.vdiskload.testing.Tools;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * libvhdi's vhdiinfo agrees on disk type and size. libvhdi always reports the footer's current size;
 * qemu (and so this reader) uses the CHS geometry for most creator applications, so for the images
 * whose current size was patched away from their geometry (app-*, fixed-chs) only the current size
 * is compared.
 */
class VhdLibvhdiTest {
    private static final Pattern SIZE = Pattern.compile("Media size\\s*:.*\\((\\d+) bytes\\)");
    private static final Pattern TYPE = Pattern.compile("Disk type\\s*:\\s*(\\w+)");
    private static final Map<String, Integer> TYPES = Map.of("Fixed", 2, "Dynamic", 3, "Differential", 4);

    static Path dir;

    @BeforeAll
    static void generate() throws Exception {
        dir = VhdTestData.dir();
    }

    @TestFactory
    Stream<DynamicTest> vhdiinfoAgrees() throws IOException {
        List<DynamicTest> tests = new ArrayList<>();
        try (Stream<Path> files = Files.list(dir)) {
            for (Path p : files.filter(f -> f.toString().endsWith(".vhd")).sorted().toList()) {
                tests.add(DynamicTest.dynamicTest(p.getFileName().toString(), () -> compare(p)));
            }
        }
        assertTrue(tests.size() >= 20, "images: " + tests.size());
        return tests.stream();
    }

    private static void compare(Path image) throws Exception {
        String out = Tools.check("vhdiinfo", image.toString());
        Matcher size = SIZE.matcher(out);
        Matcher type = TYPE.matcher(out);
        assertTrue(size.find() && type.find(), "vhdiinfo output: " + out);
        long theirSize = Long.parseLong(size.group(1));
        try (ImageFile f = ImageFile.open(image, false);
             VhdLayer layer = (VhdLayer) new VhdFormat().open(f, new OpenContext(null, 1 << 20, false))) {
            assertEquals(TYPES.get(type.group(1)), layer.footer().diskType(), "disk type");
            assertEquals(theirSize, layer.footer().currentSize(), "current size");
            String name = image.getFileName().toString();
            if (!name.startsWith("app-") && !name.equals("fixed-chs.vhd")) {
                assertEquals(theirSize, layer.size(), "virtual size");
                assertEquals(theirSize, layer.info().virtualSize(), "info virtual size");
            }
        }
    }
}
