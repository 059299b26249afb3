package org.vdiskload.format.layout;

import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Extent;
import org.vdiskload.image.ImageFormat;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.Images;
import org.vdiskload.image.LayerRun;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.ReferencePolicy;
import org.vdiskload.io.ImageFile;

import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import org.vdiskload.image.error.ImageException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * One partition's source: an image in any format (with its backing chain), or the cached decompressed copy of
 * a compressed file. Its map is answered from the last window of extents asked for, so a layer walking a
 * partition run by run costs one source map per window, not one per run.
 */
final class PartitionSource implements Closeable {
    /**
     * The most one source map call covers. A read asks for its own length only (cheap for a random read);
     * a map of the disk asks for the rest of the partition and is answered a window at a time.
     */
    private static final long WINDOW = 1L << 30;

    final DiskImage image;
    /** The compressed file the image was decompressed from, or null. */
    private final ImageFile compressed;
    /** Why writes are refused ("compressed", "read-only in the layout"), or null if the image takes them. */
    final String readOnlyReason;
    /** Whether vdiskload built this image from a directory or tar archive. */
    final boolean builtFromTree;
    private volatile List<Extent> window = List.of();

    private PartitionSource(DiskImage image, ImageFile compressed, String readOnlyReason, boolean builtFromTree) {
        this.image = image;
        this.compressed = compressed;
        this.readOnlyReason = readOnlyReason;
        this.builtFromTree = builtFromTree;
    }

    /**
     * Opens {@code path}: regular files only, any format but a layout; a compressed file through the cache; a
     * tar archive (plain or compressed) as the {@code kind} file system built from it, of {@code size} bytes.
     * Writable only if asked and possible. The image's own references are followed where {@code refs} allows.
     */
    static PartitionSource open(Path path, boolean writable, boolean readOnlyInLayout, Long size, FileSystemKind kind, int sectorSize,
                                ReferencePolicy refs) throws IOException {
        ImageFile f = ImageFile.openReferenced(path, false);
        try {
            ImageFormat format = Images.detect(f);
            boolean raw = format.name().equals("raw");
            String compression = raw ? DecompressedCache.compression(f) : null;
            Path content = compression != null ? DecompressedCache.decompressed(f, compression) : path;
            if (raw && TarFileSystem.isTar(head(content))) {
                if (size == null) throw ImageException.invalid(path, "is a tar archive: its partition needs a size (the file system's)");
                String key = compression != null ? content.getFileName().toString().replace(".raw", "") : DecompressedCache.sha256(f);
                Path fs = TarFileSystem.build(content, path, key, kind, size, sectorSize);
                return new PartitionSource(Images.open(fs, OpenOptions.DEFAULTS.withFormat("raw")), f,
                        writable ? "is built from a tar archive" : null, true);
            }
            if (compression != null) {
                DiskImage image = Images.open(content, OpenOptions.DEFAULTS.withFormat(refuseLayout(detect(content), path)).withRefs(refs));
                return new PartitionSource(image, f, writable ? "is compressed (" + compression + "); its partition takes no writes" : null, false);
            }
            f.close();
            boolean w = writable && !readOnlyInLayout;
            DiskImage image = Images.open(path, OpenOptions.DEFAULTS.withFormat(refuseLayout(format.name(), path)).withWritable(w).withRefs(refs));
            return new PartitionSource(image, null, writable && readOnlyInLayout ? "is read-only in the layout" : null, false);
        } catch (IOException | RuntimeException e) {
            f.close();
            throw e;
        }
    }

    private static byte[] head(Path p) throws IOException {
        try (InputStream in = Files.newInputStream(p)) {
            return in.readNBytes(512);
        }
    }

    /** A raw image vdiskload built into its cache (a directory's file system); never written. */
    static PartitionSource built(Path image, String readOnlyReason) throws IOException {
        return new PartitionSource(Images.open(image, OpenOptions.DEFAULTS.withFormat("raw")), null, readOnlyReason, true);
    }

    private static String detect(Path p) throws IOException {
        try (ImageFile f = ImageFile.openReferenced(p, false)) {
            return Images.detect(f).name();
        }
    }

    private static String refuseLayout(String format, Path path) throws IOException {
        if (format.equals(LayoutFormat.NAME)) {
            throw ImageException.unsupported(path, "is a layout itself; layouts do not nest");
        }
        return format;
    }

    long size() {
        return image.size();
    }

    /** Every file this source reads, for locks, disk usage and convert's "not onto a source" check. */
    List<ImageFile> files() {
        List<ImageFile> all = new ArrayList<>();
        if (compressed != null) all.add(compressed);
        for (ImageLayer l : image.layers()) all.addAll(l.files());
        return all;
    }

    /** The files writes to this source change: its top layer's, if it takes writes. */
    List<ImageFile> writtenFiles() {
        return image.isWritable() ? image.layers().get(0).files() : List.of();
    }

    /** The run at {@code pos} inside the source, at most {@code max} bytes, as a layer of the layout reports it. */
    LayerRun map(long pos, long max) throws IOException {
        Extent e = find(window, pos);
        if (e == null) {
            List<Extent> fresh = image.map(pos, Math.min(WINDOW, max));
            window = fresh;
            e = find(fresh, pos);
        }
        long skip = pos - e.start();
        long n = Math.min(max, e.length() - skip);
        return switch (e.kind()) {
            case DATA -> e.inPlace() ? LayerRun.dataInPlace(n, e.file(), e.fileOffset() + skip)
                    : LayerRun.data(n, e.file(), e.fileOffset() + skip);
            case ZERO -> e.inPlace() ? LayerRun.zeroInPlace(n, e.file(), e.fileOffset() + skip) : LayerRun.zero(n);
            case NEEDS_LIBRARY -> LayerRun.encoded(n);
        };
    }

    private static Extent find(List<Extent> extents, long pos) {
        int lo = 0;
        int hi = extents.size() - 1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            Extent e = extents.get(mid);
            if (pos < e.start()) hi = mid - 1;
            else if (pos >= e.end()) lo = mid + 1;
            else return e;
        }
        return null;
    }

    void read(ByteBuffer dst, long pos) throws IOException {
        image.read(dst, pos);
    }

    /** Forgets the mapped window: a write may have changed where the bytes live. */
    void invalidate() {
        window = List.of();
    }

    @Override
    public void close() throws IOException {
        try {
            image.close();
        } finally {
            if (compressed != null) compressed.close();
        }
    }
}
