package org.vdiskload.nbd;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class StatusDescriptorsTest {
    private static String run(int minBlock, long... lengthsAndFlags) {
        StatusDescriptors d = new StatusDescriptors(minBlock);
        for (int i = 0; i < lengthsAndFlags.length; i += 2) d.add(lengthsAndFlags[i], (int) lengthsAndFlags[i + 1]);
        d.finish();
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < d.count(); i++) sb.append(d.length(i)).append(':').append(d.flags(i)).append(' ');
        return sb.toString().trim();
    }

    @Test
    void equalNeighboursMerge() {
        assertEquals("1024:3 512:0", run(1, 512, 3, 512, 3, 512, 0));
    }

    @Test
    void byteGranularKeepsEveryBoundary() {
        assertEquals("100:3 1:0 411:2", run(1, 100, 3, 1, 0, 411, 2));
    }

    @Test
    void aBlockStraddlingExtentsGetsTheFlagsTheyShare() {
        // [0,700) hole+zero, [700,1000) data, [1000,2048) zero: block [512,1024) mixes all three -> 0
        assertEquals("512:3 512:0 1024:2", run(512, 700, 3, 300, 0, 1048, 2));
        // hole+zero next to allocated zero: the shared block is still zero, but no longer a hole
        assertEquals("512:3 1024:2", run(512, 600, 3, 936, 2));
    }

    @Test
    void anUnalignedEndOfExportIsReportedAsItIs() {
        assertEquals("512:0 100:3", run(512, 512, 0, 100, 3));
    }

    @Test
    void flagsFollowTheExtentKind() {
        var zeroHole = org.vdiskload.image.Extent.zero(0, 512, 0, false);
        var zeroAllocated = org.vdiskload.image.Extent.zero(0, 512, 0, true);
        var library = org.vdiskload.image.Extent.needsLibrary(0, 512, 0);
        assertEquals(Nbd.STATE_HOLE | Nbd.STATE_ZERO, StatusDescriptors.flagsOf(zeroHole));
        assertEquals(Nbd.STATE_ZERO, StatusDescriptors.flagsOf(zeroAllocated));
        assertEquals(0, StatusDescriptors.flagsOf(library));
    }
}
