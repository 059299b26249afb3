package org.vdiskload.format.vdi;

import org.vdiskload.image.error.ImageException;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.UUID;

/**
 * VirtualBox's VDI header, version 1.1, little-endian: 64 bytes of "&lt;&lt;&lt; ... &gt;&gt;&gt;" text, then the
 * fields below, 512 bytes in all (VirtualBox's VDICore.h, VDIHEADER1PLUS). {@link #parse} applies qemu's
 * block/vdi.c checks (with the same limits: 512-byte sectors, 1 MiB blocks) plus the layout checks qemu
 * leaves out (block map after the header, data after the block map); unlike qemu it reads differencing
 * images (type 4), whose parent is the VDI whose {@code uuidCreate} is this one's {@code uuidLinkage}.
 *
 * @param version         major &lt;&lt; 16 | minor; only 1.1 is read
 * @param headerSize      size of the fields after the pre-header (0x180 for 1.1)
 * @param imageType       1 dynamic, 2 static (qemu reads both the same way), 4 differencing
 * @param offsetBmap      file offset of the block map
 * @param offsetData      file offset of block 0
 * @param sectorSize      must be 512
 * @param diskSize        virtual size as stored
 * @param blockSize       bytes per block; qemu reads only 1 MiB
 * @param blockExtra      bytes of per-block data before each block; must be 0
 * @param blocksInImage   entries in the block map
 * @param blocksAllocated blocks stored in the data area
 * @param uuidCreate      0x188 the image's UUID (qemu: uuid_image), which a child names as its parent
 * @param uuidModify      0x198 changed by VirtualBox when the image is first written after opening (qemu: uuid_last_snap)
 * @param uuidLinkage     0x1a8 a differencing image's parent's {@code uuidCreate} (qemu: uuid_link), else none
 * @param uuidParentModify 0x1b8 the parent's {@code uuidModify} when the child was made (qemu: uuid_parent), else none
 */
