package org.vdiskload.format.vdi;

import org.vdiskload.image.BackingRef;
import org.vdiskload.image.ImageFormat;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.OpenContext;
import org.vdiskload.image.ProbeData;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * VirtualBox's VDI format, as qemu reads it, and differencing images as VirtualBox does. Detected like qemu
 * does: by the signature at 0x40.
 */
public final class VdiFormat implements ImageFormat {
    @Override
    public String name() {
        return "vdi";
    }

    @Override
    public int probe(ProbeData data) {
        ByteBuffer head = data.head().order(ByteOrder.LITTLE_ENDIAN);
        if (head.limit() < VdiHeader.LENGTH) return 0;
        return head.getInt(VdiHeader.SIGNATURE_OFFSET) == VdiHeader.SIGNATURE ? MAGIC : 0;
    }

    /** A differencing VDI's parent is a VDI. */
    @Override
    public String onlyBackingFormat() {
        return "vdi";
    }

    @Override
    public java.util.Optional<org.vdiskload.image.ImageCreator> creator() {
        return java.util.Optional.of(VdiCreator::create);
    }

    @Override
    public ImageLayer open(ImageFile file, OpenContext context) throws IOException {
        if (context.snapshot() != null) {
            throw ImageException.invalid(file.path(), "VDI images have no internal snapshots (asked for '" + context.snapshot() + "')");
        }
        ByteBuffer b = file.readStruct(0, VdiHeader.LENGTH, ByteOrder.LITTLE_ENDIAN, "VDI header");
        VdiHeader header = VdiHeader.parse(b, file.path());
        VdiBlockMap map = VdiBlockMap.read(file, header);
        BackingRef parent = header.isDiff() ? VdiParentSearch.find(file.path(), header, context.refs()) : null;
        return new VdiLayer(file, header, map, parent);
    }
}
