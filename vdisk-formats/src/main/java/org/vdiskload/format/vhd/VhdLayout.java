package org.vdiskload.format.vhd;

import java.util.ArrayList;
import java.util.List;

/**
 * Where the structures of a dynamic or differencing disk lie in its file: the footer copy, the
 * dynamic header, the BAT, parent locator data and the blocks. The tail footer belongs right after
 * the last of them; that is where the next block is allocated (qemu's free_data_block_offset).
 */
final class VhdLayout {
    /** One structure: {@code [start, end)} of the file. */
    record Region(String name, long start, long end) {}

    private VhdLayout() {}

    /** The metadata regions (not the blocks); locator data only where it lies inside {@code fileSize}. */
    static List<Region> metadata(VhdDynamicHeader header, VhdBat bat, long fileSize) {
        List<Region> out = besideTheBat(header, fileSize);
        out.add(2, new Region("BAT", bat.tableOffset(), roundUp(bat.tableOffset() + bat.tableLength())));
        return out;
    }

    /** The metadata regions but the BAT: no BAT entry lying on one of them is written. */
    static List<Region> besideTheBat(VhdDynamicHeader header, long fileSize) {
        List<Region> out = new ArrayList<>();
        out.add(new Region("footer copy", 0, VhdFooter.SIZE));
        out.add(new Region("dynamic header", header.at(), header.at() + VhdDynamicHeader.SIZE));
        for (VhdParentLocator loc : header.locators()) {
            long len = reserved(loc);
            if (loc.dataOffset() < 0 || loc.dataOffset() > fileSize || len > fileSize - loc.dataOffset()) continue;
            out.add(new Region("parent locator " + loc.index() + " (" + loc.platform() + ") data",
                    loc.dataOffset(), loc.dataOffset() + len));
        }
        return out;
    }

    /**
     * The space a locator reserves. The specification counts its data space in sectors, Hyper-V
     * and most writers in bytes: a space smaller than the data length can only be sectors.
     */
    static long reserved(VhdParentLocator loc) {
        long space = loc.dataSpace() >= loc.dataLength() ? loc.dataSpace() : loc.dataSpace() * 512;
        return Math.max(space, roundUp(loc.dataLength()));
    }

    /** The regions of the allocated blocks, bitmap and data, in BAT order. */
    static List<Region> blocks(VhdBat bat) {
        List<Region> out = new ArrayList<>();
        for (int i = 0; i < bat.entryCount(); i++) {
            long at = bat.bitmapOffset(i);
            if (at >= 0) out.add(new Region("block " + i, at, at + bat.blockSpan()));
        }
        return out;
    }

    /**
     * The allocated blocks that overlap a metadata structure or another block, each with what it overlaps:
     * neither served as data nor written (the check reports them as corruption).
     */
    static java.util.Map<Long, String> overlappingBlocks(VhdDynamicHeader header, VhdBat bat, long fileSize) {
        List<Region> metadata = metadata(header, bat, fileSize);
        List<long[]> blocks = new ArrayList<>();
        for (int i = 0; i < bat.entryCount(); i++) {
            long at = bat.bitmapOffset(i);
            if (at >= 0) blocks.add(new long[] {at, i});
        }
        blocks.sort(java.util.Comparator.comparingLong(b -> b[0]));
        java.util.Map<Long, String> out = new java.util.HashMap<>();
        for (int k = 0; k < blocks.size(); k++) {
            long start = blocks.get(k)[0], end = start + bat.blockSpan();
            for (Region m : metadata) {
                if (m.start() < end && m.end() > start) out.putIfAbsent(blocks.get(k)[1], "the " + m.name() + " at offset " + m.start());
            }
            if (k + 1 < blocks.size() && blocks.get(k + 1)[0] < end) {
                out.putIfAbsent(blocks.get(k)[1], "block " + blocks.get(k + 1)[1] + " at offset " + blocks.get(k + 1)[0]);
                out.putIfAbsent(blocks.get(k + 1)[1], "block " + blocks.get(k)[1] + " at offset " + start);
            }
        }
        return out;
    }

    /** Just past the last structure: where the tail footer belongs. */
    static long end(VhdDynamicHeader header, VhdBat bat, long fileSize) {
        long end = 0;
        for (Region r : metadata(header, bat, fileSize)) end = Math.max(end, r.end);
        for (int i = 0; i < bat.entryCount(); i++) {
            long at = bat.bitmapOffset(i);
            if (at >= 0) end = Math.max(end, at + bat.blockSpan());
        }
        return roundUp(end);
    }

    static long roundUp(long bytes) {
        return (bytes + 511) & ~511L;
    }
}
