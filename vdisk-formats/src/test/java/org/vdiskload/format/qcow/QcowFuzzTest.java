package org.vdiskload.format.qcow;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.testing.MutationFuzz;
import org.vdiskload.testing.Tools;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Corrupts the header, L1 and L2 tables (and compressed data) of valid images: only ImageExceptions may come out. */
class QcowFuzzTest {
    @TempDir
    static Path dir;

    @BeforeAll
    static void generate() throws Exception {
        Tools.generate("qcow.sh", dir);
    }

    /** Header, L1 table, every L2 table and the first bytes of every compressed cluster. */
    static List<MutationFuzz.Region> metadata(Path image) throws Exception {
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(image)).order(ByteOrder.BIG_ENDIAN);
        QcowHeader h = QcowHeader.parse(b, image);
        List<MutationFuzz.Region> regions = new ArrayList<>();
        regions.add(new MutationFuzz.Region(0, QcowHeader.LENGTH));
        regions.add(new MutationFuzz.Region(h.l1TableOffset(), (int) h.l1Entries() * 8));
        for (int i = 0; i < h.l1Entries(); i++) {
            long l2 = b.getLong((int) h.l1TableOffset() + 8 * i);
            if (l2 == 0) continue;
            regions.add(new MutationFuzz.Region(l2, 8 << h.l2Bits()));
            for (int j = 0; j < h.l2Entries(); j++) {
                QcowCluster c = QcowCluster.decode(b.getLong((int) l2 + 8 * j), h.clusterBits());
                if (c.kind() == QcowCluster.Kind.COMPRESSED) regions.add(new MutationFuzz.Region(c.hostOffset(), Math.min(16, c.compressedSize())));
            }
        }
        return regions;
    }

    private static void fuzz(Path image, long seed) throws Exception {
        MutationFuzz.run(image, "qcow", metadata(image), 300, seed);
    }

    @Test
    void plainImage() throws Exception {
        fuzz(dir.resolve("plain.qcow"), 1);
    }

    @Test
    void compressedImage() throws Exception {
        fuzz(dir.resolve("compressed.qcow"), 2);
    }

    @Test
    void overlayWithBackingFile() throws Exception {
        fuzz(dir.resolve("over-raw.qcow"), 3);
    }

    @Test
    void smallClustersWithManyL1Entries() throws Exception {
        fuzz(dir.resolve("c512.qcow"), 5);
    }

    @Test
    void builtImage(@TempDir Path tmp) throws Exception {
        fuzz(QcowTestImage.write(tmp), 4);
    }
}
