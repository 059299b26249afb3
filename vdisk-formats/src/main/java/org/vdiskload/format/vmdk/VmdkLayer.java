package org.vdiskload.format.vmdk;

import org.vdiskload.check.CheckReport;
import org.vdiskload.check.RepairMode;
import org.vdiskload.image.BackingRef;
import org.vdiskload.image.Beneath;
import org.vdiskload.image.CompressedUnit;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.LayerInfo;
import org.vdiskload.image.LayerRun;
import org.vdiskload.image.MapChangeListener;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ThreadLocalRandom;

/** An opened VMDK: its extents laid end to end, and what the descriptor says about the disk. */
final class VmdkLayer implements ImageLayer {
    private final ImageFile file;
    private final List<ImageFile> files;
    private final List<VmdkExtent> extents;
    private final long[] starts;
    private final long size;
    private final String createType;
    private final DescriptorCid descriptor;
    private volatile long cid;
    private final long parentCid;
    private final String parentHint;
    private final Map<String, String> ddb;
    /** Whether this open has given the disk a new CID yet (qemu does on the first write after each open). */
    private volatile boolean cidUpdated;
    private volatile MapChangeListener listener = MapChangeListener.NONE;

    /**
     * @param file   the file opened (descriptor or monolithic sparse file)
     * @param files  every distinct file the layer reads, {@code file} first; the layer closes them
     * @param descriptor where the descriptor lies, to give it a new CID when the disk is first written
     */
    VmdkLayer(ImageFile file, List<ImageFile> files, List<VmdkExtent> extents, String createType, DescriptorCid descriptor,
              long cid, long parentCid, String parentHint, Map<String, String> ddb) {
        this.file = file;
        this.descriptor = descriptor;
        this.files = List.copyOf(files);
        this.extents = List.copyOf(extents);
        this.starts = new long[extents.size()];
        long total = 0;
        for (int i = 0; i < extents.size(); i++) {
            starts[i] = total;
            total = Math.addExact(total, extents.get(i).size());
        }
        this.size = total;
        this.createType = createType;
        this.cid = cid;
        this.parentCid = parentCid;
        this.parentHint = parentHint;
        this.ddb = ddb;
    }

    @Override
    public String formatName() {
        return "vmdk";
    }

    @Override
    public ImageFile file() {
        return file;
    }

    @Override
    public List<ImageFile> files() {
        return files;
    }

    @Override
    public long size() {
        return size;
    }

    /** The extent holding {@code pos} (extents of size 0 never hold anything). */
    private int extentAt(long pos) {
        int i = Arrays.binarySearch(starts, pos);
        if (i < 0) return -i - 2;
        while (i + 1 < starts.length && starts[i + 1] == pos) i++;
        return i;
    }

    @Override
    public LayerRun map(long pos, long maxLength) throws IOException {
        int i = extentAt(pos);
        long off = pos - starts[i];
        LayerRun run = extents.get(i).map(off, Math.min(maxLength, extents.get(i).size() - off));
        // A write that bypasses this layer must not leave the old CID in place: in-place only once it changed.
        return run.inPlace() && !cidUpdated ? LayerRun.data(run.length(), run.file(), run.fileOffset()) : run;
    }

    @Override
    public void readEncoded(ByteBuffer dst, long pos) throws IOException {
        while (dst.hasRemaining()) {
            int i = extentAt(pos);
            long off = pos - starts[i];
            int n = (int) Math.min(dst.remaining(), extents.get(i).size() - off);
            extents.get(i).readEncoded(dst.slice(dst.position(), n), off);
            dst.position(dst.position() + n);
            pos += n;
        }
    }

    /**
     * The parent must still have the CID this delta was made against (its parentCID), and be a VMDK at
     * all. qemu (vmdk_is_cid_valid) opens such a delta and fails each read that falls through to the
     * stale parent; we refuse at open instead, which keeps the read path free of checks and gives
     * one clear message before anything is served.
     */
    @Override
    public void checkBacking(ImageLayer backing) throws ImageException {
        if (!(backing instanceof VmdkLayer parent)) {
            throw ImageException.corrupt(file.path(), ImageException.NO_OFFSET, "parentCID",
                    "backing file " + backing.file().path() + " is not a VMDK image, so its CID cannot match parentCID");
        }
        if (parent.cid != parentCid) {
            throw ImageException.corrupt(file.path(), ImageException.NO_OFFSET, "parentCID", String.format(
                    "parentCID %08x does not match the CID %08x of backing file %s (the parent changed after this delta was made)",
                    parentCid, parent.cid, parent.file.path()));
        }
    }

