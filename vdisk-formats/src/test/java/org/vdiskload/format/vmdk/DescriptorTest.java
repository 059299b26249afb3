package org.vdiskload.format.vmdk;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Descriptor parsing, the text probe, and the descriptor rules applied when opening. */
class DescriptorTest {
    @TempDir
    Path dir;

    private Descriptor parse(String text) throws IOException {
        try (ImageFile f = file("d.vmdk", text)) {
            return Descriptor.parse(text, f, 0);
        }
    }

    private ImageException refused(String text) throws IOException {
        try (ImageFile f = file("d.vmdk", text)) {
            return assertThrows(ImageException.class, () -> Descriptor.parse(text, f, 0));
        }
    }

    private ImageFile file(String name, String text) throws IOException {
        Path p = dir.resolve(name);
        Files.writeString(p, text);
        return ImageFile.open(p, false);
    }

    static void assertRefused(ImageException e, ImageException.Kind kind, String words) {
        assertEquals(kind, e.kind(), e.getMessage());
        assertTrue(e.getMessage().contains(words), e.getMessage());
        assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
    }

    @Test
    void parsesCommentsQuotingCrlfAndDdb() throws IOException {
        Descriptor d = parse("# Disk DescriptorFile\r\n"
                + "version=1\r\n"
                + "  # indented comment\r\n"
                + "CID=0000abcd\r\n"
                + "parentCID = ffffffff\r\n"
                + "createType = \"twoGbMaxExtentSparse\"\r\n"
                + "parentFileNameHint=\"dir with space/base.vmdk\"\r\n"
                + "\r\n"
                + "RW 4096 SPARSE \"a b-s001.vmdk\"\r\n"
                + "RDONLY 100 FLAT \"f.bin\" 7\r\n"
                + "RW 50 ZERO\r\n"
                + "\tRW 10 VMFS \"v.vmdk\"   \r\n"
                + "ddb.adapterType = \"lsilogic\"\r\n"
                + "ddb.uuid=\"60 00 C2 9b\"\r\n"
                + "CID=11111111\r\n");
        assertEquals("twoGbMaxExtentSparse", d.createType());
        assertEquals("dir with space/base.vmdk", d.parentFileNameHint());
        assertEquals("1", d.entries().get("version"));
        assertEquals(Map.of("adapterType", "lsilogic", "uuid", "60 00 C2 9b"), d.ddb());
        assertEquals(List.of(
                new ExtentLine(9, "RW", 4096, "SPARSE", "a b-s001.vmdk", 0),
                new ExtentLine(10, "RDONLY", 100, "FLAT", "f.bin", 7),
                new ExtentLine(11, "RW", 50, "ZERO", null, 0),
                new ExtentLine(12, "RW", 10, "VMFS", "v.vmdk", 0)), d.extents());
        try (ImageFile f = file("x", "")) {
            assertEquals(0xabcd, d.cid("CID", f, 0), "the first CID wins, as in qemu");
            assertEquals(0xffffffffL, d.cid("parentCID", f, 0));
        }
    }

    @Test
    void emptyParentHintMeansNoParent() throws IOException {
        assertNull(parse("parentFileNameHint=\"\"\n").parentFileNameHint());
    }

    @Test
    void decodesDeclaredEncodingAndStopsAtNul() {
        byte[] latin = "encoding=\"windows-1252\"\nRW 1 FLAT \"caf\u00e9\" 0\n\0garbage".getBytes(StandardCharsets.ISO_8859_1);
        assertEquals("encoding=\"windows-1252\"\nRW 1 FLAT \"caf\u00e9\" 0\n", Descriptor.decode(latin));
        byte[] utf8 = "RW 1 FLAT \"caf\u00e9\" 0\n".getBytes(StandardCharsets.UTF_8);
        assertEquals("RW 1 FLAT \"caf\u00e9\" 0\n", Descriptor.decode(utf8));
    }

