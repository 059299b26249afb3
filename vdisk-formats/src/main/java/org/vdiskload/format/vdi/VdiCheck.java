package org.vdiskload.format.vdi;

import org.vdiskload.check.CheckReport;
import org.vdiskload.check.RepairMode;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.IntBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * qemu-img check for VDI (qemu's vdi_co_check): every block map entry, including those past the
 * virtual disk, must name a data block below {@code blocks_in_image} used by no other entry, and the
 * entries must add up to {@code blocks_allocated}. One difference: more blocks allocated than
 * referenced is what a crash between a new block and its map entry leaves (see {@link VdiWriter}),
 * so it is counted as leaked blocks (qemu calls it a corruption and cannot repair it); {@code -r}
 * gives them back by moving the last blocks into the gaps and lowering {@code blocks_allocated}.
 */
final class VdiCheck {
    private static final int BLOCK = VdiHeader.BLOCK_SIZE;
    private static final int CHUNK_ENTRIES = 1 << 16;

    private final ImageFile file;
    private final VdiHeader header;
    private final VdiBlockMap map;

    VdiCheck(ImageFile file, VdiHeader header, VdiBlockMap map) {
        this.file = file;
        this.header = header;
        this.map = map;
    }

    /** @param allocated the current {@code blocks_allocated}; @param writer null when open read-only */
    CheckReport run(long allocated, VdiWriter writer, RepairMode mode) throws IOException {
        int blocks = (int) header.blocksInImage(); // the whole map lies in the file (checked at open)
        int[] entries = readMap(blocks);
        int[] owner = new int[blocks];
        Arrays.fill(owner, -1);
        List<String> messages = new ArrayList<>();
        long corruptions = 0;
        long referenced = 0;
        for (int b = 0; b < blocks; b++) {
            int e = entries[b];
            if (!VdiBlockMap.isData(e)) continue;
            long index = Integer.toUnsignedLong(e);
            if (index >= blocks) {
                messages.add("ERROR: block index " + b + " too large, is " + index);
                corruptions++;
                continue;
            }
            referenced++;
            if (owner[(int) index] >= 0) {
                messages.add("ERROR: block index " + owner[(int) index] + " also used by " + b);
                corruptions++;
            } else {
                owner[(int) index] = b;
            }
            if (index >= allocated) {
                messages.add("ERROR: block " + b + " uses data block " + index + " but only " + allocated + " are allocated");
                corruptions++;
            }
        }
        long leaks = 0;
        if (referenced > allocated) {
            messages.add("ERROR: allocated blocks mismatch, is " + referenced + ", should be " + allocated);
            corruptions++;
        } else if (referenced < allocated) {
            leaks = allocated - referenced;
            messages.add("Leaked: " + leaks + " of " + allocated + " allocated blocks are not in the block map");
        }
        long fixed = 0;
        if (leaks > 0 && corruptions == 0 && mode != RepairMode.NONE && writer != null) {
            compact(owner, (int) allocated, (int) referenced);
            writer.repaired(referenced);
            messages.add("Repaired: blocks_allocated is now " + referenced);
            fixed = leaks;
            leaks = 0;
        }
        return new CheckReport("vdi", corruptions, leaks, 0, 0, fixed, messages, null, null, null, null, null);
    }

    private int[] readMap(int blocks) throws IOException {
        int[] entries = new int[blocks];
        for (int i = 0; i < blocks; i += CHUNK_ENTRIES) {
            int n = Math.min(CHUNK_ENTRIES, blocks - i);
            IntBuffer b = file.readStruct(header.offsetBmap() + 4L * i, 4L * n, ByteOrder.LITTLE_ENDIAN, "block map").asIntBuffer();
            b.get(entries, i, n);
        }
        return entries;
    }

    /**
     * Moves the highest used data blocks into the unused slots below them, then lowers
     * {@code blocks_allocated} to {@code used}. Each move copies the block, makes it durable and only
     * then points the map entry at the copy, so an interrupted repair leaves at most leaks.
     */
    private void compact(int[] owner, int allocated, int used) throws IOException {
        ByteBuffer data = ByteBuffer.allocate(BLOCK);
        int free = 0;
        for (int hi = allocated - 1; hi >= used; hi--) {
            if (owner[hi] < 0) continue;
            while (owner[free] >= 0) free++;
            data.clear();
            file.readPadded(data, header.blockOffset(hi));
            file.writeFully(data.flip(), header.blockOffset(free));
            file.channel().force(false);
            int block = owner[hi];
            writeInt(header.offsetBmap() + 4L * block, free);
            if (block < header.blocksUsed()) map.set(block, free);
            owner[free] = block;
            owner[hi] = -1;
        }
        file.channel().force(false);
        writeInt(0x184, used);
        file.channel().force(false);
        long end = header.blockOffset(used);
        if (file.size() > end) file.truncate(end);
    }

    private void writeInt(long at, int value) throws IOException {
        file.writeFully(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(0, value), at);
    }
}
