package org.vdiskload.format.vhdx;

import org.vdiskload.image.CreateOptions;
import org.vdiskload.image.OpenContext;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * qemu-img create -f vhdx: options subformat=dynamic|fixed, block_size, log_size, block_state_zero, with
 * qemu's defaults and qemu's layout (1 MiB header area, the log at 1 MiB, the metadata region after it,
 * then the BAT, then payload blocks). Logical sectors are 512 bytes and physical ones 4096, as qemu writes.
 * qemu cannot make differencing images; with a backing file (a VHDX) this makes one as Hyper-V does: the
 * parent's size and sector sizes, 2 MiB blocks unless block_size says otherwise, every block NOT_PRESENT
 * with a zeroed sector bitmap block per chunk, and a parent locator naming the parent's DataWriteGuid and its relative and absolute paths.
 */
final class VhdxCreator {
    private static final long MB = VhdxHeader.MB;
    private static final long GB = 1L << 30;
    private static final long TB = 1L << 40;
    private static final int LOGICAL_SECTOR = 512;
    private static final int PHYSICAL_SECTOR = 4096;
    /** Hyper-V's block size for a differencing disk: small, as each first write copies a whole block up. */
    private static final long DIFFERENCING_BLOCK = 2 * MB;
    private static final String CREATOR = "vdiskload";

    /**
     * The parent of a differencing image, as its locator and metadata record it.
     *
     * @param locator            the parent locator item
     * @param logicalSectorSize  the parent's, which the child shares
     * @param physicalSectorSize the parent's, which the child shares
     */
    record Parent(ByteBuffer locator, long logicalSectorSize, long physicalSectorSize) {}

    /** The validated options; {@code parent} is null unless the image is differencing. */
    record Layout(long virtualSize, long blockSize, long logSize, boolean fixed, boolean zeroBlocks, Parent parent) {
        long logOffset() {
            return MB;
        }

        long metadataOffset() {
            return logOffset() + logSize;
        }

        long batOffset() {
            return metadataOffset() + MB;
        }

        VhdxMetadata metadata() {
            long lss = parent == null ? LOGICAL_SECTOR : parent.logicalSectorSize();
            long pss = parent == null ? PHYSICAL_SECTOR : parent.physicalSectorSize();
            return new VhdxMetadata(blockSize, fixed, parent != null, virtualSize, Guid.ZERO, lss, pss, null);
        }

        long batLength() {
            return Math.max(MB, (metadata().batEntries() * 8 + MB - 1) / MB * MB);
        }

        long payloadOffset() {
            return batOffset() + batLength();
        }
    }

    private VhdxCreator() {}

    static List<Path> create(long size, CreateOptions options) throws IOException {
        Path target = options.target();
        Layout layout = layout(size, options);
        try (RandomAccessFile f = new RandomAccessFile(target.toFile(), "rw")) {
            f.setLength(0);
            write(f.getChannel(), layout);
            f.getChannel().force(true);
        } catch (FileNotFoundException e) {
            throw ImageException.invalid(target, "cannot create: " + e.getMessage());
        }
        return List.of(target);
    }

    /** Checks every option (before any file is written) and settles qemu's defaults. */
    static Layout layout(long size, CreateOptions options) throws IOException {
        Path target = options.target();
        String subformat = options.takeChoice("subformat", null, "dynamic", "fixed");
        long blockSize = options.takeSize("block_size");
        long logSize = options.takeSize("log_size");
        String zeroOption = options.take("block_state_zero", null);
        boolean zeroBlocks = options.takeBoolean("block_state_zero", true);
        options.requireAllTaken("vhdx");
        Parent parent = null;
        if (options.backingFile() != null) {
            if ("fixed".equals(subformat)) throw ImageException.invalid(target, "a fixed VHDX cannot have a backing file (a differencing disk is dynamic)");
            if (zeroOption != null && zeroBlocks) {
                throw ImageException.invalid(target, "block_state_zero=on does not apply to a differencing VHDX: its blocks show the parent's data");
            }
            if (!"vhdx".equals(options.backingFormat())) {
                throw ImageException.invalid(target, "the parent of a differencing VHDX must be a VHDX, not " + options.backingFormat());
            }
            parent = parent(target, options.backingFile(), size);
            zeroBlocks = false;
        }
        boolean fixed = "fixed".equals(subformat);
        if (size < 0 || size > VhdxMetadata.MAX_VIRTUAL_SIZE) {
            throw ImageException.invalid(target, "image size " + size + " is not between 0 and 64 TiB");
        }
        long virtualSize = (size + LOGICAL_SECTOR - 1) / LOGICAL_SECTOR * LOGICAL_SECTOR;
        if (blockSize <= 0 && parent != null) {
            blockSize = DIFFERENCING_BLOCK;
        } else if (blockSize <= 0) {
            // qemu's choice by size when block_size is absent or 0.
            blockSize = virtualSize > 32 * TB ? 64 * MB : virtualSize > 100 * GB ? 32 * MB : virtualSize > GB ? 16 * MB : 8 * MB;
        } else if (blockSize < VhdxMetadata.MIN_BLOCK || blockSize > VhdxMetadata.MAX_BLOCK || Long.bitCount(blockSize) != 1) {
            throw ImageException.invalid(target, "block_size " + blockSize + " is not a power of two from 1 MiB to 256 MiB");
        }
        if (logSize < 0) logSize = MB;
        if (logSize < MB || logSize % MB != 0 || logSize > VhdxLog.MAX_LENGTH) {
            throw ImageException.invalid(target, "log_size " + logSize + " is not a multiple of 1 MiB from 1 MiB to "
                    + (VhdxLog.MAX_LENGTH / MB) + " MiB");
        }
        return new Layout(virtualSize, blockSize, logSize, fixed, zeroBlocks && !fixed, parent);
    }

