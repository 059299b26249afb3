package org.vdiskload.format.raw;

import org.vdiskload.image.BackingRef;
import org.vdiskload.image.Beneath;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.LayerInfo;
import org.vdiskload.image.LayerRun;
import org.vdiskload.image.MapChangeListener;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.Bytes;
import org.vdiskload.io.Holes;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.util.Optional;

/**
 * A raw file. Holes in the host file map as zeros, as qemu-img map shows them. The size is the file's
 * rounded up to a 512-byte sector, as qemu's block layer sees it; the tail past EOF reads as zeros.
 * Every byte is writable in place: raw has no metadata.
 */
final class RawLayer implements ImageLayer {
    private static final int ZERO_CHUNK = 1 << 20;

    private final ImageFile file;
    private volatile long size;
    private volatile Holes.Probe holes;
    private volatile boolean holesTried;
    private final long mappingUnit;
    private volatile MapChangeListener listener = MapChangeListener.NONE;

    RawLayer(ImageFile file) throws IOException {
        this.file = file;
        this.size = roundToSector(file.size());
        this.mappingUnit = fileSystemBlock(file);
        // The first map asks for holes: bind them meanwhile.
        Holes.prepareInBackground();
    }

    /**
     * The host file system's block, at least a 4 KiB page: a write into a hole allocates whole blocks and a
     * punched hole frees only whole ones, so the holes the map shows move in those (tmpfs: pages).
     */
    private static long fileSystemBlock(ImageFile file) {
        long block = 4096;
        try {
            block = Math.max(block, java.nio.file.Files.getFileStore(file.path()).getBlockSize());
        } catch (IOException | UnsupportedOperationException e) {
            // the page it is
        }
        return Long.bitCount(block) == 1 ? block : Long.highestOneBit(block) << 1;
    }

    private static long roundToSector(long bytes) {
        return Math.addExact(bytes, 511) & ~511L;
    }

    @Override
    public String formatName() {
        return "raw";
    }

    @Override
    public ImageFile file() {
        return file;
    }

    @Override
    public long size() {
        return size;
    }

    private Holes.Probe holes() throws IOException {
        if (!holesTried) {
            synchronized (this) {
                if (!holesTried) {
                    holes = Holes.open(file.path());
                    holesTried = true;
                }
            }
        }
        return holes;
    }

    @Override
    public LayerRun map(long pos, long maxLength) throws IOException {
        Holes.Probe h = holes();
        long end = pos + maxLength;
        if (h != null) {
            long data = h.nextData(pos, end);
            if (data > pos) return LayerRun.zeroInPlace(data - pos, file, pos);
            long hole = h.nextHole(pos, end);
            if (hole > pos) return LayerRun.dataInPlace(hole - pos, file, pos);
        }
        return LayerRun.dataInPlace(maxLength, file, pos);
    }

    @Override
    public Optional<BackingRef> backing() {
        return Optional.empty();
    }

    @Override
    public LayerInfo info() {
        return LayerInfo.basic("raw", size);
    }

    @Override
    public boolean writable() {
        return file.isWritable();
    }

    /** Holes are all a raw file's map has: data or not, by file system blocks (see {@link #fileSystemBlock}). */
    @Override
    public long mappingUnit() {
        return mappingUnit;
    }

    @Override
    public void setMapChangeListener(MapChangeListener l) {
        listener = l;
    }

    /** A write may fill a hole. */
    @Override
    public void write(ByteBuffer src, long pos, Beneath beneath) throws IOException {
        long length = src.remaining();
        file.writeFully(src, pos);
        blocksChanged(pos, length);
    }

    /** The file system blocks of {@code [pos, pos+length)} may have turned from hole to data or back. */
    private void blocksChanged(long pos, long length) {
        long from = pos & -mappingUnit;
        listener.changed(from, ((pos + length + mappingUnit - 1) & -mappingUnit) - from);
    }

    @Override
    public void writeZeroes(long pos, long length, boolean mayUnmap, Beneath beneath) throws IOException {
        // Punching a hole is exact zeros on Linux file systems that support it; otherwise write them.
        long inFile = Math.max(0, Math.min(length, file.size() - pos));
        if (inFile == 0) return;
        if (mayUnmap && Holes.punchHole(file.path(), pos, inFile)) {
            blocksChanged(pos, inFile);
            return;
        }
        ByteBuffer zeros = ByteBuffer.allocateDirect((int) Math.min(ZERO_CHUNK, inFile));
        for (long done = 0; done < inFile; ) {
            int n = (int) Math.min(zeros.capacity(), inFile - done);
            zeros.clear().limit(n);
            Bytes.fillZero(zeros);
            file.writeFully(zeros.flip(), pos + done);
            done += n;
        }
        blocksChanged(pos, inFile); // zeros written into a hole fill it
    }

    @Override
    public void flush() throws IOException {
        file.force(true);
    }

    @Override
    public void resize(long newSize, boolean allowShrink) throws IOException {
        if (newSize < size && !allowShrink) {
            throw ImageException.invalid(file.path(), "shrinking from " + size + " to " + newSize
                    + " bytes discards data; use --shrink if that is intended");
        }
        try (RandomAccessFile f = new RandomAccessFile(file.path().toFile(), "rw")) {
            f.setLength(newSize);
        }
        file.lengthChanged();
        size = roundToSector(newSize);
    }

    @Override
    public void close() throws IOException {
        Holes.Probe h = holes;
        if (h != null) h.close();
        file.close();
    }
}
