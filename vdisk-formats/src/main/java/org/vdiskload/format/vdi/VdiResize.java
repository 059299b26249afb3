package org.vdiskload.format.vdi;

import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.IntBuffer;
import java.nio.file.Path;

/**
 * Resizing a VDI image (qemu's vdi driver cannot). The new block map entries are written where the
 * header does not count them yet, made durable, and only then does one 512-byte header write (disk
 * size, block count, and where needed offset_data / blocks_allocated) switch the image over; a crash
 * before it leaves the old image intact.
 * <ul>
 * <li>Dynamic images grow into the padding of the block map; with no data block allocated yet the
 *     map also grows over the empty data area (offset_data moves). Moving allocated blocks to make
 *     room would renumber every block, which one atomic write cannot cover: refused.</li>
 * <li>Static images grow by appending allocated blocks, within the padding of the map.</li>
 * <li>Shrinking cuts only blocks that hold no data; the file keeps its size.</li>
 * </ul>
 */
final class VdiResize {
    private static final int BLOCK = VdiHeader.BLOCK_SIZE;
    private static final int SECTOR = VdiHeader.SECTOR;

    private final ImageFile file;
    private final Path path;
    private final ByteBuffer head;
    private final VdiHeader header;

    private VdiResize(ImageFile file) throws IOException {
        this.file = file;
        this.path = file.path();
        // The header on disk is current: the writer stores blocks_allocated with every allocation.
        this.head = file.readStruct(0, VdiHeader.LENGTH, ByteOrder.LITTLE_ENDIAN, "VDI header");
        this.header = VdiHeader.parse(head, path);
    }

    /** Resizes the image in {@code file} (open read-write, not being written meanwhile). */
    static void resize(ImageFile file, long newSize, boolean allowShrink) throws IOException {
        new VdiResize(file).to(newSize, allowShrink);
    }

    private void to(long newSize, boolean allowShrink) throws IOException {
        if (newSize < 0) throw ImageException.invalid(path, "invalid image size " + newSize);
        long bytes = Math.addExact(newSize, SECTOR - 1) & ~(long) (SECTOR - 1);
        if (bytes > VdiHeader.MAX_DISK_SIZE) {
            throw ImageException.unsupported(path, "unsupported VDI image size " + bytes + " (max " + VdiHeader.MAX_DISK_SIZE + ")");
        }
        long oldSize = header.virtualSize();
        if (bytes == oldSize) return;
        if (bytes < oldSize && !allowShrink) {
            throw ImageException.invalid(path, "shrinking from " + oldSize + " to " + bytes
                    + " bytes discards data; use --shrink if that is intended");
        }
        int[] entries = readMap();
        if (bytes < oldSize) shrink(bytes, entries);
        else grow(bytes, entries);
    }

    /** The whole block map (it lies in the file: checked when the image was opened). */
    private int[] readMap() throws IOException {
        int n = (int) header.blocksInImage();
        IntBuffer b = file.readStruct(header.offsetBmap(), 4L * n, ByteOrder.LITTLE_ENDIAN, "block map").asIntBuffer();
        int[] entries = new int[n];
        b.get(entries);
        return entries;
    }

    private void shrink(long bytes, int[] entries) throws IOException {
        int used = blocks(bytes);
        for (int b = used; b < entries.length; b++) {
            if (VdiBlockMap.isData(entries[b])) {
                throw ImageException.invalid(path, "cannot shrink to " + bytes + " bytes: block " + b + " (guest offset "
                        + (long) b * BLOCK + ") holds data; only unallocated blocks can be cut off");
            }
        }
        zeroTail(bytes, entries);
        commit(bytes, used, header.offsetData(), header.blocksAllocated());
    }

    private void grow(long bytes, int[] entries) throws IOException {
        int oldUsed = header.blocksUsed();
        int used = blocks(bytes);
        for (int b = oldUsed; b < Math.min(used, entries.length); b++) {
            // Map entries past the disk size (VirtualBox may keep some) would come into view.
            if (VdiBlockMap.isData(entries[b])) {
                throw ImageException.unsupported(path, "cannot grow over block map entry " + b
                        + ": it lies past the disk size but points to a data block");
            }
        }
        zeroTail(header.virtualSize(), entries);
        long inImage = Math.max(header.blocksInImage(), used);
        long room = (header.offsetData() - header.offsetBmap()) / 4;
        boolean isStatic = header.imageType() == VdiHeader.TYPE_STATIC;
        long allocated = header.blocksAllocated();
        long offsetData = header.offsetData();
        ByteBuffer added = ByteBuffer.allocate(4 * (used - oldUsed)).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < used - oldUsed; i++) added.putInt(4 * i, isStatic ? (int) (allocated + i) : VdiBlockMap.UNALLOCATED);
        if (inImage > room) {
            if (isStatic || allocated > 0) {
                throw ImageException.unsupported(path, "cannot grow to " + bytes + " bytes: the block map has room for "
                        + room + " blocks (" + room + " MiB), and making more room would move allocated data blocks,"
                        + " which is not supported; convert the image into a new one of the size wanted instead");
            }
            // Nothing is stored in the data area yet: the map grows over it.
            offsetData = Math.addExact(header.offsetBmap() + 4 * inImage, SECTOR - 1) & ~(long) (SECTOR - 1);
            // The padding after the entries, as qemu-img create leaves it.
            long padFrom = header.offsetBmap() + 4 * inImage;
            file.writeFully(ByteBuffer.allocate((int) (offsetData - padFrom)), padFrom);
        }
        if (isStatic) {
            allocated += used - oldUsed;
            // The new blocks, reserved sparse as qemu-img create does; unreferenced until the header says so.
            long start = offsetData + header.blocksAllocated() * BLOCK;
            long end = offsetData + allocated * BLOCK;
            long size = file.size();
            for (long at = start; at < Math.min(size, end); at += BLOCK) { // stale bytes past the old last block
                file.writeFully(ByteBuffer.allocate((int) Math.min(BLOCK, Math.min(size, end) - at)), at);
            }
            if (size < end) file.writeFully(ByteBuffer.allocate(1), end - 1);
        }
        file.writeFully(added, header.offsetBmap() + 4L * oldUsed);
        commit(bytes, inImage, offsetData, allocated);
    }

    /**
     * Zeros the part of the last block past {@code size} when that block is allocated, so growing
     * later shows zeros there. Bytes past the end of the file already read as zeros.
     */
    private void zeroTail(long size, int[] entries) throws IOException {
        int last = (int) (size / BLOCK);
        int inBlock = (int) (size % BLOCK);
        if (inBlock == 0 || last >= entries.length || !VdiBlockMap.isData(entries[last])) return;
        long at = header.blockOffset(Integer.toUnsignedLong(entries[last])) + inBlock;
        long end = Math.min(at - inBlock + BLOCK, file.size());
        if (end > at) file.writeFully(ByteBuffer.allocate((int) (end - at)), at);
    }

    /** Makes what was written durable, then switches the header over in one write, and makes that durable. */
    private void commit(long bytes, long blocksInImage, long offsetData, long blocksAllocated) throws IOException {
        file.channel().force(false);
        ByteBuffer b = head.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(0x158, (int) offsetData);
        b.putLong(0x170, bytes);
        b.putInt(0x180, (int) blocksInImage);
        b.putInt(0x184, (int) blocksAllocated);
        VdiHeader.parse(b, path); // what we write must be a valid header
        file.writeFully(b.clear(), 0);
        file.channel().force(false);
    }

    private static int blocks(long bytes) {
        return (int) ((bytes + BLOCK - 1) / BLOCK);
    }
}
