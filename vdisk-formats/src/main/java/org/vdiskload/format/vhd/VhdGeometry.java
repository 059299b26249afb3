package org.vdiskload.format.vhd;

/**
 * The CHS geometry of a new disk and the size it gives, as qemu-img create computes them: the
 * specification's algorithm (appendix "CHS calculation"), applied to ever more sectors until the
 * geometry covers the requested size, so a conversion never truncates. A size too big for a CHS
 * geometry gets the maximal one and keeps its exact size, as force_size does.
 *
 * @param sectors the virtual size in sectors
 */
record VhdGeometry(int cylinders, int heads, int sectorsPerTrack, long sectors) {
    /** 65535 x 16 x 255: the largest geometry, which means "use the current size". */
    static final VhdGeometry MAX = new VhdGeometry(65535, 16, 255, VhdFooter.MAX_GEOMETRY_SECTORS);

    /** The geometry and size for a disk of at least {@code bytes} (a multiple of 512); no size check. */
    static VhdGeometry forSize(long bytes, boolean forceSize) {
        long wanted = bytes / 512;
        if (forceSize) return new VhdGeometry(MAX.cylinders, MAX.heads, MAX.sectorsPerTrack, wanted);
        long target = Math.min(VhdFooter.MAX_GEOMETRY_SECTORS, wanted);
        VhdGeometry g = new VhdGeometry(0, 0, 0, 0);
        for (long i = 0; target > g.sectors; i++) g = of(target + i);
        return g.sectors == VhdFooter.MAX_GEOMETRY_SECTORS ? new VhdGeometry(MAX.cylinders, MAX.heads, MAX.sectorsPerTrack, wanted) : g;
    }

    /** The specification's geometry for {@code total} sectors (rounding down). */
    static VhdGeometry of(long total) {
        total = Math.min(total, VhdFooter.MAX_GEOMETRY_SECTORS);
        int spt;
        int heads;
        long cylTimesHeads;
        if (total >= 65535L * 16 * 63) {
            spt = 255;
            heads = 16;
            cylTimesHeads = total / spt;
        } else {
            spt = 17;
            cylTimesHeads = total / spt;
            heads = (int) Math.max(4, (cylTimesHeads + 1023) / 1024);
            if (cylTimesHeads >= heads * 1024L || heads > 16) {
                spt = 31;
                heads = 16;
                cylTimesHeads = total / spt;
            }
            if (cylTimesHeads >= heads * 1024L) {
                spt = 63;
                heads = 16;
                cylTimesHeads = total / spt;
            }
        }
        int cylinders = (int) (cylTimesHeads / heads);
        return new VhdGeometry(cylinders, heads, spt, (long) cylinders * heads * spt);
    }
}
