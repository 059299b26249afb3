package org.vdiskload.ops;

import org.vdiskload.image.DiskImage;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.Bytes;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.RandomAccessFile;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Writes a disk's content to a raw file, sparsely: zero extents, and data blocks that turn out to be
 * all zeros, stay holes. DATA extents are read straight from their file; the rest through the library.
 * Units ({@link CopyUnit}: runs of extents, up to 2 MiB) are copied by a few threads at once (reads and writes are positional), so reading, decoding,
 * the zero check and writing overlap, as qemu-img convert keeps several requests in flight.
 * Like qemu-img convert (whose output cache mode defaults to "unsafe") and cp, the output is left
 * to the page cache, not flushed to the disk before returning.
 */
public final class RawExport {
    /** Granularity of the zero check that keeps the output sparse (qemu-img's -S default). */
    private static final int ZERO_GRAIN = 4096;
    /** Copying threads: a few suffice to keep the disk and the decoders busy. */
    private static final int THREADS = Math.max(2, Math.min(4, Runtime.getRuntime().availableProcessors()));
    /** Chunks in flight: one being prepared for each thread while it works on another. */
    private static final int BUFFERS = 2 * THREADS;

    private RawExport() {}

    /**
     * Writes {@code image} to {@code target}, replacing it. The target must not be a file of the
     * image's chain; on failure the target is removed.
     */
    public static void export(DiskImage image, Path target, Progress progress) throws IOException {
        Targets.requireNotInChain(image, target);
        long size = image.size();
        boolean done = false;
        try {
            // Emptied and sized through a descriptor of its own, closed before the copy, as qemu-img
            // does: ext4 (auto_da_alloc) marks a file truncated to zero and, on the close of that
            // descriptor, allocates and starts writing back everything written through it inside
            // close — 0.3 s for 256 MiB. Closing it while still empty spends the mark on nothing.
            try (RandomAccessFile create = new RandomAccessFile(target.toFile(), "rw")) {
                create.setLength(0);
                create.setLength(size);
            }
            try (RandomAccessFile out = new RandomAccessFile(target.toFile(), "rw")) {
                new Copier(image, out.getChannel(), size, progress).run();
            }
            done = true;
        } catch (java.io.FileNotFoundException e) {
            throw ImageException.invalid(target, "cannot create: " + e.getMessage());
        } finally {
            if (!done) Files.deleteIfExists(target);
        }
        progress.update(1.0);
    }

    /** One export: walks the map on the calling thread and hands the chunks to the pool. */
    private static final class Copier {
        private final DiskImage image;
        private final FileChannel out;
        private final long size;
        private final Progress progress;
        private final BlockingQueue<ByteBuffer> buffers = new ArrayBlockingQueue<>(BUFFERS);
        private final ArrayDeque<Future<?>> inFlight = new ArrayDeque<>();
        /** Bytes whose fate is settled: zero extents walked past and chunks written. */
        private final AtomicLong settled = new AtomicLong();
        private final ReentrantLock writing = new ReentrantLock();

        Copier(DiskImage image, FileChannel out, long size, Progress progress) {
            this.image = image;
            this.out = out;
            this.size = size;
            this.progress = progress;
        }

        void run() throws IOException {
            ExecutorService pool = Executors.newFixedThreadPool(THREADS, r -> {
                Thread t = new Thread(r, "vdiskload-export");
                t.setDaemon(true);
                return t;
            });
            try {
                for (int i = 0; i < BUFFERS; i++) buffers.add(CopyUnit.newBuffer());
                CopyUnit.plan(image, new CopyUnit.Visitor() {
                    @Override
                    public void unit(CopyUnit unit) throws IOException {
                        submit(pool, unit);
                        progress.update((double) settled.get() / size);
                    }

                    @Override
                    public void zero(long start, long length) {
                        settled.addAndGet(length);
                        progress.update((double) settled.get() / size);
                    }
                });
                while (!inFlight.isEmpty()) Futures.await(inFlight.poll());
            } finally {
                // No interrupts: an interrupted FileChannel read closes the image's channel.
                pool.shutdown();
                awaitQuietly(pool);
            }
        }

        /** Queues one unit, first reporting the failure of any unit that has finished. */
        private void submit(ExecutorService pool, CopyUnit unit) throws IOException {
            while (!inFlight.isEmpty() && inFlight.peek().isDone()) Futures.await(inFlight.poll());
            ByteBuffer buf;
            try {
                buf = buffers.take();
            } catch (InterruptedException ie) {
                Thread.currentThread().interrupt();
                throw new InterruptedIOException("export interrupted");
            }
            inFlight.add(pool.submit(() -> {
                try {
                    unit.read(image, buf);
                    // One unit's writes at a time: ext4 takes the file's lock for every write, and
                    // two threads writing at once spin on it in the kernel, burning the CPU the
                    // other thread's read needs. Waiting here parks instead; reads still overlap.
                    writing.lock();
                    try {
                        writeNonZero(buf, out, unit.start());
                    } finally {
                        writing.unlock();
                    }
                } catch (IOException ex) {
                    throw new UncheckedIOException(ex);
                } finally {
                    buffers.add(buf);
                }
                settled.addAndGet(unit.length());
                return null;
            }));
        }

        private static void awaitQuietly(ExecutorService pool) {
            boolean interrupted = false;
            while (true) {
                try {
                    if (pool.awaitTermination(1, TimeUnit.MINUTES)) break;
                } catch (InterruptedException ie) {
                    interrupted = true;
                }
            }
            if (interrupted) Thread.currentThread().interrupt();
        }
    }

    /** Writes {@code buf} at {@code pos}, skipping zero grains so they stay holes. */
    private static void writeNonZero(ByteBuffer buf, FileChannel out, long pos) throws IOException {
        int len = buf.limit();
        int runStart = -1;
        for (int g = 0; g < len; g += ZERO_GRAIN) {
            int gEnd = Math.min(len, g + ZERO_GRAIN);
            boolean zero = Bytes.isZero(buf, g, gEnd);
            if (!zero && runStart < 0) runStart = g;
            if (zero && runStart >= 0) {
                write(buf, runStart, g, out, pos);
                runStart = -1;
            }
        }
        if (runStart >= 0) write(buf, runStart, len, out, pos);
    }

    private static void write(ByteBuffer buf, int from, int to, FileChannel out, long pos) throws IOException {
        ByteBuffer part = buf.duplicate().limit(to).position(from);
        long p = pos + from;
        while (part.hasRemaining()) p += out.write(part, p);
    }
}
