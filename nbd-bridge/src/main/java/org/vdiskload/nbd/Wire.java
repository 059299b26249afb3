package org.vdiskload.nbd;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.GatheringByteChannel;
import java.nio.channels.ReadableByteChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/** Blocking reads and writes of whole buffers on a socket channel. */
final class Wire {
    private Wire() {}

    /** Fills {@code buf}; EOF before it is full is an {@link EOFException} (the client went away). */
    static void readFully(ReadableByteChannel ch, ByteBuffer buf) throws IOException {
        while (buf.hasRemaining()) {
            if (ch.read(buf) < 0) throw new EOFException("client closed the connection");
        }
    }

    /** Reads exactly {@code n} bytes into a new big-endian buffer, flipped for reading. */
    static ByteBuffer read(ReadableByteChannel ch, int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        readFully(ch, b);
        return b.flip();
    }

    /** Writes every buffer completely, in order. */
    static void writeFully(GatheringByteChannel ch, ByteBuffer... bufs) throws IOException {
        int first = 0;
        while (first < bufs.length) {
            ch.write(bufs, first, bufs.length - first);
            while (first < bufs.length && !bufs[first].hasRemaining()) first++;
        }
    }

    static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /** Decodes a protocol string, or returns null if it is not valid UTF-8 or contains NUL. */
    static String string(ByteBuffer b, int length) {
        ByteBuffer part = b.slice(b.position(), length);
        b.position(b.position() + length);
        try {
            String s = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(part).toString();
            return s.indexOf('\0') >= 0 ? null : s;
        } catch (CharacterCodingException e) {
            return null;
        }
    }
}
