package org.vdiskload.format.qcow2;

import org.vdiskload.image.ImageCreator;
import org.vdiskload.image.ImageFormat;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.OpenContext;
import org.vdiskload.image.ProbeData;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Optional;

/** qemu's qcow2 format, versions 2 and 3: read, written, created, checked. */
public final class Qcow2Format implements ImageFormat {
    @Override
    public String name() {
        return "qcow2";
    }

    @Override
    public int probe(ProbeData data) {
        ByteBuffer head = data.head();
        if (!Qcow2Header.hasMagic(head) || head.limit() < 8) return 0;
        int version = head.order(ByteOrder.BIG_ENDIAN).getInt(4);
        return version >= 2 ? MAGIC : 0;
    }

    @Override
    public ImageLayer open(ImageFile file, OpenContext context) throws IOException {
        return Qcow2Layer.open(file, context);
    }

    @Override
    public Optional<ImageCreator> creator() {
        return Optional.of(Qcow2Creator::create);
    }
}
