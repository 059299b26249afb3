package org.vdiskload.format.vhd;

import org.vdiskload.image.CreateOptions;
import org.vdiskload.image.OpenContext;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.UUID;

/**
 * qemu-img create -f vpc: dynamic disks (footer copy, dynamic header, BAT, footer; 2 MiB blocks, as
 * qemu makes them, with no option to change) and fixed disks (data, footer), sized as qemu sizes
 * them: rounded up to a CHS geometry unless force_size=on. qemu cannot make differencing disks;
 * with a backing file (a VHD) this makes one as Hyper-V does: its parent's size, unique id and
 * modification time, and W2ku (absolute) and W2ru (relative) parent locators.
 */
final class VhdCreator {
    static final long BLOCK_SIZE = 2 << 20;
    /** Seconds from the Unix epoch to 2000-01-01 00:00 UTC, where VHD time stamps count from. */
    static final long TIME_BASE = 946684800L;
    private static final long TABLE_OFFSET = 3 * 512;
    private static final int CREATOR_VERSION = 0x00050003; // Virtual PC 2007's, as qemu writes

    private VhdCreator() {}

    static List<Path> create(long size, CreateOptions options) throws IOException {
        Path target = options.target();
        String subformat = options.takeChoice("subformat", null, "dynamic", "fixed");
        boolean force = options.takeBoolean("force_size", false);
        options.requireAllTaken("vpc");
        if (options.backingFile() != null) {
            if ("fixed".equals(subformat)) throw ImageException.invalid(target, "a fixed VHD cannot have a backing file (a differencing disk is dynamic)");
            if (force) throw ImageException.invalid(target, "force_size does not apply to a differencing VHD: it has its parent's size");
            if (!"vpc".equals(options.backingFormat())) {
                throw ImageException.invalid(target, "the parent of a differencing VHD must be a VHD (vpc), not " + options.backingFormat());
            }
            return differencing(size, options);
        }
        long bytes = Math.addExact(size, 511) & ~511L;
        VhdGeometry g = VhdGeometry.forSize(bytes, force);
        if (g.sectors() > VhdFooter.MAX_SECTORS) throw ImageException.invalid(target, "disk size is too large, max size is 2040 GiB");
        boolean fixed = "fixed".equals(subformat);
        long virtual = g.sectors() * 512;
        if (fixed && virtual == 0) {
            // qemu-img makes one, but its footer then sits at offset 0, where readers (qemu too) expect a dynamic disk's copy.
            throw ImageException.invalid(target, "a fixed VHD of 0 bytes cannot be read back: its footer would be taken for a dynamic disk's");
        }
        VhdFooter footer = new VhdFooter(2, 0x10000, fixed ? -1L : 512, now(), force ? "qem2" : "qemu", CREATOR_VERSION, "Wi2k",
                virtual, virtual, g.cylinders(), g.heads(), g.sectorsPerTrack(),
                fixed ? VhdFooter.TYPE_FIXED : VhdFooter.TYPE_DYNAMIC, 0, uuid(), false);
        if (fixed) {
            try (FileChannel ch = open(target)) {
                ch.truncate(0);
                write(ch, footer.encode(), virtual);
                ch.force(true);
            }
        } else {
            writeSparse(target, footer, List.of(), new byte[16], 0, "");
        }
        return List.of(target);
    }

    /** A differencing disk over the VHD {@code options.backingFile()}, of its size. */
    private static List<Path> differencing(long size, CreateOptions options) throws IOException {
        Path target = options.target();
        Path parent = OpenContext.resolve(target, options.backingFile(), "backing file").toAbsolutePath();
        VhdFooter pf;
        try (ImageFile f = ImageFile.open(parent, false);
             VhdLayer layer = (VhdLayer) new VhdFormat().open(f, new OpenContext(null, 1 << 20, false))) {
            pf = layer.footer();
            if (size != layer.size()) {
                throw ImageException.invalid(target, "a differencing VHD has its parent's size (" + layer.size() + " bytes), not " + size);
            }
        }
        long mtime = Files.getLastModifiedTime(parent).toMillis() / 1000 - TIME_BASE;
        // The child is sized as its parent: by the same geometry, or by the same current size.
        VhdFooter footer = new VhdFooter(2, 0x10000, 512, now(), pf.sizedByCurrentSize() ? "qem2" : "qemu", CREATOR_VERSION,
                "Wi2k", pf.originalSize(), pf.currentSize(), pf.cylinders(), pf.heads(), pf.sectorsPerTrack(),
                VhdFooter.TYPE_DIFFERENCING, 0, uuid(), false);
        Path dir = target.toAbsolutePath().getParent();
        String absolute = parent.toString().replace('/', '\\');
        String relative = ".\\" + dir.relativize(parent).toString().replace('/', '\\');
        List<byte[]> locators = List.of(absolute.getBytes(StandardCharsets.UTF_16LE), relative.getBytes(StandardCharsets.UTF_16LE));
        writeSparse(target, footer, locators, pf.uniqueId(), mtime & 0xffffffffL, parent.getFileName().toString());
        return List.of(target);
    }

    /** Footer copy, dynamic header, BAT, locator data (W2ku then W2ru), footer. */
    private static void writeSparse(Path target, VhdFooter footer, List<byte[]> locatorData, byte[] parentUid,
                                    long parentTime, String parentName) throws IOException {
        long entries = (footer.virtualSize() + BLOCK_SIZE - 1) / BLOCK_SIZE;
        long batLength = VhdLayout.roundUp(entries * 4);
        long at = TABLE_OFFSET + batLength;
        int[] codes = {VhdParentLocator.W2KU, VhdParentLocator.W2RU};
        List<VhdParentLocator> locators = new ArrayList<>();
        for (int i = 0; i < locatorData.size(); i++) {
            long space = VhdLayout.roundUp(locatorData.get(i).length);
            locators.add(new VhdParentLocator(i, codes[i], space, locatorData.get(i).length, at, 0));
            at += space;
        }
        VhdDynamicHeader header = new VhdDynamicHeader(512, TABLE_OFFSET, 0x10000, entries, BLOCK_SIZE,
                parentUid, parentTime, parentName, locators);
        ByteBuffer bat = ByteBuffer.allocate((int) batLength);
        Arrays.fill(bat.array(), (byte) 0xff);
        try (FileChannel ch = open(target)) {
            ch.truncate(0);
            write(ch, footer.encode(), 0);
            write(ch, header.encode(), 512);
            write(ch, bat, TABLE_OFFSET);
            for (int i = 0; i < locators.size(); i++) write(ch, ByteBuffer.wrap(locatorData.get(i)), locators.get(i).dataOffset());
            write(ch, footer.encode(), at);
            ch.force(true);
        }
    }

    private static FileChannel open(Path target) throws IOException {
        try {
            return FileChannel.open(target, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        } catch (IOException e) {
            throw ImageException.invalid(target, "cannot create: " + e.getMessage());
        }
    }

    private static void write(FileChannel ch, ByteBuffer b, long pos) throws IOException {
        while (b.hasRemaining()) pos += ch.write(b, pos);
    }

    private static long now() {
        return (System.currentTimeMillis() / 1000 - TIME_BASE) & 0xffffffffL;
    }

    private static byte[] uuid() {
        UUID u = UUID.randomUUID();
        return ByteBuffer.allocate(16).putLong(u.getMostSignificantBits()).putLong(u.getLeastSignificantBits()).array();
    }
}
