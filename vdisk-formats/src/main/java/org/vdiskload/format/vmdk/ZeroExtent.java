package org.vdiskload.format.vmdk;

import org.vdiskload.image.Beneath;
import org.vdiskload.image.LayerRun;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.nio.ByteBuffer;
import java.util.LinkedHashMap;
import java.util.Map;

/** A ZERO extent: no file, reads as zeros; zeroing it is a no-op, writing data into it is refused. */
record ZeroExtent(long size) implements VmdkExtent {

    @Override
    public ImageFile file() {
        return null;
    }

    @Override
    public LayerRun map(long pos, long maxLength) {
        return LayerRun.zero(maxLength);
    }

    @Override
    public void write(ByteBuffer src, long pos, Beneath beneath, long base) throws ImageException {
        // The layer refuses such writes with its own path first; this is the backstop.
        throw ImageException.unsupported(null, "a ZERO extent cannot hold data (write at disk offset " + (base + pos) + ")");
    }

    @Override
    public void writeZeroes(long pos, long length, boolean mayUnmap, Beneath beneath, long base) {
    }

    @Override
    public Map<String, Object> info() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("virtual-size", size);
        m.put("format", "ZERO");
        return m;
    }
}
