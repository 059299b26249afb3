package org.vdiskload.format.vhd;

import org.vdiskload.image.ImageCreator;
import org.vdiskload.image.ImageFormat;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.OpenContext;
import org.vdiskload.image.ProbeData;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Optional;

/**
 * Microsoft's Virtual Hard Disk (VHD), named "vpc" as qemu names it. Dynamic and differencing disks
 * start with a copy of the footer; a fixed disk has its footer only in its last 512 bytes.
 */
public final class VhdFormat implements ImageFormat {
    /** A footer found only at the end is less sure a sign than one at the start. */
    static final int TAIL_SCORE = MAGIC / 2;

    @Override
    public String name() {
        return "vpc";
    }

    @Override
    public List<String> aliases() {
        return List.of("vhd");
    }

    @Override
    public int probe(ProbeData data) {
        if (data.headStartsWith(VhdFooter.COOKIE)) return MAGIC;
        ByteBuffer tail = data.tail();
        int at = tail.limit() - VhdFooter.SIZE;
        if (at >= 0 && VhdFooter.hasCookie(tail, at)
                && tail.order(ByteOrder.BIG_ENDIAN).getInt(at + VhdFooter.DISK_TYPE_OFFSET) == VhdFooter.TYPE_FIXED) {
            return TAIL_SCORE;
        }
        return 0;
    }

    @Override
    public ImageLayer open(ImageFile file, OpenContext context) throws IOException {
        long fileSize = file.size();
        if (fileSize < VhdFooter.SIZE) {
            throw ImageException.corrupt(file.path(), 0, "footer", "file of " + fileSize + " bytes is too small for a VHD footer");
        }
        ByteBuffer head = file.readStruct(0, VhdFooter.SIZE, ByteOrder.BIG_ENDIAN, "footer copy");
        if (VhdFooter.hasCookie(head, 0)) return openSparse(file, context, head);
        return openFixed(file, fileSize, writable(file, context));
    }

    @Override
    public Optional<ImageCreator> creator() {
        return Optional.of(VhdCreator::create);
    }

    private static boolean writable(ImageFile file, OpenContext context) {
        return context.writable() && file.isWritable();
    }

    private static ImageLayer openFixed(ImageFile file, long fileSize, boolean writable) throws IOException {
        long at = fileSize - VhdFooter.SIZE;
        ByteBuffer tail = file.readStruct(at, VhdFooter.SIZE, ByteOrder.BIG_ENDIAN, "footer");
        if (!VhdFooter.hasCookie(tail, 0)) {
            if (VhdFooter.hasCookie(tail, 1)) {
                // Virtual PC before 2004 wrote a 511-byte footer; qemu does not read these either.
                throw new ImageException(ImageException.Kind.UNSUPPORTED, file.path(), at + 1, "footer",
                        "has a 511-byte footer (Virtual PC before 2004), which is not supported");
            }
            throw ImageException.corrupt(file.path(), at, "footer", "no VHD footer ('conectix') at the start or in the last 512 bytes");
        }
        VhdFooter footer = VhdFooter.parse(file, at, tail);
        if (footer.diskType() != VhdFooter.TYPE_FIXED) {
            throw ImageException.corrupt(file.path(), at + VhdFooter.DISK_TYPE_OFFSET, "footer disk type",
                    "disk type " + footer.diskType() + " needs a footer copy at the start of the file, which is missing");
        }
        footer.requireSupportedSize(file, at);
        if (footer.virtualSize() > at) {
            throw ImageException.corrupt(file.path(), at + 48, "footer current size",
                    "fixed disk of " + footer.virtualSize() + " bytes does not fit in the " + at + " bytes before the footer: the image is truncated");
        }
        return new VhdLayer(file, footer, writable);
    }

    private static ImageLayer openSparse(ImageFile file, OpenContext context, ByteBuffer head) throws IOException {
        VhdFooter footer = VhdFooter.parse(file, 0, head);
        if (footer.diskType() == VhdFooter.TYPE_FIXED) {
            throw ImageException.corrupt(file.path(), VhdFooter.DISK_TYPE_OFFSET, "footer disk type",
                    "the footer copy at the start says fixed disk, but only dynamic and differencing disks have one");
        }
        footer.requireSupportedSize(file, 0);
        long at = footer.dataOffset();
        if (at < 0) {
            throw ImageException.corrupt(file.path(), 16, "footer data offset",
                    "dynamic header offset " + Long.toUnsignedString(at) + " is past the end of the file");
        }
        ByteBuffer hb = file.readStruct(at, VhdDynamicHeader.SIZE, ByteOrder.BIG_ENDIAN, "dynamic header");
        VhdDynamicHeader header = VhdDynamicHeader.parse(file, at, hb);
        VhdBat bat = VhdBat.load(file, header, footer.virtualSize());
        List<String> parents = footer.diskType() == VhdFooter.TYPE_DIFFERENCING ? VhdParent.fileNames(file, header) : null;
        boolean writable = writable(file, context);
        VhdBlockMap blocks = new VhdBlockMap(file, bat, context.cacheBytes(), writable,
                VhdLayout.overlappingBlocks(header, bat, file.size()));
        VhdWriter writer = writable
                ? new VhdWriter(file, blocks, head, footer.diskType() == VhdFooter.TYPE_DYNAMIC, VhdWriter.tailOf(header, bat, file.size()),
                        VhdLayout.besideTheBat(header, file.size()))
                : null;
        return new VhdLayer(file, footer, header, blocks, writer, parents);
    }
}
