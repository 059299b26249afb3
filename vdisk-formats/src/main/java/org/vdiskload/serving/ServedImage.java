package org.vdiskload.serving;

import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.error.ImageException;

import java.io.Closeable;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * An image opened to be served — by {@code vdiskload serve} or by an attachment's serving process —
 * as its {@link Access} says: opened writable or not, refused with one line if it should be written and
 * its format cannot be written in place, locked against other writers with qemu's locks
 * ({@link ImageLock}), and for {@link Access#SNAPSHOT} under a throwaway {@link SnapshotOverlay}.
 * Closing it flushes and closes the image before it lets go of the locks: no other writer may start
 * before the last write is durable.
 */
public final class ServedImage implements Closeable {
    /** How clients may use the image, and what others may do with it meanwhile. */
    public enum Access {
        /** Clients read and write the image; no one else may write it, nor read it through qemu's locks. */
        READ_WRITE,
        /** Clients only read; others may read it too, none may write it (qemu-nbd -r's rule; the attach's -r). */
        READ_ONLY,
        /** Clients only read, and nothing is locked: others may even write it meanwhile ({@code serve -r}, as it has always been). */
        READ_ONLY_UNLOCKED,
        /** Clients read and write, the writes kept in a temporary overlay dropped at close; the image is locked as for {@link #READ_ONLY}. */
        SNAPSHOT
    }

    private final DiskImage disk;
    private final ImageLock lock;
    private final boolean writesImage;

    private ServedImage(DiskImage disk, ImageLock lock, boolean writesImage) {
        this.disk = disk;
        this.lock = lock;
        this.writesImage = writesImage;
    }

    /**
     * Opens {@code file} with {@code options} (format, backing format, internal snapshot; whether it is
     * writable follows from {@code access}). {@code verb} is the command's ("serve", "attach") for the
     * line that refuses an image that cannot be written in place.
     */
    public static ServedImage open(Path file, OpenOptions options, Access access, String verb) throws IOException {
        return open(file, options, access, verb, overlayDir());
    }

    static ServedImage open(Path file, OpenOptions options, Access access, String verb, Path overlayDir) throws IOException {
        boolean write = access == Access.READ_WRITE;
        DiskImage d = Images.open(file, options.withWritable(write));
        ImageLock lock = null;
        try {
            if (write && !d.isWritable()) {
                throw ImageException.unsupported(file, "vdiskload cannot write " + d.formatName() + " images in place; "
                        + verb + " it read-only (-r) or with --snapshot");
            }
            if (access != Access.READ_ONLY_UNLOCKED) lock = ImageLock.acquire(d, write);
            DiskImage served = access == Access.SNAPSHOT ? SnapshotOverlay.over(d, overlayDir) : d;
            return new ServedImage(served, lock, write);
        } catch (IOException | RuntimeException e) {
            if (lock != null) lock.close();
            d.close();
            throw e;
        }
    }

    /** Where a --snapshot overlay keeps its blocks: $TMPDIR, else /var/tmp (as qemu), else java.io.tmpdir. */
    private static Path overlayDir() {
        String dir = System.getenv("TMPDIR");
        if (dir != null && !dir.isEmpty()) return Path.of(dir);
        Path varTmp = Path.of("/var/tmp");
        return Files.isDirectory(varTmp) ? varTmp : Path.of(System.getProperty("java.io.tmpdir"));
    }

    /** The image as clients see it (the overlay, for a snapshot). */
    public DiskImage disk() {
        return disk;
    }

    /** Whether clients' writes reach the image file (read-write, no overlay): closing then flushes them. */
    public boolean writesImage() {
        return writesImage;
    }

    /** Flushes and closes the image (and drops an overlay), then releases the locks, also when closing failed. */
    @Override
    public void close() throws IOException {
        try {
            disk.close();
        } finally {
            if (lock != null) lock.close();
        }
    }
}
