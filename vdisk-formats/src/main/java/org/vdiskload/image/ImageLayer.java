package org.vdiskload.image;

import org.vdiskload.check.CheckReport;
import org.vdiskload.check.RepairMode;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Optional;

/**
 * One image file as its format sees it, without its backing chain: the SPI each format implements.
 * The chain (backing files, depth, zeros past a shorter backing file) is handled once, by
 * {@link Images}, for every format.
 */
public interface ImageLayer extends Closeable {

    /** The format's name, as qemu names it ("qcow2", "vmdk", "vpc", ...). */
    String formatName();

    /** The file that was opened (for VMDK, the descriptor). */
    ImageFile file();

    /** Every file this layer reads (descriptor and extents), for disk-size figures and locking. */
    default List<ImageFile> files() {
        return List.of(file());
    }

    /** Virtual size in bytes. */
    long size();

    /**
     * Describes the run starting at {@code pos}: at least 1 and at most {@code maxLength} bytes.
     * Callers guarantee {@code 0 <= pos}, {@code maxLength > 0} and {@code pos + maxLength <= size()}.
     * Table entries are validated here before use (a data offset past EOF is a corrupt image).
     */
    LayerRun map(long pos, long maxLength) throws IOException;

    /**
     * Produces the bytes of an {@link LayerRun.Status#ENCODED} run (decompressing, decrypting):
     * {@code dst.remaining()} bytes at {@code pos}, all inside one run this layer reported ENCODED.
     */
    default void readEncoded(ByteBuffer dst, long pos) throws IOException {
        throw new UnsupportedOperationException(formatName() + " has no encoded runs");
    }

    /** The image beneath this one, if the layer names one. */
    Optional<BackingRef> backing();

    /**
     * Checks that {@code backing}, opened from {@link #backing()}, is the image this layer was made against
     * (a differencing VHDX names its parent's DataWriteGuid, a VMDK delta its parent's CID). Called once,
     * when the backing layer is open, so the read path carries no check.
     */
    default void checkBacking(ImageLayer backing) throws IOException {
    }

    /** What {@code info} shows. */
    LayerInfo info() throws IOException;

    // ---- Writing. Only the top layer of a chain is ever written; backing files stay read-only. ----

    /** Whether this layer was opened for writing and its format can write it in place. */
    default boolean writable() {
        return false;
    }

    /**
     * Writes {@code src.remaining()} bytes at {@code pos} (inside the disk). A cluster this write
     * allocates but does not cover whole is filled from {@code beneath}. Ordering is the layer's duty:
     * data before the metadata that points at it, so a crash leaks space at worst.
     */
    default void write(ByteBuffer src, long pos, Beneath beneath) throws IOException {
        throw ImageException.unsupported(file().path(), formatName() + " images cannot be written in place");
    }

    /**
     * Makes {@code [pos, pos+length)} read as zeros. With {@code mayUnmap} the layer may free the space;
     * the range must read as zeros all the same (with a backing file: a zero flag, or written zeros).
     * A discard is this with {@code mayUnmap}.
     */
    default void writeZeroes(long pos, long length, boolean mayUnmap, Beneath beneath) throws IOException {
        throw ImageException.unsupported(file().path(), formatName() + " images cannot be written in place");
    }

    /** Makes every completed write durable: data and metadata reach the disk, in a crash-safe order. */
    default void flush() throws IOException {
    }

    /**
     * The unit a write, zero-write or discard changes this layer's map in (see {@link DiskImage#mappingUnit}):
     * a power of two, at least 512, with every unit of the table at a multiple of it in the virtual disk.
     * The default suits a layer whose map writes never change (or that cannot be written).
     */
    default long mappingUnit() {
        return 512;
    }

    /**
     * Where to report each range of this layer's virtual disk whose {@link #map} a write, zero-write or
     * discard changes ({@link MapChangeListener}); {@link MapChangeListener#NONE} to stop. Every layer that
     * can be written and whose map can change reports, where it changes a table entry.
     */
    default void setMapChangeListener(MapChangeListener listener) {
    }

    /** What the first write after opening does to the layer as a whole (see {@link DiskImage#prepareForWrites}). */
    default void prepareForWrites() throws IOException {
    }

    /**
     * Metadata write-through on or off (see {@link DiskImage#setMetadataWriteThrough}). The default suits
     * layers that write their metadata before a write returns anyway, or never change it.
     */
    default void setMetadataWriteThrough(boolean on) throws IOException {
    }

    /**
     * The unit a write allocates whole in this image, zeros and all (a qcow2 cluster, a dynamic VDI's
     * block), or 0 where the parts of a unit left unwritten take no space. Within such a unit, zeros
     * cost nothing to write: {@code convert} writes a unit holding any data in one piece instead of
     * splitting it around its zero 4 KiB blocks.
     */
    default int allocationUnit() {
        return 0;
    }

    /** The unit of compressed writes (the cluster size), or 0 where the format cannot compress. */
    default int compressionUnit() {
        return 0;
    }

    /**
     * Whether every write is stored compressed (a stream-optimized VMDK): {@code convert} then writes
     * whole compressed units, as with {@code -c}.
     */
    default boolean writesCompressed() {
        return false;
    }

    /**
     * Whether a unit once written can never be written again (a stream-optimized VMDK appends each grain
     * once, in order, as qemu writes it): such a layer takes a disk written front to back, as {@code
     * convert} writes it, not the random rewrites of a file system.
     */
    default boolean appendOnly() {
        return false;
    }

    /**
     * Compresses one whole unit at {@code pos} (a multiple of {@link #compressionUnit()}; the last unit
     * of a disk may be shorter) for {@link #writeCompressed(CompressedUnit)}. Computation only, safe on
     * any thread: {@code convert -c} compresses units on every core and writes them in disk order.
     */
    default CompressedUnit compress(ByteBuffer unit, long pos) throws IOException {
        throw ImageException.unsupported(file().path(), formatName() + " images cannot hold compressed data");
    }

    /** Writes a unit {@link #compress} made into the not yet allocated place it covers. */
    default void writeCompressed(CompressedUnit unit) throws IOException {
        throw ImageException.unsupported(file().path(), formatName() + " images cannot hold compressed data");
    }

    /** Compresses and writes one unit: {@link #compress}, then {@link #writeCompressed(CompressedUnit)}. */
    default void writeCompressed(ByteBuffer unit, long pos) throws IOException {
        writeCompressed(compress(unit, pos));
    }

    /** Changes the virtual size (qemu-img resize). Shrinking only with {@code allowShrink} and an unallocated tail. */
    default void resize(long newSize, boolean allowShrink) throws IOException {
        throw ImageException.unsupported(file().path(), "resizing " + formatName() + " images is not supported");
    }

    /** Checks this layer's metadata (qemu-img check), repairing what {@code mode} allows; null if the format has no checks. */
    default CheckReport check(RepairMode mode) throws IOException {
        return null;
    }
}
