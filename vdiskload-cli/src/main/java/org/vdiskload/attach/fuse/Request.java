package org.vdiskload.attach.fuse;

import org.vdiskload.sys.Errno;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/** One request as read from /dev/fuse into a worker's buffer: the fuse_in_header and bounds-checked body access. */
final class Request {
    final ByteBuffer buf;
    int opcode;
    long unique;
    long nodeid;
    private int bodyLength;

    Request(ByteBuffer buf) {
        this.buf = buf.order(ByteOrder.nativeOrder());
    }

    /** Reads the header of the {@code n} bytes just received; unique is set whenever there were enough bytes for it. */
    void parse(int n) throws FuseError {
        unique = n >= 16 ? buf.getLong(8) : 0;
        opcode = -1;
        if (n < Fuse.IN_HEADER || buf.getInt(0) != n) throw new FuseError(Errno.EIO);
        opcode = buf.getInt(4);
        nodeid = buf.getLong(16);
        int extensions = (buf.getShort(36) & 0xffff) * 8;
        bodyLength = n - Fuse.IN_HEADER - extensions;
        if (bodyLength < 0) throw new FuseError(Errno.EIO);
    }

    int bodyLength() {
        return bodyLength;
    }

    /** Fails the request unless its body has at least {@code length} bytes. */
    void require(int length) throws FuseError {
        if (bodyLength < length) throw new FuseError(Errno.EINVAL);
    }

    int u32(int bodyOffset) {
        return buf.getInt(Fuse.IN_HEADER + bodyOffset);
    }

    long u64(int bodyOffset) {
        return buf.getLong(Fuse.IN_HEADER + bodyOffset);
    }

    /** A view of {@code length} body bytes from {@code bodyOffset} (already checked by {@link #require}). */
    ByteBuffer slice(int bodyOffset, int length) {
        return buf.duplicate().position(Fuse.IN_HEADER + bodyOffset).limit(Fuse.IN_HEADER + bodyOffset + length);
    }

    /** The NUL-terminated name that is the body of LOOKUP. */
    String name() throws FuseError {
        int start = Fuse.IN_HEADER;
        for (int i = start; i < start + bodyLength; i++) {
            if (buf.get(i) == 0) {
                try {
                    return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                            .decode(buf.duplicate().position(start).limit(i)).toString();
                } catch (CharacterCodingException e) {
                    throw new FuseError(Errno.ENOENT); // no file of ours has a name that is not UTF-8
                }
            }
        }
        throw new FuseError(Errno.EINVAL);
    }
}
