package org.vdiskload;

import org.junit.jupiter.api.Test;

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

/**
 * The library's layers import downwards only: the C library's bindings and the one exception type at the
 * bottom, positional file access above them, then the contract (images, checks), then one package per format
 * (none importing another), and on top what uses them all: the list of formats, the operations, serving.
 * ({@code image.error}, where the exception lives for its users' imports, counts as a bottom layer.)
 */
class LayersTest {
    /** Package (relative to org.vdiskload) to layer; a format package is "format". */
    private static final Map<String, Integer> LAYERS = Map.of(
            "sys", 0,
            "image.error", 1,
            "io", 2,
            "check", 3,
            "image", 4,
            "partition", 5,
            "format", 6,
            "formats", 7,
            "ops", 7,
            "serving", 7);

    private static final Pattern IMPORT = Pattern.compile("^import (?:static )?org\\.vdiskload\\.([a-z0-9.]+)\\.[A-Z]\\w*", Pattern.MULTILINE);

    private static String layerOf(String pkg) {
        if (pkg.startsWith("format.")) return "format";
        return pkg;
    }

    @Test
    void everyPackageImportsOnlyFromBelowIt() throws IOException {
        Path root = Path.of("src/main/java/org/vdiskload");
        List<String> upward = new ArrayList<>();
        try (Stream<Path> files = Files.walk(root)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".java")).toList()) {
                String pkg = root.relativize(f.getParent()).toString().replace('/', '.');
                Integer own = LAYERS.get(layerOf(pkg));
                if (own == null) {
                    upward.add(pkg + " has no layer");
                    continue;
                }
                Matcher m = IMPORT.matcher(Files.readString(f));
                while (m.find()) {
                    String target = m.group(1);
                    if (target.equals(pkg)) continue;
                    Integer layer = LAYERS.get(layerOf(target));
                    boolean otherFormat = layerOf(pkg).equals("format") && layerOf(target).equals("format");
                    String line = root.relativize(f) + " imports org.vdiskload." + target;
                    if (layer == null || layer >= own || otherFormat) upward.add(line);
                }
            }
        }
        assertEquals(List.of(), upward);
    }
}
