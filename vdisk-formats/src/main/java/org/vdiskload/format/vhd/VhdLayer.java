package org.vdiskload.format.vhd;

import org.vdiskload.check.CheckReport;
import org.vdiskload.check.RepairMode;
import org.vdiskload.image.BackingRef;
import org.vdiskload.image.Beneath;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.LayerInfo;
import org.vdiskload.image.LayerRun;
import org.vdiskload.image.MapChangeListener;
import org.vdiskload.io.Bytes;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * One VHD file. A fixed disk is its data followed by the footer, written in place; a dynamic or
 * differencing disk maps through its BAT and sector bitmaps ({@link VhdBlockMap}) and is written
 * by {@link VhdWriter}.
 */
final class VhdLayer implements ImageLayer {
    private static final int ZERO_CHUNK = 1 << 20;

    private final ImageFile file;
    private final VhdFooter footer;
    private final VhdDynamicHeader header;
    private final VhdBlockMap blocks;
    private final VhdWriter writer;
    private final BackingRef backing;
    private final boolean writable;
    private final long size;

    /** A fixed disk. */
    VhdLayer(ImageFile file, VhdFooter footer, boolean writable) {
        this(file, footer, null, null, null, null, writable);
    }

    /** A dynamic disk ({@code parents} null) or a differencing disk; {@code writer} null when read-only. */
    VhdLayer(ImageFile file, VhdFooter footer, VhdDynamicHeader header, VhdBlockMap blocks, VhdWriter writer,
             List<String> parents) {
        this(file, footer, header, blocks, writer, parents, writer != null);
    }

    private VhdLayer(ImageFile file, VhdFooter footer, VhdDynamicHeader header, VhdBlockMap blocks, VhdWriter writer,
                     List<String> parents, boolean writable) {
        this.file = file;
        this.footer = footer;
        this.header = header;
        this.blocks = blocks;
        this.writer = writer;
        this.backing = parents == null ? null : new BackingRef(parents, "vpc");
        this.writable = writable;
        this.size = footer.virtualSize();
    }

    VhdFooter footer() {
        return footer;
    }

    VhdDynamicHeader header() {
        return header;
    }

    @Override
    public String formatName() {
        return "vpc";
    }

    @Override
    public ImageFile file() {
        return file;
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public LayerRun map(long pos, long maxLength) throws IOException {
        if (blocks != null) return blocks.map(pos, maxLength);
        return writable ? LayerRun.dataInPlace(maxLength, file, pos) : LayerRun.data(maxLength, file, pos);
    }

    /** The sectors of a block lying on metadata ({@link VhdBlockMap#overlaps}), read as qemu reads them. */
    @Override
    public void readEncoded(ByteBuffer dst, long pos) throws IOException {
        long blockSize = blocks.bat().blockSize();
        while (dst.hasRemaining()) {
            long index = pos / blockSize;
            int n = (int) Math.min(dst.remaining(), blockSize - pos % blockSize);
            file.readPadded(dst.slice(dst.position(), n), blocks.bat().dataOffset(index) + pos % blockSize);
            dst.position(dst.position() + n);
            pos += n;
        }
    }

    @Override
    public Optional<BackingRef> backing() {
        return Optional.ofNullable(backing);
    }

    /** qemu-img info's view: a cluster size for dynamic and differencing disks, no format-specific data. */
    @Override
    public LayerInfo info() {
        Long cluster = header == null ? null : header.blockSize();
        return new LayerInfo("vpc", size, cluster, null, List.of(), Map.of());
    }

    @Override
    public boolean writable() {
        return writable;
    }

    @Override
    public void write(ByteBuffer src, long pos, Beneath beneath) throws IOException {
        requireWritable();
        if (writer == null) file.writeFully(src, pos);
        else writer.write(src, pos, beneath);
    }

    /**
     * VHD has no zero state, and a freed block could not be reused safely: zeros are written, except
     * where this layer already reads as zeros (unallocated, with nothing beneath).
     */
    @Override
    public void writeZeroes(long pos, long length, boolean mayUnmap, Beneath beneath) throws IOException {
        requireWritable();
        ByteBuffer zeros = ByteBuffer.allocate((int) Math.min(ZERO_CHUNK, length));
        long end = pos + length;
        while (pos < end) {
            LayerRun run = map(pos, Math.min(end - pos, ZERO_CHUNK));
            int n = (int) run.length();
            if (run.status() != LayerRun.Status.UNALLOCATED || beneath.exists()) {
                zeros.clear().limit(n);
                Bytes.fillZero(zeros);
                write(zeros.flip(), pos, beneath);
            }
            pos += n;
        }
    }

    /** A block of a dynamic or differencing disk (its BAT entry and sector bits); a fixed disk's map never changes. */
    @Override
    public long mappingUnit() {
        return header == null ? 512 : header.blockSize();
    }

    @Override
    public void setMapChangeListener(MapChangeListener listener) {
        if (writer != null) writer.setMapChangeListener(listener);
    }

    @Override
    public void flush() throws IOException {
        if (writable) file.force(true);
    }

    /** Our own structural check (qemu-img check has none for vpc); a fixed disk has nothing beyond what open checks. */
    @Override
    public CheckReport check(RepairMode mode) throws IOException {
        if (blocks == null) return new CheckReport("vpc", 0, 0, 0, 0, 0, List.of(), file.size(), null, null, null, null);
        return VhdChecker.check(file, header, blocks.bat(), writer, mode);
    }

    private void requireWritable() throws IOException {
        if (!writable) throw org.vdiskload.image.error.ImageException.invalid(file.path(), "image is open read-only");
    }

    @Override
    public void close() throws IOException {
        file.close();
    }
}
