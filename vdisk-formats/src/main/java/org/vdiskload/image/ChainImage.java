package org.vdiskload.image;

import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.Bytes;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A top layer and its backing chain as one disk. Walks the layers for reads and maps: what a layer
 * leaves unallocated comes from the next one; past the end of a shorter backing file, zeros.
 */
final class ChainImage implements DiskImage {
    private final List<ImageLayer> layers;

    ChainImage(List<ImageLayer> layers) {
        this.layers = List.copyOf(layers);
    }

    @Override
    public Path path() {
        return layers.get(0).file().path();
    }

    @Override
    public String formatName() {
        return layers.get(0).formatName();
    }

    @Override
    public long size() {
        return layers.get(0).size();
    }

    @Override
    public List<ImageLayer> layers() {
        return layers;
    }

    private void checkRange(long pos, long length) throws ImageException {
        if (pos < 0 || length < 0 || pos > size() || length > size() - pos) {
            throw ImageException.invalid(path(), "range " + pos + "+" + length + " is outside the disk (" + size() + " bytes)");
        }
    }

    @Override
    public void read(ByteBuffer dst, long pos) throws IOException {
        checkRange(pos, dst.remaining());
        readFrom(0, dst, pos);
    }

    private void readFrom(int depth, ByteBuffer dst, long pos) throws IOException {
        while (dst.hasRemaining()) {
            if (depth >= layers.size() || pos >= layers.get(depth).size()) {
                Bytes.fillZero(dst);
                return;
            }
            ImageLayer layer = layers.get(depth);
            long want = Math.min(dst.remaining(), layer.size() - pos);
            LayerRun run = layer.map(pos, want);
            int n = (int) Math.min(run.length(), want);
            ByteBuffer part = dst.slice(dst.position(), n);
            switch (run.status()) {
                case DATA -> run.file().readPadded(part, run.fileOffset());
                case ZERO -> Bytes.fillZero(part);
                case ENCODED -> layer.readEncoded(part, pos);
                case UNALLOCATED -> readFrom(depth + 1, part, pos);
            }
            dst.position(dst.position() + n);
            pos += n;
        }
    }

    @Override
    public List<Extent> map(long pos, long length) throws IOException {
        checkRange(pos, length);
        List<Extent> out = new ArrayList<>();
        mapFrom(0, pos, length, out);
        return out;
    }

    /** Maps {@code [pos, pos+length)}, which lies inside layer {@code depth}. */
    private void mapFrom(int depth, long pos, long length, List<Extent> out) throws IOException {
        ImageLayer layer = layers.get(depth);
        long end = pos + length;
        while (pos < end) {
            LayerRun run = layer.map(pos, end - pos);
            long n = Math.min(run.length(), end - pos);
            switch (run.status()) {
                case DATA -> append(out, Extent.data(pos, n, depth, run.file(), run.fileOffset()));
                case ZERO -> append(out, Extent.zero(pos, n, depth, true));
                case ENCODED -> append(out, Extent.needsLibrary(pos, n, depth));
                case UNALLOCATED -> mapBelow(depth, pos, n, out);
            }
            pos += n;
        }
    }

    /**
     * Maps a range layer {@code depth} leaves unallocated. As in qemu, a range past the end of a
     * shorter backing file, or with no backing file at all, is unallocated zeros of this layer.
     */
    private void mapBelow(int depth, long pos, long length, List<Extent> out) throws IOException {
        long backingSize = depth + 1 < layers.size() ? layers.get(depth + 1).size() : 0;
        long inBacking = Math.max(0, Math.min(length, backingSize - pos));
        if (inBacking > 0) mapFrom(depth + 1, pos, inBacking, out);
        if (inBacking < length) append(out, Extent.zero(pos + inBacking, length - inBacking, depth, false));
    }

    private static void append(List<Extent> out, Extent e) {
        int last = out.size() - 1;
        if (last >= 0 && out.get(last).joins(e)) out.set(last, out.get(last).joinedWith(e));
        else out.add(e);
    }

    @Override
    public void close() throws IOException {
        Images.closeAll(layers);
    }
}
