package org.vdiskload.nbd;

import org.vdiskload.io.ImageFile;

import java.nio.ByteBuffer;

/**
 * A piece of a reply's payload: bytes in memory, or a range of an image file that the socket sends
 * straight from the file ({@link ClientChannel#transferFrom}: sendfile, no copy through this process).
 */
sealed interface PayloadPart {
    long length();

    record Bytes(ByteBuffer buffer) implements PayloadPart {
        @Override
        public long length() {
            return buffer.remaining();
        }
    }

    /** {@code length} bytes of {@code file} at {@code position}; bytes past the file's end are zeros (as readPadded). */
    record FileRange(ImageFile file, long position, long length) implements PayloadPart {}
}
