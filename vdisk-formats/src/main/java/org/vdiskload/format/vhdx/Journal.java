package org.vdiskload.format.vhdx;

import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * Crash-safe metadata updates of a VHDX opened for writing: the headers and the log. Every metadata change
 * (BAT pages, the virtual disk size) goes through the log as MS-VHDX 2.3 and qemu's vhdx_log_write_and_flush
 * do it: flush the data; name a new LogGuid in the header; write the entry and flush; apply it and flush;
 * clear the LogGuid. A crash before the entry is complete leaves a torn entry that replay ignores; after,
 * replay on the next open finishes the change. Callers hold {@link #lock()} around a change.
 * The flushes are the file's ({@link ImageFile#force}): a new convert output, opened without flushes (qemu's
 * cache=unsafe), skips them, as qemu does; its log entries are still written, so the file is a valid VHDX.
 */
final class Journal {
    /** No VHDX file is larger: the largest disk's payload, with room for its metadata. */
    private static final long MAX_FILE = VhdxMetadata.MAX_VIRTUAL_SIZE + (1L << 40);

    private final ImageFile file;
    private final Object lock = new Object();
    private volatile VhdxHeader header;
    private volatile boolean started;
    private long sequence = 1;
    /** Where the next payload block goes: 1 MiB aligned, past everything in the file. */
    private long allocationEnd;

    Journal(ImageFile file, VhdxHeader header) throws IOException {
        this.file = file;
        this.header = header;
        this.allocationEnd = roundUp(file.size());
    }

    private static long roundUp(long v) {
        return Math.addExact(v, VhdxHeader.MB - 1) / VhdxHeader.MB * VhdxHeader.MB;
    }

    Object lock() {
        return lock;
    }

    VhdxHeader header() {
        return header;
    }

    /**
     * Applies a log that needs replay to the file (MS-VHDX 2.3.3): the replayed writes, the file extended to
     * the log's LastFileOffset, a flush, then a header with a new FileWriteGuid and no LogGuid.
     */
    static VhdxHeader replayIntoFile(ImageFile file, VhdxHeader header, VhdxLog.Replay replay) throws IOException {
        long[] end = {replay.size()};
        replay.overlay().forEach((start, length, data) -> end[0] = Math.max(end[0], start + length));
        if (end[0] > MAX_FILE) {
            throw ImageException.corrupt(file.path(), header.logOffset(), "log",
                    "the log writes up to offset " + end[0] + ", past any VHDX file's size: refusing to replay it");
        }
        try {
            long fileSize = file.size();
            replay.overlay().forEach((start, length, data) -> {
                if (data != null) {
                    file.writeFully(ByteBuffer.wrap(data, 0, (int) length), start);
                    return;
                }
                // Zeros past the end of the file read as zeros already.
                long stop = Math.min(start + length, fileSize);
                ByteBuffer zeros = ByteBuffer.allocate((int) Math.min(Math.max(0, stop - start), VhdxHeader.MB));
                for (long at = start; at < stop; at += zeros.capacity()) {
                    file.writeFully(zeros.clear().limit((int) Math.min(zeros.capacity(), stop - at)), at);
                }
            });
            if (file.size() < replay.size()) file.writeFully(ByteBuffer.allocate(1), replay.size() - 1);
            file.force(true);
        } catch (ImageException e) {
            throw e;
        } catch (IOException e) {
            throw new ImageException(ImageException.Kind.IO, file.path(), header.logOffset(), "log",
                    "cannot replay the log into the file: " + e.getMessage(), e);
        }
        VhdxHeader cleared = header.successor(Guid.random(), header.dataWriteGuid(), Guid.ZERO);
        write(file, cleared);
        return cleared;
    }

    private static void write(ImageFile file, VhdxHeader h) throws IOException {
        file.writeFully(h.encode(), h.offset());
        file.force(true);
    }

    /**
     * Before the first change of this session: a new FileWriteGuid and DataWriteGuid (MS-VHDX 2.2.2; a
     * differencing child of this image names the old DataWriteGuid, so writing here detaches it, as it must).
     */
    void beginChange() throws IOException {
        if (started) return;
        synchronized (lock) {
            if (started) return;
            requireWritable();
            VhdxHeader h = header.successor(Guid.random(), Guid.random(), Guid.ZERO);
            write(file, h);
            header = h;
            started = true;
        }
    }

    private void requireWritable() throws ImageException {
        if (!file.isWritable()) throw ImageException.unsupported(file.path(), "the image is open read-only");
    }

    /** The most 4 KiB sectors one entry may carry in this log. */
    int maxSectors() {
        int n = (int) (header.logLength() / VhdxLog.SECTOR) - 1;
        while (n > 0 && LogEntry.length(n) > header.logLength()) n--;
        return n;
    }

    /** Reserves a payload block of {@code bytes} at the end of the file. Caller holds the lock. */
    long allocate(long bytes) throws IOException {
        long at = Math.max(allocationEnd, roundUp(file.size()));
        allocationEnd = Math.addExact(at, roundUp(bytes));
        return at;
    }

    /** The end of everything {@link #allocate} reserved so far. Caller holds the lock. */
    long allocated() {
        return allocationEnd;
    }

    /** Writes {@code sectors} through the log (see the class comment). Caller holds the lock. */
    void commit(List<LogEntry.Sector> sectors) throws IOException {
        if (sectors.size() > maxSectors()) throw new IllegalArgumentException(sectors.size() + " sectors exceed the log");
        beginChange();
        file.force(true); // the data the change points at is durable first
        Guid logGuid = Guid.random();
        VhdxHeader withLog = header.successor(header.fileWriteGuid(), header.dataWriteGuid(), logGuid);
        write(file, withLog);
        header = withLog;
        ByteBuffer entry = LogEntry.encode(logGuid, sequence++, file.size(), sectors);
        file.writeFully(entry, header.logOffset());
        file.force(true);
        for (LogEntry.Sector s : sectors) file.writeFully(ByteBuffer.wrap(s.data()), s.fileOffset());
        file.force(true);
        VhdxHeader cleared = header.successor(header.fileWriteGuid(), header.dataWriteGuid(), Guid.ZERO);
        write(file, cleared);
        header = cleared;
    }
}
