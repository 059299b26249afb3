package org.vdiskload.format.vhdx;

import org.vdiskload.image.CreateOptions;
import org.vdiskload.image.error.ImageException;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

/**
 * qemu-img create -f vhdx: options subformat=dynamic|fixed, block_size, log_size, block_state_zero, with
 * qemu's defaults and qemu's layout (1 MiB header area, the log at 1 MiB, the metadata region after it,
 * then the BAT, then payload blocks). Logical sectors are 512 bytes and physical ones 4096, as qemu writes.
 * Differencing images are not created (qemu cannot either).
 */
final class VhdxCreator {
    private static final long MB = VhdxHeader.MB;
    private static final long GB = 1L << 30;
    private static final long TB = 1L << 40;
    private static final int LOGICAL_SECTOR = 512;
    private static final int PHYSICAL_SECTOR = 4096;
    private static final String CREATOR = "vdiskload";

    /** The validated options. */
    record Layout(long virtualSize, long blockSize, long logSize, boolean fixed, boolean zeroBlocks) {
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
            return new VhdxMetadata(blockSize, fixed, false, virtualSize, Guid.ZERO, LOGICAL_SECTOR, PHYSICAL_SECTOR, null);
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
    static Layout layout(long size, CreateOptions options) throws ImageException {
        Path target = options.target();
        boolean fixed = options.takeChoice("subformat", "dynamic", "dynamic", "fixed").equals("fixed");
        long blockSize = options.takeSize("block_size");
        long logSize = options.takeSize("log_size");
        boolean zeroBlocks = options.takeBoolean("block_state_zero", true);
        options.requireAllTaken("vhdx");
        if (options.backingFile() != null) {
            throw ImageException.unsupported(target, "creating differencing VHDX images is not supported (qemu cannot either)");
        }
        if (size < 0 || size > VhdxMetadata.MAX_VIRTUAL_SIZE) {
            throw ImageException.invalid(target, "image size " + size + " is not between 0 and 64 TiB");
        }
        long virtualSize = (size + LOGICAL_SECTOR - 1) / LOGICAL_SECTOR * LOGICAL_SECTOR;
        if (blockSize <= 0) {
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
        return new Layout(virtualSize, blockSize, logSize, fixed, zeroBlocks && !fixed);
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
        put(ch, VhdxMetadata.encode(l.metadata(), Guid.random()), l.metadataOffset());
        long end = l.payloadOffset();
        VhdxMetadata meta = l.metadata();
        if (l.fixed() || l.zeroBlocks()) {
            ByteBuffer bat = ByteBuffer.allocate((int) Math.min(l.batLength(), MB)).order(ByteOrder.LITTLE_ENDIAN);
            long entries = meta.batEntries();
            long batPos = l.batOffset();
            for (long i = 0; i < entries; ) {
                bat.clear();
                for (; i < entries && bat.hasRemaining(); i++) {
                    boolean bitmap = i % (meta.chunkRatio() + 1) == meta.chunkRatio();
                    long raw = 0;
                    if (!bitmap && l.fixed()) {
                        raw = BatEntry.encode(BatEntry.FULLY_PRESENT, end);
                        end += l.blockSize();
                    } else if (!bitmap) {
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