public record VdiHeader(int version, int headerSize, int imageType, int imageFlags, long offsetBmap, long offsetData,
                        int sectorSize, long diskSize, int blockSize, int blockExtra, long blocksInImage,
                        long blocksAllocated, UUID uuidCreate, UUID uuidModify, UUID uuidLinkage,
                        UUID uuidParentModify) {

    public static final int LENGTH = 512;
    public static final int SIGNATURE_OFFSET = 0x40;
    public static final int SIGNATURE = 0xbeda107f;
    public static final int VERSION_1_1 = 0x00010001;
    public static final int SECTOR = 512;
    public static final int BLOCK_SIZE = 1 << 20;
    /** qemu's VDI_DISK_SIZE_MAX: the most blocks a 32-bit block map can address, times 1 MiB. */
    public static final long MAX_DISK_SIZE = 0x1fffff8000000L;

    public static final int TYPE_DYNAMIC = 1;
    public static final int TYPE_STATIC = 2;
    public static final int TYPE_DIFF = 4;

    /** Parses and validates the 512-byte header at the start of {@code b}. */
    public static VdiHeader parse(ByteBuffer b, Path path) throws ImageException {
        b = b.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        int signature = b.getInt(0x40);
        if (signature != SIGNATURE) {
            throw ImageException.corrupt(path, 0x40, "signature",
                    "not a VDI image (bad signature " + String.format("%08x", signature) + ")");
        }
        int version = b.getInt(0x44);
        if (version != VERSION_1_1) {
            throw ImageException.unsupported(path, "VDI version " + (version >>> 16) + "." + (version & 0xffff)
                    + " is not supported (only 1.1)");
        }
        VdiHeader h = new VdiHeader(version,
                b.getInt(0x48),                           // header_size
                b.getInt(0x4c),                           // image_type
                b.getInt(0x50),                           // image_flags
                Integer.toUnsignedLong(b.getInt(0x154)),  // offset_bmap
                Integer.toUnsignedLong(b.getInt(0x158)),  // offset_data
                b.getInt(0x168),                          // sector_size
                b.getLong(0x170),                         // disk_size
                b.getInt(0x178),                          // block_size
                b.getInt(0x17c),                          // block_extra
                Integer.toUnsignedLong(b.getInt(0x180)),  // blocks_in_image
                Integer.toUnsignedLong(b.getInt(0x184)),  // blocks_allocated
                VdiUuid.get(b, 0x188),                    // uuidCreate
                VdiUuid.get(b, 0x198),                    // uuidModify
                VdiUuid.get(b, 0x1a8),                    // uuidLinkage
                VdiUuid.get(b, 0x1b8));                   // uuidParentModify
        h.validate(path);
        return h;
    }

    private void validate(Path path) throws ImageException {
        if (offsetBmap % SECTOR != 0) {
            throw ImageException.corrupt(path, 0x154, "offset_bmap", "block map offset " + offsetBmap + " is not aligned to 512");
        }
        if (offsetData % SECTOR != 0) {
            throw ImageException.corrupt(path, 0x158, "offset_data", "data offset " + offsetData + " is not aligned to 512");
        }
        if (sectorSize != SECTOR) {
            throw ImageException.unsupported(path, "VDI sector size " + Integer.toUnsignedString(sectorSize) + " is not supported (only 512)");
        }
        if (blockSize != BLOCK_SIZE) {
            throw ImageException.unsupported(path, "VDI block size " + Integer.toUnsignedString(blockSize)
                    + " is not supported (only 1 MiB, as in qemu)");
        }
        if (blockExtra != 0) {
            // VirtualBox would skip these bytes before each block, qemu would not: refuse rather than pick one.
            throw ImageException.unsupported(path, "VDI images with per-block extra data (block_extra "
                    + Integer.toUnsignedString(blockExtra) + ") are not supported");
        }
        if (diskSize < 0 || diskSize > MAX_DISK_SIZE) {
            throw ImageException.unsupported(path, "VDI disk size " + Long.toUnsignedString(diskSize)
                    + " is larger than the maximum " + MAX_DISK_SIZE);
        }
        if (virtualSize() > blocksInImage * BLOCK_SIZE) {
            throw ImageException.corrupt(path, 0x170, "disk_size", "disk size " + virtualSize()
                    + " is larger than the block map covers (" + blocksInImage + " blocks of 1 MiB)");
        }
        if (isDiff()) {
            if (uuidLinkage.equals(VdiUuid.NONE)) {
                throw ImageException.corrupt(path, 0x1a8, "uuidLinkage", "differencing VDI image without a parent UUID");
            }
        } else if (!uuidLinkage.equals(VdiUuid.NONE) || !uuidParentModify.equals(VdiUuid.NONE)) {
            // Only a differencing image names a parent; what another type would mean by one is unknown.
            throw ImageException.unsupported(path, "VDI images of type " + imageType + " with a link UUID or parent UUID are not"
                    + " supported (only differencing images, type 4, name a parent)");
        }
        if (offsetBmap < LENGTH) {
            throw ImageException.corrupt(path, 0x154, "offset_bmap", "block map at " + offsetBmap + " overlaps the header");
        }
        // A map in a data slot past the first is what an interrupted resize leaves (see VdiResize).
        boolean inDataSlot = offsetBmap >= offsetData + BLOCK_SIZE && (offsetBmap - offsetData) % BLOCK_SIZE == 0;
        if (!inDataSlot && offsetData < bmapEnd()) {
            throw ImageException.corrupt(path, 0x158, "offset_data", "data area at " + offsetData
                    + " overlaps the block map (" + offsetBmap + ".." + bmapEnd() + ")");
        }
        if (blocksAllocated > blocksInImage) {
            throw ImageException.corrupt(path, 0x184, "blocks_allocated", blocksAllocated + " blocks allocated but the image has only "
                    + blocksInImage);
        }
    }

    /** This header with {@code uuidModify} replaced. */
    public VdiHeader withUuidModify(UUID u) {
        return new VdiHeader(version, headerSize, imageType, imageFlags, offsetBmap, offsetData, sectorSize, diskSize, blockSize,
                blockExtra, blocksInImage, blocksAllocated, uuidCreate, u, uuidLinkage, uuidParentModify);
    }

    /** A differencing image: blocks it does not hold read from its parent. */
    public boolean isDiff() {
        return imageType == TYPE_DIFF;
    }

    /** The virtual size: qemu rounds an odd stored size up to whole sectors (VBoxManage writes such sizes). */
    public long virtualSize() {
        return (diskSize + SECTOR - 1) & ~(long) (SECTOR - 1);
    }

    /** Blocks the virtual disk uses (the block map may have more). */
    public int blocksUsed() {
        return (int) ((virtualSize() + BLOCK_SIZE - 1) / BLOCK_SIZE);
    }

    /** End of the block map: 4 bytes per block. */
    public long bmapEnd() {
        return offsetBmap + 4 * blocksInImage;
    }

    /**
     * Whether data slot {@code index} overlaps the header or the block map (a map moved into data slots by
     * an interrupted resize lies there): no block may live in such a slot.
     */
    public boolean slotHoldsMetadata(long index) {
        long at = blockOffset(index);
        return at < LENGTH || (at < bmapEnd() && at + BLOCK_SIZE > offsetBmap);
    }

    /** File offset of data block {@code index}. */
    public long blockOffset(long index) {
        return offsetData + index * BLOCK_SIZE;
    }
}
