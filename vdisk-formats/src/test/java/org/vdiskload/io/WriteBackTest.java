package org.vdiskload.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The group commit: writers waiting at once share a commit, and none returns before its change is written. */
class WriteBackTest {
    @TempDir
    Path dir;

    /** A format whose metadata is a counter of changes; a commit "writes" the value it copied, slowly. */
    private static final class Counter {
        final Object lock = new Object();
        long changes;
        volatile long written;
        final AtomicInteger commits = new AtomicInteger();

        WriteBack.Batch take(boolean all) {
            long copy = changes;
            if (copy == written) return null;
            return () -> {
                commits.incrementAndGet();
                sleep(); // a flush's worth of waiting, during which other writers change and queue up
                written = copy;
            };
        }

        private static void sleep() throws IOException {
            try {
                Thread.sleep(3);
            } catch (InterruptedException e) {
                throw new IOException(e);
            }
        }
    }

    @Test
    void writersWaitingAtOnceShareOneCommit() throws Exception {
        Files.write(dir.resolve("f"), new byte[1]);
        try (ImageFile file = ImageFile.open(dir.resolve("f"), true)) {
            Counter c = new Counter();
            WriteBack wb = new WriteBack(file, WriteBack.FormatLock.of(c.lock), c::take);
            wb.setWriteThrough(true);
            int threads = 8, each = 40;
            ExecutorService pool = Executors.newFixedThreadPool(threads);
            try {
                List<Future<?>> done = new ArrayList<>();
                for (int t = 0; t < threads; t++) {
                    done.add(pool.submit(() -> {
                        for (int i = 0; i < each; i++) {
                            long ticket;
                            synchronized (c.lock) {
                                c.changes++;
                                wb.changed();
                                ticket = wb.ticket();
                            }
                            wb.settle(ticket);
                            // Returned: the commit that covered this change has written it.
                            assertTrue(c.written >= ticket, "returned before change " + ticket + " was written (" + c.written + ")");
                        }
                        return null;
                    }));
                }
                for (Future<?> f : done) f.get();
            } finally {
                pool.shutdown();
            }
            assertEquals(threads * each, c.written);
            int commits = c.commits.get();
            assertTrue(commits < threads * each / 3, commits + " commits for " + threads * each + " changes");
        }
    }

    @Test
    void withoutWriteThroughNothingIsWrittenBeforeACommit() throws Exception {
        Files.write(dir.resolve("f"), new byte[1]);
        try (ImageFile file = ImageFile.open(dir.resolve("f"), true)) {
            Counter c = new Counter();
            WriteBack wb = new WriteBack(file, WriteBack.FormatLock.of(c.lock), c::take);
            long ticket;
            synchronized (c.lock) {
                c.changes++;
                wb.changed();
                ticket = wb.ticket();
            }
            wb.settle(ticket);
            assertEquals(0, c.written);
            wb.setWriteThrough(true); // writes what waits
            assertEquals(1, c.written);
            wb.commit(true);
            assertEquals(1, c.commits.get(), "nothing waited");
        }
    }
}
