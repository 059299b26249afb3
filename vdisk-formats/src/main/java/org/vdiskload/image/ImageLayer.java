package org.vdiskload.image;

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

    /**
     * Called before a read or a map falls through an unallocated run of this layer to {@code backing}
     * (the next layer of the chain). A layer that can tell its backing file no longer matches it (VMDK's
     * parentCID) refuses here, as qemu refuses such reads. Maps are checked too, since consumers read
     * the DATA extents of a map straight from their files.
     */
    default void checkBackingRead(ImageLayer backing) throws IOException {
    }

    /** The image beneath this one, if the layer names one. */
    Optional<BackingRef> backing();

    /**
     * Checks that {@code backing}, opened from {@link #backing()}, is the image this layer was made against
     * (a differencing VHDX names its parent's DataWriteGuid). Called once the backing layer is open.
     */
    default void checkBacking(ImageLayer backing) throws IOException {
    }

    /** What {@code info} shows. */
    LayerInfo info() throws IOException;
}
