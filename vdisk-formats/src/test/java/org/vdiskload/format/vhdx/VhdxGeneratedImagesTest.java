package org.vdiskload.format.vhdx;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Extent;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.Images;
import org.vdiskload.image.LayerInfo;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.Bytes;
import org.vdiskload.testing.Tools;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Checks on generated images beyond the qemu content oracle:
 * <ul>
 * <li>the map of qemu-made images (qemu-img map cannot be the oracle: qemu 7.2's vhdx has no block status):
 *     what we call zero reads zero in qemu's convert, and data covers exactly the blocks the script wrote;</li>
 * <li>the images vhdx_make.py writes (4096-byte sectors, differencing, a dirty log), which qemu cannot read,
 *     against the bytes the script says they hold, and the dirty one against qemu's own log replay;</li>
 * <li>libvhdi's vhdiinfo agrees on virtual size and disk type.</li>
 * </ul>
 */
class VhdxGeneratedImagesTest {
    @TempDir
    static Path dir;
    static List<Tools.GeneratedImage> qemuImages;
    static List<Tools.GeneratedImage> madeImages;

    @BeforeAll
    static void generate() throws Exception {
        Path q = Files.createDirectories(dir.resolve("qemu"));
        Path m = Files.createDirectories(dir.resolve("made"));
        qemuImages = Tools.generate("vhdx.sh", q);
        madeImages = Tools.generate("vhdx-made.sh", m);
    }

    private static DiskImage open(Path p) throws IOException {
        return Images.open(p, OpenOptions.DEFAULTS);
    }

    /** Ranges OFF:LEN,... from a flag, or none. */
    private static List<long[]> ranges(Tools.GeneratedImage img, String key) {
        List<long[]> out = new ArrayList<>();
        String v = img.flag(key);
        if (v == null) return out;
        for (String r : v.split(",")) {
            String[] p = r.split(":");
            out.add(new long[] {Long.parseLong(p[0]), Long.parseLong(p[1])});
        }
        return out;
    }

    @TestFactory
    Stream<DynamicTest> mapAgreesWithWhatTheScriptWrote() {
        return qemuImages.stream().map(img -> DynamicTest.dynamicTest(img.toString(), () -> checkMap(img)));
    }

    private void checkMap(Tools.GeneratedImage img) throws Exception {
        Path raw = dir.resolve(img.path().getFileName() + ".qemu.raw");
        Tools.check("qemu-img", "convert", "-f", "vhdx", "-O", "raw", img.path().toString(), raw.toString());
        try (DiskImage disk = open(img.path()); FileChannel qemu = FileChannel.open(raw, StandardOpenOption.READ)) {
            VhdxLayer layer = (VhdxLayer) disk.layers().get(0);
            long bs = layer.metadata().blockSize();
            boolean fixed = layer.metadata().leaveBlocksAllocated();
            List<long[]> written = ranges(img, "written");
            List<long[]> zeroed = ranges(img, "zeroed");
            List<Extent> map = disk.map(0, disk.size());
            for (Extent e : map) {
                if (e.kind() == Extent.Kind.ZERO) {
                    assertZero(qemu, e.start(), e.length(), img + ": zero extent " + e.start() + "+" + e.length());
                } else {
                    assertEquals(Extent.Kind.DATA, e.kind(), img + ": extent kind");
                    if (fixed) continue; // a fixed VHDX has every block allocated
                    for (long b = e.start() / bs; b * bs < e.end(); b++) {
                        long bStart = b * bs;
                        boolean touched = Stream.concat(written.stream(), zeroed.stream())
                                .anyMatch(r -> r[0] < bStart + bs && bStart < r[0] + r[1]);
                        assertTrue(touched, img + ": block " + b + " maps as data but the script wrote nothing there");
                    }
                }
            }
            for (long[] r : written) {
                for (Extent e : disk.map(r[0], r[1])) {
                    assertEquals(Extent.Kind.DATA, e.kind(), img + ": written range " + r[0] + "+" + r[1] + " maps as " + e.kind());
                }
            }
            if (fixed) assertTrue(map.stream().allMatch(e -> e.kind() == Extent.Kind.DATA), img + ": fixed VHDX all data");
        } finally {
            Files.deleteIfExists(raw);
        }
    }

    private static void assertZero(FileChannel ch, long pos, long length, String what) throws IOException {
        ByteBuffer b = ByteBuffer.allocateDirect(1 << 20);
        for (long at = pos; at < pos + length; at += b.capacity()) {
            b.clear().limit((int) Math.min(b.capacity(), pos + length - at));
            while (b.hasRemaining()) if (ch.read(b, at + b.position()) < 0) break;
            if (!Bytes.isZero(b.flip())) fail(what + ": qemu reads non-zero data in the 1 MiB at " + at);
        }
    }

    @TestFactory
    Stream<DynamicTest> madeImagesReadAsTheScriptSays() {
        return madeImages.stream().filter(img -> img.flag("expected") != null).map(img -> DynamicTest.dynamicTest(img.toString(), () -> {
            Path expected = img.path().resolveSibling(img.flag("expected"));
            assertSameContent(img.path(), expected);
            if (img.has("qemu-replay")) {
                // qemu opens a dirty VHDX only read-write, replaying the log into the file: do that on a copy.
                Path copy = dir.resolve("replayed-" + img.path().getFileName());
                Path raw = dir.resolve("replayed-" + img.path().getFileName() + ".raw");
                Files.copy(img.path(), copy, StandardCopyOption.REPLACE_EXISTING);
                Tools.check("qemu-img", "check", "-r", "all", "-f", "vhdx", copy.toString());
                Tools.check("qemu-img", "convert", "-f", "vhdx", "-O", "raw", copy.toString(), raw.toString());
                assertSameContent(img.path(), raw);
                try (DiskImage replayed = open(copy)) {
                    assertEquals(Boolean.FALSE, replayed.layers().get(0).info().dirty(), "qemu emptied the log");
                }
            }
        }));
    }

    /** The 4.5 GiB image: the BAT interleaves a sector bitmap entry after 16 payload entries (chunk ratio 16). */
    @Test
    void largeDiskFindsBlocksPastTheFirstChunk() throws Exception {
        Tools.GeneratedImage img = made("interleave.vhdx");
        try (DiskImage disk = open(img.path())) {
            List<long[]> data = new ArrayList<>();
            for (Extent e : disk.map(0, disk.size())) {
                if (e.kind() == Extent.Kind.DATA) data.add(new long[] {e.start(), e.length()});
                else assertEquals(Extent.Kind.ZERO, e.kind());
            }
            long block = 256L << 20;
            assertEquals("0+" + block + " " + 16 * block + "+" + 2 * block,
                    data.stream().map(r -> r[0] + "+" + r[1]).reduce((a, b) -> a + " " + b).orElse(""));
            for (String p : img.flag("patterns").split(",")) {
                String[] f = p.split(":");
                long off = Long.parseLong(f[0]);
                int len = Integer.parseInt(f[1]);
                byte value = (byte) Integer.parseInt(f[2].substring(2), 16);
                int after = (int) Math.min(4096, disk.size() - off - len); // and the zeros after it
                ByteBuffer b = ByteBuffer.allocate(len + after);
                disk.read(b, off);
                for (int i = 0; i < len; i++) if (b.get(i) != value) fail("byte " + (off + i) + " is " + b.get(i));
                for (int i = len; i < len + after; i++) if (b.get(i) != 0) fail("byte " + (off + i) + " is not zero");
            }
        }
    }

    private static void assertSameContent(Path image, Path expected) throws IOException {
        try (DiskImage disk = open(image); FileChannel raw = FileChannel.open(expected, StandardOpenOption.READ)) {
            assertEquals(raw.size(), disk.size(), image + ": virtual size");
            ByteBuffer ours = ByteBuffer.allocate(1 << 20);
            ByteBuffer theirs = ByteBuffer.allocate(1 << 20);
            for (long pos = 0; pos < disk.size(); pos += ours.capacity()) {
                int n = (int) Math.min(ours.capacity(), disk.size() - pos);
                ours.clear().limit(n);
                theirs.clear().limit(n);
                disk.read(ours, pos);
                while (theirs.hasRemaining()) if (raw.read(theirs, pos + theirs.position()) < 0) break;
                int m = ours.flip().mismatch(theirs.flip());
                if (m >= 0) fail(image.getFileName() + " differs from " + expected.getFileName() + " at offset " + (pos + m));
            }
        }
    }

    private Tools.GeneratedImage made(String name) {
        return madeImages.stream().filter(i -> i.path().getFileName().toString().equals(name)).findFirst().orElseThrow();
    }

    @Test
    void dirtyLogShowsInInfo() throws Exception {
        try (DiskImage disk = open(made("dirty.vhdx").path())) {
            assertEquals(Boolean.TRUE, disk.layers().get(0).info().dirty());
        }
        try (DiskImage disk = open(made("child.vhdx").path())) {
            assertEquals(Boolean.FALSE, disk.layers().get(0).info().dirty());
        }
    }

    @Test
    void differencingChildMapsItsOwnSectorsOverTheParent() throws Exception {
        try (DiskImage disk = open(made("child.vhdx").path())) {
            assertEquals(2, disk.layers().size());
            List<Extent> map = disk.map(2 << 20, 1 << 20); // the PARTIALLY_PRESENT block
            assertEquals(0, map.get(0).depth(), "sectors 0-7 are the child's");
            assertEquals(8 * 512, map.get(0).length());
            assertEquals(1, map.get(1).depth(), "sector 8 on comes from the parent");
            assertEquals(0, map.get(map.size() - 1).depth(), "the last sector is the child's");
            assertEquals(512, map.get(map.size() - 1).length());
            List<Extent> zero = disk.map(3 << 20, 2 << 20); // ZERO and UNMAPPED blocks hide the parent
            assertEquals(1, zero.size());
            assertEquals(Extent.Kind.ZERO, zero.get(0).kind());
            assertEquals(0, zero.get(0).depth());
        }
    }

    @Test
    void parentWithAnotherDataWriteGuidIsRefused() throws Exception {
        Path d = Files.createDirectories(dir.resolve("relinked"));
        Path child = Files.copy(made("child.vhdx").path(), d.resolve("child.vhdx"));
        Path parent = Files.copy(made("child.vhdx").path().resolveSibling("parent.vhdx"), d.resolve("parent.vhdx"));
        Tools.check("qemu-io", "-f", "vhdx", "-c", "write -P 0x99 0 512", parent.toString()); // qemu renews DataWriteGuid
        ImageException e = assertThrows(ImageException.class, () -> open(child).close());
        assertEquals(ImageException.Kind.INVALID, e.kind());
        assertTrue(e.getMessage().contains("DataWriteGuid") && e.getMessage().contains("parent_linkage"), e.getMessage());
    }

    @Test
    void missingParentIsRefused() throws Exception {
        Path d = Files.createDirectories(dir.resolve("orphan"));
        Path child = Files.copy(made("child.vhdx").path(), d.resolve("child.vhdx"));
        ImageException e = assertThrows(ImageException.class, () -> open(child).close());
        assertTrue(e.getMessage().contains("parent.vhdx"), e.getMessage());
    }

    @TestFactory
    Stream<DynamicTest> infoAgreesWithQemuImgInfo() {
        return qemuImages.stream().map(img -> DynamicTest.dynamicTest(img.toString(), () -> {
            String json = Tools.check("qemu-img", "info", "-f", "vhdx", "--output=json", img.path().toString());
            Matcher size = Pattern.compile("\"virtual-size\": (\\d+)").matcher(json);
            Matcher cluster = Pattern.compile("\"cluster-size\": (\\d+)").matcher(json);
            Matcher dirty = Pattern.compile("\"dirty-flag\": (\\w+)").matcher(json);
            assertTrue(size.find() && cluster.find() && dirty.find(), json);
            try (DiskImage disk = open(img.path())) {
                LayerInfo info = disk.layers().get(0).info();
                assertEquals("vhdx", info.format());
                assertEquals(Long.parseLong(size.group(1)), info.virtualSize(), img + ": virtual-size");
                assertEquals(Long.valueOf(cluster.group(1)), info.clusterSize(), img + ": cluster-size");
                assertEquals(Boolean.valueOf(dirty.group(1)), info.dirty(), img + ": dirty-flag");
                assertEquals(json.contains("format-specific"), !info.formatSpecific().isEmpty(), img + ": format-specific");
            }
        }));
    }

    @TestFactory
    Stream<DynamicTest> vhdiinfoAgreesOnSizeAndType() {
        return Stream.concat(qemuImages.stream(), madeImages.stream()).map(img -> DynamicTest.dynamicTest(img.toString(), () -> {
            String out = Tools.check("vhdiinfo", img.path().toString());
            Matcher size = Pattern.compile("Media size\\s*:.*\\((\\d+) bytes\\)").matcher(out);
            Matcher type = Pattern.compile("Disk type\\s*:\\s*(\\w+)").matcher(out);
            assertTrue(size.find() && type.find(), "vhdiinfo output: " + out);
            try (DiskImage disk = open(img.path())) {
                ImageLayer top = disk.layers().get(0);
                VhdxMetadata meta = ((VhdxLayer) top).metadata();
                String ours = meta.hasParent() ? "Differential" : meta.leaveBlocksAllocated() ? "Fixed" : "Dynamic";
                assertEquals(Long.parseLong(size.group(1)), top.size(), img + ": virtual size");
                assertEquals(type.group(1), ours, img + ": disk type");
            }
        }));
    }
}
