package org.vdiskload.format.vmdk;

import org.vdiskload.image.CreateOptions;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenContext;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.error.ImageException;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.regex.Pattern;

/**
 * qemu-img create -f vmdk (qemu's vmdk_co_do_create): the same options, file names, extent layout and
 * descriptor text. Sparse extents get 64 KiB grains, 512-entry grain tables, a redundant grain directory,
 * and every grain table allocated up front (after each directory), as qemu writes them.
 */
final class VmdkCreator {
    static final String[] SUBFORMATS = {"monolithicSparse", "monolithicFlat", "twoGbMaxExtentSparse",
            "twoGbMaxExtentFlat", "streamOptimized"};
    static final String[] ADAPTERS = {"ide", "buslogic", "lsilogic", "legacyESX"};
    /** The extent size of the twoGbMaxExtent subformats. */
    static final long SPLIT_SIZE = 2L << 30;
    private static final long GRAIN_SECTORS = 128;
    private static final int GTES_PER_GT = 512;
    private static final long DESCRIPTOR_SECTORS = 20;
    /** A sparse extent's grain table entries address at most 2^32 sectors of file. */
    private static final long MAX_SPARSE_SIZE = 1L << 41;
    /** Values written into the descriptor between quotes. */
    private static final Pattern PLAIN_VALUE = Pattern.compile("[A-Za-z0-9._+-]{1,64}");

    private VmdkCreator() {}

    static List<Path> create(long size, CreateOptions options) throws IOException {
        Path target = options.target();
        String subformat = options.takeChoice("subformat", "monolithicSparse", SUBFORMATS);
        String adapter = options.takeChoice("adapter_type", "ide", ADAPTERS);
        String hwVersion = options.take("hwversion", null);
        String toolsVersion = options.take("toolsversion", null);
        boolean compat6 = options.takeBoolean("compat6", false);
        boolean zeroedGrain = options.takeBoolean("zeroed_grain", false);
        options.requireAllTaken("vmdk");

        boolean flat = subformat.endsWith("Flat");
        boolean split = subformat.startsWith("twoGb");
        boolean compress = subformat.equals("streamOptimized");
        if ("undefined".equals(hwVersion)) hwVersion = null;
        if (compat6 && hwVersion != null) throw ImageException.invalid(target, "compat6 cannot be enabled with hwversion set");
        if (compat6) hwVersion = "6";
        if (hwVersion == null) hwVersion = "4";
        if (toolsVersion == null) toolsVersion = "2147483647";
        requirePlain(target, "hwversion", hwVersion);
        requirePlain(target, "toolsversion", toolsVersion);
        String backing = options.backingFile();
        if (flat && backing != null) throw ImageException.invalid(target, "flat VMDK images cannot have a backing file");
        if (flat && zeroedGrain) throw ImageException.invalid(target, "flat VMDK images cannot enable zeroed grains");
        if (backing != null && options.backingFormat() != null && !options.backingFormat().equals("vmdk")) {
            throw ImageException.invalid(target, "the backing file of a VMDK image must be a VMDK image, not " + options.backingFormat());
        }
        if (size <= 0) throw ImageException.invalid(target, "a VMDK image needs a size above 0 (qemu cannot open one of size 0)");
        long sectors = (size + 511) / 512;
        if (!flat && !split && sectors * 512 > MAX_SPARSE_SIZE) {
            throw ImageException.invalid(target, "a " + subformat + " image holds at most " + MAX_SPARSE_SIZE + " bytes");
        }
        if (split && (sectors * 512 + SPLIT_SIZE - 1) / SPLIT_SIZE > VmdkOpener.MAX_EXTENTS) {
            throw ImageException.invalid(target, "a " + subformat + " image holds at most " + VmdkOpener.MAX_EXTENTS + " extents of 2 GiB");
        }
        long parentCid = backing == null ? 0xffffffffL : parentCid(target, backing);
        if (backing != null && (backing.contains("\"") || backing.contains("\n") || backing.contains("\r"))) {
            throw ImageException.invalid(target, "backing file name '" + backing + "' cannot be written into a VMDK descriptor");
        }
        String parentLine = backing == null ? "" : "parentFileNameHint=\"" + backing + "\"\n";

        List<Path> written = new ArrayList<>();
        boolean done = false;
        try {
            StringBuilder extents = new StringBuilder();
            String name = target.getFileName().toString();
            int dot = name.lastIndexOf('.');
            String prefix = dot < 0 ? name : name.substring(0, dot);
            String postfix = dot < 0 ? "" : name.substring(dot);
            written.add(target);
            if (!flat && !split) {
                extents.append("RW ").append(sectors).append(" SPARSE \"").append(name).append("\"\n");
            } else {
                long created = 0;
                for (int idx = 1; created < sectors * 512; idx++) {
                    long extentSize = split ? Math.min(SPLIT_SIZE, sectors * 512 - created) : sectors * 512;
                    String extentName = split ? String.format("%s-%c%03d%s", prefix, flat ? 'f' : 's', idx, postfix)
                            : prefix + "-flat" + postfix;
                    Path p = target.resolveSibling(extentName);
                    written.add(p);
                    if (flat) writeFlat(p, extentSize);
                    else writeSparse(p, extentSize, false, zeroedGrain, null);
                    extents.append("RW ").append(extentSize / 512).append(flat ? " FLAT \"" : " SPARSE \"").append(extentName)
                            .append(flat ? "\" 0\n" : "\"\n");
                    created += extentSize;
                }
            }
            int heads = adapter.equals("ide") ? 16 : 255;
            String descriptor = "# Disk DescriptorFile\n"
                    + "version=1\n"
                    + String.format("CID=%08x\n", newCid())
                    + String.format("parentCID=%x\n", parentCid)
                    + "createType=\"" + subformat + "\"\n"
                    + parentLine
                    + "\n# Extent description\n"
                    + extents
                    + "\n# The Disk Data Base\n#DDB\n\n"
                    + "ddb.virtualHWVersion = \"" + hwVersion + "\"\n"
                    + "ddb.geometry.cylinders = \"" + sectors * 512 / (63L * heads * 512) + "\"\n"
                    + "ddb.geometry.heads = \"" + heads + "\"\n"
                    + "ddb.geometry.sectors = \"63\"\n"
                    + "ddb.adapterType = \"" + adapter + "\"\n"
                    + "ddb.toolsVersion = \"" + toolsVersion + "\"\n";
            byte[] text = descriptor.getBytes(StandardCharsets.UTF_8);
            if (!flat && !split) {
                if (text.length > DESCRIPTOR_SECTORS * 512) {
                    throw ImageException.invalid(target, "the descriptor (" + text.length + " bytes) does not fit the "
                            + DESCRIPTOR_SECTORS * 512 + " bytes a sparse file reserves for it");
                }
                writeSparse(target, sectors * 512, compress, zeroedGrain, text);
            } else {
                Files.write(target, text);
            }
            done = true;
            return written;
        } finally {
            if (!done) for (Path p : written) Files.deleteIfExists(p);
        }
    }

