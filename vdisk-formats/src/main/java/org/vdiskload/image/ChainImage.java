package org.vdiskload.image;

import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.Bytes;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A top layer and its backing chain as one disk. Walks the layers for reads and maps: what a layer
 * leaves unallocated comes from the next one; past the end of a shorter backing file, zeros.
 */
final class ChainImage implements DiskImage {
    private final List<ImageLayer> layers;
    private final AtomicBoolean closed = new AtomicBoolean();

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
            if (run.status() == LayerRun.Status.UNALLOCATED) mapBelow(depth, pos, n, out);
            else append(out, Extent.of(pos, n, depth, run, depth == 0 && layer.writable()));
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
    public boolean isWritable() {
        return layers.get(0).writable();
    }

    private ImageLayer writableTop() throws ImageException {
        ImageLayer top = layers.get(0);
        if (!top.writable()) throw ImageException.invalid(path(), "image is open read-only");
        return top;
    }

    /** The chain beneath the top layer, for copy-on-write. */
    private final Beneath beneath = new Beneath() {
        @Override
        public void read(ByteBuffer dst, long pos) throws IOException {
            if (layers.size() < 2) {
                Bytes.fillZero(dst);
                return;
            }
            long inside = Math.max(0, Math.min(dst.remaining(), layers.get(1).size() - pos));
            ByteBuffer head = dst.slice(dst.position(), (int) inside);
            readFrom(1, head, pos);
            dst.position(dst.position() + (int) inside);
            Bytes.fillZero(dst);
        }

        @Override
        public boolean exists() {
            return layers.size() > 1;
        }
    };

    @Override
    public void write(ByteBuffer src, long pos) throws IOException {
        ImageLayer top = writableTop();
        checkRange(pos, src.remaining());
        if (src.hasRemaining()) top.write(src, pos, beneath);
    }

    @Override
    public void writeZeroes(long pos, long length, boolean mayUnmap) throws IOException {
        ImageLayer top = writableTop();
        checkRange(pos, length);
        if (length > 0) top.writeZeroes(pos, length, mayUnmap, beneath);
    }

    @Override
    public void flush() throws IOException {
        if (layers.get(0).writable()) layers.get(0).flush();
    }

    /** The top layer's: only it is written. */
    @Override
    public long mappingUnit() {
        return layers.get(0).mappingUnit();
    }

    /** The layer's reports, clipped to the disk (a layer reports whole units, and the last may reach past its end). */
    @Override
    public void setMapChangeListener(MapChangeListener listener) {
        layers.get(0).setMapChangeListener(listener == null ? MapChangeListener.NONE : (pos, length) -> {
            long end = Math.min(pos + length, size());
            if (end > pos) listener.changed(pos, end - pos);
        });
    }

    @Override
    public void prepareForWrites() throws IOException {
        if (layers.get(0).writable()) layers.get(0).prepareForWrites();
    }

    @Override
    public void setMetadataWriteThrough(boolean on) throws IOException {
        if (layers.get(0).writable()) layers.get(0).setMetadataWriteThrough(on);
    }

    /** As Closeable asks: closing again does nothing (a second flush would fail on the closed files). */
    @Override
    public void close() throws IOException {
        if (closed.getAndSet(true)) return;
        IOException failed = null;
        if (layers.get(0).writable()) {
            try {
                layers.get(0).flush();
            } catch (IOException e) {
                failed = e;
            }
        }
        try {
            Images.closeAll(layers);
        } catch (IOException e) {
            if (failed == null) failed = e;
            else failed.addSuppressed(e);
        }
        if (failed != null) throw failed;
    }
}
