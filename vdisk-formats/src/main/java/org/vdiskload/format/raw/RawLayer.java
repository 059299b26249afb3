package org.vdiskload.format.raw;

import org.vdiskload.image.BackingRef;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.LayerInfo;
import org.vdiskload.image.LayerRun;
import org.vdiskload.io.Holes;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.util.Optional;

/**
 * A raw file. Holes in the host file map as zeros, as qemu-img map shows them. The size is the file's
 * rounded up to a 512-byte sector, as qemu's block layer sees it; the tail past EOF reads as zeros.
 */
final class RawLayer implements ImageLayer {
    private final ImageFile file;
    private final long size;
    private volatile Holes.Probe holes;
    private volatile boolean holesTried;

    RawLayer(ImageFile file) throws IOException {
        this.file = file;
        long bytes = file.size();
        this.size = Math.addExact(bytes, 511) & ~511L;
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
            if (data > pos) return LayerRun.zero(data - pos);
            long hole = h.nextHole(pos, end);
            if (hole > pos) return LayerRun.data(hole - pos, file, pos);
        }
        return LayerRun.data(maxLength, file, pos);
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
    public void close() throws IOException {
        Holes.Probe h = holes;
        if (h != null) h.close();
        file.close();
    }
}
