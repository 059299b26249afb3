package org.vdiskload.format.vdi;

import org.vdiskload.check.CheckReport;
import org.vdiskload.check.RepairMode;
import org.vdiskload.image.BackingRef;
import org.vdiskload.image.Beneath;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.LayerInfo;
import org.vdiskload.image.LayerRun;
import org.vdiskload.image.MapChangeListener;
import org.vdiskload.image.ReferencePolicy;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;

/**
 * A VDI image (dynamic, static or differencing): 1 MiB blocks through the block map. A differencing image's
 * unallocated blocks read from its parent, found by {@link VdiParentSearch}; its discarded blocks read as zeros.
 */
final class VdiLayer implements ImageLayer {
    private static final int UUID_MODIFY_AT = 0x198;
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
    /** A differencing image's parent, or null. */
    private final BackingRef parent;
    /** Whether this opening gave the image a new {@code uuidModify} (at its first write, as VirtualBox does). */
    private volatile boolean modified;

    VdiLayer(ImageFile file, VdiHeader header, VdiBlockMap map, BackingRef parent) {
        this.file = file;
        this.parent = parent;
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
            // An allocated block belongs to this image alone: writable in place, once the image has its new
            // modification UUID (a write in place would not give it one).
            default -> new LayerRun(length, LayerRun.Status.DATA, file,
                    header.blockOffset(Integer.toUnsignedLong(first)) + pos % blockSize, writer != null && modified);
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
        return Optional.ofNullable(parent);
    }

    /** The parent opened must be the VDI the child names, as it was when the child was made (VDICore.h's UUIDs). */
    @Override
    public void checkBacking(ImageLayer backing) throws ImageException {
        if (!(backing instanceof VdiLayer p)) {
            throw ImageException.unsupported(file.path(), "the parent of a differencing VDI must be a VDI image, not " + backing.formatName());
        }
        VdiHeader h = header;
        VdiHeader ph = p.header;
        if (!ph.uuidCreate().equals(h.uuidLinkage())) {
            throw ImageException.invalid(file.path(), "parent " + ReferencePolicy.printable(p.file.path().toString()) + " has UUID "
                    + VdiUuid.text(ph.uuidCreate()) + " but this differencing image names " + VdiUuid.text(h.uuidLinkage()) + " (uuidLinkage)");
        }
        if (!h.uuidParentModify().equals(VdiUuid.NONE) && !ph.uuidModify().equals(h.uuidParentModify())) {
            throw ImageException.invalid(file.path(), "parent " + ReferencePolicy.printable(p.file.path().toString())
                    + " has modification UUID " + VdiUuid.text(ph.uuidModify()) + " but this differencing image was made against "
                    + VdiUuid.text(h.uuidParentModify()) + " (uuidParentModify): the parent was written since");
        }
    }

    @Override
    public LayerInfo info() {
        VdiHeader h = header;
        Map<String, Object> specific = new LinkedHashMap<>();
        if (h.isDiff()) { // what VBoxManage showmediuminfo shows of the chain
            specific.put("uuid", h.uuidCreate().toString());
            specific.put("parent-uuid", h.uuidLinkage().toString());
            specific.put("parent-modification-uuid", h.uuidParentModify().toString());
        }
        return new LayerInfo("vdi", size(), (long) VdiHeader.BLOCK_SIZE, null, List.of(), specific);
    }

    @Override
    public boolean writable() {
        return writer != null;
    }

    @Override
    public void write(ByteBuffer src, long pos, Beneath beneath) throws IOException {
        VdiWriter w = requireWriter();
        newModificationUuid();
        w.write(src, pos, beneath);
    }

    @Override
    public void writeZeroes(long pos, long length, boolean mayUnmap, Beneath beneath) throws IOException {
        VdiWriter w = requireWriter();
        newModificationUuid();
        w.writeZeroes(pos, length, mayUnmap, beneath);
    }

    @Override
    public void prepareForWrites() throws IOException {
        requireWriter();
        newModificationUuid();
    }

    /**
     * Before the first change of the image's content after opening, a new {@code uuidModify}, durable before
     * that change (VirtualBox's vdSetModifiedFlag does the same): a differencing image made against this one
     * records the old one ({@code uuidParentModify}) and is refused from then on instead of showing a mix.
     */
    private void newModificationUuid() throws IOException {
        if (modified) return;
        synchronized (this) {
            if (modified) return;
            UUID next;
            do {
                next = UUID.randomUUID();
            } while (next.equals(header.uuidModify()));
            ByteBuffer b = ByteBuffer.allocate(16);
            VdiUuid.put(b, 0, next);
            file.writeFully(b, UUID_MODIFY_AT);
            file.force(false);
            header = header.withUuidModify(next);
            modified = true;
            listener.changed(0, size()); // allocated blocks map in place from now on
        }
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
        if (parent != null) throw ImageException.unsupported(file.path(), "resizing a differencing VDI is not supported");
        requireWriter().flush();
        VdiResize.resize(file, newSize, allowShrink);
        ByteBuffer b = file.readStruct(0, VdiHeader.LENGTH, ByteOrder.LITTLE_ENDIAN, "VDI header");
        header = VdiHeader.parse(b, file.path());
        map = VdiBlockMap.read(file, header);
        writer = new VdiWriter(file, header, map, this::mapChanged);
        writer.setMetadataWriteThrough(writeThrough);
        // After the resize, which validates before it writes: a refused resize leaves the file as it was.
        newModificationUuid();
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
