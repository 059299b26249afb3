package org.vdiskload.format.vmdk;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The CID rewrite: only the CID value changes, never to fewer digits, so the text keeps its length. */
class DescriptorCidTest {
    @TempDir
    Path dir;

    private String rewrite(String text, long cid) throws Exception {
        Path p = dir.resolve("d.vmdk");
        Files.writeString(p, text, StandardCharsets.ISO_8859_1);
        try (ImageFile f = ImageFile.open(p, true)) {
            new DescriptorCid(f, 0, -1).rewrite(cid);
        }
        return Files.readString(p, StandardCharsets.ISO_8859_1);
    }

    @Test
    void replacesOnlyTheCidValue() throws Exception {
        String text = "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=12345678\ncreateType=\"vmfs\"\n";
        assertEquals(text.replace("CID=fffffffe", "CID=0000002a"), rewrite(text, 42));
    }

    @Test
    void keepsLeadingZerosAndSpacesAndQuotes() throws Exception {
        assertEquals("version=1\r\n  CID = \"00000000000000ab\"\r\nparentCID=ffffffff\r\n",
                rewrite("version=1\r\n  CID = \"0000000000000001\"\r\nparentCID=ffffffff\r\n", 0xab));
    }

    @Test
    void refusesADescriptorWithoutCid() throws Exception {
        ImageException e = assertThrows(ImageException.class, () -> rewrite("version=1\nparentCID=ffffffff\n", 1));
        assertTrue(e.getMessage().contains("no CID line"), e.getMessage());
    }

    @Test
    void anEmbeddedDescriptorMustKeepFitting() throws Exception {
        Path p = dir.resolve("e.vmdk");
        Files.writeString(p, "xCID=1\n", StandardCharsets.ISO_8859_1);
        try (ImageFile f = ImageFile.open(p, true)) {
            ImageException e = assertThrows(ImageException.class, () -> new DescriptorCid(f, 1, 6).rewrite(0x12345678));
            assertTrue(e.getMessage().contains("no room"), e.getMessage());
        }
    }
}
