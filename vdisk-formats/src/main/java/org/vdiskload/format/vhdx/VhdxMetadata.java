package org.vdiskload.format.vhdx;

import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/**
 * The system metadata items of a VHDX (MS-VHDX 2.6.2), validated.
 *
 * @param blockSize            payload block size: a power of two from 1 MiB to 256 MiB
 * @param leaveBlocksAllocated LeaveBlocksAllocated (a fully provisioned, "fixed" VHDX)
 * @param hasParent            HasParent: a differencing VHDX
 * @param virtualSize          VirtualDiskSize, a multiple of the logical sector size, at most 64 TiB
 * @param page83               the virtual disk id (SCSI page 83 data)
 * @param logicalSectorSize    512 or 4096
 * @param physicalSectorSize   512 or 4096
 * @param parent               the parent locator of a differencing VHDX, else null
 */
record VhdxMetadata(long blockSize, boolean leaveBlocksAllocated, boolean hasParent, long virtualSize, Guid page83,
                    long logicalSectorSize, long physicalSectorSize, ParentLocator parent) {
    static final Guid FILE_PARAMETERS = Guid.of("CAA16737-FA36-4D43-B3B6-33F0AA44E76B");
    static final Guid VIRTUAL_DISK_SIZE = Guid.of("2FA54224-CD1B-4876-B211-5DBED83BF4B8");
    static final Guid PAGE_83 = Guid.of("BECA12AB-B2E6-4523-93EF-C309E000C746");
    static final Guid LOGICAL_SECTOR_SIZE = Guid.of("8141BF1D-A96F-4709-BA47-F233A8FAAB5F");
    static final Guid PHYSICAL_SECTOR_SIZE = Guid.of("CDA348C7-445D-4471-9CC9-E9885251C556");
    static final Guid PARENT_LOCATOR = Guid.of("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C");
    static final long MAX_VIRTUAL_SIZE = 64L << 40;
    static final long MIN_BLOCK = 1L << 20;
    static final long MAX_BLOCK = 256L << 20;

    /** Reads the table and the items from the metadata region, through the replayed view of the file. */
    static VhdxMetadata read(ReplayedFile view, RegionTable.Region region) throws IOException {
        ImageFile file = view.file();
        long base = region.fileOffset();
        List<MetadataTable.Entry> entries = MetadataTable.parse(file, base, region.length(),
                view.readStruct(base, MetadataTable.SIZE, "metadata table"));
        ByteBuffer params = null, size = null, page83 = null, logical = null, physical = null, locator = null;
        long paramsAt = base, sizeAt = base, logicalAt = base, physicalAt = base, locatorAt = base;
        for (MetadataTable.Entry e : entries) {
            Guid id = e.id();
            boolean known = !e.user() && (id.equals(FILE_PARAMETERS) || id.equals(VIRTUAL_DISK_SIZE) || id.equals(PAGE_83)
                    || id.equals(LOGICAL_SECTOR_SIZE) || id.equals(PHYSICAL_SECTOR_SIZE) || id.equals(PARENT_LOCATOR));
            if (!known) {
                if (e.required()) {
                    throw new ImageException(ImageException.Kind.UNSUPPORTED, file.path(), e.entryAt(), "metadata entry",
                            "unknown required metadata item " + id + " (this reader cannot honour it)");
                }
                continue;
            }
            long at = base + e.offset();
            ByteBuffer item = view.readStruct(at, e.length(), "metadata item " + id);
            if (id.equals(FILE_PARAMETERS)) {
                params = fixed(file, at, item, 8, "file parameters");
                paramsAt = at;
            } else if (id.equals(VIRTUAL_DISK_SIZE)) {
                size = fixed(file, at, item, 8, "virtual disk size");
                sizeAt = at;
            } else if (id.equals(PAGE_83)) {
                page83 = fixed(file, at, item, 16, "page 83 data");
            } else if (id.equals(LOGICAL_SECTOR_SIZE)) {
                logical = fixed(file, at, item, 4, "logical sector size");
                logicalAt = at;
            } else if (id.equals(PHYSICAL_SECTOR_SIZE)) {
                physical = fixed(file, at, item, 4, "physical sector size");
                physicalAt = at;
            } else {
                locator = item;
                locatorAt = at;
            }
        }
        require(file, base, params, "file parameters");
        require(file, base, size, "virtual disk size");
        require(file, base, page83, "page 83 data");
        require(file, base, logical, "logical sector size");
        require(file, base, physical, "physical sector size");

        long blockSize = Integer.toUnsignedLong(params.getInt(0));   // BlockSize
        int flags = params.getInt(4);                                 // LeaveBlocksAllocated (bit 0), HasParent (bit 1)
        if (blockSize < MIN_BLOCK || blockSize > MAX_BLOCK || Long.bitCount(blockSize) != 1) {
            throw ImageException.corrupt(file.path(), paramsAt, "file parameters BlockSize",
                    "block size " + blockSize + " is not a power of two from 1 MiB to 256 MiB");
        }
        long lss = Integer.toUnsignedLong(logical.getInt(0));
        if (lss != 512 && lss != 4096) {
            throw ImageException.corrupt(file.path(), logicalAt, "logical sector size", "logical sector size " + lss + " is not 512 or 4096");
        }
        long pss = Integer.toUnsignedLong(physical.getInt(0));
        if (pss != 512 && pss != 4096) {
            throw ImageException.corrupt(file.path(), physicalAt, "physical sector size", "physical sector size " + pss + " is not 512 or 4096");
        }
        long virtualSize = size.getLong(0);
        if (virtualSize < 0 || virtualSize > MAX_VIRTUAL_SIZE || virtualSize % lss != 0) {
            throw ImageException.corrupt(file.path(), sizeAt, "virtual disk size",
                    "virtual disk size " + virtualSize + " is not a multiple of the " + lss + "-byte sector up to 64 TiB");
        }
        boolean hasParent = (flags & 2) != 0;
        ParentLocator parent = null;
        if (hasParent) {
            if (locator == null) {
                throw ImageException.corrupt(file.path(), paramsAt, "file parameters HasParent", "differencing VHDX has no parent locator");
            }
            parent = ParentLocator.parse(file, locatorAt, locator);
        }
        return new VhdxMetadata(blockSize, (flags & 1) != 0, hasParent, virtualSize, Guid.read(page83, 0), lss, pss, parent);
    }

    private static ByteBuffer fixed(ImageFile file, long at, ByteBuffer item, int length, String name) throws ImageException {
        if (item.limit() != length) {
            throw ImageException.corrupt(file.path(), at, name, name + " item is " + item.limit() + " bytes, not " + length);
        }
        return item.order(ByteOrder.LITTLE_ENDIAN);
    }

    private static void require(ImageFile file, long at, ByteBuffer item, String name) throws ImageException {
        if (item == null) throw ImageException.corrupt(file.path(), at, "metadata table", "required metadata item '" + name + "' is missing");
    }

    /** Offset of the items, right after the 64 KiB table, and of the virtual disk size item among them. */
    static final int ITEMS = MetadataTable.SIZE;
    static final int SIZE_ITEM = ITEMS + 8;
    private static final int LOCATOR_ITEM = ITEMS + 64;

    /**
     * The start of a metadata region holding this disk's system items (not a parent locator): the table,
     * then file parameters, virtual disk size, page 83 data ({@code page83}), logical and physical sector size.
     */
    static ByteBuffer encode(VhdxMetadata m, Guid page83) {
        return encode(m, page83, null);
    }

    /**
     * As {@link #encode(VhdxMetadata, Guid)}, with the parent locator item {@code locator} (a differencing
     * image's) after the others when it is not null.
     */
    static ByteBuffer encode(VhdxMetadata m, Guid page83, ByteBuffer locator) {
        int locatorLength = locator == null ? 0 : locator.remaining();
        ByteBuffer b = ByteBuffer.allocate(LOCATOR_ITEM + locatorLength).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(0, MetadataTable.SIGNATURE);
        Object[][] items = {                               // ItemId, Offset, Length, IsVirtualDisk
            {FILE_PARAMETERS, ITEMS, 8, false},
            {VIRTUAL_DISK_SIZE, SIZE_ITEM, 8, true},
            {PAGE_83, ITEMS + 16, 16, true},
            {LOGICAL_SECTOR_SIZE, ITEMS + 32, 4, true},
            {PHYSICAL_SECTOR_SIZE, ITEMS + 36, 4, true},
            {PARENT_LOCATOR, LOCATOR_ITEM, locatorLength, false},
        };
        int count = locator == null ? items.length - 1 : items.length;
        b.putShort(10, (short) count);                     // EntryCount
        if (locator != null) b.put(LOCATOR_ITEM, locator.duplicate(), 0, locatorLength);
        for (int i = 0; i < count; i++) {
            int e = 32 + 32 * i;
            ((Guid) items[i][0]).write(b, e);
            b.putInt(e + 16, (Integer) items[i][1]);
            b.putInt(e + 20, (Integer) items[i][2]);
            b.putInt(e + 24, ((Boolean) items[i][3] ? 2 : 0) | 4); // IsVirtualDisk, IsRequired
        }
        b.putInt(ITEMS, (int) m.blockSize());
        b.putInt(ITEMS + 4, (m.leaveBlocksAllocated() ? 1 : 0) | (m.hasParent() ? 2 : 0));
        b.putLong(SIZE_ITEM, m.virtualSize());
        page83.write(b, ITEMS + 16);
        b.putInt(ITEMS + 32, (int) m.logicalSectorSize());
        b.putInt(ITEMS + 36, (int) m.physicalSectorSize());
        return b;
    }

    /** Payload blocks per sector bitmap block: (2^23 * logical sector size) / block size. */
    long chunkRatio() {
        return (1L << 23) * logicalSectorSize / blockSize;
    }

    long dataBlocks() {
        return (virtualSize + blockSize - 1) / blockSize;
    }

    /** BAT entries the disk needs (MS-VHDX 2.5): payload entries interleaved with sector bitmap entries. */
    long batEntries() {
        long blocks = dataBlocks();
        long ratio = chunkRatio();
        if (hasParent) return (blocks + ratio - 1) / ratio * (ratio + 1);
        return blocks == 0 ? 0 : blocks + (blocks - 1) / ratio;
    }
}
