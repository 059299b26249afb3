package org.vdiskload.nbd;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.GatheringByteChannel;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.SocketChannel;

/**
 * The byte stream to one client, blocking: the socket itself, or a {@link TlsChannel} over it once
 * NBD_OPT_STARTTLS succeeded. One thread reads while others write (each write under the reply lock).
 */
interface ClientChannel extends ReadableByteChannel, GatheringByteChannel {

    /** Whether {@link #transferFrom} sends file bytes without copying them through this process. */
    default boolean sendsFiles() {
        return false;
    }

    /**
     * Sends at most {@code count} bytes of {@code file} from {@code position}; returns how many, 0 at the
     * file's end. Only where {@link #sendsFiles()}.
     */
    default long transferFrom(FileChannel file, long position, long count) throws IOException {
        throw new UnsupportedOperationException("this channel does not send files");
    }

    /** The socket as it is, no TLS. */
    static ClientChannel plain(SocketChannel socket) {
        return new ClientChannel() {
            @Override
            public boolean sendsFiles() {
                return true;
            }

            /** FileChannel.transferTo a SocketChannel (Unix or TCP) is sendfile(2): the kernel hands the page-cache pages on. */
            @Override
            public long transferFrom(FileChannel file, long position, long count) throws IOException {
                return file.transferTo(position, count, socket);
            }

            @Override
            public int read(ByteBuffer dst) throws IOException {
                return socket.read(dst);
            }

            @Override
            public int write(ByteBuffer src) throws IOException {
                return socket.write(src);
            }

            @Override
            public long write(ByteBuffer[] srcs, int offset, int length) throws IOException {
                return socket.write(srcs, offset, length);
            }

            @Override
            public long write(ByteBuffer[] srcs) throws IOException {
                return socket.write(srcs);
            }

            @Override
            public boolean isOpen() {
                return socket.isOpen();
            }

            @Override
            public void close() throws IOException {
                socket.close();
            }
        };
    }
}
