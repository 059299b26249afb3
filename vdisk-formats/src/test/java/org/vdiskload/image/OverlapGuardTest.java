package org.vdiskload.image;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.testing.Tools;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * VHD, VMDK and VDI images (qemu-made) whose tables were patched to point into their own metadata: the map
 * serves no data from there (the library reads it), and a write there, or a change to a table lying there,
 * fails with a CORRUPT error naming what it would overwrite, leaving the file as it was. (qcow2: Qcow2OverlapTest; VHDX checks its blocks against
 * its regions and sector bitmaps when it maps them.)
 */
class OverlapGuardTest {
    @TempDir
    Path dir;

    private Path qemuImage(String name, String format, String size) throws Exception {
        Path p = dir.resolve(name);
        Tools.check("qemu-img", "create", "-q", "-f", format, p.toString(), size);
        Tools.check("qemu-io", "-f", format, "-c", "write -P 0x11 0 64k", p.toString());
        return p;
    }

    private static void put(Path p, long at, ByteBuffer b) throws Exception {
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
            ch.write(b.flip(), at);
        }
    }

    private static long read(Path p, long at, int bytes, ByteOrder order) throws Exception {
        try (FileChannel ch = FileChannel.open(p)) {
            ByteBuffer b = ByteBuffer.allocate(8).order(order);
            ch.read(b.limit(bytes), at);
            b.flip();
            return bytes == 8 ? b.getLong() : Integer.toUnsignedLong(b.getInt());
        }
    }

    /** The map of {@code [0, length)} has no data there; a write at 100 fails naming {@code overlapped}; the file is unchanged. */
    private static void refused(Path p, String format, long length, String overlapped) throws Exception {
        if (format.equals("vmdk")) widenCid(p);
        byte[] before = Files.readAllBytes(p);
        try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS.withFormat(format).withWritable(true))) {
            d.prepareForWrites();
            for (Extent e : d.map(0, length)) assertFalse(e.kind() == Extent.Kind.DATA || e.inPlace(), format + ": " + e);
            d.read(ByteBuffer.allocate((int) length), 0);
            ImageException e = assertThrows(ImageException.class, () -> d.write(ByteBuffer.wrap(new byte[] {7}), 100));
            assertEquals(ImageException.Kind.CORRUPT, e.kind());
            assertTrue(e.getMessage().contains("overlaps " + overlapped), e.getMessage());
            assertThrows(ImageException.class, () -> d.writeZeroes(0, 64 << 10, false));
        }
        byte[] after = Files.readAllBytes(p);
        if (format.equals("vmdk")) {
            after = withoutCid(after);
            before = withoutCid(before);
        }
        if (format.equals("vdi")) { // prepareForWrites gave it a new uuidModify, as VirtualBox's first write does
            java.util.Arrays.fill(after, 0x198, 0x1a8, (byte) 0);
            java.util.Arrays.fill(before, 0x198, 0x1a8, (byte) 0);
        }
        assertArrayEquals(before, after, format + ": the refused write changed the file");
    }

    /** A VMDK's bytes but its CID: the first write gives the disk a new one (before a refusal, as qemu does), at
     * least 8 digits where qemu-img wrote as few as it needed (a CID below 0x10000000 has 7: one image in 16). */
    private static byte[] withoutCid(byte[] image) {
        return new String(image, StandardCharsets.ISO_8859_1).replaceFirst("CID=[0-9a-f]+", "CID=").getBytes(StandardCharsets.ISO_8859_1);
    }

    /**
     * Gives the VMDK {@code p} a CID of vdiskload's width (8 digits, where qemu-img may have written 7), which
     * a refused write's new CID keeps: masked, the descriptors then line up byte for byte.
     */
    private static void widenCid(Path p) throws Exception {
        try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS.withFormat("vmdk").withWritable(true))) {
            d.prepareForWrites();
        }
    }

    /** A write at {@code at} changes a grain table that overlaps {@code overlapped}: refused, the file unchanged. */
    private static void tableChangeRefused(Path p, long at, String overlapped) throws Exception {
        widenCid(p);
        byte[] before = Files.readAllBytes(p);
        try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS.withFormat("vmdk").withWritable(true))) {
            ImageException e = assertThrows(ImageException.class, () -> d.write(ByteBuffer.wrap(new byte[] {7}), at));
            assertEquals(ImageException.Kind.CORRUPT, e.kind());
            assertTrue(e.getMessage().contains("overlaps " + overlapped), e.getMessage());
        }
        assertArrayEquals(withoutCid(before), withoutCid(Files.readAllBytes(p)), "the refused write changed the file");
    }

    /** Block 0's BAT entry names the BAT's own sector. */
    @Test
    void vhdBlockOnTheBat() throws Exception {
        Path p = qemuImage("a.vhd", "vpc", "4M");
        long header = read(p, 16, 8, ByteOrder.BIG_ENDIAN);
        long bat = read(p, header + 16, 8, ByteOrder.BIG_ENDIAN);
        put(p, bat, ByteBuffer.allocate(4).putInt((int) (bat / 512)));
        refused(p, "vpc", 2 << 20, "the BAT at offset " + bat);
    }

    /**
     * The dynamic header's table offset moved 8 bytes into the header itself, onto its data offset field (all
     * ones, as the specification has it): the two BAT entries read as unallocated, and allocating block 0 would
     * write its entry over the header.
     */
    @Test
    void vhdBatOnTheDynamicHeader() throws Exception {
        Path p = qemuImage("f.vhd", "vpc", "4M");
        long header = read(p, 16, 8, ByteOrder.BIG_ENDIAN);
        assertEquals(-1L, read(p, header + 8, 8, ByteOrder.BIG_ENDIAN));
        put(p, header + 16, ByteBuffer.allocate(8).putLong(header + 8));
        byte[] before = Files.readAllBytes(p);
        try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS.withFormat("vpc").withWritable(true))) {
            for (Extent e : d.map(0, d.size())) assertFalse(e.kind() == Extent.Kind.DATA, e.toString());
            ImageException e = assertThrows(ImageException.class, () -> d.write(ByteBuffer.wrap(new byte[] {7}), 100));
            assertEquals(ImageException.Kind.CORRUPT, e.kind());
            assertTrue(e.getMessage().contains("overlaps the dynamic header at offset " + header), e.getMessage());
        }
        assertArrayEquals(before, Files.readAllBytes(p), "the refused write changed the file");
    }

    /** Grain 0's grain table entry names the grain directory's sector. */
    @Test
    void vmdkGrainOnTheGrainDirectory() throws Exception {
        Path p = qemuImage("b.vmdk", "vmdk", "4M");
        long gd = read(p, 56, 8, ByteOrder.LITTLE_ENDIAN);
        long gt = read(p, gd * 512, 4, ByteOrder.LITTLE_ENDIAN);
        put(p, gt * 512, ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt((int) gd));
        refused(p, "vmdk", 64 << 10, "the grain directory at " + gd * 512);
    }

    /** Grain directory entry 0 names sector 4, in the embedded descriptor's padding (zeros: a table of unallocated grains). */
    @Test
    void vmdkGrainTableOnTheDescriptor() throws Exception {
        Path p = qemuImage("d.vmdk", "vmdk", "4M");
        long gd = read(p, 56, 8, ByteOrder.LITTLE_ENDIAN);
        put(p, gd * 512, ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(4));
        tableChangeRefused(p, 100, "the header and descriptor");
    }

    /** Grain directory entry 1 names entry 0's table: a grain allocated through it would remap one of the first 32 MiB. */
    @Test
    void vmdkGrainTableNamedTwice() throws Exception {
        Path p = qemuImage("e.vmdk", "vmdk", "64M");
        long gd = read(p, 56, 8, ByteOrder.LITTLE_ENDIAN);
        long table0 = read(p, gd * 512, 4, ByteOrder.LITTLE_ENDIAN);
        put(p, gd * 512 + 4, ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt((int) table0));
        tableChangeRefused(p, (32 << 20) + (64 << 10), "the grain table at " + table0 * 512 + " (named by two grain directory entries)");
    }

    /** The block map moved into data slot 1 (what an interrupted resize leaves), and block 0's entry names that slot. */
    @Test
    void vdiBlockOnTheBlockMap() throws Exception {
        Path p = qemuImage("c.vdi", "vdi", "4M");
        long data = read(p, 0x158, 4, ByteOrder.LITTLE_ENDIAN);
        long map = data + (1 << 20);
        ByteBuffer entries = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putInt(1).putInt(-1).putInt(-1).putInt(-1);
        put(p, map, entries);
        put(p, 0x154, ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt((int) map));
        put(p, 0x184, ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(2));
        refused(p, "vdi", 1 << 20, "the header or the block map (" + map + ".." + (map + 16) + ")");
    }
}
