package org.vdiskload.format.vmdk;

import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The end of a stream-optimized extent whose header says {@link SparseHeader#GD_AT_END}: a footer marker
 * sector, the footer (a second header holding the real grain directory offset) and the end-of-stream
 * marker, in the last three sectors of the file. As in qemu, the footer then replaces the header.
 */
final class StreamFooter {
    static final int SIZE = 3 * 512;

    private StreamFooter() {}

    static SparseHeader read(ImageFile f) throws IOException {
        long size = f.size();
        long at = (size & ~511L) - SIZE;
        if (at < SparseHeader.SIZE) {
            throw ImageException.corrupt(f.path(), 0, "footer", "grain directory is at the end, but the file is too short for a footer");
        }
        ByteBuffer b = f.readStruct(at, SIZE, ByteOrder.LITTLE_ENDIAN, "footer");
        if (!StreamMarker.parse(b, 0).is(StreamMarker.FOOTER)) {
            throw ImageException.corrupt(f.path(), at, "footer marker", "no footer marker before the footer");
        }
        StreamMarker eos = StreamMarker.parse(b, 1024);
        if (eos.value() != 0 || !eos.is(StreamMarker.END_OF_STREAM)) {
            throw ImageException.corrupt(f.path(), at + 1024, "end-of-stream marker", "no end-of-stream marker after the footer");
        }
        SparseHeader footer = SparseHeader.parse(b.slice(512, 512), f, at + 512);
        if (footer.gdOffset() == SparseHeader.GD_AT_END) {
            throw ImageException.corrupt(f.path(), at + 512 + 56, "gdOffset", "the footer does not say where the grain directory is either");
        }
        return footer;
    }
}
