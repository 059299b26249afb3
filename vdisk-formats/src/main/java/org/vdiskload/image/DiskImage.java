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
}
