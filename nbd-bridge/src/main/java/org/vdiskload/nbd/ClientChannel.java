package org.vdiskload.nbd;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.GatheringByteChannel;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.SocketChannel;

/**
 * The byte stream to one client, blocking: the socket itself, or a {@link TlsChannel} over it once
 * NBD_OPT_STARTTLS succeeded. One thread reads while others write (each write under the reply lock).
 */
interface ClientChannel extends ReadableByteChannel, GatheringByteChannel {

    /** The socket as it is, no TLS. */
    static ClientChannel plain(SocketChannel socket) {
        return new ClientChannel() {
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
