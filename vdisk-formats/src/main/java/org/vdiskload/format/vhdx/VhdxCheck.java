package org.vdiskload.format.vhdx;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * The placement checks of qemu-img check on a VHDX: blocks the BAT places past the end of the file, or on
 * the header area or the log, metadata and BAT regions, are corruptions; so are blocks overlapping each other
 * (which qemu 7.2 does not look for). Also finds where the used part of the file ends.
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

    static Result scan(long fileSize, List<Extent> extents) {
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
