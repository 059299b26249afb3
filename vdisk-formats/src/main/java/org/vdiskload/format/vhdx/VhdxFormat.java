package org.vdiskload.format.vhdx;

import org.vdiskload.image.ImageCreator;
import org.vdiskload.image.ImageFormat;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.OpenContext;
import org.vdiskload.image.ProbeData;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.util.Optional;

/** Microsoft's VHDX (MS-VHDX): recognised by the "vhdxfile" file type identifier at offset 0. */
public final class VhdxFormat implements ImageFormat {
    @Override
    public String name() {
        return "vhdx";
    }

    @Override
    public int probe(ProbeData data) {
        return data.headStartsWith(VhdxHeader.FILE_SIGNATURE) ? MAGIC : 0;
    }

    @Override
    public Optional<ImageCreator> creator() {
        return Optional.of(VhdxCreator::create);
    }

    @Override
    public ImageLayer open(ImageFile file, OpenContext context) throws IOException {
        return VhdxLayer.open(file, context);
    }
}
