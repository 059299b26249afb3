package org.vdiskload.format.vmdk;

import org.vdiskload.image.LayerRun;
import org.vdiskload.io.ImageFile;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A FLAT or VMFS extent: the bytes lie verbatim in the file from {@code start} on. As in qemu, a file
 * shorter than the extent reads as zeros past its end (and, like qemu-img map, all of it counts as data).
 */
record FlatExtent(ImageFile file, long start, long size, String type) implements VmdkExtent {

    @Override
    public LayerRun map(long pos, long maxLength) {
        return LayerRun.data(maxLength, file, start + pos);
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