    @Override
    public Optional<BackingRef> backing() {
        return parentHint == null ? Optional.empty() : Optional.of(new BackingRef(parentHint, "vmdk"));
    }

    @Override
    public LayerInfo info() {
        Map<String, Object> data = new LinkedHashMap<>();
        data.put("cid", cid);
        data.put("parent-cid", parentCid);
        data.put("create-type", createType);
        List<Map<String, Object>> list = new ArrayList<>();
        for (VmdkExtent e : extents) list.add(e.info());
        data.put("extents", list);
        if (!ddb.isEmpty()) data.put("ddb", ddb);
        return new LayerInfo("vmdk", size, clusterSize(), false, List.of(), data);
    }

    /** As qemu: the grain size, if every extent is sparse alike (same grain size and compression). */
    private Long clusterSize() {
        VmdkExtent first = extents.get(0);
        if (first.grainSize() == 0) return null;
        for (VmdkExtent e : extents) {
            if (e.grainSize() != first.grainSize() || e.compressed() != first.compressed()) return null;
        }
        return first.grainSize();
    }

    long cid() {
        return cid;
    }

    @Override
    public boolean writable() {
        return file.isWritable();
    }

    /** As qemu (vmdk_write_cid): the first write after each open gives the disk a new CID, before any data changes. */
    private void updateCid() throws IOException {
        if (cidUpdated) return;
        synchronized (this) {
            if (cidUpdated) return;
            long next;
            do {
                next = ThreadLocalRandom.current().nextLong(0x1_0000_0000L);
            } while (next == cid || next == 0xffffffffL);
            descriptor.rewrite(next);
            cid = next;
            cidUpdated = true;
            listener.changed(0, size); // allocated grains map in place from now on
        }
    }

    @Override
    public void prepareForWrites() throws IOException {
        requireWritable();
        updateCid();
    }

    /**
     * The largest grain of a sparse extent: its grains are where a write changes the map. A sparse extent
     * whose grain is not a power of two, or that does not start at a multiple of it in the disk, is refused
     * for writing ({@link #requireGrainsAligned}), so that unit holds for every extent written.
     */
    @Override
    public long mappingUnit() {
        long unit = 512;
        for (VmdkExtent e : extents) unit = Math.max(unit, e.grainSize());
        return unit;
    }

    /** No tool makes extents like these; the map's changes would straddle {@link #mappingUnit}'s. */
    private void requireGrainsAligned(int i) throws ImageException {
        long grain = extents.get(i).grainSize();
        if (grain == 0) return;
        if (Long.bitCount(grain) != 1 || starts[i] % grain != 0) {
            throw ImageException.unsupported(file.path(), "extent " + (i + 1) + " cannot be written: its grain of " + grain
                    + " bytes is not a power of two or it starts at disk offset " + starts[i] + ", not a multiple of it");
        }
    }

    @Override
    public void setMetadataWriteThrough(boolean on) throws IOException {
        requireWritable();
        for (VmdkExtent e : extents) e.setMetadataWriteThrough(on);
    }

    @Override
    public void setMapChangeListener(MapChangeListener l) {
        listener = l;
        for (int i = 0; i < extents.size(); i++) {
            long base = starts[i];
            long end = base + extents.get(i).size();
            extents.get(i).setMapChangeListener((pos, length) -> {
                long n = Math.min(length, end - base - pos);
                if (n > 0) l.changed(base + pos, n);
            });
        }
    }

    private void requireWritable() throws ImageException {
        if (!file.isWritable()) throw ImageException.invalid(file.path(), "image is open read-only");
    }

