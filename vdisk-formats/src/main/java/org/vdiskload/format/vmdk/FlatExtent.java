package org.vdiskload.format.vmdk;

import org.vdiskload.image.Beneath;
import org.vdiskload.image.LayerRun;
import org.vdiskload.io.Holes;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A FLAT or VMFS extent: the bytes lie verbatim in the file from {@code start} on. As in qemu, a file
 * shorter than the extent reads as zeros past its end (and, like qemu-img map, all of it counts as data).
 * Every byte is written in place: there is no metadata.
 */
record FlatExtent(ImageFile file, long start, long size, String type) implements VmdkExtent {
    private static final int ZERO_CHUNK = 1 << 20;

    @Override
    public LayerRun map(long pos, long maxLength) {
        return file.isWritable() ? LayerRun.dataInPlace(maxLength, file, start + pos) : LayerRun.data(maxLength, file, start + pos);
    }

    @Override
    public void write(ByteBuffer src, long pos, Beneath beneath, long base) throws IOException {
        file.writeFully(src, start + pos);
    }

    @Override
    public void writeZeroes(long pos, long length, boolean mayUnmap, Beneath beneath, long base) throws IOException {
        long at = start + pos;
        // Past the end of the file reads as zeros already; inside, punch a hole where allowed, else write zeros.
        long inFile = Math.max(0, Math.min(length, file.size() - at));
        if (inFile == 0 || mayUnmap && Holes.punchHole(file.path(), at, inFile)) return;
        ByteBuffer zeros = ByteBuffer.allocate((int) Math.min(ZERO_CHUNK, inFile));
        for (long done = 0; done < inFile; ) {
            int n = (int) Math.min(zeros.capacity(), inFile - done);
            file.writeFully(zeros.clear().limit(n), at + done);
            done += n;
        }
    }

    @Override
    public void flush() throws IOException {
        if (file.isWritable()) file.force(true);
    }

    @Override
    public Map<String, Object> info() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("virtual-size", size);
        m.put("filename", file.path().toString());
        m.put("format", type);
        return m;
    }
}
