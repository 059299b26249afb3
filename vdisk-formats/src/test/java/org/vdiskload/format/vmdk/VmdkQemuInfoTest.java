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
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** info's cluster size and format-specific data (cid, parent-cid, create-type, extents) match qemu-img info's. */
class VmdkQemuInfoTest {
    @TempDir
    Path dir;

    private static final Pattern EXTENT = Pattern.compile(
            "(?:\"compressed\": (true),\\s*)?\"virtual-size\": (\\d+),\\s*\"filename\": \"[^\"]*\",(?:\\s*\"cluster-size\": (\\d+),)?\\s*\"format\": \"(\\w*)\"");

    private static String field(String json, String key) {
        Matcher m = Pattern.compile("\"" + key + "\": \"?([^\",\\s]+)").matcher(json);
        return m.find() ? m.group(1) : null;
    }

    @TestFactory
    Stream<DynamicTest> formatSpecificLikeQemu() throws Exception {
        return Tools.generate("vmdk.sh", dir).stream().map(img -> DynamicTest.dynamicTest(img.toString(), () -> {
            String json = Tools.check("qemu-img", "info", "-f", "vmdk", "--output=json", img.path().toString());
            String top = json.substring(0, json.indexOf("\"format-specific\""));
            String extentsJson = json.substring(json.indexOf("\"extents\""));
            List<String> theirs = new ArrayList<>();
            Matcher m = EXTENT.matcher(extentsJson);
            while (m.find()) theirs.add(m.group(1) + " " + m.group(2) + " " + m.group(3) + " " + m.group(4));
            assertEquals(false, theirs.isEmpty(), "qemu-img info lists extents: " + json);
            try (DiskImage d = Images.open(img.path(), OpenOptions.DEFAULTS)) {
                LayerInfo info = d.layers().get(0).info();
                Map<String, Object> fs = info.formatSpecific();
                assertEquals(field(json, "cid"), String.valueOf(fs.get("cid")), "cid");
                assertEquals(field(json, "parent-cid"), String.valueOf(fs.get("parent-cid")), "parent-cid");
                assertEquals(field(json, "create-type"), fs.get("create-type"), "create-type");
                assertEquals(field(top, "cluster-size"), info.clusterSize() == null ? null : String.valueOf(info.clusterSize()), "cluster-size");
                List<String> ours = new ArrayList<>();
                for (Object o : (List<?>) fs.get("extents")) {
                    Map<?, ?> e = (Map<?, ?>) o;
                    ours.add(e.get("compressed") + " " + e.get("virtual-size") + " " + e.get("cluster-size") + " " + e.get("format"));
                }
                assertEquals(theirs, ours, "extents");
            }
        }));
    }
}
