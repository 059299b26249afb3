package org.vdiskload.format.vdi;

import org.vdiskload.image.CreateOptions;
import org.vdiskload.image.OpenContext;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

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
 * (the data area reserved as a sparse file, as qemu does). With a backing file (a VDI; qemu cannot),
 * a differencing image as VirtualBox makes one (VD.cpp's VDCreateDiff): type 4, the parent's size and
 * block size, fresh {@code uuidCreate} and {@code uuidModify}, {@code uuidLinkage} the parent's
 * {@code uuidCreate} and {@code uuidParentModify} its {@code uuidModify}, every block unallocated.
 */
final class VdiCreator {
    private static final String TEXT = "<<< QEMU VM Virtual Disk Image >>>\n";

    private VdiCreator() {}

    static List<Path> create(long size, CreateOptions options) throws IOException {
        Path target = options.target();
        boolean isStatic = options.takeBoolean("static", false);
        options.takeChoice("preallocation", "off", "off");
        options.requireAllTaken("vdi");
        VdiHeader parent = null;
        if (options.backingFile() != null) {
            if (isStatic) throw ImageException.invalid(target, "a differencing VDI cannot be static");
            parent = parent(target, options.backingFile(), options.backingFormat());
            if (size != parent.virtualSize()) {
                throw ImageException.invalid(target, "a differencing VDI has its parent's size (" + parent.virtualSize() + " bytes), not " + size);
            }
        }
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
        b.putInt(0x4c, parent != null ? VdiHeader.TYPE_DIFF : isStatic ? VdiHeader.TYPE_STATIC : VdiHeader.TYPE_DYNAMIC);
        b.putInt(0x154, VdiHeader.LENGTH);            // offset_bmap
        b.putInt(0x158, (int) (VdiHeader.LENGTH + bmapSize)); // offset_data
        b.putInt(0x168, VdiHeader.SECTOR);
        b.putLong(0x170, parent != null ? parent.diskSize() : bytes); // a child's size is its parent's, to the byte
        b.putInt(0x178, VdiHeader.BLOCK_SIZE);
        b.putInt(0x180, blocks);                      // blocks_in_image
        b.putInt(0x184, isStatic ? blocks : 0);       // blocks_allocated
        VdiUuid.put(b, 0x188, UUID.randomUUID());     // uuidCreate (qemu: uuid_image)
        VdiUuid.put(b, 0x198, UUID.randomUUID());     // uuidModify (qemu: uuid_last_snap)
        if (parent != null) {
            VdiUuid.put(b, 0x1a8, parent.uuidCreate());   // uuidLinkage
            VdiUuid.put(b, 0x1b8, parent.uuidModify());   // uuidParentModify
        }
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

    /**
     * The header of the parent {@code backingFile} names (a VDI), which must lie where the child will find
     * it by its UUID ({@link VdiParentSearch}): in the child's directory or the one above.
     */
    private static VdiHeader parent(Path target, String backingFile, String backingFormat) throws IOException {
        if (!"vdi".equals(backingFormat)) {
            throw ImageException.invalid(target, "the parent of a differencing VDI must be a VDI, not " + backingFormat);
        }
        Path path = OpenContext.resolve(target, backingFile, "backing file").toAbsolutePath().normalize();
        Path dir = target.toAbsolutePath().normalize().getParent();
        if (path.equals(target.toAbsolutePath().normalize())) throw ImageException.invalid(target, "a differencing VDI cannot be its own parent");
        if (!path.getParent().equals(dir) && !path.getParent().equals(dir.getParent())) {
            throw ImageException.invalid(target, "a differencing VDI finds its parent by UUID in its own directory or the one above"
                    + " (as VirtualBox keeps Snapshots/ in the machine's folder), and " + path + " is in neither");
        }
        try (ImageFile f = ImageFile.open(path, false)) {
            return VdiHeader.parse(f.readStruct(0, VdiHeader.LENGTH, ByteOrder.LITTLE_ENDIAN, "VDI header"), path);
        }
    }
}
