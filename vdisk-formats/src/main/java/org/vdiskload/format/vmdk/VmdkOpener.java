package org.vdiskload.format.vmdk;

import org.vdiskload.image.OpenContext;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.image.error.RefusedReference;
import org.vdiskload.io.Checked;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Opens one VMDK layer, as qemu's vmdk_open does: a file starting with KDMV is a monolithic sparse disk
 * (or, with capacity 0, a sparse file that only carries a descriptor); anything else must be a text
 * descriptor, whose extent files are opened through {@link OpenContext#openReference}.
 */
final class VmdkOpener {
    /** qemu's list of descriptor createTypes, plus VMware's vmfsThin (a VMFS extent like vmfs). */
    static final Set<String> CREATE_TYPES = Set.of("monolithicFlat", "vmfs", "vmfsSparse", "seSparse",
            "twoGbMaxExtentSparse", "twoGbMaxExtentFlat", "vmfsThin");
    /** More extent files than this are refused (a 2 TB twoGbMaxExtent disk has about 1000). */
    static final int MAX_EXTENTS = 4096;

    private final ImageFile file;
    private final OpenContext context;
    private final Map<Path, ImageFile> opened = new LinkedHashMap<>();

    VmdkOpener(ImageFile file, OpenContext context) {
        this.file = file;
        this.context = context;
    }

    VmdkLayer open() throws IOException {
        opened.put(file.path().toAbsolutePath().normalize(), file);
        try {
            return openTop();
        } catch (IOException | RuntimeException e) {
            for (ImageFile f : opened.values()) {
                if (f != file) {
                    try {
                        f.close();
                    } catch (IOException suppressed) {
                        e.addSuppressed(suppressed);
                    }
                }
            }
            throw e;
        }
    }

    private VmdkLayer openTop() throws IOException {
        long size = file.size();
        if (size < 4) throw ImageException.invalid(file.path(), "is too small (" + size + " bytes) to be a VMDK image");
        ByteBuffer magic = file.readStruct(0, 4, ByteOrder.BIG_ENDIAN, "magic");
        if (magic.equals(ByteBuffer.wrap(CowdHeader.MAGIC))) {
            throw ImageException.unsupported(file.path(), "a COWD (VMDK3) extent has no descriptor of its own;"
                    + " open the descriptor that names it");
        }
        if (size >= 8 && file.readStruct(0, 8, ByteOrder.BIG_ENDIAN, "magic").equals(ByteBuffer.wrap(SeSparseHeader.MAGIC_BYTES))) {
            throw ImageException.unsupported(file.path(), "an ESXi seSparse extent has no descriptor of its own;"
                    + " open the descriptor that names it");
        }
        if (!magic.equals(ByteBuffer.wrap(SparseHeader.MAGIC))) {
            if (size > Descriptor.MAX_BYTES) {
                throw ImageException.invalid(file.path(), "is not a VMDK sparse file, and at " + size
                        + " bytes too large for a descriptor (limit " + Descriptor.MAX_BYTES + ")");
            }
            ByteBuffer text = file.readStruct(0, size, ByteOrder.LITTLE_ENDIAN, "descriptor");
            return fromDescriptor(Descriptor.parse(Descriptor.decode(bytes(text)), file, 0), new DescriptorCid(file, 0, -1));
        }
        SparseHeader header = SparseHeader.parse(file.readStruct(0, SparseHeader.SIZE, ByteOrder.LITTLE_ENDIAN, "header"), file, 0);
        Descriptor embedded = embeddedDescriptor(header);
        if (header.capacity() == 0 && embedded != null) {
            // qemu: a sparse file of capacity 0 carries a full descriptor whose extents make the disk.
            return fromDescriptor(embedded, new DescriptorCid(file, header.descriptorOffset() * 512, header.descriptorSize() * 512));
        }
        if (embedded == null) {
            throw ImageException.corrupt(file.path(), 28, "descriptorOffset", "sparse image has no embedded descriptor (and so no CID)");
        }
        SparseExtent extent = sparseExtent(file, header, "");
        long at = header.descriptorOffset() * 512;
        return new VmdkLayer(file, List.of(file), List.of(extent), extent.compressed() ? "streamOptimized" : "monolithicSparse",
                new DescriptorCid(file, at, header.descriptorSize() * 512), embedded.cid("CID", file, at), embedded.cid("parentCID", file, at), embedded.parentFileNameHint(), embedded.ddb());
    }

    private static byte[] bytes(ByteBuffer b) {
        byte[] a = new byte[b.remaining()];
        b.duplicate().get(a);
        return a;
    }

    private Descriptor embeddedDescriptor(SparseHeader h) throws IOException {
        if (h.descriptorOffset() == 0 || h.descriptorSize() == 0) return null;
        long at = h.descriptorOffset() * 512;
        long len = h.descriptorSize() * 512;
        if (len > Descriptor.MAX_BYTES + 1) {
            throw ImageException.corrupt(file.path(), 36, "descriptorSize", "embedded descriptor of " + len
                    + " bytes is over the " + Descriptor.MAX_BYTES + "-byte limit");
        }
        ByteBuffer text = file.readStruct(at, len, ByteOrder.LITTLE_ENDIAN, "embedded descriptor");
        return Descriptor.parse(Descriptor.decode(bytes(text)), file, at);
    }

    /** A sparse extent from its (KDMV) header, using the footer where the grain directory is at the end. */
    private SparseExtent sparseExtent(ImageFile f, SparseHeader header, String type) throws IOException {
        SparseHeader h = header.gdOffset() == SparseHeader.GD_AT_END ? StreamFooter.read(f) : header;
        if (f.size() < h.overhead() * 512) {
            throw ImageException.corrupt(f.path(), 64, "overHead", "file is truncated: the header expects at least "
                    + h.overhead() * 512 + " bytes");
        }
        long coverage = h.numGTEsPerGT() * h.grainSize();
        long gdEntries = (h.capacity() + coverage - 1) / coverage;
        if (gdEntries > 32L << 20) {
            throw ImageException.corrupt(f.path(), 12, "capacity", "grain directory of " + gdEntries
                    + " entries is over qemu's limit of " + (32 << 20));
        }
        long rgdOffset = 0;
        if (context.writable() && (h.flags() & SparseHeader.FLAG_RGD) != 0) {
            // Only a writer uses the redundant directory: it keeps the redundant grain tables in step.
            if (h.rgdOffset() <= 0 || h.rgdOffset() > Long.MAX_VALUE >> 9) {
                throw ImageException.corrupt(f.path(), 48, "rgdOffset", "redundant grain directory offset "
                        + Long.toUnsignedString(h.rgdOffset()) + " is outside the file or overlaps the header");
            }
            rgdOffset = h.rgdOffset() * 512;
        }
        SparseGeometry g = new SparseGeometry(h.capacity() * 512, h.grainSize() * 512, (int) h.numGTEsPerGT(),
                h.gdOffset() * 512, (int) gdEntries, h.compressed(), h.hasMarkers(), h.zeroGrains(),
                rgdOffset, header.gdOffset() == SparseHeader.GD_AT_END,
                Math.max(SparseHeader.SIZE, h.descriptorOffset() == 0 ? 0 : (h.descriptorOffset() + h.descriptorSize()) * 512));
        if (context.writable() && h.version() == 3 && !h.compressed()) {
            // As qemu: version 3 adds changed-block tracking, which a writer would have to keep up to date.
            throw ImageException.unsupported(f.path(), "VMDK version 3 sparse extents (changed-block tracking) can only be opened read-only");
        }
        return SparseExtent.open(f, g, type, context.cacheBytes(), context.writable());
    }

    private SparseExtent cowdExtent(ImageFile f, String type) throws IOException {
        CowdHeader h = CowdHeader.parse(f.readStruct(0, CowdHeader.SIZE, ByteOrder.LITTLE_ENDIAN, "header"), f);
        if (h.gdEntries() > 32L << 20) {
            throw ImageException.corrupt(f.path(), 24, "l1dir_size", "grain directory of " + h.gdEntries()
                    + " entries is over qemu's limit of " + (32 << 20));
        }
        SparseGeometry g = new SparseGeometry(h.capacity() * 512, h.grainSize() * 512, CowdHeader.GTES_PER_GT,
                h.gdOffset() * 512, (int) h.gdEntries(), false, false, false, 0, false, 512);
        return SparseExtent.open(f, g, type, context.cacheBytes(), context.writable());
    }

    private VmdkLayer fromDescriptor(Descriptor d, DescriptorCid where) throws IOException {
        long at = where.offset();
        String createType = d.createType();
        if (createType == null) throw ImageException.corrupt(file.path(), at, "createType", "invalid VMDK descriptor: no createType");
        if (!CREATE_TYPES.contains(createType)) {
            throw ImageException.unsupported(file.path(), "unsupported VMDK image type '" + createType + "'");
        }
        long cid = d.cid("CID", file, at);
        long parentCid = d.cid("parentCID", file, at);
        List<VmdkExtent> extents = new ArrayList<>();
        long total = 0;
        for (ExtentLine line : d.extents()) {
            if (line.sectors() == 0) continue; // as qemu: contributes nothing
            if (extents.size() >= MAX_EXTENTS) {
                throw ImageException.unsupported(file.path(), "descriptor names more than " + MAX_EXTENTS + " extents");
            }
            VmdkExtent e = extent(line, at);
            total = Checked.add(file, at, "extent sizes", total, e.size());
            extents.add(e);
        }
        if (extents.isEmpty()) throw ImageException.corrupt(file.path(), at, "extents", "descriptor names no extents");
        return new VmdkLayer(file, List.copyOf(opened.values()), extents, createType, where, cid, parentCid, d.parentFileNameHint(), d.ddb());
    }

    private VmdkExtent extent(ExtentLine line, long at) throws IOException {
        String where = "extent on descriptor line " + line.line();
        if (line.access().equals("NOACCESS")) {
            throw ImageException.unsupported(file.path(), where + " is NOACCESS");
        }
        long size = line.sectors() * 512;
        switch (line.type()) {
            case "ZERO":
                return new ZeroExtent(size);
            case "FLAT":
            case "VMFS": {
                ImageFile f = reference(line);
                long start = line.offset() * 512;
                Checked.add(file, at, where, start, size);
                return new FlatExtent(f, start, size, line.type());
            }
            case "SPARSE":
            case "VMFSSPARSE": {
                ImageFile f = reference(line);
                if (f.size() < 4) throw ImageException.corrupt(f.path(), 0, "magic", "sparse extent file is too small");
                ByteBuffer magic = f.readStruct(0, 4, ByteOrder.BIG_ENDIAN, "magic");
                SparseExtent e;
                if (magic.equals(ByteBuffer.wrap(CowdHeader.MAGIC))) {
                    e = cowdExtent(f, line.type());
                } else {
                    SparseHeader h = SparseHeader.parse(f.readStruct(0, SparseHeader.SIZE, ByteOrder.LITTLE_ENDIAN, "header"), f, 0);
                    if (h.capacity() == 0 && h.descriptorOffset() != 0 && h.descriptorSize() != 0) {
                        throw ImageException.unsupported(f.path(), "sparse extent carries a descriptor of its own; nested descriptors are refused");
                    }
                    e = sparseExtent(f, h, line.type());
                }
                if (e.size() != size) {
                    throw ImageException.corrupt(file.path(), at, "descriptor line " + line.line(), where + " is " + line.sectors()
                            + " sectors but its file " + f.path() + " has a capacity of " + e.size() / 512 + " sectors");
                }
                return e;
            }
            case "VMFSRDM":
            case "VMFSRAW":
                throw ImageException.unsupported(file.path(), where + " is a raw device mapping (" + line.type() + "); these are refused");
            case "SESPARSE": {
                if (context.writable()) {
                    // As qemu (vmdk_open_se_sparse): nothing writes seSparse but ESXi, which keeps a journal and a backmap.
                    throw ImageException.unsupported(file.path(), where + " is an ESXi seSparse extent, which can only be opened"
                            + " read-only (writing seSparse is not supported, nor by qemu): use -r or --snapshot");
                }
                ImageFile f = reference(line);
                SeSparseExtent e = SeSparseExtent.open(f, line.type(), context.cacheBytes());
                if (e.size() != size) {
                    throw ImageException.corrupt(file.path(), at, "descriptor line " + line.line(), where + " is " + line.sectors()
                            + " sectors but its file " + f.path() + " has a capacity of " + e.size() / 512 + " sectors");
                }
                return e;
            }
            default:
                throw ImageException.unsupported(file.path(), where + " has unknown type " + line.type());
        }
    }

    /** Opens an extent file named by the descriptor (regular files only), once per distinct path. */
    private ImageFile reference(ExtentLine line) throws IOException {
        Path p = OpenContext.resolve(file.path(), line.fileName(), "extent file name");
        ImageFile f = opened.get(p);
        if (f != null) return f;
        try {
            f = context.openReference(file, line.fileName(), "extent file (descriptor line " + line.line() + ")");
        } catch (RefusedReference e) {
            throw e;
        } catch (ImageException e) {
            throw new ImageException(e.kind(), file.path(), ImageException.NO_OFFSET, null,
                    "cannot open extent file " + p + " (descriptor line " + line.line() + "): " + e.problem());
        }
        opened.put(p, f);
        return f;
    }
}
