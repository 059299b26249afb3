package org.vdiskload.attach;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Which file system IMAGE:PART means, and the one-line listing when none is plain. */
class FileSystemChooserTest {
    private static final String ROOT = "4f68bce3-e8cd-4db1-96e7-fbcaf984b709";
    private static final String LINUX = "0fc63daf-8483-4772-8e79-3d69d8477de4";
    private static final String ESP = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";

    private static final FileSystemCandidate EFI = new FileSystemCandidate(1, "/dev/qcow0p1", 20 << 20, ESP, "esp", "vfat", "EFI", "ABCD-1234");
    private static final FileSystemCandidate DATA = new FileSystemCandidate(2, "/dev/qcow0p2", 30 << 20, LINUX, "root", "ext4", "rootfs",
            "6b0c3a5e-2d47-4c1a-9e5b-3f1d2c4b5a69");
    private static final FileSystemCandidate SWAPLESS = new FileSystemCandidate(3, "/dev/qcow0p3", 1 << 20, LINUX, "empty", "", "", "");

    private static FileSystemCandidate choose(List<FileSystemCandidate> all, String part) throws IOException {
        return FileSystemChooser.choose("d.qcow2", all, part, ROOT);
    }

    private static FileSystemCandidate typed(FileSystemCandidate c, String type) {
        return new FileSystemCandidate(c.number(), c.device(), c.size(), type, c.partitionName(), c.type(), c.label(), c.uuid());
    }

    @Test
    void theOnlyFileSystemIsTheDefault() throws IOException {
        assertEquals(DATA, choose(List.of(DATA, SWAPLESS), null));
        FileSystemCandidate whole = new FileSystemCandidate(0, "/dev/vmdk0", 1 << 25, "", "", "ext4", "", "");
        assertEquals(whole, choose(List.of(whole), null));
    }

    @Test
    void elseTheGptRootOfThisArchitecture() throws IOException {
        FileSystemCandidate root = typed(DATA, ROOT);
        assertEquals(root, choose(List.of(EFI, root), null));
    }

    @Test
    void elseAnErrorListingTheCandidates() {
        IOException e = assertThrows(IOException.class, () -> choose(List.of(EFI, DATA, SWAPLESS), null));
        assertEquals("d.qcow2: 2 file systems and no single GPT root partition; name one as d.qcow2:PART (a number, GPT name, label or UUID):"
                + " 1 (20 MiB, vfat, label \"EFI\", name \"esp\"); 2 (30 MiB, ext4, label \"rootfs\", name \"root\")", e.getMessage());
        // two roots are no single one either
        assertThrows(IOException.class, () -> choose(List.of(typed(EFI, ROOT), typed(DATA, ROOT)), null));
        IOException none = assertThrows(IOException.class, () -> choose(List.of(SWAPLESS), null));
        assertTrue(none.getMessage().startsWith("d.qcow2: no file system found"), none.getMessage());
    }

    @Test
    void partitionByNumberNameLabelOrUuid() throws IOException {
        List<FileSystemCandidate> all = List.of(EFI, DATA, SWAPLESS);
        assertEquals(DATA, choose(all, "2"));
        assertEquals(EFI, choose(all, "esp"));
        assertEquals(DATA, choose(all, "rootfs"));
        assertEquals(DATA, choose(all, "6B0C3A5E-2D47-4C1A-9E5B-3F1D2C4B5A69"));
        assertEquals(EFI, choose(all, "ABCD-1234"));
    }

    @Test
    void aNameBeforeALabel() throws IOException {
        // partition 1's label is partition 2's GPT name: the name decides
        FileSystemCandidate labelled = new FileSystemCandidate(1, "/dev/qcow0p1", 1 << 20, LINUX, "a", "ext4", "root", "");
        assertEquals(DATA, choose(List.of(labelled, DATA), "root"));
    }

    @Test
    void wrongPartsFailInOneLine() {
        List<FileSystemCandidate> all = List.of(EFI, DATA, SWAPLESS);
        for (String part : new String[] {"9", "nope", "3", "\u001b[31m"}) {
            IOException e = assertThrows(IOException.class, () -> choose(all, part), part);
            assertFalse(e.getMessage().contains("\n") || e.getMessage().contains("\u001b"), e.getMessage());
            assertTrue(e.getMessage().startsWith("d.qcow2: "), e.getMessage());
        }
        FileSystemCandidate twin = new FileSystemCandidate(4, "/dev/qcow0p4", 1 << 20, LINUX, "root", "ext4", "", "");
        IOException e = assertThrows(IOException.class, () -> choose(List.of(DATA, twin), "root"));
        assertTrue(e.getMessage().contains("names 2 partitions"), e.getMessage());
    }

    @Test
    void labelsFromTheImageAreEscaped() throws IOException {
        FileSystemCandidate hostile = new FileSystemCandidate(1, "/dev/qcow0p1", 1 << 20, LINUX, "x\ny", "ext4", "a\u001bb", "");
        IOException e = assertThrows(IOException.class, () -> choose(List.of(hostile, DATA), null));
        assertFalse(e.getMessage().contains("\n") || e.getMessage().contains("\u001b"), e.getMessage());
    }

    @Test
    void blkidExportValuesAreUnescaped() {
        assertEquals("my root", Blkid.parse("DEVNAME=/dev/x\nLABEL=my\\ root\nTYPE=ext4\n").get("LABEL"));
        assertEquals("ext4", Blkid.parse("LABEL=my\\ root\nTYPE=ext4\n").get("TYPE"));
    }
}