    @Test
    void refusesLinesThatAreNothing() throws IOException {
        assertRefused(refused("version=1\nthis is not a descriptor\n"), ImageException.Kind.CORRUPT, "descriptor line 2 is not a comment");
    }

    @Test
    void refusesMalformedExtentLine() throws IOException {
        assertRefused(refused("RW lots SPARSE \"a.vmdk\"\n"), ImageException.Kind.CORRUPT, "invalid extent line");
        assertRefused(refused("RW 10 SPARSE \"a.vmdk\n"), ImageException.Kind.CORRUPT, "invalid extent line");
    }

    @Test
    void refusesFlatWithoutOffsetAndSparseWithOne() throws IOException {
        assertRefused(refused("RW 10 FLAT \"a\"\n"), ImageException.Kind.CORRUPT, "missing start offset");
        assertRefused(refused("RW 10 SPARSE \"a\" 5\n"), ImageException.Kind.CORRUPT, "unexpected start offset");
        assertRefused(refused("RW 10 VMFS \"a\" 0\n"), ImageException.Kind.CORRUPT, "unexpected start offset");
    }

    @Test
    void refusesZeroExtentWithFileAndOthersWithout() throws IOException {
        assertRefused(refused("RW 10 ZERO \"a\"\n"), ImageException.Kind.CORRUPT, "ZERO extents name no file");
        assertRefused(refused("RW 10 SPARSE\n"), ImageException.Kind.CORRUPT, "extent names no file");
    }

    @Test
    void refusesExtentSizesThatOverflow() throws IOException {
        assertRefused(refused("RW 9999999999999999999 FLAT \"a\" 0\n"), ImageException.Kind.CORRUPT, "out of range");
        assertRefused(refused("RW 36028797018963968 FLAT \"a\" 0\n"), ImageException.Kind.CORRUPT, "out of range");
    }

    @Test
    void refusesMissingOrBadCid() throws IOException {
        Descriptor d = parse("parentCID=zz\n");
        try (ImageFile f = file("x", "")) {
            assertRefused(assertThrows(ImageException.class, () -> d.cid("CID", f, 0)), ImageException.Kind.CORRUPT, "descriptor has no CID");
            assertRefused(assertThrows(ImageException.class, () -> d.cid("parentCID", f, 0)), ImageException.Kind.CORRUPT,
                    "parentCID 'zz' is not a 32-bit hexadecimal number");
        }
    }

    // ---- the text probe (qemu's rules)

    private static boolean probes(String head) {
        return VmdkFormat.looksLikeDescriptor(ByteBuffer.wrap(head.getBytes(StandardCharsets.US_ASCII)));
    }

    @Test
    void probesLikeQemu() {
        assertTrue(probes("# Disk DescriptorFile\nversion=1\n"));
        assertTrue(probes("# c\r\n   \r\nversion=3\r\nCID=1"));
        assertFalse(probes("\nversion=1\n"), "qemu does not skip empty lines");
        assertFalse(probes("version=4\n"));
        assertFalse(probes("createType=\"vmfs\"\nversion=1\n"));
        assertFalse(probes("# only a comment"));
    }

    // ---- rules applied when opening a descriptor

    private Path descriptor(String name, String body) throws IOException {
        Path p = dir.resolve(name);
        Files.writeString(p, "# Disk DescriptorFile\nversion=1\n" + body);
        return p;
    }

