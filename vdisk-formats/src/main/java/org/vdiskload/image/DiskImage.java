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
}
