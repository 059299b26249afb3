package org.vdiskload.attach.kmod;

import com.sun.jna.Memory;
import org.vdiskload.image.DiskImage;
import org.vdiskload.sys.Errno;
import org.vdiskload.sys.SysCallException;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.function.Consumer;

/**
 * The serving process's side of vdisk.ko's upcalls: threads that each wait for an upcall on the disk's
 * control file (VDISK_IOC_FETCH), do it through the library — the same image object the table was made
 * from, so its caches and locks stay right — and answer (VDISK_IOC_COMPLETE): a read's data, and for a
 * write, discard or write-zeroes the new extents of the range the kernel held for it, mapped after the
 * operation. The threads end when the disk is removed (ENODEV).
 *
 * <p>The kernel's table stays right only if the library changes the map of no range but the one the kernel
 * holds for the upcall at hand (the library's contract, {@link DiskImage#mappingUnit}): every change the
 * library reports is checked against it, and one outside it is logged as the bug it is.
 */
final class UpcallServer {
    /** The range held for the upcall this thread answers ({start, end}), or null. */
    private static final ThreadLocal<long[]> HELD = new ThreadLocal<>();

    private final VdiskControl control;
    private final DiskImage disk;
    private final ExtentTable table;
    private final int maxIoBytes;
    private final Consumer<String> log;
    private final List<Thread> threads = new ArrayList<>();
    private final CountDownLatch ended;

    UpcallServer(VdiskControl control, DiskImage disk, ExtentTable table, int maxIoBytes, int threadCount, Consumer<String> log) {
        this.control = control;
        this.disk = disk;
        this.table = table;
        this.maxIoBytes = maxIoBytes;
        this.log = log;
        this.ended = new CountDownLatch(threadCount);
        for (int i = 0; i < threadCount; i++) {
            Thread t = new Thread(this::serve, "vdiskload-upcall-" + i);
            t.setDaemon(true);
            threads.add(t);
        }
    }

    void start() {
        try {
            disk.setMapChangeListener(this::mapChanged);
        } catch (UnsupportedOperationException e) {
            log.accept("vdiskload kmod: " + disk.path() + ": the image reports no map changes; they are not checked");
        }
        for (Thread t : threads) t.start();
    }

    private void mapChanged(long pos, long length) {
        long[] held = HELD.get();
        if (held == null || pos < held[0] || pos + length > held[1]) {
            log.accept("vdiskload kmod: BUG: the library changed the map of " + pos + "+" + length + " outside the range the kernel held ("
                    + (held == null ? "none" : held[0] + "+" + (held[1] - held[0])) + "): the kernel may serve it stale");
        }
    }

    /** Waits until every thread ended: the disk is gone. */
    void awaitEnd() throws InterruptedException {
        ended.await();
    }

    private void serve() {
        try (Memory up = new Memory(VdiskAbi.Upcall.SIZE); Memory reply = new Memory(VdiskAbi.Reply.SIZE);
             Memory data = new Memory(maxIoBytes)) {
            ByteBuffer buffer = data.getByteBuffer(0, maxIoBytes);
            while (true) {
                up.clear();
                up.setPointer(VdiskAbi.Upcall.BUFFER, data);
                up.setInt(VdiskAbi.Upcall.BUFFER_LEN, maxIoBytes);
                try {
                    control.fetch(up);
                } catch (SysCallException e) {
                    if (e.errno() == Errno.EINTR) continue;
                    if (e.errno() != Errno.ENODEV) log.accept("vdiskload kmod: " + e.getMessage());
                    return;
                }
                answer(up, reply, data, buffer);
            }
        } catch (RuntimeException | Error e) {
            log.accept("vdiskload kmod: upcall thread failed: " + e);
        } finally {
            ended.countDown();
        }
    }

    private void answer(Memory up, Memory reply, Memory data, ByteBuffer buffer) {
        int op = up.getShort(VdiskAbi.Upcall.OP);
        int flags = up.getShort(VdiskAbi.Upcall.FLAGS) & 0xffff;
        long offset = up.getLong(VdiskAbi.Upcall.OFFSET);
        long length = up.getLong(VdiskAbi.Upcall.LENGTH);
        long mapStart = up.getLong(VdiskAbi.Upcall.MAP_START);
        long mapLength = up.getLong(VdiskAbi.Upcall.MAP_LENGTH);
        int status = 0;
        HELD.set(mapLength > 0 ? new long[] {mapStart, mapStart + mapLength} : null);
        try {
            ByteBuffer b = buffer.duplicate().limit((int) Math.min(length, maxIoBytes)).position(0);
            switch (op) {
                case (int) VdiskAbi.VDISK_OP_READ -> disk.read(b, offset);
                case (int) VdiskAbi.VDISK_OP_WRITE -> disk.write(b, offset);
                case (int) VdiskAbi.VDISK_OP_FLUSH -> disk.flush();
                case (int) VdiskAbi.VDISK_OP_DISCARD -> disk.discard(offset, length);
                case (int) VdiskAbi.VDISK_OP_WRITE_ZEROES ->
                        disk.writeZeroes(offset, length, (flags & VdiskAbi.VDISK_UP_NOUNMAP) == 0);
                default -> status = -Errno.EOPNOTSUPP;
            }
        } catch (IOException | RuntimeException e) {
            status = -Errno.of(e);
            log.accept("vdiskload kmod: " + opName(op) + " " + offset + "+" + length + ": " + e.getMessage());
        }
        ExtentTable.Encoded extents = ExtentTable.Encoded.EMPTY;
        if (mapLength > 0) {
            try {
                extents = table.map(disk, mapStart, mapLength);
            } catch (IOException | RuntimeException e) {
                // No extents: the kernel leaves the whole range to upcalls, which is always right.
                log.accept("vdiskload kmod: mapping " + mapStart + "+" + mapLength + ": " + e.getMessage());
            }
        }
        reply.clear();
        reply.setLong(VdiskAbi.Reply.SEQ, up.getLong(VdiskAbi.Upcall.SEQ));
        reply.setInt(VdiskAbi.Reply.STATUS, status);
        reply.setPointer(VdiskAbi.Reply.BUFFER, data);
        reply.setPointer(VdiskAbi.Reply.EXTENTS, extents.memory());
        reply.setInt(VdiskAbi.Reply.NR_EXTENTS, extents.count());
        try {
            control.complete(reply);
        } catch (SysCallException e) {
            log.accept("vdiskload kmod: answering " + opName(op) + " " + offset + "+" + length + ": " + e.getMessage());
        } finally {
            if (extents.memory() != null) extents.memory().close();
        }
    }

    private static String opName(int op) {
        return switch (op) {
            case (int) VdiskAbi.VDISK_OP_READ -> "read";
            case (int) VdiskAbi.VDISK_OP_WRITE -> "write";
            case (int) VdiskAbi.VDISK_OP_FLUSH -> "flush";
            case (int) VdiskAbi.VDISK_OP_DISCARD -> "discard";
            case (int) VdiskAbi.VDISK_OP_WRITE_ZEROES -> "write-zeroes";
            default -> "op " + op;
        };
    }
}