    @Override
    public void write(ByteBuffer src, long pos, Beneath beneath) throws IOException {
        requireWritable();
        long end = pos + src.remaining();
        for (int i = extentAt(pos); i < extents.size() && starts[i] < end; i++) {
            if (extents.get(i) instanceof ZeroExtent) {
                throw ImageException.unsupported(file.path(), "the ZERO extent at disk offset " + starts[i] + " cannot hold data");
            }
            extents.get(i).requireWritable();
            requireGrainsAligned(i);
        }
        updateCid();
        while (src.hasRemaining()) {
            int i = extentAt(pos);
            long off = pos - starts[i];
            int n = (int) Math.min(src.remaining(), extents.get(i).size() - off);
            extents.get(i).write(src.slice(src.position(), n), off, beneath, starts[i]);
            src.position(src.position() + n);
            pos += n;
        }
    }

    @Override
    public void writeZeroes(long pos, long length, boolean mayUnmap, Beneath beneath) throws IOException {
        requireWritable();
        long end = pos + length;
        for (int i = extentAt(pos); i < extents.size() && starts[i] < end; i++) {
            extents.get(i).requireWritable();
            requireGrainsAligned(i);
        }
        updateCid();
        while (pos < end) {
            int i = extentAt(pos);
            long off = pos - starts[i];
            long n = Math.min(end - pos, extents.get(i).size() - off);
            extents.get(i).writeZeroes(off, n, mayUnmap, beneath, starts[i]);
            pos += n;
        }
    }

    @Override
    public void flush() throws IOException {
        if (!file.isWritable()) return;
        for (VmdkExtent e : extents) e.flush(); // the descriptor was forced when its CID changed
    }

    /** streamOptimized: grains are written compressed, one whole grain at a time. */
    @Override
    public int compressionUnit() {
        long grain = extents.get(0).grainSize();
        for (VmdkExtent e : extents) if (!e.compressed() || e.grainSize() != grain) return 0;
        return (int) grain;
    }

    @Override
    public boolean writesCompressed() {
        return compressionUnit() > 0;
    }

    /** streamOptimized: a grain is appended once, compressed (SparseExtent refuses to write it again). */
    @Override
    public boolean appendOnly() {
        return writesCompressed();
    }

    @Override
    public CompressedUnit compress(ByteBuffer unit, long pos) throws IOException {
        requireWritable();
        int i = extentAt(pos);
        if (compressionUnit() == 0 || pos - starts[i] + unit.remaining() > extents.get(i).size()) {
            throw ImageException.unsupported(file.path(), "only stream-optimized VMDK images hold compressed grains");
        }
        return CompressedUnit.packed(pos, ((SparseExtent) extents.get(i)).compressGrain(unit, pos - starts[i]));
    }

    @Override
    public void writeCompressed(CompressedUnit unit) throws IOException {
        requireWritable();
        int i = extentAt(unit.pos());
        updateCid();
        ((SparseExtent) extents.get(i)).appendCompressed(unit.packed(), unit.pos() - starts[i]);
    }

    @Override
    public void resize(long newSize, boolean allowShrink) throws ImageException {
        throw ImageException.unsupported(file.path(), "resizing VMDK images is not supported (qemu-img cannot resize them either)");
    }

    /**
     * As qemu's vmdk check: every allocated grain of every sparse extent must start inside its file (and
     * every seSparse grain table read and check cleanly); the first that does not ends the check, as a corruption qemu-img reports as a failed check (exit 1).
     * qemu keeps no allocation accounting for VMDK, so there are no leaks to find or repair.
     */
    @Override
    public CheckReport check(RepairMode mode) throws IOException {
        for (int i = 0; i < extents.size(); i++) {
            VmdkExtent e = extents.get(i);
            String problem = e.check(starts[i]);
            if (problem != null) {
                return new CheckReport("vmdk", 1, 0, 1, 0, 0, List.of("ERROR: " + problem + " (" + e.file().path() + ")"),
                        null, null, null, null, null);
            }
        }
        return new CheckReport("vmdk", 0, 0, 0, 0, 0, List.of(), null, null, null, null, null);
    }

    @Override
    public void close() throws IOException {
        IOException first = null;
        for (ImageFile f : files) {
            try {
                f.close();
            } catch (IOException e) {
                if (first == null) first = e;
            }
        }
        if (first != null) throw first;
    }
}
