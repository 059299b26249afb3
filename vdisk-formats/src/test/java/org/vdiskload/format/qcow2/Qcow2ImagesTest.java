package org.vdiskload.format.qcow2;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.BackingRef;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Extent;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.Images;
import org.vdiskload.image.LayerInfo;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.SnapshotInfo;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.testing.QemuOracle;
import org.vdiskload.testing.Tools;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Facts about the generated images beyond content and map: info against qemu-img info and qcowinfo,
 * snapshot maps, backing references, and the variants that must be refused.
 */
class Qcow2ImagesTest {
    @TempDir
    static Path dir;
    static List<Tools.GeneratedImage> images;

    @BeforeAll
    static void generate() throws Exception {
        images = Tools.generate("qcow2.sh", dir);
    }

    private static Path image(String name) {
        return dir.resolve(name);
    }

    /** Each listed file once (snapshot entries repeat their file). */
    private static Set<Path> files() {
        Set<Path> out = new LinkedHashSet<>();
        for (Tools.GeneratedImage img : images) out.add(img.path());
        return out;
    }

    private static LayerInfo info(Path p, OpenOptions o) throws Exception {
        try (DiskImage disk = Images.open(p, o)) {
            return disk.layers().get(0).info();
        }
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    private static String json(Object v) {
        return v instanceof String s ? "\"" + s + "\"" : String.valueOf(v);
    }

    private static String value(String json, String key) {
        Matcher m = Pattern.compile("\"" + Pattern.quote(key) + "\": (\"[^\"]*\"|[^,\\s}]+)").matcher(json);
        return m.find() ? m.group(1) : null;
    }

    @Test
    void infoAgreesWithQemuImgInfo() throws Exception {
        for (Path p : files()) {
            String q = Tools.check("qemu-img", "info", "--output=json", "-f", "qcow2", p.toString());
            LayerInfo ours = info(p, OpenOptions.DEFAULTS.withFormat("qcow2").withBackingFormat("qcow2"));
            String name = p.getFileName().toString();
            assertEquals(value(q, "virtual-size"), json(ours.virtualSize()), name + " virtual-size");
            assertEquals(value(q, "cluster-size"), json(ours.clusterSize()), name + " cluster-size");
            assertEquals(value(q, "dirty-flag"), json(ours.dirty()), name + " dirty-flag");
            // The whole format-specific tree, bitmaps included, as qemu-img prints it.
            JsonNode theirs = JSON.readTree(q).path("format-specific").path("data");
            assertEquals(theirs, JSON.readTree(JSON.writeValueAsString(ours.formatSpecific())), name + " format-specific");
        }
    }

    @Test
    void bitmapsAreListedAsQemuImgInfoLists() throws Exception {
        Path p = dir.resolve("bitmaps.qcow2");
        Tools.check("qemu-img", "create", "-q", "-f", "qcow2", p.toString(), "16M");
        Tools.check("qemu-img", "bitmap", "--add", "-g", "128k", p.toString(), "auto-one");
        Tools.check("qemu-img", "bitmap", "--add", "--disable", p.toString(), "disabled, with a longer name");
        Tools.check("qemu-io", "-f", "qcow2", "-c", "write 0 64k", p.toString());
        JsonNode theirs = JSON.readTree(Tools.check("qemu-img", "info", "--output=json", p.toString())).path("format-specific").path("data");
        assertEquals(2, theirs.path("bitmaps").size(), theirs.toString());
        assertEquals(theirs, JSON.readTree(JSON.writeValueAsString(info(p, OpenOptions.DEFAULTS).formatSpecific())));
    }

    @Test
    void dirtyImageIsReportedAndReadable() throws Exception {
        LayerInfo info = info(image("dirty.qcow2"), OpenOptions.DEFAULTS);
        assertEquals(Boolean.TRUE, info.dirty());
        assertEquals(Boolean.TRUE, info.formatSpecific().get("lazy-refcounts"));
        assertEquals(Boolean.TRUE, info(image("corrupt-bit.qcow2"), OpenOptions.DEFAULTS).formatSpecific().get("corrupt"));
    }

    @Test
    void snapshotsAgreeWithQemuImgInfo() throws Exception {
        for (String name : List.of("snap.qcow2", "snap-v2.qcow2")) {
            String q = Tools.check("qemu-img", "info", "--output=json", image(name).toString());
            String list = q.substring(q.indexOf("\"snapshots\""));
            list = list.substring(0, list.indexOf(']'));
            List<String> objects = new ArrayList<>();
            Matcher m = Pattern.compile("\\{[^{}]*\\}").matcher(list);
            while (m.find()) objects.add(m.group());
            List<SnapshotInfo> ours = info(image(name), OpenOptions.DEFAULTS).snapshots();
            assertEquals(objects.size(), ours.size(), name + " snapshot count");
            for (int i = 0; i < ours.size(); i++) {
                SnapshotInfo s = ours.get(i);
                String o = objects.get(i);
                assertEquals(value(o, "id"), json(s.id()));
                assertEquals(value(o, "name"), json(s.name()));
                assertEquals(value(o, "vm-state-size"), json(s.vmStateSize()));
                assertEquals(value(o, "date-sec"), json(s.dateSec()));
                assertEquals(value(o, "date-nsec"), json(s.dateNsec()));
                long clock = Long.parseLong(value(o, "vm-clock-sec")) * 1_000_000_000L + Long.parseLong(value(o, "vm-clock-nsec"));
                assertEquals(clock, s.vmClockNsec());
                if (value(o, "icount") != null) assertEquals(value(o, "icount"), json(s.icount()));
            }
        }
        assertEquals(List.of("first", "second"), info(image("snap.qcow2"), OpenOptions.DEFAULTS).snapshots().stream().map(SnapshotInfo::name).toList());
    }

    /** qemu-img map cannot map a snapshot, so apply the snapshot to a copy with qemu-img snapshot -a and map that. */
    @Test
    void snapshotMapsAgreeWithQemuAfterApplyingThem() throws Exception {
        for (String snapshot : List.of("first", "second", "2")) {
            Path copy = Files.copy(image("snap.qcow2"), dir.resolve("applied-" + snapshot + ".qcow2"));
            Tools.check("qemu-img", "snapshot", "-a", snapshot, copy.toString());
            List<long[]> theirs = new ArrayList<>();
            for (QemuOracle.QemuExtent e : QemuOracle.qemuMap(new Tools.GeneratedImage(copy, "qcow2", List.of()))) {
                if (e.data()) addRun(theirs, e.start(), e.length());
            }
            List<long[]> ours = new ArrayList<>();
            try (DiskImage disk = Images.open(image("snap.qcow2"), OpenOptions.DEFAULTS.withSnapshot(snapshot))) {
                for (Extent e : disk.map(0, disk.size())) if (e.kind() != Extent.Kind.ZERO) addRun(ours, e.start(), e.length());
            }
            assertEquals(render(theirs), render(ours), "snapshot " + snapshot);
            Files.delete(copy);
        }
    }

    private static void addRun(List<long[]> runs, long start, long length) {
        if (!runs.isEmpty() && runs.get(runs.size() - 1)[1] == start) runs.get(runs.size() - 1)[1] = start + length;
        else runs.add(new long[] {start, start + length});
    }

    private static String render(List<long[]> runs) {
        StringBuilder sb = new StringBuilder();
        for (long[] r : runs) sb.append(r[0]).append('-').append(r[1]).append(' ');
        return sb.toString();
    }

    @Test
    void unknownSnapshotIsRefused() {
        ImageException e = assertThrows(ImageException.class, () -> Images.open(image("snap.qcow2"), OpenOptions.DEFAULTS.withSnapshot("nope")));
        assertEquals(ImageException.Kind.INVALID, e.kind());
        assertTrue(e.getMessage().contains("no snapshot with id or name 'nope'"), e.getMessage());
    }

    @Test
    void threeDeepChain() throws Exception {
        try (DiskImage disk = Images.open(image("chain-top.qcow2"), OpenOptions.DEFAULTS)) {
            List<ImageLayer> layers = disk.layers();
            assertEquals(List.of("qcow2", "qcow2", "raw"), layers.stream().map(ImageLayer::formatName).toList());
            assertEquals(new BackingRef("chain-mid.qcow2", "qcow2"), layers.get(0).backing().orElseThrow());
            assertEquals(new BackingRef("chain-base.raw", "raw"), layers.get(1).backing().orElseThrow());
        }
    }

    @Test
    void oldStyleImageOverRawOpens() throws Exception {
        try (DiskImage disk = Images.open(image("old-raw-backing.qcow2"), OpenOptions.DEFAULTS)) {
            BackingRef ref = disk.layers().get(0).backing().orElseThrow();
            assertEquals("chain-base.raw", ref.name());
            assertNull(ref.format());
            assertEquals("raw", disk.layers().get(1).formatName());
        }
    }

    @Test
    void oldStyleImageOverQcow2NeedsBackingFormat() throws Exception {
        ImageException e = assertThrows(ImageException.class, () -> Images.open(image("old-qcow2-backing.qcow2"), OpenOptions.DEFAULTS));
        assertEquals(ImageException.Kind.UNSUPPORTED, e.kind());
        assertTrue(e.getMessage().contains("does not name the backing format"), e.getMessage());
        try (DiskImage disk = Images.open(image("old-qcow2-backing.qcow2"), OpenOptions.DEFAULTS.withBackingFormat("qcow2"))) {
            assertEquals(List.of("qcow2", "qcow2", "raw"), disk.layers().stream().map(ImageLayer::formatName).toList());
        }
    }

    private static void assertRefused(String name, String message) {
        ImageException e = assertThrows(ImageException.class, () -> Images.open(image(name), OpenOptions.DEFAULTS));
        assertEquals(ImageException.Kind.UNSUPPORTED, e.kind(), e.getMessage());
        assertTrue(e.getMessage().contains(message), e.getMessage());
        assertTrue(e.getMessage().startsWith(image(name).toString()), e.getMessage());
    }

    @Test
    void luksEncryptionIsRefused() {
        assertRefused("luks.qcow2", "encrypted qcow2 images are not supported (crypt_method 2, LUKS)");
    }

    @Test
    void aesEncryptionIsRefused() {
        assertRefused("aes.qcow2", "encrypted qcow2 images are not supported (crypt_method 1, AES)");
    }

    @Test
    void externalDataFileIsRefused() {
        assertRefused("datafile.qcow2", "external data file");
    }

    @Test
    void unknownIncompatibleFeatureIsRefused() {
        assertRefused("unknown-incompat.qcow2", "incompatible feature bit(s) 9");
    }

    @Test
    void corruptBitRefusedForWriting() {
        ImageException e = assertThrows(ImageException.class,
                () -> Images.open(image("corrupt-bit.qcow2"), OpenOptions.DEFAULTS.withWritable(true)));
        assertTrue(e.getMessage().contains("marked corrupt"), e.getMessage());
    }

    private static final Pattern MEDIA_SIZE = Pattern.compile("Media size\\s*:.*\\((\\d+) bytes\\)");
    private static final Pattern FORMAT_VERSION = Pattern.compile("Format version\\s*:\\s*(\\d+)");

    /**
     * qcowinfo (libqcow 20201213) reads v2 and v3 images but refuses any incompatible feature bit
     * (zstd compression, extended L2, the corrupt bit): where it reads an image, virtual size and version
     * agree; it refuses exactly the images with such bits.
     */
    @Test
    void qcowinfoAgreesWhereItReadsTheImage() throws Exception {
        int read = 0;
        for (Path p : files()) {
            Tools.Result r = Tools.run(List.of("qcowinfo", p.toString()), null);
            Qcow2Header h;
            try (var f = org.vdiskload.io.ImageFile.open(p, false)) {
                h = Qcow2Header.read(f);
            }
            if (h.incompatibleFeatures() != 0 && (h.incompatibleFeatures() & ~Qcow2Header.INCOMPAT_DIRTY) != 0) {
                assertTrue(r.exit() != 0 && r.stdout().concat(r.stderr()).contains("unsupported incompatible features"), p + ": " + r);
                continue;
            }
            assertEquals(0, r.exit(), p + ": " + r.stderr());
            Matcher size = MEDIA_SIZE.matcher(r.stdout());
            Matcher version = FORMAT_VERSION.matcher(r.stdout());
            assertTrue(size.find() && version.find(), r.stdout());
            LayerInfo ours = info(p, OpenOptions.DEFAULTS.withBackingFormat("qcow2"));
            assertEquals(Long.parseLong(size.group(1)), ours.virtualSize(), p + " media size");
            assertEquals(version.group(1).equals("2") ? "0.10" : "1.1", ours.formatSpecific().get("compat"), p + " version");
            read++;
        }
        assertTrue(read >= 20, "qcowinfo read only " + read + " images");
    }
}
