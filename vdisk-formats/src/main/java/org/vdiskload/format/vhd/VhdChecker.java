package org.vdiskload.format.vhd;

import org.vdiskload.check.CheckReport;
import org.vdiskload.check.RepairMode;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Checks the structure of a dynamic or differencing disk (qemu-img check has no checks for vpc):
 * blocks and metadata must not overlap (corruption: two owners of the same bytes); the file must
 * end with a copy of the footer at offset 0 right after the last structure. Space before that
 * footer that nothing uses, and a missing or stale tail footer, are what an interrupted allocation
 * leaves: leaks, repaired (with -r leaks or all) by writing the footer copy right after the last
 * structure and cutting the file there. Open already verified what reading relies on (checksums,
 * BAT entries inside the file).
 */
final class VhdChecker {
    private VhdChecker() {}

    /** The checked layer's parts; {@code writer} is null when the image is open read-only. */
    static CheckReport check(ImageFile file, VhdDynamicHeader header, VhdBat bat, VhdWriter writer, RepairMode mode)
            throws IOException {
        long fileSize = file.size();
        List<String> messages = new ArrayList<>();
        long corruptions = overlaps(header, bat, fileSize, messages);
        for (VhdParentLocator loc : header.locators()) {
            if (loc.dataOffset() < 0 || loc.dataOffset() > fileSize || VhdLayout.reserved(loc) > fileSize - loc.dataOffset()) {
                messages.add("ERROR parent locator " + loc.index() + " (" + loc.platform() + ") data at offset "
                        + loc.dataOffset() + " lies outside the file");
                corruptions++;
            }
        }
        long end = VhdLayout.end(header, bat, fileSize);
        ByteBuffer head = file.readStruct(0, VhdFooter.SIZE, java.nio.ByteOrder.BIG_ENDIAN, "footer copy");
        long leaks = 0;
        boolean tailOk = fileSize - VhdFooter.SIZE >= end && head.equals(
                file.readStruct(fileSize - VhdFooter.SIZE, VhdFooter.SIZE, java.nio.ByteOrder.BIG_ENDIAN, "footer"));
        // What lies between the last structure and the last 512 bytes (the footer's place) is unused.
        long unused = Math.max(0, fileSize - VhdFooter.SIZE - end);
        if (unused > 0) {
            long blocks = (unused + bat.blockSpan() - 1) / bat.blockSpan();
            messages.add("Leaked space: " + unused + " bytes after the last block, at offset " + end + " (" + blocks + " block(s))");
            leaks += blocks;
        }
        if (!tailOk) {
            messages.add("Leaked footer: the file does not end with a copy of the footer at offset 0 after the last block (offset " + end + ")");
            leaks++;
        }
        long leaksFixed = 0;
        if (leaks > 0 && mode != RepairMode.NONE && writer != null) {
            writer.exclusive(tail -> {
                file.writeFully(head.duplicate(), end);
                file.truncate(end + VhdFooter.SIZE);
                file.channel().force(true);
                return end;
            });
            messages.add("Repaired: footer written at offset " + end + ", file cut to " + (end + VhdFooter.SIZE) + " bytes");
            leaksFixed = leaks;
            leaks = 0;
        }
        int allocated = 0;
        long fragmented = 0;
        long previousEnd = -1;
        for (int i = 0; i < bat.entryCount(); i++) {
            long at = bat.bitmapOffset(i);
            if (at < 0) continue;
            allocated++;
            if (previousEnd >= 0 && at != previousEnd) fragmented++;
            previousEnd = at + bat.blockSpan();
        }
        return new CheckReport("vpc", corruptions, leaks, 0, 0, leaksFixed, List.copyOf(messages),
                end + VhdFooter.SIZE, (long) bat.entryCount(), (long) allocated, fragmented, null);
    }

    /** Counts (and describes) every structure that overlaps another one. */
    private static long overlaps(VhdDynamicHeader header, VhdBat bat, long fileSize, List<String> messages) {
        List<VhdLayout.Region> all = new ArrayList<>(VhdLayout.metadata(header, bat, fileSize));
        all.addAll(VhdLayout.blocks(bat));
        all.sort(Comparator.comparingLong(VhdLayout.Region::start));
        long corruptions = 0;
        VhdLayout.Region reach = null;
        for (VhdLayout.Region r : all) {
            if (reach != null && r.start() < reach.end()) {
                messages.add("ERROR " + r.name() + " at offset " + r.start() + " overlaps " + reach.name()
                        + " (offsets " + reach.start() + "-" + reach.end() + ")");
                corruptions++;
            }
            if (reach == null || r.end() > reach.end()) reach = r;
        }
        return corruptions;
    }
}
