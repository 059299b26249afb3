package org.vdiskload.io;

import org.vdiskload.image.error.ImageException;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.AccessDeniedException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One open file of an image. Only positional I/O, so any number of threads may read at once;
 * there is no shared cursor. Every read states which structure it is for, so a short or
 * out-of-range read becomes an {@link ImageException} naming the file, offset and field.
 */
public final class ImageFile implements Closeable {
    private final Path path;
    private final FileChannel channel;
    private final boolean writable;
    /** False: {@link #force} does nothing (qemu's cache=unsafe, for convert's new output). */
    private final boolean flush;
    /**
     * A length the file is known to have at least: the largest {@link #size} seen or end of a write made
     * here. Files only grow under an open image except through {@link #truncate} (which resets it), so
     * bounds checks inside it need no fstat: a writer checking every cluster it touches made two per write.
     */
    private final AtomicLong knownEnd = new AtomicLong();

    private ImageFile(Path path, FileChannel channel, boolean writable, boolean flush) {
        this.path = path;
        this.channel = channel;
        this.writable = writable;
        this.flush = flush;
    }

    /**
     * Opens a file the user named directly. Regular files and block devices are accepted
     * (like losetup); directories, fifos, sockets and character devices are refused.
     */
    public static ImageFile open(Path path, boolean writable) throws IOException {
        return open(path, writable, true);
    }

    /** {@link #open(Path, boolean)}; with {@code flush} false, {@link #force} is skipped. */
    public static ImageFile open(Path path, boolean writable, boolean flush) throws IOException {
        if (Files.isDirectory(path)) throw ImageException.invalid(path, "is a directory, not a disk image");
        if (!Files.exists(path)) throw ImageException.invalid(path, "no such file");
        if (!Files.isRegularFile(path) && !FileKinds.isBlockDevice(path)) {
            throw ImageException.invalid(path, "is not a regular file or block device");
        }
        return openChecked(path, writable, flush);
    }

    /**
     * Opens a file that an image refers to (backing file, extent, parent). Only regular files are
     * accepted: a reference to a device, fifo or socket is how images are made to leak host data.
     */
    public static ImageFile openReferenced(Path path, boolean writable) throws IOException {
        return openReferenced(path, writable, true);
    }

    /** {@link #openReferenced(Path, boolean)}; with {@code flush} false, {@link #force} is skipped. */
    public static ImageFile openReferenced(Path path, boolean writable, boolean flush) throws IOException {
        return openReferenced(path, path, writable, flush);
    }

    /**
     * {@link #openReferenced(Path, boolean, boolean)} of {@code real}, the real path a reference was judged by
     * (so a symbolic link changed since is not followed again), named {@code path} as the image names it.
     */
    public static ImageFile openReferenced(Path path, Path real, boolean writable, boolean flush) throws IOException {
        requireReferenceable(path, real);
        return openChecked(path, real, writable, flush);
    }

    /** Why a reference to something other than a regular file is refused. */
    public static final String NOT_REFERENCEABLE = "is not a regular file; references to devices, fifos or directories are refused";

    /** Refuses what no reference may lead to: a missing file, a device, fifo, socket or directory. */
    public static void requireReferenceable(Path path, Path real) throws ImageException {
        if (!Files.exists(real)) throw ImageException.invalid(path, "no such file");
        if (!Files.isRegularFile(real)) throw ImageException.invalid(path, NOT_REFERENCEABLE);
    }

    /** How an image file's channel is opened; see {@link #channelOpener}. */
    @FunctionalInterface
    public interface ChannelOpener {
        FileChannel open(Path path, boolean writable) throws IOException;
    }

