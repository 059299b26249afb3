package org.vdiskload.image;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;

/**
 * An opened image with its whole backing chain: the one abstraction every command and backend uses.
 * Reads are positional and may run concurrently from several threads.
 */
public interface DiskImage extends Closeable {

    /** The file that was opened. */
    Path path();

    /** The top layer's format name. */
    String formatName();

    /** Virtual size in bytes. */
    long size();

    /** The chain, top first: index = depth. */
    List<ImageLayer> layers();

    /** Reads {@code dst.remaining()} bytes at {@code pos}; the range must lie inside the disk. */
    void read(ByteBuffer dst, long pos) throws IOException;

    /**
     * Extents covering {@code [pos, pos+length)} completely, in order, adjacent equal extents merged.
     * The range must lie inside the disk.
     */
    List<Extent> map(long pos, long length) throws IOException;

    /** Whether the image was opened for writing (and its top layer can be written). */
    boolean isWritable();

    /** Writes {@code src.remaining()} bytes at {@code pos}; the range must lie inside the disk. */
    void write(ByteBuffer src, long pos) throws IOException;

    /** Makes the range read as zeros; with {@code mayUnmap} its space may be freed. */
    void writeZeroes(long pos, long length, boolean mayUnmap) throws IOException;

    /** Frees the range's space where the format can; the range reads as zeros afterwards. */
    default void discard(long pos, long length) throws IOException {
        writeZeroes(pos, length, true);
    }

    /** Makes every completed write durable. */
    void flush() throws IOException;

    /**
     * How far a change of the map reaches: a power of two, at least 512. A {@link #write}, {@link #writeZeroes}
     * or {@link #discard} of {@code [pos, pos+len)} changes what {@link #map} reports (kind, file, file offset,
     * in place, allocated, depth) only inside that range widened outwards to multiples of this unit (the
     * allocation unit of the top layer's tables: a qcow2 cluster, a VDI or VHD block...), once
     * {@link #prepareForWrites} has run. A backend serving in-place extents itself holds its own I/O on that
     * widened range while the library writes, then takes the range's new map.
     * The default, for images that do not say, is a unit covering the whole disk.
     */
    default long mappingUnit() {
        return Math.max(512, Long.highestOneBit(Math.max(1, size() - 1)) << 1);
    }

    /**
     * Reports every range whose map a write, zero-write or discard changes to {@code listener} (null: to no
     * one), on the writing thread, before the call returns (see {@link MapChangeListener}). Set it before
     * writing starts: changes made while it is being replaced may go to either listener.
     */
    default void setMapChangeListener(MapChangeListener listener) {
        throw new UnsupportedOperationException(formatName() + " images do not report map changes");
    }

    /**
     * Does now what the first write after opening does to the image as a whole, so that from here on no
     * write changes the map outside its {@link #mappingUnit} widened range: qcow2 drops persistent bitmaps
     * (a write makes them stale) and with lazy refcounts marks the image dirty; VMDK gives the disk a new
     * CID; VHDX new write GUIDs. Until then such images map nothing in place (a write there must go through
     * the library, which makes those changes first), so the first write would turn every allocated range
     * in place at once, reported to the listener as the whole disk. A backend that serves in-place extents
     * calls this before it takes the map. Does nothing the second time, or for a read-only image.
     */
    default void prepareForWrites() throws IOException {
    }

    /**
     * Metadata write-through. By default writers keep the table entries of new allocations in memory (qcow2
     * and qcow L2 entries, VMDK grain table entries, the VDI block map) and write them at the next
     * {@link #flush}, after the data they point to is on the disk, as a disk's write cache does: a killed
     * process loses the writes since the last flush. With {@code on}, a write, zero-write or discard returns
     * only once the metadata it changed is in the file, after a flush of the data it points to (the order a
     * power cut needs): the process may then be killed (SIGKILL keeps the page cache) without losing a write
     * that completed. That costs a flush per allocating write; writers waiting at once share one. Refcount
     * drops of qcow2 still wait for the next flush (a lost one leaks a cluster, no more). Switching it on
     * writes what waits; formats that write their metadata through anyway (VHD, VHDX, raw) need nothing.
     */
    default void setMetadataWriteThrough(boolean on) throws IOException {
        throw new UnsupportedOperationException(formatName() + " images have no metadata write-through");
    }
}
