package org.vdiskload.format.vdi;

import org.vdiskload.check.CheckReport;
import org.vdiskload.check.RepairMode;
import org.vdiskload.image.BackingRef;
import org.vdiskload.image.Beneath;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.LayerInfo;
import org.vdiskload.image.LayerRun;
import org.vdiskload.image.MapChangeListener;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/** A VDI image (dynamic or static): 1 MiB blocks through the block map; no backing file. */
final class VdiLayer implements ImageLayer {
    private final ImageFile file;
    // Replaced together by resize, which the caller runs with no other access to the layer.
    private volatile VdiHeader header;
    private volatile VdiBlockMap map;
    /** Null when the file is open read-only. */
    private volatile VdiWriter writer;
    /** Forwards to the listener set last, so a writer made anew by resize reports to it too. */
    private volatile MapChangeListener listener = MapChangeListener.NONE;
    /** Metadata write-through, for a writer made anew by resize too. */
    private volatile boolean writeThrough;

    VdiLayer(ImageFile file, VdiHeader header, VdiBlockMap map) {
        this.file = file;
        this.header = header;
        this.map = map;
        this.writer = file.isWritable() ? new VdiWriter(file, header, map, this::mapChanged) : null;
    }

    private void mapChanged(long pos, long length) {
        listener.changed(pos, length);
    }

    @Override
    public String formatName() {
        return "vdi";
    }

    @Override
    public ImageFile file() {
        return file;
    }

    @Override
    public long size() {
        return header.virtualSize();
    }

    @Override
    public LayerRun map(long pos, long maxLength) {
        VdiHeader header = this.header;
        VdiBlockMap map = this.map;
        long blockSize = VdiHeader.BLOCK_SIZE;
        long end = pos + maxLength;
        int block = (int) (pos / blockSize);
        int first = map.entry(block);
        long runEnd = Math.min(end, (block + 1L) * blockSize);
        // Extend over following blocks of the same kind; data blocks only while consecutive in the file.
        int expected = first + 1;
        while (runEnd < end) {
            int e = map.entry(++block);
            boolean continues = VdiBlockMap.isData(first)
                    ? VdiBlockMap.isData(e) && e == expected++ && !header.slotHoldsMetadata(Integer.toUnsignedLong(e))
                    : e == first;
            if (!continues) break;
            runEnd = Math.min(end, (block + 1L) * blockSize);
        }
        long length = runEnd - pos;
        if (VdiBlockMap.isData(first) && header.slotHoldsMetadata(Integer.toUnsignedLong(first))) {
            // A block on the header or the map (a corrupt entry): the library serves it, no one writes there.
            return LayerRun.encoded(Math.min(length, (pos / blockSize + 1) * blockSize - pos));
        }
        return switch (first) {
            case VdiBlockMap.UNALLOCATED -> LayerRun.unallocated(length);
            case VdiBlockMap.ZERO -> LayerRun.zero(length);
            // An allocated block belongs to this image alone: writable in place.
            default -> new LayerRun(length, LayerRun.Status.DATA, file,
                    header.blockOffset(Integer.toUnsignedLong(first)) + pos % blockSize, writer != null);
        };
    }

    /** A block whose entry names a slot on the metadata ({@link VdiHeader#slotHoldsMetadata}), read as qemu reads it. */
    @Override
    public void readEncoded(ByteBuffer dst, long pos) throws IOException {
        long blockSize = VdiHeader.BLOCK_SIZE;
        int e = map.entry((int) (pos / blockSize));
        file.readPadded(dst, header.blockOffset(Integer.toUnsignedLong(e)) + pos % blockSize);
    }

    @Override
    public Optional<BackingRef> backing() {
        return Optional.empty();
    }

    @Override
    public LayerInfo info() {
        return new LayerInfo("vdi", size(), (long) VdiHeader.BLOCK_SIZE, null, List.of(), Map.of());
    }

    @Override
    public boolean writable() {
        return writer != null;
    }

    @Override
    public void write(ByteBuffer src, long pos, Beneath beneath) throws IOException {
        requireWriter().write(src, pos, beneath);
    }

    @Override
    public void writeZeroes(long pos, long length, boolean mayUnmap, Beneath beneath) throws IOException {
        requireWriter().writeZeroes(pos, length, mayUnmap);
    }

    @Override
    public int allocationUnit() {
        // A dynamic image's new block is written whole; a static one's blocks all exist, as sparse as the file.
        return writer != null && header.imageType() != VdiHeader.TYPE_STATIC ? VdiHeader.BLOCK_SIZE : 0;
    }

    /** A block: where the block map changes. */
    @Override
    public long mappingUnit() {
        return VdiHeader.BLOCK_SIZE;
    }

    @Override
    public void setMapChangeListener(MapChangeListener l) {
        listener = l;
    }

    @Override
    public void setMetadataWriteThrough(boolean on) throws IOException {
        requireWriter().setMetadataWriteThrough(on);
        writeThrough = on;
    }

    @Override
    public void flush() throws IOException {
        if (writer != null) writer.flush();
    }

    @Override
    public CheckReport check(RepairMode mode) throws IOException {
        if (writer != null) writer.flush(); // the check reads the map from the file
        long allocated = writer != null ? writer.blocksAllocated() : header.blocksAllocated();
        return new VdiCheck(file, header, map).run(allocated, writer, mode);
    }

    @Override
    public void resize(long newSize, boolean allowShrink) throws IOException {
        requireWriter().flush();
        VdiResize.resize(file, newSize, allowShrink);
        ByteBuffer b = file.readStruct(0, VdiHeader.LENGTH, ByteOrder.LITTLE_ENDIAN, "VDI header");
        header = VdiHeader.parse(b, file.path());
        map = VdiBlockMap.read(file, header);
        writer = new VdiWriter(file, header, map, this::mapChanged);
        writer.setMetadataWriteThrough(writeThrough);
    }

    private VdiWriter requireWriter() throws ImageException {
        if (writer == null) throw ImageException.invalid(file.path(), "image is open read-only");
        return writer;
    }

    @Override
    public void close() throws IOException {
        file.close();
    }
}
