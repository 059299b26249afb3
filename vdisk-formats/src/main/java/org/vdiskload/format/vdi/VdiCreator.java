package org.vdiskload.format.vdi;

import org.vdiskload.image.CreateOptions;
import org.vdiskload.image.error.ImageException;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.UUID;

/**
 * qemu-img create -f vdi [-o static=on]: the header (qemu's text, fresh image and snapshot UUIDs),
 * the block map padded to whole sectors, and for a static image every block allocated in order
 * (the data area reserved as a sparse file, as qemu does).
 */
final class VdiCreator {
    private static final String TEXT = "<<< QEMU VM Virtual Disk Image >>>\n";

    private VdiCreator() {}

    static List<Path> create(long size, CreateOptions options) throws IOException {
        Path target = options.target();
        boolean isStatic = options.takeBoolean("static", false);
        options.takeChoice("preallocation", "off", "off");
        options.requireAllTaken("vdi");
        if (options.backingFile() != null) throw ImageException.invalid(target, "backing file not supported for file format 'vdi'");
        long bytes = Math.addExact(size, VdiHeader.SECTOR - 1) & ~(long) (VdiHeader.SECTOR - 1);
        if (bytes > VdiHeader.MAX_DISK_SIZE) {
            throw ImageException.unsupported(target, "unsupported VDI image size " + bytes + " (max " + VdiHeader.MAX_DISK_SIZE + ")");
        }
        int blocks = (int) ((bytes + VdiHeader.BLOCK_SIZE - 1) / VdiHeader.BLOCK_SIZE);
        long bmapSize = (4L * blocks + VdiHeader.SECTOR - 1) & ~(long) (VdiHeader.SECTOR - 1);
        ByteBuffer b = ByteBuffer.allocate((int) (VdiHeader.LENGTH + bmapSize)).order(ByteOrder.LITTLE_ENDIAN);
        b.put(TEXT.getBytes(StandardCharsets.US_ASCII));
        b.putInt(0x40, VdiHeader.SIGNATURE);
        b.putInt(0x44, VdiHeader.VERSION_1_1);
        b.putInt(0x48, 0x180);                       // header_size
        b.putInt(0x4c, isStatic ? VdiHeader.TYPE_STATIC : VdiHeader.TYPE_DYNAMIC);
        b.putInt(0x154, VdiHeader.LENGTH);            // offset_bmap
        b.putInt(0x158, (int) (VdiHeader.LENGTH + bmapSize)); // offset_data
        b.putInt(0x168, VdiHeader.SECTOR);
        b.putLong(0x170, bytes);
        b.putInt(0x178, VdiHeader.BLOCK_SIZE);
        b.putInt(0x180, blocks);                      // blocks_in_image
        b.putInt(0x184, isStatic ? blocks : 0);       // blocks_allocated
        putUuid(b, 0x188, UUID.randomUUID());         // uuid_image
        putUuid(b, 0x198, UUID.randomUUID());         // uuid_last_snap
        for (int i = 0; i < blocks; i++) b.putInt(VdiHeader.LENGTH + 4 * i, isStatic ? i : VdiBlockMap.UNALLOCATED);
        VdiHeader h = VdiHeader.parse(b, target);
        try (RandomAccessFile f = new RandomAccessFile(target.toFile(), "rw")) {
            f.setLength(0);
            f.write(b.array());
            if (isStatic) f.setLength(h.blockOffset(blocks));
        } catch (java.io.FileNotFoundException e) {
            throw ImageException.invalid(target, "cannot create: " + e.getMessage());
        }
        return List.of(target);
    }

    /** A UUID as VirtualBox stores it: the first three fields little-endian. */
    private static void putUuid(ByteBuffer b, int at, UUID u) {
        long hi = u.getMostSignificantBits();
        b.putInt(at, (int) (hi >>> 32)).putShort(at + 4, (short) (hi >>> 16)).putShort(at + 6, (short) hi);
        b.order(ByteOrder.BIG_ENDIAN).putLong(at + 8, u.getLeastSignificantBits()).order(ByteOrder.LITTLE_ENDIAN);
    }
}
