package org.vdiskload.format.vhd;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.vdiskload.image.OpenContext;
import org.vdiskload.io.ImageFile;
import org.vdiskload.testing.MutationFuzz;
import org.vdiskload.testing.MutationFuzz.Region;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** Corrupts the footer, dynamic header, BAT, parent locators and a sector bitmap of generated images. */
class VhdFuzzTest {
    static Path dir;

    @BeforeAll
    static void generate() throws Exception {
        dir = VhdTestData.dir();
    }

    /** The metadata regions of a dynamic or differencing image, found by parsing it. */
    private static List<Region> sparseRegions(Path image) throws IOException {
        List<Region> regions = new ArrayList<>();
        try (ImageFile f = ImageFile.open(image, false);
             VhdLayer layer = (VhdLayer) new VhdFormat().open(f, new OpenContext(null, 1 << 20, false))) {
            VhdDynamicHeader h = layer.header();
            regions.add(new Region(0, VhdFooter.SIZE));
            regions.add(new Region(h.at(), VhdDynamicHeader.SIZE));
            int batBytes = (int) (h.maxTableEntries() * 4);
            regions.add(new Region(h.tableOffset(), batBytes));
            ByteBuffer bat = f.readStruct(h.tableOffset(), batBytes, ByteOrder.BIG_ENDIAN, "BAT");
            for (int i = 0; i < h.maxTableEntries(); i++) {
                int e = bat.getInt(i * 4);
                if (e != VhdBat.UNALLOCATED) {
                    regions.add(new Region(Integer.toUnsignedLong(e) * 512, (int) h.bitmapSize()));
                    break;
                }
            }
            for (VhdParentLocator loc : h.locators()) regions.add(new Region(loc.dataOffset(), (int) loc.dataLength()));
            regions.add(new Region(Files.size(image) - VhdFooter.SIZE, VhdFooter.SIZE));
        }
        assertTrue(regions.size() >= 5, "regions " + regions);
        return regions;
    }

    @Test
    void fuzzDynamic() throws IOException {
        Path img = dir.resolve("dynamic.vhd");
        MutationFuzz.run(img, "vpc", sparseRegions(img), 300, 0x5648_4431L);
    }

    @Test
    void fuzzDifferencing() throws IOException {
        Path img = dir.resolve("child-w2ru.vhd");
        MutationFuzz.run(img, "vpc", sparseRegions(img), 300, 0x5648_4432L);
    }

    @Test
    void fuzzFixedFooter() throws IOException {
        Path img = dir.resolve("fixed.vhd");
        long end = Files.size(img);
        MutationFuzz.run(img, "vpc", List.of(new Region(end - VhdFooter.SIZE, VhdFooter.SIZE)), 300, 0x5648_4433L);
    }
}
