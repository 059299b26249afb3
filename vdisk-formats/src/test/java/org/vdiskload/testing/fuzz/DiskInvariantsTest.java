package org.vdiskload.testing.fuzz;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.Extent;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The invariant checks the image fuzz targets apply report each broken map (and accept a sound one). */
class DiskInvariantsTest {
    @TempDir
    Path dir;
    private ImageFile image, stranger;

    @BeforeEach
    void files() throws IOException {
        image = ImageFile.open(Files.write(dir.resolve("image"), new byte[8192]), false);
        stranger = ImageFile.open(Files.write(dir.resolve("stranger"), new byte[8192]), false);
    }

    @AfterEach
    void close() throws IOException {
        image.close();
        stranger.close();
    }

    private void assertBroken(String words, List<Extent> map) {
        Finding f = assertThrows(Finding.class, () -> DiskInvariants.validate(map, 0, 8192, 2, Set.of(image)));
        assertTrue(f.getMessage().contains(words), f.getMessage());
    }

    @Test
    void acceptsASoundMapEvenPastTheEndOfItsFile() {
        assertDoesNotThrow(() -> DiskInvariants.validate(List.of(Extent.data(0, 4096, 0, image, 4096),
                Extent.zero(4096, 2048, 1, false), Extent.data(6144, 2048, 0, image, 8192)), 0, 8192, 2, Set.of(image)));
    }

    @Test
    void reportsDataInAFileOutsideTheChain() {
        assertBroken("not of the chain", List.of(Extent.data(0, 8192, 0, stranger, 0)));
    }

    @Test
    void reportsDataAtAnOffsetNoFileCanHave() {
        assertBroken("offset no file can have", List.of(Extent.data(0, 8192, 0, image, -512)));
        assertBroken("offset no file can have", List.of(Extent.data(0, 8192, 0, image, Long.MAX_VALUE - 4096)));
    }

    @Test
    void reportsGapsOverlapsShortMapsAndBadDepths() {
        assertBroken("does not start at 4096", List.of(Extent.zero(0, 4096, 0, false), Extent.zero(4608, 3584, 0, false)));
        assertBroken("does not start at 4096", List.of(Extent.zero(0, 4096, 0, false), Extent.zero(2048, 6144, 0, false)));
        assertBroken("ends at 4096", List.of(Extent.zero(0, 4096, 0, false)));
        assertBroken("names depth 2", List.of(Extent.zero(0, 8192, 2, false)));
        assertBroken("empty map", List.of());
    }

    @Test
    void reportsAWindowDisagreeingWithTheLargerMap() {
        List<Extent> outer = List.of(Extent.data(0, 8192, 0, image, 0));
        assertDoesNotThrow(() -> DiskInvariants.agree(List.of(Extent.data(4096, 512, 0, image, 4096)), outer));
        assertThrows(Finding.class, () -> DiskInvariants.agree(List.of(Extent.data(4096, 512, 0, image, 0)), outer));
        assertThrows(Finding.class, () -> DiskInvariants.agree(List.of(Extent.zero(4096, 512, 0, true)), outer));
    }
}
