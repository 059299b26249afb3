package org.vdiskload.format.raw;

import org.vdiskload.image.ImageFormat;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.OpenContext;
import org.vdiskload.image.ProbeData;
import org.vdiskload.io.ImageFile;

import java.io.IOException;

/** A raw image: the file is the disk. Every file probes as raw, with the lowest score. */
public final class RawFormat implements ImageFormat {
    @Override
    public String name() {
        return "raw";
    }

    @Override
    public java.util.List<String> aliases() {
        return java.util.List.of("img");
    }

    @Override
    public int probe(ProbeData data) {
        return FALLBACK;
    }

    @Override
    public ImageLayer open(ImageFile file, OpenContext context) throws IOException {
        return new RawLayer(file);
    }
}
