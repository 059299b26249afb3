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
 *     map grows over the empty data area (offset_data moves). Otherwise the map moves into the first
 *     K data slots (see {@link #growMovingTheMap}).</li>
 * <li>Static images grow by appending allocated blocks, within the padding of the map only.</li>
 * <li>Shrinking cuts only blocks that hold no data; the file keeps its size.</li>
 * </ul>
 */
final class VdiResize {
    private static final int BLOCK = VdiHeader.BLOCK_SIZE;
    private static final int SECTOR = VdiHeader.SECTOR;
    /** offset_bmap and offset_data are u32. */
    private static final long MAX_OFFSET = 0xffffffffL;

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
        VdiResize r = new VdiResize(file);
        if (r.header.offsetBmap() >= r.header.offsetData()) r = finishInterrupted(r);
        r.to(newSize, allowShrink);
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
        commit(bytes, used, header.offsetBmap(), header.offsetData(), header.blocksAllocated());
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
            if (isStatic) {
                throw ImageException.unsupported(path, "cannot grow a static VDI image to " + bytes + " bytes: its block map has room for "
                        + room + " blocks (" + room + " MiB) and static images are not rearranged to make more;"
                        + " convert the image into a new one of the size wanted instead");
            }
            if (allocated > 0) {
                growMovingTheMap(bytes, entries, inImage);
                return;
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
        commit(bytes, inImage, header.offsetBmap(), offsetData, allocated);
    }

    /**
     * Grows the map past its room by moving it into the first K data slots, which the data area then
     * starts after: every block keeps its place in the file and its index drops by K. qemu-img check
     * calls any slot below {@code blocks_allocated} that no map entry names a corruption, so a block
     * copied out of those K slots must never leave its old slot unnamed. Hence two header switches:
     * <ol>
     * <li>The blocks in the K slots are copied to free slots past {@code blocks_allocated}, where
     *     nothing looks, and a temporary map is written past them: the old map with the moved entries
     *     pointing at the copies, plus "phantom" entries past the disk size naming the K slots and the
     *     temporary map's own slots. One header write switches to it; the disk keeps its old size.</li>
     * <li>Now only phantoms name the K slots, and nothing reads them: the new map is written there,
     *     and one header write switches {@code offset_bmap}, {@code offset_data}, the size and the
     *     counts over. The temporary map's slots fall past {@code blocks_allocated}.</li>
     * </ol>
     * Each write is durable before the header that makes it reachable, so a crash leaves the old image,
     * the temporary one (the old disk, which {@link #finishInterrupted} completes), or the new one. The
     * header's offsets are 32-bit: a temporary map that would lie past 4 GiB is not possible, and
     * {@link #moveInPlace} is used instead.
     */
    private void growMovingTheMap(long bytes, int[] entries, long inImage) throws IOException {
        long mapBytes = Math.addExact(4 * inImage, SECTOR - 1) & ~(long) (SECTOR - 1);
        int k = (int) ((mapBytes + BLOCK - 1) / BLOCK);
        long allocated = header.blocksAllocated();
        long next = Math.max(allocated, k); // first slot past both the K slots and every allocated block
        long moved = 0;
        for (int e : entries) if (VdiBlockMap.isData(e) && Integer.toUnsignedLong(e) < k) moved++;
        long tempSlot = next + moved;
        int[] temp = withPhantoms(entries, k, tempSlot, 1);
        int tempSlots = slots(temp.length);
        if (tempSlots > 1) temp = withPhantoms(entries, k, tempSlot, tempSlots);
        if (tempSlots != slots(temp.length) || header.blockOffset(tempSlot + tempSlots) > MAX_OFFSET) {
            moveInPlace(bytes, entries, inImage, k);
            return;
        }
        ByteBuffer block = ByteBuffer.allocate(BLOCK);
        for (int b = 0; b < entries.length; b++) {
            if (!VdiBlockMap.isData(entries[b]) || Integer.toUnsignedLong(entries[b]) >= k) continue;
            file.readPadded(block.clear(), header.blockOffset(Integer.toUnsignedLong(entries[b])));
            file.writeFully(block.flip(), header.blockOffset(next));
            entries[b] = (int) next;
            if (b < temp.length) temp[b] = (int) next;
            next++;
        }
        writeMap(temp, header.blockOffset(tempSlot));
        commit(header.diskSize(), temp.length, header.blockOffset(tempSlot), header.offsetData(), tempSlot + tempSlots);
        switchToTheMovedMap(bytes, entries, inImage, k, tempSlot);
    }

    /**
     * The second switch of {@link #growMovingTheMap}: the new map into the first {@code k} slots, then
     * the header naming it, with the data area starting after it; the slots from {@code tempSlot} on
     * (the temporary map) are cut off the file.
     */
    private void switchToTheMovedMap(long bytes, int[] entries, long inImage, int k, long tempSlot) throws IOException {
        int[] map = new int[(int) inImage];
        for (int b = 0; b < inImage; b++) {
            int e = b < header.blocksUsed() ? entries[b] : VdiBlockMap.UNALLOCATED; // past the old size: checked free
            map[b] = VdiBlockMap.isData(e) ? e - k : e;
        }
        writeMap(map, header.offsetData());
        commit(bytes, inImage, header.offsetData(), header.offsetData() + (long) k * BLOCK, tempSlot - k);
        if (file.size() > header.blockOffset(tempSlot)) file.channel().truncate(header.blockOffset(tempSlot));
    }

    /**
     * The temporary map: {@code entries} with phantom entries past the disk size naming slots
     * {@code 0..k-1} and the {@code tempSlots} slots from {@code tempSlot}, in entries that hold no data.
     */
    private int[] withPhantoms(int[] entries, int k, long tempSlot, int tempSlots) {
        int[] temp = java.util.Arrays.copyOf(entries, Math.max(entries.length, header.blocksUsed() + k + tempSlots));
        for (int i = entries.length; i < temp.length; i++) temp[i] = VdiBlockMap.UNALLOCATED;
        int at = header.blocksUsed();
        for (long slot = 0; slot < k + tempSlots; slot++) {
            while (VdiBlockMap.isData(temp[at])) at++; // past the disk size only entries left by others hold data
            temp[at++] = (int) (slot < k ? slot : tempSlot + slot - k);
        }
        return temp;
    }

    /**
     * Where a temporary map cannot lie below 4 GiB: each block in the first K slots is copied to a free
     * slot at the end and made durable before its map entry points at the copy ({@code blocks_allocated}
     * raised first, as {@link VdiWriter} does). A crash leaves the old image with unreferenced blocks,
     * which this library's check counts as leaks and qemu-img check, stricter, as a count mismatch.
     */
    private void moveInPlace(long bytes, int[] entries, long inImage, int k) throws IOException {
        long allocated = header.blocksAllocated();
        long next = Math.max(allocated, k);
        ByteBuffer block = ByteBuffer.allocate(BLOCK);
        for (int b = 0; b < entries.length; b++) {
            if (!VdiBlockMap.isData(entries[b]) || Integer.toUnsignedLong(entries[b]) >= k) continue;
            file.readPadded(block.clear(), header.blockOffset(Integer.toUnsignedLong(entries[b])));
            file.writeFully(block.flip(), header.blockOffset(next));
            file.channel().force(false);
            if (next + 1 > allocated) {
                allocated = next + 1;
                writeInt(0x184, (int) allocated);
            }
            writeInt(header.offsetBmap() + 4L * b, (int) next);
            file.channel().force(false);
            entries[b] = (int) next++;
        }
        switchToTheMovedMap(bytes, entries, inImage, k, Math.max(allocated, k));
    }

    /**
     * Completes a {@link #growMovingTheMap} interrupted between its two switches (the map lies past the
     * start of the data area): the phantom entries name slots {@code 0..k-1} and the temporary map's; the
     * new map goes into the first ones at the current size, as the second switch would have done.
     */
    private static VdiResize finishInterrupted(VdiResize r) throws IOException {
        VdiHeader h = r.header;
        long tempSlot = (h.offsetBmap() - h.offsetData()) / BLOCK; // a whole slot: VdiHeader checked
        int[] entries = r.readMap();
        int k = 0;
        for (int b = h.blocksUsed(); b < entries.length; b++) {
            if (VdiBlockMap.isData(entries[b]) && Integer.toUnsignedLong(entries[b]) < tempSlot) k++;
        }
        for (int b = 0; b < h.blocksUsed(); b++) {
            if (VdiBlockMap.isData(entries[b]) && Integer.toUnsignedLong(entries[b]) < k) {
                throw ImageException.unsupported(r.path, "block " + b + " lies in a data slot that an interrupted resize "
                        + "reserved for the block map; not resized");
            }
        }
        r.switchToTheMovedMap(h.diskSize(), entries, Math.max(h.blocksUsed(), 1), k, tempSlot);
        return new VdiResize(r.file);
    }

    private void writeMap(int[] entries, long at) throws IOException {
        int bytes = (int) (Math.addExact(4L * entries.length, SECTOR - 1) & ~(long) (SECTOR - 1));
        ByteBuffer map = ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
        map.asIntBuffer().put(entries);
        file.writeFully(map, at);
    }

    /** Data slots a map of {@code entries} entries fills. */
    private static int slots(long entries) {
        return (int) (((Math.addExact(4 * entries, SECTOR - 1) & ~(long) (SECTOR - 1)) + BLOCK - 1) / BLOCK);
    }

    private void writeInt(long at, int value) throws IOException {
        file.writeFully(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(0, value), at);
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
    private void commit(long bytes, long blocksInImage, long offsetBmap, long offsetData, long blocksAllocated) throws IOException {
        file.channel().force(false);
        ByteBuffer b = head.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(0x154, (int) offsetBmap);        b.putInt(0x158, (int) offsetData);
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
