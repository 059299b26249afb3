package org.vdiskload.format.layout;

import org.vdiskload.image.error.ImageException;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Where everything goes: each partition's start and size (defaults settled from the sources' sizes and
 * the alignment), the EBR of each logical MBR partition, and the disk's size. Refuses overlaps, partitions
 * smaller than their sources, and anything past the disk's end or an MBR's 32-bit sector numbers.
 */
final class DiskPlan {
    /** One placed partition; {@code ebr} is the byte offset of its EBR (logical MBR partitions), else -1. */
    record Placed(LayoutSpec.Part spec, int number, long start, long size, long ebr) {
        long end() {
            return start + size;
        }
    }

    final LayoutSpec spec;
    final List<Placed> parts;
    final long diskSize;

    private DiskPlan(LayoutSpec spec, List<Placed> parts, long diskSize) {
        this.spec = spec;
        this.parts = parts;
        this.diskSize = diskSize;
    }

    /** Bytes of one GPT entry array (128 entries of 128 bytes). */
    static final long GPT_ARRAY_BYTES = LayoutParser.GPT_ENTRIES * 128L;

    boolean isGpt() {
        return spec.table() == LayoutSpec.Table.GPT;
    }

    /** Whether the MBR needs an extended partition: past four, the fourth entry holds the logical ones. */
    boolean hasLogical() {
        return !isGpt() && parts.size() > 4;
    }

    /** The first byte a partition may use. */
    long firstUsable() {
        return isGpt() ? 2L * spec.sectorSize() + GPT_ARRAY_BYTES : spec.sectorSize();
    }

    /** Bytes at the disk's end a partition may not use (the backup GPT). */
    long tailReserved() {
        return isGpt() ? GPT_ARRAY_BYTES + spec.sectorSize() : 0;
    }

    /**
     * @param sourceSizes each partition's source size in bytes, or -1 for a partition without a source
     */
    static DiskPlan of(Path file, JsonLines lines, LayoutSpec spec, long[] sourceSizes) throws ImageException {
        int ss = spec.sectorSize();
        List<Placed> placed = new ArrayList<>();
        boolean logicalTail = spec.table() == LayoutSpec.Table.MBR && spec.partitions().size() > 4;
        DiskPlan shape = new DiskPlan(spec, List.of(), 0);
        long cursor = shape.firstUsable();
        for (int i = 0; i < spec.partitions().size(); i++) {
            LayoutSpec.Part p = spec.partitions().get(i);
            long src = sourceSizes[i];
            long size;
            if (p.size() != null) {
                size = p.size();
                if (src >= 0 && size < src) {
                    throw error(file, lines, p.path() + ".size", "smaller than its source (" + size + " < " + src + " bytes of " + p.source() + ")");
                }
            } else {
                size = roundUp(src, ss);
            }
            if (size == 0) throw error(file, lines, p.path() + ".size", "a partition needs at least one sector");
            boolean logical = logicalTail && i >= 3;
            long start;
            if (p.start() != null) {
                start = p.start();
            } else {
                start = roundUp(logical ? cursor + ss : cursor, spec.alignment());
            }
            long ebr = logical ? start - ss : -1;
            long end;
            try {
                end = Math.addExact(start, size);
            } catch (ArithmeticException e) {
                throw error(file, lines, p.path() + ".size", "start + size overflows");
            }
            if ((logical ? ebr : start) < shape.firstUsable()) {
                throw error(file, lines, p.path() + ".start", "before the first usable byte (" + (shape.firstUsable() + (logical ? ss : 0)) + ")");
            }
            for (Placed q : placed) {
                long lo = logical ? ebr : start;
                long qlo = q.ebr() >= 0 ? q.ebr() : q.start();
                if (lo < q.end() && qlo < end) {
                    throw error(file, lines, p.path() + ".start", "partition " + (i + 1) + " [" + lo + ", " + end + ") overlaps partition "
                            + q.number() + " [" + qlo + ", " + q.end() + ")");
                }
            }
            if (logical && !placed.isEmpty() && i > 3 && placed.get(i - 1).start() > start) {
                throw error(file, lines, p.path() + ".start", "logical partitions must be in disk order (partition " + (i + 1)
                        + " starts before partition " + i + ")");
            }
            placed.add(new Placed(p, i + 1, start, size, ebr));
            cursor = Math.max(cursor, end);
        }
        long needed = Math.addExact(placed.stream().mapToLong(Placed::end).max().orElse(0), shape.tailReserved());
        long diskSize;
        if (spec.size() != null) {
            diskSize = spec.size();
            if (diskSize < needed) throw error(file, lines, "$.size", "too small: the partitions need " + needed + " bytes");
        } else {
            diskSize = roundUp(needed, spec.alignment());
        }
        if (logicalTail) checkExtended(file, lines, placed);
        if (spec.table() == LayoutSpec.Table.MBR) {
            for (Placed p : placed) {
                if (p.end() / ss > 0xFFFFFFFFL) {
                    throw error(file, lines, p.spec().path(), "ends past sector 2^32, out of an MBR's reach (use a GPT)");
                }
            }
        }
        return new DiskPlan(spec, List.copyOf(placed), diskSize);
    }

    /** The extended partition (first EBR to last logical end) may not hold a primary partition. */
    private static void checkExtended(Path file, JsonLines lines, List<Placed> placed) throws ImageException {
        long lo = placed.get(3).ebr();
        long hi = placed.get(placed.size() - 1).end();
        for (Placed p : placed.subList(0, 3)) {
            if (p.start() < hi && lo < p.end()) {
                throw error(file, lines, p.spec().path() + ".start", "primary partition " + p.number()
                        + " lies inside the extended partition [" + lo + ", " + hi + ") that holds partitions 4 and up");
            }
        }
    }

    /** The extended partition's byte range: from the first EBR to the end of the last logical partition. */
    long extendedStart() {
        return parts.get(3).ebr();
    }

    long extendedEnd() {
        return parts.get(parts.size() - 1).end();
    }

    static long roundUp(long v, long unit) {
        return Math.multiplyExact(Math.floorDiv(Math.addExact(v, unit - 1), unit), unit);
    }

    private static ImageException error(Path file, JsonLines lines, String path, String problem) {
        return ImageException.invalid(file, lines.locate(path) + ": " + problem);
    }
}