    /**
     * Opens the parent (read-only) for what the child records: its DataWriteGuid as parent_linkage, its
     * path relative to the child (Windows separators, ".\" before a name in the same directory, as Hyper-V
     * writes it; this reader uses it) and absolute (libvhdi reads only this key and looks for its last
     * component beside the child), and its sector sizes. A differencing VHDX has its parent's size.
     */
    private static Parent parent(Path target, String backingFile, long size) throws IOException {
        Path path = OpenContext.resolve(target, backingFile, "backing file").toAbsolutePath().normalize();
        if (path.equals(target.toAbsolutePath().normalize())) {
            throw ImageException.invalid(target, "a differencing VHDX cannot be its own parent");
        }
        Guid linkage;
        VhdxMetadata meta;
        try (ImageFile f = ImageFile.open(path, false);
             VhdxLayer layer = VhdxLayer.open(f, new OpenContext(null, 1 << 20, false))) {
            linkage = layer.header().dataWriteGuid();
            meta = layer.metadata();
        }
        if (size != meta.virtualSize()) {
            throw ImageException.invalid(target, "a differencing VHDX has its parent's size (" + meta.virtualSize() + " bytes), not " + size);
        }
        Path dir = target.toAbsolutePath().normalize().getParent();
        String relative = dir.relativize(path).toString().replace('/', '\\');
        if (!relative.startsWith("..")) relative = ".\\" + relative;
        Map<String, String> pairs = new LinkedHashMap<>();
        pairs.put("parent_linkage", "{" + linkage + "}");
        pairs.put("relative_path", relative);
        pairs.put("absolute_win32_path", path.toString().replace('/', '\\'));
        ByteBuffer locator;
        try {
            locator = ParentLocator.encode(pairs);
        } catch (IllegalArgumentException e) {
            throw ImageException.invalid(target, "the backing file's path is too long for a parent locator: " + path);
        }
        return new Parent(locator, meta.logicalSectorSize(), meta.physicalSectorSize());
    }

    private static void write(FileChannel ch, Layout l) throws IOException {
        ByteBuffer id = ByteBuffer.allocate(VhdxLog.SECTOR).order(ByteOrder.LITTLE_ENDIAN);
        id.put(VhdxHeader.FILE_SIGNATURE).put(CREATOR.getBytes(StandardCharsets.UTF_16LE));
        put(ch, id.clear(), 0);
        Guid fileWrite = Guid.random();
        Guid dataWrite = Guid.random();
        VhdxHeader h1 = new VhdxHeader(VhdxHeader.HEADER1, 1, fileWrite, dataWrite, Guid.ZERO, 0, 1, l.logSize(), l.logOffset());
        put(ch, h1.encode(), h1.offset());
        VhdxHeader h2 = h1.successor(fileWrite, dataWrite, Guid.ZERO);
        put(ch, h2.encode(), h2.offset());
        ByteBuffer regions = RegionTable.encode(new RegionTable.Region(l.batOffset(), l.batLength()),
                new RegionTable.Region(l.metadataOffset(), MB));
        put(ch, regions.duplicate(), RegionTable.TABLE1);
        put(ch, regions.duplicate(), RegionTable.TABLE2);
        put(ch, VhdxMetadata.encode(l.metadata(), Guid.random(), l.parent() == null ? null : l.parent().locator()), l.metadataOffset());
        long end = l.payloadOffset();
        VhdxMetadata meta = l.metadata();
        if (l.fixed() || l.zeroBlocks() || l.parent() != null) {
            ByteBuffer bat = ByteBuffer.allocate((int) Math.min(l.batLength(), MB)).order(ByteOrder.LITTLE_ENDIAN);
            long entries = meta.batEntries();
            long batPos = l.batOffset();
            for (long i = 0; i < entries; ) {
                bat.clear();
                for (; i < entries && bat.hasRemaining(); i++) {
                    boolean bitmap = i % (meta.chunkRatio() + 1) == meta.chunkRatio();
                    long raw = 0;
                    if (bitmap && l.parent() != null) {
                        // libvhdi reads a differencing image's NOT_PRESENT blocks through their sector bitmap
                        // even when it is absent (from offset 0 of the file, misreading the parent's data):
                        // every chunk gets its bitmap, all zeros, in a hole of the file.
                        raw = BatEntry.encode(BatEntry.BITMAP_PRESENT, end);
                        end += MB;
                    } else if (!bitmap && l.fixed()) {
                        raw = BatEntry.encode(BatEntry.FULLY_PRESENT, end);
                        end += l.blockSize();
                    } else if (!bitmap && l.zeroBlocks()) {
                        raw = BatEntry.encode(BatEntry.ZERO, 0);
                    }
                    bat.putLong(raw);
                }
                bat.flip();
                int n = bat.remaining();
                put(ch, bat, batPos);
                batPos += n;
            }
        }
        // The BAT region (and, fixed, every payload block) inside the file: sparse, reading as zeros.
        if (ch.size() < end) put(ch, ByteBuffer.allocate(1), end - 1);
    }

    private static void put(FileChannel ch, ByteBuffer b, long pos) throws IOException {
        for (long p = pos; b.hasRemaining(); ) p += ch.write(b, p);
    }
}
