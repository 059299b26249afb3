package org.vdiskload.format.vmdk;

import org.vdiskload.image.ImageCreator;
import org.vdiskload.image.ImageFormat;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.OpenContext;
import org.vdiskload.image.ProbeData;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Optional;

/**
 * VMware's VMDK: a sparse extent file (KDMV, COWD) or a text descriptor naming extent files. A bare seSparse
 * extent file is recognised too, only to say that its descriptor is what opens.
 */
public final class VmdkFormat implements ImageFormat {
    @Override
    public String name() {
        return "vmdk";
    }

    @Override
    public int probe(ProbeData data) {
        if (data.headStartsWith(SparseHeader.MAGIC) || data.headStartsWith(CowdHeader.MAGIC)
                || data.headStartsWith(SeSparseHeader.MAGIC_BYTES)) return MAGIC;
        return looksLikeDescriptor(data.head()) ? MAGIC : 0;
    }

    /**
     * qemu's text probe: comment lines and lines of spaces only may precede a "version=1|2|3" line.
     */
    static boolean looksLikeDescriptor(ByteBuffer head) {
        int p = head.position();
        int end = head.limit();
        while (p < end) {
            byte c = head.get(p);
            if (c == '#') {
                while (p < end && head.get(p) != '\n') p++;
                p++;
                continue;
            }
            if (c == ' ') {
                while (p < end && head.get(p) == ' ') p++;
                if (p < end && head.get(p) == '\r') p++;
                if (p >= end || head.get(p) != '\n') return false;
                p++;
                continue;
            }
            for (String v : new String[] {"version=1", "version=2", "version=3"}) {
                if (startsWith(head, p, v + "\n") || startsWith(head, p, v + "\r\n")) return true;
            }
            return false;
        }
        return false;
    }

    private static boolean startsWith(ByteBuffer b, int at, String s) {
        byte[] want = s.getBytes(StandardCharsets.US_ASCII);
        if (b.limit() - at < want.length) return false;
        for (int i = 0; i < want.length; i++) if (b.get(at + i) != want[i]) return false;
        return true;
    }

    @Override
    public Optional<ImageCreator> creator() {
        return Optional.of(VmdkCreator::create);
    }

    @Override
    public ImageLayer open(ImageFile file, OpenContext context) throws IOException {
        return new VmdkOpener(file, context).open();
    }
}
