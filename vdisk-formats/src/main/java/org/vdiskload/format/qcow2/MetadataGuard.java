package org.vdiskload.format.qcow2;

import java.io.IOException;

/**
 * Checks a write before it is made: {@code [offset, offset+length)} must not lie on metadata other than
 * {@code writing} (null for guest data or a structure not yet in place). A writer's guard fails with a
 * CORRUPT error naming the structure, after marking the image corrupt, and nothing is written.
 */
@FunctionalInterface
interface MetadataGuard {
    MetadataGuard NONE = (offset, length, writing, what) -> { };

    void check(long offset, long length, MetadataOverlap.Structure writing, String what) throws IOException;
}
