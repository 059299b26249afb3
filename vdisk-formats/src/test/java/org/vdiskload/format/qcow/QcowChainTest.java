package org.vdiskload.format.qcow;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.BackingRef;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.LayerInfo;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.testing.QemuOracle;
import org.vdiskload.testing.Tools;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Backing files (qcow v1 names no backing format, so the core decides) and what libqcow's qcowinfo
 * says about the same images.
 */
class QcowChainTest {
    @TempDir
    static Path dir;
    static final Map<String, Tools.GeneratedImage> images = new HashMap<>();

    @BeforeAll
    static void generate() throws Exception {
        for (Tools.GeneratedImage img : Tools.generate("qcow.sh", dir)) images.put(img.path().getFileName().toString(), img);
    }

    private static Path image(String name) {
        return dir.resolve(name);
    }

    @Test
    void namesTheBackingFileWithoutAFormat() throws Exception {
        try (DiskImage disk = Images.open(image("over-raw.qcow"), OpenOptions.DEFAULTS)) {
            assertEquals(2, disk.layers().size());
            assertEquals(Optional.of(new BackingRef("base.raw", null)), disk.layers().get(0).backing());
            assertEquals("raw", disk.layers().get(1).formatName());
        }
    }

    @Test
    void refusesANonRawBackingFileItDoesNotNameAFormatFor() {
        ImageException e = assertThrows(ImageException.class, () -> Images.open(image("over-qcow.qcow"), OpenOptions.DEFAULTS).close());
        assertEquals(ImageException.Kind.UNSUPPORTED, e.kind());
        assertTrue(e.getMessage().contains("looks like a qcow image but the image does not name the backing format"), e.getMessage());
        assertTrue(e.getMessage().contains("--backing-format qcow"), e.getMessage());
    }

    @Test
    void refusesAQcow2BackingFileItDoesNotNameAFormatFor() {
        ImageException e = assertThrows(ImageException.class, () -> Images.open(image("over-qcow2.qcow"), OpenOptions.DEFAULTS).close());
        assertEquals(ImageException.Kind.UNSUPPORTED, e.kind());
        assertTrue(e.getMessage().contains("looks like a qcow2 image") && e.getMessage().contains("--backing-format qcow2"), e.getMessage());
        assertFalse(e.getMessage().contains("rebase"), "qcow v1 cannot record a backing format: " + e.getMessage());
    }

    @Test
    void opensANonRawBackingFileWithTheBackingFormatOption() throws Exception {
        try (DiskImage disk = Images.open(image("over-qcow.qcow"), OpenOptions.DEFAULTS.withBackingFormat("qcow"))) {
            assertEquals("qcow", disk.layers().get(1).formatName());
        }
    }

    @Test
    void imageWithoutBackingFileHasNone() throws Exception {
        try (DiskImage disk = Images.open(image("plain.qcow"), OpenOptions.DEFAULTS)) {
            assertEquals(1, disk.layers().size());
            assertFalse(disk.layers().get(0).backing().isPresent());
        }
    }

    private static final Pattern MEDIA_SIZE = Pattern.compile("Media size\\s*:.*\\((\\d+) bytes\\)");
    private static final Pattern BACKING = Pattern.compile("Backing filename\\s*:\\s*(\\S+)");

    /** libqcow (20201213) refuses 64 KiB qcow v1 clusters ("invalid cluster block size"), which qemu reads. */
    private static final Set<String> QCOWINFO_CANNOT_OPEN = Set.of("c64k.qcow");

    @Test
    void agreesWithQcowinfo() throws Exception {
        for (Tools.GeneratedImage img : images.values()) {
            Tools.Result r = Tools.run(List.of("qcowinfo", img.path().toString()), null);
            String name = img.path().getFileName().toString();
            assertEquals(QCOWINFO_CANNOT_OPEN.contains(name), r.exit() != 0, img + ": qcowinfo: " + r.stdout() + r.stderr());
            if (r.exit() != 0) continue;
            String out = r.stdout();
            assertTrue(out.contains("Format version\t\t: 1"), img + ": " + out);
            Matcher m = MEDIA_SIZE.matcher(out);
            assertTrue(m.find(), img + ": " + out);
            long stored = Long.parseLong(m.group(1));
            try (DiskImage disk = Images.open(img.path(), QemuOracle.options(img))) {
                LayerInfo info = disk.layers().get(0).info();
                // qcowinfo prints the stored size; qemu (and so vdiskload) uses whole sectors of it.
                assertEquals(stored & ~511L, info.virtualSize(), img + ": virtual size");
                Matcher b = BACKING.matcher(out);
                assertEquals(b.find() ? Optional.of(b.group(1)) : Optional.empty(),
                        disk.layers().get(0).backing().map(BackingRef::name), img + ": backing file");
            }
        }
    }

    @Test
    void clusterSizeIsWhatQemuImgInfoShows() throws Exception {
        Pattern cluster = Pattern.compile("\"cluster-size\": (\\d+)");
        for (Tools.GeneratedImage img : images.values()) {
            Matcher m = cluster.matcher(Tools.check("qemu-img", "info", "--output=json", "-f", "qcow", img.path().toString()));
            assertTrue(m.find(), img.toString());
            try (DiskImage disk = Images.open(img.path(), QemuOracle.options(img))) {
                assertEquals(Long.valueOf(m.group(1)), disk.layers().get(0).info().clusterSize(), img.toString());
            }
        }
    }
}
