package org.vdiskload.attach.kmod;

import com.sun.jna.Memory;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Extent;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The kernel's view of an image's map: which ranges vdisk.ko serves itself and from where. Built from
 * {@link DiskImage#map}, for the whole disk at ADD and for a held range in each reply:
 * <ul>
 * <li>DATA in place (allocated, unshared, uncompressed, in the top layer of a writable image) and a raw
 *     file's holes: DATA_RW, read and overwritten by the kernel at (file, offset);
 * <li>other DATA (a backing file's, a shared cluster): DATA_RO, read by the kernel, written through us;
 * <li>ZERO: read as zeros by the kernel, written through us;
 * <li>NEEDS_LIBRARY (compressed...): left out, so both go up to us.
 * </ul>
 * A piece whose edges are not on the disk's logical blocks (the kernel's unit), whose file offset is not
 * on a 512-byte boundary, or whose file the kernel was not given is left out too: an upcall is always
 * right, only slower.
 */
final class ExtentTable {
    /** Extents in the ABI's layout, in native memory for an ioctl. */
    record Encoded(Memory memory, int count) {
        static final Encoded EMPTY = new Encoded(null, 0);
    }

    /** A file the kernel does I/O on, by its index in the table. */
    record TableFile(int index, ImageFile file, boolean writable) {
        Path path() {
            return file.path();
        }
    }

    private final Map<ImageFile, TableFile> files = new IdentityHashMap<>();
    private final List<TableFile> ordered = new ArrayList<>();
    private final int blockSize;
    private final int maxExtents;

    /**
     * The table's files are those of {@code disk}'s layers, top first, each once: the same image gives the
     * same order, which a new serving process relies on to take over (VDISK_IOC_RECOVER).
     */
    ExtentTable(DiskImage disk, boolean writable, int blockSize, int maxExtents) {
        this.blockSize = blockSize;
        this.maxExtents = maxExtents;
        Map<Path, ImageFile> byPath = new LinkedHashMap<>();
        for (ImageLayer layer : disk.layers()) {
            for (ImageFile f : layer.files()) {
                if (byPath.putIfAbsent(f.path(), f) == null) {
                    TableFile t = new TableFile(ordered.size(), f, writable && f.isWritable());
                    ordered.add(t);
                    files.put(f, t);
                }
            }
        }
    }

    List<TableFile> files() {
        return ordered;
    }

    /** The kernel's extents for {@code extents} (a map of consecutive ranges), at most the table's limit. */
    Encoded encode(List<Extent> extents) {
        List<long[]> out = new ArrayList<>(); // {start, length, fileOffset, file, kind}
        for (Extent e : extents) {
            long start = roundUp(e.start()), end = e.end() - Math.floorMod(e.end(), blockSize);
            if (end <= start) continue;
            long kind;
            TableFile f = e.file() == null ? null : files.get(e.file());
            long offset = e.fileOffset() + (start - e.start());
            if (e.kind() == Extent.Kind.NEEDS_LIBRARY) continue;
            if (e.inPlace() && f != null && f.writable()) {
                kind = VdiskAbi.VDISK_EXT_DATA_RW;
            } else if (e.kind() == Extent.Kind.DATA && f != null) {
                kind = VdiskAbi.VDISK_EXT_DATA_RO;
            } else if (e.kind() == Extent.Kind.ZERO) {
                kind = VdiskAbi.VDISK_EXT_ZERO;
            } else {
                continue;
            }
            boolean inFile = kind != VdiskAbi.VDISK_EXT_ZERO;
            if (inFile && (offset & 511) != 0) continue;
            long[] last = out.isEmpty() ? null : out.get(out.size() - 1);
            if (last != null && last[4] == kind && last[0] + last[1] == start
                    && (!inFile || (last[3] == f.index() && last[2] + last[1] == offset))) {
                last[1] += end - start;
            } else {
                if (out.size() == maxExtents) break; // the rest goes up
                out.add(new long[] {start, end - start, inFile ? offset : 0, inFile ? f.index() : 0, kind});
            }
        }
        if (out.isEmpty()) return Encoded.EMPTY;
        Memory m = new Memory((long) out.size() * VdiskAbi.Extent.SIZE);
        m.clear();
        for (int i = 0; i < out.size(); i++) {
            long at = (long) i * VdiskAbi.Extent.SIZE;
            long[] x = out.get(i);
            m.setLong(at + VdiskAbi.Extent.START, x[0]);
            m.setLong(at + VdiskAbi.Extent.LENGTH, x[1]);
            m.setLong(at + VdiskAbi.Extent.FILE_OFFSET, x[2]);
            m.setInt(at + VdiskAbi.Extent.FILE, (int) x[3]);
            m.setShort(at + VdiskAbi.Extent.KIND, (short) x[4]);
        }
        return new Encoded(m, out.size());
    }

    /** The kernel's extents for {@code [start, start + length)} of {@code disk} as it is now. */
    Encoded map(DiskImage disk, long start, long length) throws IOException {
        return encode(disk.map(start, length));
    }

    private long roundUp(long v) {
        long r = Math.floorMod(v, blockSize);
        return r == 0 ? v : v + blockSize - r;
    }
}
