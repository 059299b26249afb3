package org.vdiskload.format.vhd;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.Images;
import org.vdiskload.image.LayerRun;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.ReferencePolicy;
import org.vdiskload.image.error.RefusedReference;
import org.vdiskload.ops.Create;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Differencing disks against the content testdata/vhdtool.py says they hold (the parent's content
 * overlaid with the child's written sectors; vhd.sh cross-checks that generator with libvhdi's
 * vhdimount). qemu is not the oracle here: qemu 7.2 neither creates differencing VHDs nor follows
 * their parent; it opens one as a plain dynamic disk, reading unallocated blocks as zeros and
 * allocated blocks whole, sector bitmap ignored.
 */
class VhdDifferencingTest {
    static Path dir;

    @BeforeAll
    static void generate() throws Exception {
        dir = VhdTestData.dir();
    }

    @TestFactory
    Stream<DynamicTest> readsParentOverlaidWithChild() throws IOException {
        List<DynamicTest> tests = new ArrayList<>();
        for (String line : Files.readAllLines(dir.resolve("differencing.txt"))) {
            String[] f = line.trim().split("\\s+");
            Path child = dir.resolve(f[0]);
            Path expected = dir.resolve(f[1]);
            tests.add(DynamicTest.dynamicTest(f[0], () -> assertReads(child, expected)));
        }
        return tests.stream();
    }

    private static void assertReads(Path child, Path expected) throws IOException {
        try (DiskImage disk = Images.open(child, OpenOptions.DEFAULTS);
             FileChannel raw = FileChannel.open(expected, StandardOpenOption.READ)) {
            assertEquals("vpc", disk.formatName());
            assertEquals(raw.size(), disk.size(), child + ": virtual size");
            ByteBuffer ours = ByteBuffer.allocate((int) disk.size());
            ByteBuffer theirs = ByteBuffer.allocate((int) raw.size());
            disk.read(ours, 0);
            while (theirs.hasRemaining()) if (raw.read(theirs, theirs.position()) < 0) break;
            int m = ours.flip().mismatch(theirs.flip());
            if (m >= 0) fail(child.getFileName() + ": content differs from the expected at offset " + m);
        }
    }

    private static List<String> chain(String name) throws IOException {
        try (DiskImage disk = Images.open(dir.resolve(name), OpenOptions.DEFAULTS)) {
            List<String> names = new ArrayList<>();
            for (ImageLayer l : disk.layers()) names.add(l.formatName() + ":" + l.file().path().getFileName());
            return names;
        }
    }

    @Test
    void followsEachKindOfLocator() throws IOException {
        assertEquals(List.of("vpc:child-w2ru.vhd", "vpc:parent.vhd"), chain("child-w2ru.vhd"));
        assertEquals(List.of("vpc:child-w2ku.vhd", "vpc:parent.vhd"), chain("child-w2ku.vhd"));
        assertEquals(List.of("vpc:child-macx.vhd", "vpc:parent.vhd"), chain("child-macx.vhd"));
    }

    @Test
    void prefersTheRelativeLocator() throws IOException {
        // Its W2ku and MacX locators name dynamic.vhd, which exists: W2ru must win.
        assertEquals(List.of("vpc:child-prefer.vhd", "vpc:parent.vhd"), chain("child-prefer.vhd"));
    }

    /**
     * A child moved away from its parent: its W2ru locator names nothing any more, and its W2ku locator finds the
     * parent, under the reference rule: refused while the parent's directory is not allowed, read once it is.
     */
    @Test
    void aChildMovedAwayFindsItsParentByTheAbsoluteLocator(@TempDir Path tmp) throws IOException {
        Path parents = Files.createDirectories(tmp.resolve("parents"));
        Path parent = parents.resolve("base.vhd");
        Create.create(parent, new VhdFormat(), 1 << 20, Map.of(), null, null);
        try (DiskImage d = Images.open(parent, OpenOptions.DEFAULTS.withWritable(true))) {
            d.write(ByteBuffer.wrap(new byte[] {0x5a}), 0);
        }
        Create.create(parents.resolve("child.vhd"), new VhdFormat(), -1, Map.of(), "base.vhd", "vpc");
        Path child = Files.move(parents.resolve("child.vhd"), Files.createDirectories(tmp.resolve("children")).resolve("child.vhd"));
        RefusedReference e = assertThrows(RefusedReference.class, () -> Images.open(child, OpenOptions.DEFAULTS).close());
        assertTrue(e.getMessage().startsWith(child + ": backing file \"" + parent + "\" resolves to " + parent.toRealPath()), e.getMessage());
        try (DiskImage d = Images.open(child, OpenOptions.DEFAULTS.withRefs(ReferencePolicy.allowing(List.of(parents))))) {
            assertEquals(parent, d.layers().get(1).file().path());
            ByteBuffer b = ByteBuffer.allocate(1);
            d.read(b, 0);
            assertEquals(0x5a, b.get(0));
        }
    }

    @Test
    void followsAThreeDeepChain() throws IOException {
        assertEquals(List.of("vpc:top.vhd", "vpc:mid.vhd", "vpc:parent.vhd"), chain("top.vhd"));
    }

    @Test
    void mapsSectorsByTheBitmap() throws IOException {
        // child-w2ru.vhd wrote sectors 1-2 of its first 64 KiB block: sector 0 and 3+ are the parent's.
        try (DiskImage disk = Images.open(dir.resolve("child-w2ru.vhd"), OpenOptions.DEFAULTS)) {
            ImageLayer top = disk.layers().get(0);
            LayerRun a = top.map(0, 65536);
            assertEquals(LayerRun.Status.UNALLOCATED, a.status());
            assertEquals(512, a.length());
            LayerRun b = top.map(512, 65536 - 512);
            assertEquals(LayerRun.Status.DATA, b.status());
            assertEquals(1024, b.length());
            LayerRun c = top.map(1536, 65536 - 1536);
            assertEquals(LayerRun.Status.UNALLOCATED, c.status());
            assertEquals(65536 - 1536, c.length());
            // An unallocated stretch runs over whole unallocated blocks.
            LayerRun d = top.map(65536, 4 << 20);
            assertEquals(LayerRun.Status.UNALLOCATED, d.status());
            assertEquals(1048576 - 65536, d.length());
            assertEquals(1, disk.map(0, 512).get(0).depth());
            assertEquals(0, disk.map(512, 512).get(0).depth());
        }
    }
}
