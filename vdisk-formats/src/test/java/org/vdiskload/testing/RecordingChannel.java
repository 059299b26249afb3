package org.vdiskload.testing;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.util.ArrayList;
import java.util.List;

/**
 * A file channel that passes everything to the real one and records, in order, each write (where and
 * which bytes), each flush and each truncation: what a power cut may or may not have persisted.
 */
public final class RecordingChannel extends FileChannel {
    /** One recorded event; {@code bytes} for writes, {@code size} for truncations, {@code mark} for marks. */
    public record Event(Kind kind, long pos, byte[] bytes, long size, int mark) {
        public enum Kind { WRITE, FLUSH, TRUNCATE, MARK, RETURNED }

        long end() { return pos + bytes.length; }
    }

    /** The events of one file, shared by every channel opened on it. */
    public static final class Log {
        private final List<Event> events = new ArrayList<>();

        synchronized void add(Event e) { events.add(e); }

        /** The writer's own note that operations up to {@code k} were flushed (a completed flush returned). */
        public synchronized void mark(int k) { events.add(new Event(Event.Kind.MARK, 0, null, 0, k)); }

        /** The writer's note that operation {@code k} returned (with metadata write-through: a kill keeps it). */
        public synchronized void returned(int k) { events.add(new Event(Event.Kind.RETURNED, 0, null, 0, k)); }

        public synchronized List<Event> events() { return List.copyOf(events); }
    }

    private final FileChannel real;
    private final Log log;

    RecordingChannel(FileChannel real, Log log) {
        this.real = real;
        this.log = log;
    }

    @Override
    public int read(ByteBuffer dst) throws IOException { return real.read(dst); }

    @Override
    public long read(ByteBuffer[] dsts, int offset, int length) throws IOException { return real.read(dsts, offset, length); }

    @Override
    public int read(ByteBuffer dst, long position) throws IOException { return real.read(dst, position); }

    @Override
    public int write(ByteBuffer src) throws IOException {
        long at = real.position();
        int n = write(src, at);
        real.position(at + n);
        return n;
    }

    @Override
    public long write(ByteBuffer[] srcs, int offset, int length) throws IOException {
        long n = 0;
        for (int i = offset; i < offset + length; i++) n += write(srcs[i]);
        return n;
    }

    @Override
    public int write(ByteBuffer src, long position) throws IOException {
        ByteBuffer copy = src.duplicate();
        int n = real.write(src, position);
        byte[] bytes = new byte[n];
        copy.get(bytes);
        log.add(new Event(Event.Kind.WRITE, position, bytes, 0, 0));
        return n;
    }

    @Override
    public long position() throws IOException { return real.position(); }

    @Override
    public FileChannel position(long newPosition) throws IOException {
        real.position(newPosition);
        return this;
    }

    @Override
    public long size() throws IOException { return real.size(); }

    @Override
    public FileChannel truncate(long size) throws IOException {
        real.truncate(size);
        log.add(new Event(Event.Kind.TRUNCATE, 0, null, size, 0));
        return this;
    }

    @Override
    public void force(boolean metaData) throws IOException {
        real.force(metaData);
        log.add(new Event(Event.Kind.FLUSH, 0, null, 0, 0));
    }

    @Override
    public long transferTo(long position, long count, WritableByteChannel target) throws IOException {
        return real.transferTo(position, count, target);
    }

    @Override
    public long transferFrom(ReadableByteChannel src, long position, long count) throws IOException {
        ByteBuffer b = ByteBuffer.allocate((int) Math.min(count, 1 << 20));
        int n = src.read(b);
        if (n <= 0) return 0;
        return write(b.flip(), position);
    }

    @Override
    public MappedByteBuffer map(MapMode mode, long position, long size) throws IOException {
        if (mode != MapMode.READ_ONLY) throw new UnsupportedOperationException("writable mappings are not recorded");
        return real.map(mode, position, size);
    }

    @Override
    public FileLock lock(long position, long size, boolean shared) throws IOException { return real.lock(position, size, shared); }

    @Override
    public FileLock tryLock(long position, long size, boolean shared) throws IOException {
        return real.tryLock(position, size, shared);
    }

    @Override
    protected void implCloseChannel() throws IOException { real.close(); }
}
