package org.vdiskload.format.vmdk;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.LayerInfo;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.testing.Tools;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** libvmdk's vmdkinfo, an independent reader, agrees with info on virtual size and disk type. */
class VmdkInfoToolTest {
    @TempDir
    Path dir;

    /** The images vmdkinfo reads (it refuses VMFS extents, COWD, grains of 8 sectors and short flat files). */
    private static final List<String> READABLE = List.of("monolithicSparse.vmdk", "monolithicFlat.vmdk",
            "twoGbMaxExtentSparse.vmdk", "twoGbMaxExtentFlat.vmdk", "streamOptimized.vmdk", "zeroed.vmdk", "split.vmdk",
            "vmware-stream.vmdk", "scattered.vmdk", "chain-top.vmdk", "flat-delta.vmdk");

    /** vmdkinfo's names for the create types. */
    private static final Map<String, String> TYPES = Map.of("monolithicSparse", "Monolithic sparse",
            "monolithicFlat", "Monolithic flat", "twoGbMaxExtentSparse", "2GB extent sparse",
            "twoGbMaxExtentFlat", "2GB extent flat", "streamOptimized", "Stream optimized");

    private static final Pattern TYPE = Pattern.compile("Disk type:\\s*(.+)");
    private static final Pattern SIZE = Pattern.compile("Media size:.*\\((\\d+) bytes\\)");

    @TestFactory
    Stream<DynamicTest> agreesWithVmdkinfo() throws Exception {
        Tools.generate("vmdk.sh", dir);
        return READABLE.stream().map(name -> DynamicTest.dynamicTest(name, () -> {
            Path p = dir.resolve(name);
            String out = Tools.check("vmdkinfo", p.toString());
            Matcher type = TYPE.matcher(out);
            Matcher size = SIZE.matcher(out);
            assertTrue(type.find() && size.find(), "vmdkinfo output: " + out);
            try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS)) {
                LayerInfo info = d.layers().get(0).info();
                assertEquals(Long.parseLong(size.group(1)), info.virtualSize(), name + ": virtual size");
                assertEquals(type.group(1).strip(), TYPES.get((String) info.formatSpecific().get("create-type")), name + ": disk type");
            }
        }));
    }
}
