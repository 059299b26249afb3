package org.vdiskload.format.vmdk;

import org.vdiskload.image.LayerRun;
import org.vdiskload.io.ImageFile;

import java.util.LinkedHashMap;
import java.util.Map;

/** A ZERO extent: no file, reads as zeros. */
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
    public Map<String, Object> info() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("virtual-size", size);
        m.put("format", "ZERO");
        return m;
    }
}
