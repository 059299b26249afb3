package org.vdiskload.format.vhdx;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.testing.MutationFuzz;
import org.vdiskload.testing.MutationFuzz.Region;
import org.vdiskload.testing.Tools;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.fail;
import static org.vdiskload.format.vhdx.TestImage.BAT;
import static org.vdiskload.format.vhdx.TestImage.KB;
import static org.vdiskload.format.vhdx.TestImage.METADATA;

/** Corrupted VHDX metadata must give an ImageException, never another failure, a hang or a huge allocation. */
class VhdxFuzzTest {
    @TempDir
    Path dir;

    /** Headers, region tables, metadata table and items, BAT. Header and region table changes mostly break their CRC. */
    @Test
    void mutatedMetadataOnlyEverGivesImageExceptions() throws Exception {
        Path valid = new TestImage().write(dir, "valid.vhdx");
        MutationFuzz.run(valid, "vhdx", List.of(
                new Region(0, 8),
                new Region(64 * KB, 80), new Region(128 * KB, 80),
                new Region(192 * KB, 80), new Region(256 * KB, 80),
                new Region(METADATA, 32 + 5 * 32), new Region(METADATA + TestImage.ITEM_PARAMS, 64),
                new Region(BAT, 64)), 300, 0x7d5c1L);
    }

    /** The same fields with their checksums fixed after each change, so the parser sees the corrupt values. */
    @Test
    void mutatedHeadersAndRegionTablesWithGoodChecksumsOnlyEverGiveImageExceptions() throws Exception {
        Random rnd = new Random(0x4eadL);
        int[][] regions = {{64 * KB, 80}, {128 * KB, 80}, {192 * KB, 80}, {256 * KB, 80}};
        for (int i = 0; i < 300; i++) {
            TestImage img = new TestImage();
            for (int f = 1 + rnd.nextInt(4); f > 0; f--) {
                int[] r = regions[rnd.nextInt(regions.length)];
                int at = r[0] + 8 + rnd.nextInt(r[1] - 8); // past signature and checksum
                img.b.put(at, (byte) (rnd.nextBoolean() ? rnd.nextInt(256) : 0xff));
            }
            Path p = img.fixCrcs().write(dir, "mutated.vhdx");
            try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS.withFormat("vhdx"))) {
                d.map(0, d.size());
                d.read(ByteBuffer.allocate((int) Math.min(d.size(), 1 << 20)), 0);
            } catch (ImageException e) {
                continue;
            } catch (Throwable t) {
                fail("iteration " + i + ": " + t, t);
            }
        }
    }

    /** The parent locator, sector bitmap, BAT of a differencing child, and the log of a dirty image. */
    @Test
    void mutatedLocatorBitmapAndLogOnlyEverGiveImageExceptions() throws Exception {
        List<Tools.GeneratedImage> made = Tools.generate("vhdx-made.sh", dir);
        Path child = made.stream().filter(i -> i.path().endsWith("child.vhdx")).findFirst().orElseThrow().path();
        Path dirty = made.stream().filter(i -> i.path().endsWith("dirty.vhdx")).findFirst().orElseThrow().path();
        // vhdx_make.py: metadata at 2 MiB (items from +64 KiB, 4 KiB apart; the parent locator is the sixth),
        // BAT at 3 MiB (the sector bitmap entry at index 4096), the bitmap at 6 MiB (block 2 bits from byte 512).
        MutationFuzz.run(child, "vhdx", List.of(
                new Region(2 << 20, 32 + 6 * 32), new Region((2 << 20) + 64 * KB, 6 * 4096 + 512),
                new Region(3 << 20, 48), new Region((3L << 20) + 4096 * 8, 16),
                new Region((6L << 20) + 512, 64)), 300, 0xd1ffL);
        // qemu's log is at 1 MiB; the script's entries are at its start (header, descriptors, data sectors).
        MutationFuzz.run(dirty, "vhdx", List.of(
                new Region(1 << 20, 256), new Region((1 << 20) + 4096, 64), new Region((1 << 20) + 3 * 4096, 256)),
                300, 0x109L);
    }
}