    private static final ChannelOpener PLAIN = (path, writable) -> writable
            ? FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE)
            : FileChannel.open(path, StandardOpenOption.READ);

    private static volatile ChannelOpener opener = PLAIN;

    /**
     * Replaces how every image file's channel is opened (null: the plain {@link FileChannel#open}). For
     * the power-cut tests, which record each write and flush an image's writer makes, in order, through a
     * wrapping channel: every positional write, flush and truncation of a format goes through the channel.
     */
    public static void channelOpener(ChannelOpener o) {
        opener = o == null ? PLAIN : o;
    }

    private static ImageFile openChecked(Path path, boolean writable, boolean flush) throws IOException {
        return openChecked(path, path, writable, flush);
    }

    private static ImageFile openChecked(Path path, Path real, boolean writable, boolean flush) throws IOException {
        try {
            FileChannel ch = opener.open(real, writable);
            return new ImageFile(path, ch, writable, flush);
        } catch (NoSuchFileException e) {
            throw ImageException.invalid(path, "no such file");
        } catch (AccessDeniedException e) {
            throw ImageException.invalid(path, "permission denied");
        } catch (IOException e) {
            throw new ImageException(ImageException.Kind.IO, path, ImageException.NO_OFFSET, null,
                    "cannot open: " + e.getMessage(), e);
        }
    }

    public Path path() { return path; }
    public FileChannel channel() { return channel; }
    public boolean isWritable() { return writable; }

    /**
     * Flushes the file to the disk ({@link FileChannel#force}): what writers call where their crash
     * safety orders writes. Skipped for a file opened without flushing.
     */
    public void force(boolean metaData) throws IOException {
        if (flush) channel.force(metaData);
    }

    /** Current length in bytes (for a block device, its size). */
    public long size() throws IOException {
        long s = channel.size();
        if (s == 0 && FileKinds.isBlockDevice(path)) s = FileKinds.blockDeviceSize(path);
        knownEnd.accumulateAndGet(s, Math::max);
        return s;
    }

    /** Whether the file is at least {@code end} bytes long; asks the kernel only beyond the length known already. */
    public boolean reaches(long end) throws IOException {
        return end <= knownEnd.get() || end <= size();
    }

    /** Shortens the file to {@code length} bytes. */
    public void truncate(long length) throws IOException {
        channel.truncate(length);
        knownEnd.set(0);
    }

    /** The file's length was changed other than through this object: forget the length known so far. */
    public void lengthChanged() {
        knownEnd.set(0);
    }

    /**
     * Reads exactly {@code dst.remaining()} bytes at {@code pos}; a read crossing EOF is a corrupt
     * (truncated) image.
     */
    public void readFully(ByteBuffer dst, long pos, String field) throws IOException {
        long want = dst.remaining();
        long p = pos;
        while (dst.hasRemaining()) {
            int n = channel.read(dst, p);
            if (n < 0) {
                throw ImageException.corrupt(path, pos, field,
                        "truncated: needs " + want + " bytes but the file ends at " + size());
            }
            p += n;
        }
    }

    /**
     * Reads {@code dst.remaining()} bytes of guest data at {@code pos}; bytes past EOF read as
     * zeros, as qemu does (formats may leave the file ending inside an allocated cluster).
     */
    public void readPadded(ByteBuffer dst, long pos) throws IOException {
        long p = pos;
        while (dst.hasRemaining()) {
            int n = channel.read(dst, p);
            if (n < 0) {
                Bytes.fillZero(dst);
                return;
            }
            p += n;
        }
    }

    /**
     * Reads a metadata structure of {@code len} bytes at {@code pos} after checking that it lies
     * inside the file, so a hostile size never becomes a huge allocation.
     */
    public ByteBuffer readStruct(long pos, long len, ByteOrder order, String field) throws IOException {
        Checked.requireInFile(this, pos, len, field);
        if (len > Integer.MAX_VALUE - 16) {
            throw ImageException.corrupt(path, pos, field, "structure of " + len + " bytes is too large");
        }
        ByteBuffer b = ByteBuffer.allocate((int) len).order(order);
        readFully(b, pos, field);
        return b.flip();
    }

    /** Writes all of {@code src} at {@code pos}. */
    public void writeFully(ByteBuffer src, long pos) throws IOException {
        long p = pos;
        while (src.hasRemaining()) p += channel.write(src, p);
        knownEnd.accumulateAndGet(p, Math::max);
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }

    @Override
    public String toString() { return path.toString(); }
}
