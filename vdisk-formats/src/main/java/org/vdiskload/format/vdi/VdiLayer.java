package org.vdiskload.format.vdi;

import org.vdiskload.image.BackingRef;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.LayerInfo;
import org.vdiskload.image.LayerRun;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/** A VDI image (dynamic or static): 1 MiB blocks through the block map; no backing file. */
final class VdiLayer implements ImageLayer {
    private final ImageFile file;
    private final VdiHeader header;
    private final VdiBlockMap map;

    VdiLayer(ImageFile file, VdiHeader header, VdiBlockMap map) {
        this.file = file;
        this.header = header;
        this.map = map;
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
        long blockSize = VdiHeader.BLOCK_SIZE;
        long end = pos + maxLength;
        int block = (int) (pos / blockSize);
        int first = map.entry(block);
        long runEnd = Math.min(end, (block + 1L) * blockSize);
        // Extend over following blocks of the same kind; data blocks only while consecutive in the file.
        int expected = first + 1;
        while (runEnd < end) {
            int e = map.entry(++block);
            boolean continues = VdiBlockMap.isData(first) ? VdiBlockMap.isData(e) && e == expected++ : e == first;
            if (!continues) break;
            runEnd = Math.min(end, (block + 1L) * blockSize);
        }
        long length = runEnd - pos;
        return switch (first) {
            case VdiBlockMap.UNALLOCATED -> LayerRun.unallocated(length);
            case VdiBlockMap.ZERO -> LayerRun.zero(length);
            default -> LayerRun.data(length, file, header.blockOffset(Integer.toUnsignedLong(first)) + pos % blockSize);
        };
    }

    @Override
    public Optional<BackingRef> backing() {
        return Optional.empty();
    }

    @Override
    public LayerInfo info() {
        return new LayerInfo("vdi", size(), (long) VdiHeader.BLOCK_SIZE, null, List.of(), Map.of());
    }

    @Override
    public void close() throws IOException {
        file.close();
    }
}