    private static void requirePlain(Path target, String option, String value) throws ImageException {
        if (!PLAIN_VALUE.matcher(value).matches()) {
            throw ImageException.invalid(target, "invalid value '" + value + "' for option " + option
                    + " (letters, digits and . _ + - only)");
        }
    }

    private static long newCid() {
        return ThreadLocalRandom.current().nextLong(0xffffffffL);
    }

    /** The CID of the parent, which must be a VMDK image (qemu: "Invalid backing file format"). */
    private static long parentCid(Path target, String backing) throws IOException {
        Path p = OpenContext.resolve(target, backing, "backing file");
        try (DiskImage parent = Images.open(p, OpenOptions.DEFAULTS.withBacking(false))) {
            if (!(parent.layers().get(0) instanceof VmdkLayer layer)) {
                throw ImageException.invalid(target, "backing file " + backing + " is a " + parent.formatName()
                        + " image; the backing file of a VMDK image must be a VMDK image");
            }
            return layer.cid();
        }
    }

    private static void writeFlat(Path p, long size) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
            f.setLength(0);
            f.setLength(size);
        } catch (java.io.FileNotFoundException e) {
            throw ImageException.invalid(p, "cannot create: " + e.getMessage());
        }
    }

    /**
     * A hosted sparse extent as qemu's vmdk_init_extent lays it out: header, descriptor area (20 sectors),
     * redundant grain directory and its grain tables, grain directory and its grain tables, grains.
     */
    private static void writeSparse(Path p, long size, boolean compress, boolean zeroedGrain, byte[] descriptor) throws IOException {
        long capacity = size / 512;
        long grains = (capacity + GRAIN_SECTORS - 1) / GRAIN_SECTORS;
        long gtSectors = GTES_PER_GT * 4 / 512;
        long gtCount = (grains + GTES_PER_GT - 1) / GTES_PER_GT;
        long gdSectors = (gtCount * 4 + 511) / 512;
        long rgdOffset = 1 + DESCRIPTOR_SECTORS;
        long gdOffset = rgdOffset + gdSectors + gtSectors * gtCount;
        long overhead = (gdOffset + gdSectors + gtSectors * gtCount + GRAIN_SECTORS - 1) / GRAIN_SECTORS * GRAIN_SECTORS;
        long flags = SparseHeader.FLAG_RGD | SparseHeader.FLAG_NL_DETECT
                | (compress ? SparseHeader.FLAG_COMPRESSED | SparseHeader.FLAG_MARKERS : 0)
                | (zeroedGrain ? SparseHeader.FLAG_ZERO_GRAIN : 0);
        SparseHeader h = new SparseHeader(compress ? 3 : zeroedGrain ? 2 : 1, flags, capacity, GRAIN_SECTORS, 1,
                DESCRIPTOR_SECTORS, GTES_PER_GT, rgdOffset, gdOffset, overhead,
                compress ? SparseHeader.COMPRESSION_DEFLATE : SparseHeader.COMPRESSION_NONE);
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
            f.setLength(0);
            f.setLength(overhead * 512);
            var ch = f.getChannel();
            ch.write(h.encode(), 0);
            if (descriptor != null) ch.write(ByteBuffer.wrap(descriptor), 512);
            for (long[] dir : new long[][] {{rgdOffset}, {gdOffset}}) {
                ByteBuffer gd = ByteBuffer.allocate((int) (gdSectors * 512)).order(ByteOrder.LITTLE_ENDIAN);
                for (int i = 0; i < gtCount; i++) gd.putInt(i * 4, (int) (dir[0] + gdSectors + i * gtSectors));
                ch.write(gd, dir[0] * 512);
            }
        } catch (java.io.FileNotFoundException e) {
            throw ImageException.invalid(p, "cannot create: " + e.getMessage());
        }
    }
}
