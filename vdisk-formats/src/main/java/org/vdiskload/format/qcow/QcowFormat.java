package org.vdiskload.format.qcow;

import org.vdiskload.image.ImageFormat;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.OpenContext;
import org.vdiskload.image.ProbeData;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** qemu's original "qcow" format (version 1). Versions 2 and 3 share the magic and are qcow2. */
public final class QcowFormat implements ImageFormat {
    @Override
    public String name() {
        return "qcow";
    }

    @Override
    public int probe(ProbeData data) {
        ByteBuffer head = data.head().order(ByteOrder.BIG_ENDIAN);
        if (head.limit() < QcowHeader.LENGTH) return 0;
        return head.getInt(0) == QcowHeader.MAGIC && head.getInt(4) == QcowHeader.VERSION ? MAGIC : 0;
    }

    @Override
    public java.util.Optional<org.vdiskload.image.ImageCreator> creator() {
        return java.util.Optional.of(QcowCreator::create);
    }

    @Override
    public ImageLayer open(ImageFile file, OpenContext context) throws IOException {
        if (context.snapshot() != null) {
            throw ImageException.invalid(file.path(), "qcow images have no internal snapshots (asked for '" + context.snapshot() + "')");
        }
        ByteBuffer b = file.readStruct(0, QcowHeader.LENGTH, ByteOrder.BIG_ENDIAN, "qcow header");
        QcowHeader header = QcowHeader.parse(b, file.path());
        QcowTables tables = new QcowTables(file, header, context.cacheBytes());
        return new QcowLayer(file, header, tables, QcowLayer.readBacking(file, header));
    }
}
