package org.vdiskload.format.vhdx;

import org.junit.jupiter.api.Test;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The parent locator item of a differencing VHDX (MS-VHDX 2.6.2.6), from annotated bytes. */
class ParentLocatorTest {
    private static final String LINKAGE = "{83eca7f1-0c3a-4e4b-9a2c-0123456789ab}";

    /** A locator with the given keys and values, laid out: header, entries, then the UTF-16LE strings. */
    private static ByteBuffer locator(Guid type, String... kv) {
        int n = kv.length / 2;
        ByteBuffer b = ByteBuffer.allocate(4096).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(0, type.low()).putLong(8, type.high()); // LocatorType
        b.putShort(16, (short) 0);                         // Reserved
        b.putShort(18, (short) n);                         // KeyValueCount
        int strings = 20 + 12 * n;
        for (int i = 0; i < n; i++) {
            byte[] k = kv[2 * i].getBytes(StandardCharsets.UTF_16LE);
            byte[] v = kv[2 * i + 1].getBytes(StandardCharsets.UTF_16LE);
            int e = 20 + 12 * i;
            b.putInt(e, strings);                          // KeyOffset
            b.putInt(e + 4, strings + k.length);           // ValueOffset
            b.putShort(e + 8, (short) k.length);           // KeyLength
            b.putShort(e + 10, (short) v.length);          // ValueLength
            b.put(strings, k).put(strings + k.length, v);
            strings += k.length + v.length;
        }
        return b.limit(strings);
    }

    private static ParentLocator parse(ByteBuffer b) throws IOException {
        Path p = Files.createTempFile("locator", ".vhdx");
        try (ImageFile f = ImageFile.open(p, false)) {
            return ParentLocator.parse(f, 0, b);
        } finally {
            Files.delete(p);
        }
    }

    @Test
    void parsesLinkageAndPaths() throws IOException {
        ParentLocator l = parse(locator(ParentLocator.VHDX_LOCATOR, "parent_linkage", LINKAGE,
                "relative_path", ".\\sub\\base.vhdx", "absolute_win32_path", "C:\\vms\\base.vhdx"));
        assertEquals(Guid.of("83eca7f1-0c3a-4e4b-9a2c-0123456789ab"), l.linkage());
        assertNull(l.linkage2());
        // The drive path cannot be opened here: only its file name, beside the child, after the relative path.
        assertEquals(List.of("sub/base.vhdx", "base.vhdx"), l.hostPaths());
    }

    @Test
    void withoutRelativePathTheAbsolutePathsFileNameIsUsed() throws IOException {
        ParentLocator l = parse(locator(ParentLocator.VHDX_LOCATOR, "parent_linkage", LINKAGE,
                "volume_path", "\\\\?\\Volume{26a21bda-a627-11d7-9931-806e6f6e6963}\\vms\\base.vhdx"));
        assertEquals(List.of("base.vhdx"), l.hostPaths());
    }

    @Test
    void pathsComeInTheSpecificationsOrderWhateverTheFileOrder() throws IOException {
        ParentLocator l = parse(locator(ParentLocator.VHDX_LOCATOR, "parent_linkage", LINKAGE,
                "absolute_win32_path", "\\srv\\vms\\base.vhdx", "volume_path", "\\data\\base.vhdx",
                "relative_path", "..\\vms\\base.vhdx"));
        assertEquals(List.of("../vms/base.vhdx", "/data/base.vhdx", "/srv/vms/base.vhdx", "base.vhdx"), l.hostPaths());
    }

    @Test
    void missingLinkageIsCorrupt() {
        ImageException e = assertThrows(ImageException.class,
                () -> parse(locator(ParentLocator.VHDX_LOCATOR, "relative_path", "base.vhdx")));
        assertEquals(ImageException.Kind.CORRUPT, e.kind());
        assertTrue(e.getMessage().contains("no parent_linkage"), e.getMessage());
    }

    @Test
    void unknownLocatorTypeIsUnsupported() {
        ImageException e = assertThrows(ImageException.class,
                () -> parse(locator(Guid.of("01234567-89ab-cdef-0123-456789abcdef"), "parent_linkage", LINKAGE)));
        assertEquals(ImageException.Kind.UNSUPPORTED, e.kind());
        assertTrue(e.getMessage().contains("unsupported parent locator type"), e.getMessage());
    }

    @Test
    void stringOutsideTheItemIsCorrupt() {
        ByteBuffer b = locator(ParentLocator.VHDX_LOCATOR, "parent_linkage", LINKAGE);
        b.putInt(24, 60000); // ValueOffset past the item
        ImageException e = assertThrows(ImageException.class, () -> parse(b));
        assertTrue(e.getMessage().contains("outside the item"), e.getMessage());
    }

    @Test
    void moreEntriesThanTheItemHoldsIsCorrupt() {
        ByteBuffer b = locator(ParentLocator.VHDX_LOCATOR, "parent_linkage", LINKAGE);
        b.putShort(18, (short) 5000);
        ImageException e = assertThrows(ImageException.class, () -> parse(b));
        assertTrue(e.getMessage().contains("lists 5000 entries"), e.getMessage());
    }

    @Test
    void duplicateKeyIsCorrupt() {
        ImageException e = assertThrows(ImageException.class, () -> parse(locator(ParentLocator.VHDX_LOCATOR,
                "parent_linkage", LINKAGE, "parent_linkage", LINKAGE)));
        assertTrue(e.getMessage().contains("twice"), e.getMessage());
    }
}
