package org.vdiskload.image;

/**
 * Told of every range of the disk whose {@link DiskImage#map} result a write, zero-write or discard changed:
 * kind, file, file offset, in place, allocated or depth. Called on the thread making the change, before that
 * call returns, once {@code map} answers with the change; never for more than the call's range widened to
 * {@link DiskImage#mappingUnit()}, except by {@link DiskImage#prepareForWrites()} (see there). A layer reports
 * in the virtual offsets of its own disk; a layout translates its partitions' reports into its own.
 * A range may be reported although its map did not change (a unit whose entry was rewritten with the same
 * meaning); a change is never left unreported.
 */
@FunctionalInterface
public interface MapChangeListener {
    /** Reports nothing: where no one listens. */
    MapChangeListener NONE = (pos, length) -> { };

    /** The map of {@code [pos, pos+length)} may have changed; {@code length > 0}. */
    void changed(long pos, long length);
}
