package org.vdiskload.format.vhd;

import org.vdiskload.image.BackingRef;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.LayerInfo;
import org.vdiskload.image.LayerRun;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * One VHD file. A fixed disk is its data followed by the footer; a dynamic or differencing disk
 * maps through its BAT and sector bitmaps ({@link VhdBlockMap}).
 */
final class VhdLayer implements ImageLayer {
    private final ImageFile file;
    private final VhdFooter footer;
    private final VhdDynamicHeader header;
    private final VhdBlockMap blocks;
    private final BackingRef backing;
    private final long size;

    /** A fixed disk. */
    VhdLayer(ImageFile file, VhdFooter footer) {
        this(file, footer, null, null, null);
    }

    /** A dynamic disk ({@code parent} null) or a differencing disk. */
    VhdLayer(ImageFile file, VhdFooter footer, VhdDynamicHeader header, VhdBlockMap blocks, String parent) {
        this.file = file;
        this.footer = footer;
        this.header = header;
        this.blocks = blocks;
        this.backing = parent == null ? null : new BackingRef(parent, "vpc");
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
        if (blocks == null) return LayerRun.data(maxLength, file, pos);
        return blocks.map(pos, maxLength);
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
    public void close() throws IOException {
        file.close();
    }
}
