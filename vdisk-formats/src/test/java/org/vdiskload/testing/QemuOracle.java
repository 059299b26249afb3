package org.vdiskload.testing;

import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Extent;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/** qemu as the oracle: our bytes must equal qemu-img convert's, our map must agree with qemu-img map's. */
public final class QemuOracle {
    private static final Pattern MAP_ENTRY = Pattern.compile(
            "\"start\": (\\d+), \"length\": (\\d+), \"depth\": (\\d+), \"present\": (\\w+), \"zero\": (\\w+), \"data\": (\\w+)");

    private QemuOracle() {}

    public static OpenOptions options(Tools.GeneratedImage img) {
        OpenOptions o = OpenOptions.DEFAULTS.withFormat(img.format());
        if (img.flag("backing-format") != null) o = o.withBackingFormat(img.flag("backing-format"));
        if (img.flag("snapshot") != null) o = o.withSnapshot(img.flag("snapshot"));
        return o;
    }

    /** Reads the whole image through the library and compares it with {@code qemu-img convert -O raw}. */
    public static void assertReadsLikeQemu(Tools.GeneratedImage img, Path scratch) throws Exception {
        Path expected = scratch.resolve(img.path().getFileName() + ".qemu.raw");
        List<String> cmd = new ArrayList<>(List.of("qemu-img", "convert", "-f", img.format(), "-O", "raw"));
        if (img.flag("snapshot") != null) cmd.addAll(List.of("-l", img.flag("snapshot")));
        cmd.addAll(List.of(img.path().toString(), expected.toString()));
        Tools.run(cmd, null).requireSuccess(cmd);
        try (DiskImage disk = Images.open(img.path(), options(img));
             FileChannel raw = FileChannel.open(expected, StandardOpenOption.READ)) {
            assertEquals(raw.size(), disk.size(), img + ": virtual size");
            int chunk = 1 << 20;
            ByteBuffer ours = ByteBuffer.allocateDirect(chunk);
            ByteBuffer theirs = ByteBuffer.allocateDirect(chunk);
            for (long pos = 0; pos < disk.size(); pos += chunk) {
                int n = (int) Math.min(chunk, disk.size() - pos);
                ours.clear().limit(n);
                theirs.clear().limit(n);
                disk.read(ours, pos);
                while (theirs.hasRemaining()) if (raw.read(theirs, pos + theirs.position()) < 0) break;
                int m = ours.flip().mismatch(theirs.flip());
                if (m >= 0) fail(img + ": content differs from qemu-img convert at offset " + (pos + m));
            }
        } finally {
            Files.deleteIfExists(expected);
        }
    }

    /** One qemu-img map entry, reduced to what the comparison needs. */
    public record QemuExtent(long start, long length, boolean data) {}

    public static List<QemuExtent> qemuMap(Tools.GeneratedImage img) throws Exception {
        String json = Tools.check("qemu-img", "map", "-f", img.format(), "--output=json", img.path().toString());
        List<QemuExtent> out = new ArrayList<>();
        Matcher m = MAP_ENTRY.matcher(json);
        while (m.find()) out.add(new QemuExtent(Long.parseLong(m.group(1)), Long.parseLong(m.group(2)), Boolean.parseBoolean(m.group(6))));
        return out;
    }

    /**
     * Checks that the library's map tells data from zeros where qemu-img map does. Extents are
     * compared as sets of data bytes, so different splitting of equal runs does not matter.
     */
    public static void assertMapsLikeQemu(Tools.GeneratedImage img) throws Exception {
        List<long[]> theirs = new ArrayList<>();
        for (QemuExtent e : qemuMap(img)) if (e.data()) addRun(theirs, e.start(), e.length());
        List<long[]> ours = new ArrayList<>();
        try (DiskImage disk = Images.open(img.path(), options(img))) {
            for (Extent e : disk.map(0, disk.size())) if (e.kind() != Extent.Kind.ZERO) addRun(ours, e.start(), e.length());
        }
        assertEquals(render(theirs), render(ours), img + ": data ranges (qemu-img map vs vdiskload map)");
    }

    private static void addRun(List<long[]> runs, long start, long length) {
        if (!runs.isEmpty() && runs.get(runs.size() - 1)[1] == start) runs.get(runs.size() - 1)[1] = start + length;
        else runs.add(new long[] {start, start + length});
    }

    private static String render(List<long[]> runs) {
        StringBuilder sb = new StringBuilder();
        for (long[] r : runs) sb.append(r[0]).append('-').append(r[1]).append('\n');
        return sb.toString();
    }
}
