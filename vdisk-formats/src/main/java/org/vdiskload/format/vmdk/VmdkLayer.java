package org.vdiskload.format.vmdk;

import org.vdiskload.image.BackingRef;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.LayerInfo;
import org.vdiskload.image.LayerRun;
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

/** An opened VMDK: its extents laid end to end, and what the descriptor says about the disk. */
final class VmdkLayer implements ImageLayer {
    private final ImageFile file;
    private final List<ImageFile> files;
    private final List<VmdkExtent> extents;
    private final long[] starts;
    private final long size;
    private final String createType;
    private final long cid;
    private final long parentCid;
    private final String parentHint;
    private final Map<String, String> ddb;

    /**
     * @param file   the file opened (descriptor or monolithic sparse file)
     * @param files  every distinct file the layer reads, {@code file} first; the layer closes them
     */
    VmdkLayer(ImageFile file, List<ImageFile> files, List<VmdkExtent> extents, String createType, long cid,
              long parentCid, String parentHint, Map<String, String> ddb) {
        this.file = file;
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
        return extents.get(i).map(off, Math.min(maxLength, extents.get(i).size() - off));
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
