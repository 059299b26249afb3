package org.vdiskload.format.layout;

import com.code_intelligence.jazzer.junit.DictionaryFile;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.vdiskload.testing.fuzz.Companions;
import org.vdiskload.testing.fuzz.ImageTarget;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.zip.GZIPOutputStream;

/**
 * Coverage-guided fuzzing of assembled disks, two targets:
 * <ul>
 *   <li>{@link #layout}: the JSON layout (parsing, schema validation, sizes, types, the plan, the GPT or MBR built
 *       from it), its sources beside it: a.raw (64 KiB), b.qcow2 (1 MiB) and c.gz (a.raw, gzipped);</li>
 *   <li>{@link #compressed}: a partition source's bytes, through the content detection (the five compressed
 *       formats by magic, tar archives, every image format) and decompression into the cache, as the one
 *       partition of a fixed layout.</li>
 * </ul>
 * Inputs: a flags byte (see {@link ImageTarget}) and the file itself. Decompressed copies go to a cache inside the
 * target's directory, emptied after every execution.
 */
class LayoutFuzzTarget {
    private static final byte[] A_RAW = Companions.pattern(64 << 10, 11);

    private static final ImageTarget LAYOUT = new ImageTarget(LayoutFormat.NAME, "layout.json").plain()
            .companion("a.raw", A_RAW)
            .companionImage("b.qcow2", "qcow2", 1 << 20, Map.of("cluster_size", "4096"))
            .companion("c.gz", gzip(A_RAW));

    private static final ImageTarget COMPRESSED = new ImageTarget(LayoutFormat.NAME, "source.bin").plain()
            .companion("layout.json", ("{ \"vdiskload-layout\": 1, \"table\": \"gpt\", \"partitions\": [ { \"source\": \"source.bin\" } ] }\n")
                    .getBytes(StandardCharsets.UTF_8))
            .opening((source, flags) -> source.resolveSibling("layout.json"));

    @FuzzTest
    @DictionaryFile(resourcePath = "layout.dict")
    void layout(byte[] input) throws IOException {
        withCacheIn(LAYOUT, input);
    }

    @FuzzTest
    @DictionaryFile(resourcePath = "compressed.dict")
    void compressed(byte[] input) throws IOException {
        withCacheIn(COMPRESSED, input);
    }

    /** Runs the target with the decompression cache in its own directory (the property is restored after). */
    private static void withCacheIn(ImageTarget target, byte[] input) throws IOException {
        String before = System.getProperty("vdiskload.cache.dir");
        System.setProperty("vdiskload.cache.dir", target.sandbox().path("cache").toString());
        try {
            target.run(input);
        } finally {
            if (before == null) System.clearProperty("vdiskload.cache.dir");
            else System.setProperty("vdiskload.cache.dir", before);
        }
    }

    private static byte[] gzip(byte[] data) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (GZIPOutputStream z = new GZIPOutputStream(out)) {
            z.write(data);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toByteArray();
    }
}
