package org.vdiskload.ops;

import org.vdiskload.image.DiskImage;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * Reads a disk's copy units on a thread of its own, a few ahead of the caller, who takes them in disk
 * order: reading (and decoding) the source overlaps writing the target, as qemu-img convert keeps
 * requests in flight. For writers that must see the disk in order (a new image lays out its clusters
 * as they come).
 */
final class ReadAhead implements AutoCloseable {
    /** Units read ahead: enough to cover a slow write, little memory (2 MiB each). */
    private static final int DEPTH = 3;

    /** A unit's bytes ({@code data} non-null), a zero extent, or the end ({@code end}; {@code failure} if the reader failed). */
    record Item(long start, long length, ByteBuffer data, boolean end, Throwable failure) {}

    private final DiskImage image;
    private final BlockingQueue<ByteBuffer> free = new ArrayBlockingQueue<>(DEPTH + 1);
    /** Room for every buffer plus zero extents and the end marker, so the reader blocks only on buffers. */
    private final BlockingQueue<Item> ready = new ArrayBlockingQueue<>(1024);
    private final Thread thread;
    private volatile boolean stopped;

    ReadAhead(DiskImage image) {
        this.image = image;
        for (int i = 0; i < DEPTH + 1; i++) free.add(CopyUnit.newBuffer());
        this.thread = new Thread(this::run, "vdiskload-read-ahead");
        thread.setDaemon(true);
        thread.start();
    }

    /** The next item in disk order; after the end item, do not call again. */
    Item next() throws IOException {
        Item item;
        try {
            item = ready.take();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("convert interrupted");
        }
        if (item.failure() instanceof IOException io) throw io;
        if (item.failure() instanceof RuntimeException r) throw r;
        if (item.failure() instanceof Error err) throw err;
        if (item.failure() != null) throw new IOException(item.failure());
        return item;
    }

    /** Gives a unit's buffer back once its bytes are written. */
    void release(ByteBuffer buf) {
        free.add(buf);
    }

    private void run() {
        Throwable failure = null;
        try {
            CopyUnit.plan(image, new CopyUnit.Visitor() {
                @Override
                public void unit(CopyUnit unit) throws IOException {
                    ByteBuffer buf = takeFree();
                    unit.read(image, buf);
                    put(new Item(unit.start(), unit.length(), buf, false, null));
                }

                @Override
                public void zero(long start, long length) throws IOException {
                    put(new Item(start, length, null, false, null));
                }
            });
        } catch (Stopped s) {
            return;
        } catch (Throwable t) {
            failure = t;
        }
        try {
            put(new Item(0, 0, null, true, failure));
        } catch (Stopped | InterruptedIOException ignored) {
            // the caller has gone
        }
    }

    private ByteBuffer takeFree() throws InterruptedIOException {
        try {
            ByteBuffer b;
            while ((b = free.poll(100, TimeUnit.MILLISECONDS)) == null) {
                if (stopped) throw new Stopped();
            }
            return b;
        } catch (InterruptedException e) {
            throw new InterruptedIOException("read-ahead interrupted");
        }
    }

    private void put(Item item) throws InterruptedIOException {
        try {
            while (!ready.offer(item, 100, TimeUnit.MILLISECONDS)) {
                if (stopped) throw new Stopped();
            }
        } catch (InterruptedException e) {
            throw new InterruptedIOException("read-ahead interrupted");
        }
    }

    /**
     * Stops the reader and waits for it, so the source is not read after the caller closes it. Never
     * interrupts it: an interrupted FileChannel read would close the source's channel.
     */
    @Override
    public void close() {
        stopped = true;
        boolean interrupted = false;
        while (thread.isAlive()) {
            try {
                thread.join();
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) Thread.currentThread().interrupt();
    }

    /** Unwinds the reader once the caller has stopped taking items. */
    private static final class Stopped extends UncheckedIOException {
        Stopped() {
            super(new IOException("read-ahead stopped"));
        }
    }
}
