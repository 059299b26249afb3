package org.vdiskload.attach.fuse;

import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import org.vdiskload.sys.Errno;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.logging.Logger;

import static org.vdiskload.attach.fuse.Fuse.*;

/**
 * One serving thread: reads a request from /dev/fuse into its own buffer, answers it from its own reply
 * buffer in one write. Nothing a request holds can end the worker: a refusal or an image failure
 * becomes an errno reply (an image failure's errno as {@link Errno#of} maps it); only the session's end
 * or a stop does.
 */
final class FuseWorker implements Runnable {
    private static final Logger LOG = Logger.getLogger(FuseMount.class.getName());

    private final FuseChannel channel;
    private final FuseOps ops;
    private final Runnable onSessionEnd;
    private final Request request;
    private final ByteBuffer in;
    private final ByteBuffer out;
    private final Pointer inAddress;
    private final Pointer outAddress;
    private final Memory pollSet;

    FuseWorker(FuseChannel channel, FuseOps ops, Runnable onSessionEnd) {
        this.channel = channel;
        this.ops = ops;
        this.onSessionEnd = onSessionEnd;
        // The kernel refuses reads into buffers smaller than max_write plus the WRITE headers.
        this.in = ByteBuffer.allocateDirect(MAX_IO + 4096).order(ByteOrder.nativeOrder());
        this.out = ByteBuffer.allocateDirect(OUT_HEADER + MAX_IO).order(ByteOrder.nativeOrder());
        this.request = new Request(in);
        this.inAddress = Native.getDirectBufferPointer(in);
        this.outAddress = Native.getDirectBufferPointer(out);
        this.pollSet = channel.pollSet();
    }

    @Override
    public void run() {
        try {
            while (true) {
                long n = channel.receive(inAddress, in.capacity(), pollSet, -1);
                if (n == FuseChannel.STOPPED) return;
                if (n == FuseChannel.ENDED) {
                    onSessionEnd.run();
                    return;
                }
                serve((int) n);
            }
        } catch (IOException e) {
            LOG.severe("vdiskload fuse: " + e.getMessage() + "; worker stops");
        }
    }

    /**
     * Answers the kernel's INIT, the first request of every session (the kernel holds all others until it
     * is answered). Fails if none comes within {@code timeoutMillis} or the kernel's protocol is too old.
     */
    void init(int timeoutMillis) throws IOException {
        long n = channel.receive(inAddress, in.capacity(), pollSet, timeoutMillis);
        if (n <= 0) throw new IOException("/dev/fuse: the kernel sent no INIT within " + timeoutMillis + " ms");
        try {
            request.parse((int) n);
        } catch (FuseError e) {
            throw new IOException("/dev/fuse: malformed first request (" + n + " bytes)");
        }
        if (request.opcode != INIT) throw new IOException("/dev/fuse: first request is opcode " + request.opcode + ", not INIT");
        try {
            send(0, Handshake.reply(request, out));
        } catch (FuseError e) {
            send(e.errno, 0);
            throw new IOException("/dev/fuse: the kernel's FUSE protocol " + request.u32(0) + "." + request.u32(4) + " is not 7.x");
        }
    }

    private void serve(int n) throws IOException {
        int errno = 0, payload = 0;
        try {
            request.parse(n);
            payload = ops.handle(request, out);
            if (payload == FuseOps.NO_REPLY) return;
        } catch (FuseError e) {
            errno = e.errno;
        } catch (IOException | RuntimeException e) {
            errno = Errno.of(e); // ENOSPC for a full host file system, EROFS for a range the image keeps...
            LOG.warning("vdiskload fuse: opcode " + request.opcode + " on node " + request.nodeid + ": " + e.getMessage() + " (errno " + errno + ")");
        }
        if (request.unique == 0) return; // nothing we could answer to
        send(errno, payload);
    }

    private void send(int errno, int payload) throws IOException {
        int length = OUT_HEADER + (errno == 0 ? payload : 0);
        out.putInt(0, length).putInt(4, -errno).putLong(8, request.unique);
        channel.send(outAddress, length);
    }
}
