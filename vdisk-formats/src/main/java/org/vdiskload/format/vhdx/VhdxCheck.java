package org.vdiskload.format.vhdx;

import org.vdiskload.check.CheckReport;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * qemu-img check on a VHDX: a log needing replay stops a read-only check (qemu cannot open such an image
 * read-only) and counts as one fixed corruption once a writable open replayed it; blocks the BAT places past
 * the end of the file, or on the header area or the log, metadata and BAT regions, are corruptions; so are
 * blocks overlapping each other (which qemu 7.2 does not look for). Leaks are not counted, as in qemu: space
 * past the last block in use is only mentioned.
 */
final class VhdxCheck {
    /**
     * A used stretch of the file.
     *
     * @param end     where it ends for overlaps and the used end (a whole block)
     * @param needEnd how far the file must reach for it (the last block of a disk may be cut short), or -1 for
     *                space that is not read (an UNMAPPED block keeping its space)
     */
    record Extent(long start, long end, long needEnd, String what) {}

    /** Corruption messages, and where the used part of the file ends. */
    record Result(List<String> corruptions, long usedEnd) {}

    private VhdxCheck() {}

    /**
     * The report for an image whose BAT is {@code bat}.
     *
     * @param replayedOnOpen log entries replayed into the file when it was opened for writing
     * @param pendingEntries log entries that still need replay (read-only: replayed in memory only)
     */
    static CheckReport check(long fileSize, VhdxHeader header, RegionTable regions, VhdxMetadata meta, Bat bat,
                             int replayedOnOpen, int pendingEntries) throws IOException {
        List<String> messages = new ArrayList<>();
        long checkErrors = 0;
        long corruptionsFixed = 0;
        if (replayedOnOpen > 0) {
            corruptionsFixed = 1; // as qemu counts a replay on open
            messages.add("Repaired: replayed " + replayedOnOpen + " log entries into the file");
        }
        if (pendingEntries > 0) {
            checkErrors = 1; // qemu cannot even open it read-only
            messages.add("ERROR the log holds " + pendingEntries + " entries that need replay: run check -r all");
        }
        List<Extent> extents = new ArrayList<>();
        RegionTable.Region log = new RegionTable.Region(header.logOffset(), header.logLength());
        extents.add(new Extent(0, VhdxHeader.MB, VhdxHeader.MB, "the header area"));
        extents.add(new Extent(log.fileOffset(), log.end(), log.end(), "the log"));
        extents.add(new Extent(regions.metadata().fileOffset(), regions.metadata().end(), regions.metadata().end(), "the metadata region"));
        extents.add(new Extent(regions.bat().fileOffset(), regions.bat().end(), regions.bat().end(), "the BAT region"));
        List<String> corruptions = new ArrayList<>();
        long bs = meta.blockSize();
        long allocated = 0;
        for (long block = 0; block < meta.dataBlocks(); block++) {
            BatEntry e = bat.payload(block);
            String what = "payload block " + block + " (BAT entry " + bat.payloadIndex(block) + ")";
            switch (e.state()) {
                case BatEntry.FULLY_PRESENT, BatEntry.PARTIALLY_PRESENT -> {
                    if (e.state() == BatEntry.PARTIALLY_PRESENT && !meta.hasParent()) {
                        corruptions.add(what + " is PARTIALLY_PRESENT in an image without a parent");
                    }
                    long need = Math.min(bs, meta.virtualSize() - block * bs);
                    extents.add(new Extent(e.fileOffset(), e.fileOffset() + bs, e.fileOffset() + need, what));
                    allocated++;
                }
                case BatEntry.UNMAPPED -> {
                    if (e.fileOffset() != 0) extents.add(new Extent(e.fileOffset(), e.fileOffset() + bs, -1, what));
                }
                case BatEntry.NOT_PRESENT, BatEntry.UNDEFINED, BatEntry.ZERO -> { }
                default -> corruptions.add(what + " has reserved state " + e.state());
            }
        }
        if (meta.hasParent()) {
            for (long block = 0; block < meta.dataBlocks(); block += meta.chunkRatio()) {
                BatEntry e = bat.bitmap(block);
                if (e.state() == BatEntry.BITMAP_PRESENT) {
                    extents.add(new Extent(e.fileOffset(), e.fileOffset() + VhdxHeader.MB, e.fileOffset() + VhdxHeader.MB,
                            "sector bitmap block (BAT entry " + bat.bitmapIndex(block) + ")"));
                }
            }
        }
        Result scan = scan(fileSize, extents);
        corruptions.addAll(scan.corruptions());
        for (String c : corruptions) messages.add("ERROR " + c);
        if (fileSize > scan.usedEnd()) {
            // Not a leak to qemu-img check, which counts none for VHDX: qemu's own images end past their last
            // block (its create sizes the file generously), and a block written just before a crash looks the same.
            messages.add((fileSize - scan.usedEnd()) + " bytes past the last block in use (at " + scan.usedEnd() + ") are unused");
        }
        return new CheckReport("vhdx", corruptions.size(), 0, checkErrors, corruptionsFixed, 0, List.copyOf(messages),
                null, meta.dataBlocks(), allocated, null, null);
    }

    private static Result scan(long fileSize, List<Extent> extents) {
        List<String> corruptions = new ArrayList<>();
        List<Extent> used = new ArrayList<>();
        for (Extent e : extents) {
            if (e.needEnd() < 0) {
                if (e.end() <= fileSize) used.add(e);
                continue;
            }
            if (e.start() >= fileSize) {
                corruptions.add(e.what() + " starts at " + e.start() + ", past the end of the file (" + fileSize + " bytes)");
            } else if (e.needEnd() > fileSize) {
                corruptions.add(e.what() + " ends at " + e.needEnd() + ", past the end of the file (" + fileSize + " bytes)");
            }
            used.add(e);
        }
        used.sort(Comparator.comparingLong(Extent::start));
        Extent reach = null;
        for (Extent e : used) {
            if (reach != null && e.start() < reach.end()) {
                corruptions.add(e.what() + " at " + e.start() + " overlaps " + reach.what() + " at " + reach.start());
            }
            if (reach == null || e.end() > reach.end()) reach = e;
        }
        return new Result(corruptions, reach == null ? 0 : reach.end());
    }
}