    private ImageException openRefused(Path p) {
        return assertThrows(ImageException.class, () -> {
            try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS.withFormat("vmdk"))) {
                d.read(ByteBuffer.allocate((int) Math.min(d.size(), 1 << 20)), 0);
            }
        });
    }

    private void flat(String name, int bytes) throws IOException {
        Files.write(dir.resolve(name), new byte[bytes]);
    }

    @Test
    void refusesMissingCreateType() throws IOException {
        flat("f.bin", 512);
        assertRefused(openRefused(descriptor("a.vmdk", "CID=1\nparentCID=ffffffff\nRW 1 FLAT \"f.bin\" 0\n")),
                ImageException.Kind.CORRUPT, "no createType");
    }

    @Test
    void refusesUnknownCreateTypeAsQemu() throws IOException {
        flat("f.bin", 512);
        assertRefused(openRefused(descriptor("a.vmdk", "CID=1\nparentCID=ffffffff\ncreateType=\"monolithicSparse\"\nRW 1 FLAT \"f.bin\" 0\n")),
                ImageException.Kind.UNSUPPORTED, "unsupported VMDK image type 'monolithicSparse'");
        assertRefused(openRefused(descriptor("b.vmdk", "CID=1\nparentCID=ffffffff\ncreateType=\"fullDevice\"\nRW 1 FLAT \"f.bin\" 0\n")),
                ImageException.Kind.UNSUPPORTED, "unsupported VMDK image type 'fullDevice'");
    }

    @Test
    void refusesDescriptorWithoutExtents() throws IOException {
        assertRefused(openRefused(descriptor("a.vmdk", "CID=1\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 0 FLAT \"f.bin\" 0\n")),
                ImageException.Kind.CORRUPT, "descriptor names no extents");
    }

    @Test
    void refusesDescriptorWithoutCid() throws IOException {
        flat("f.bin", 512);
        assertRefused(openRefused(descriptor("a.vmdk", "parentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 1 FLAT \"f.bin\" 0\n")),
                ImageException.Kind.CORRUPT, "descriptor has no CID");
    }

    @Test
    void refusesNoAccessRawDeviceSeSparseAndUnknownExtents() throws IOException {
        flat("f.bin", 512);
        String head = "CID=1\nparentCID=ffffffff\ncreateType=\"vmfs\"\n";
        assertRefused(openRefused(descriptor("a.vmdk", head + "NOACCESS 1 FLAT \"f.bin\" 0\n")), ImageException.Kind.UNSUPPORTED, "is NOACCESS");
        assertRefused(openRefused(descriptor("b.vmdk", head + "RW 1 VMFSRDM \"f.bin\"\n")), ImageException.Kind.UNSUPPORTED, "raw device mapping");
        // a SESPARSE extent is read (SeSparseTest): one of zeros is no seSparse extent
        assertRefused(openRefused(descriptor("c.vmdk", head + "RW 1 SESPARSE \"f.bin\"\n")), ImageException.Kind.CORRUPT,
                "f.bin: not a seSparse extent: bad const header magic 0x0000000000000000");
        assertRefused(openRefused(descriptor("d.vmdk", head + "RW 1 WEIRD \"f.bin\"\n")), ImageException.Kind.UNSUPPORTED, "unknown type WEIRD");
    }

    @Test
    void refusesOversizedDescriptor() throws IOException {
        Path p = dir.resolve("big.vmdk");
        Files.writeString(p, "# Disk DescriptorFile\nversion=1\n" + "#".repeat(Descriptor.MAX_BYTES));
        assertRefused(openRefused(p), ImageException.Kind.INVALID, "too large for a descriptor");
    }

    @Test
    void refusesTooManyExtents() throws IOException {
        flat("f.bin", 512);
        StringBuilder sb = new StringBuilder("CID=1\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n");
        for (int i = 0; i <= VmdkOpener.MAX_EXTENTS; i++) sb.append("RW 1 FLAT \"f.bin\" 0\n");
        assertRefused(openRefused(descriptor("a.vmdk", sb.toString())), ImageException.Kind.UNSUPPORTED, "more than 4096 extents");
    }

    @Test
    void refusesFlatOffsetThatOverflows() throws IOException {
        flat("f.bin", 512);
        assertRefused(openRefused(descriptor("a.vmdk", "CID=1\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n"
                + "RW 18014398509481983 FLAT \"f.bin\" 18014398509481983\n")), ImageException.Kind.CORRUPT, "overflows");
    }
}
