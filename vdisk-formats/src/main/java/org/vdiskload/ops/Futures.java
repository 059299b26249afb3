package org.vdiskload.ops;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.UncheckedIOException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;

/** Waiting for the copying threads' work, their failures rethrown as the copy's own. */
final class Futures {
    private Futures() {}

    /** The task's result; its IOException (or an UncheckedIOException's cause) thrown as it was. */
    static <T> T await(Future<T> f) throws IOException {
        try {
            return f.get();
        } catch (InterruptedException ie) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("copy interrupted");
        } catch (ExecutionException ee) {
            Throwable c = ee.getCause();
            if (c instanceof IOException io) throw io;
            if (c instanceof UncheckedIOException u) throw u.getCause();
            if (c instanceof RuntimeException r) throw r;
            if (c instanceof Error err) throw err;
            throw new IOException(c);
        }
    }
}
