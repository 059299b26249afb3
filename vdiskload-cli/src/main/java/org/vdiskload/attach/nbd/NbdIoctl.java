package org.vdiskload.attach.nbd;

import org.vdiskload.sys.Errno;
import org.vdiskload.sys.Libc;
import org.vdiskload.sys.SysCallException;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The nbd driver's ioctls, for kernels without its netlink interface (before 4.12); only a fallback. This
 * process picks a free /dev/nbdN and, on one thread that then blocks in the kernel for as long as the
 * device is connected, configures it: NBD_SET_SOCK (which claims the device for that thread: another
 * process setting the same one up gets EBUSY, and this one tries the next), NBD_SET_BLKSIZE,
 * NBD_SET_SIZE_BLOCKS, NBD_SET_TIMEOUT, NBD_SET_FLAGS, then NBD_DO_IT, which returns once the connection
 * ends; NBD_CLEAR_SOCK then releases the device. Detach is NBD_DISCONNECT (the driver sends NBD_CMD_DISC).
 *
 * <p>What this path lacks: one connection only (kernels before 4.10 take no second NBD_SET_SOCK), no
 * backend identifier (udev's vdiskload-devname cannot name the device), no dead-connection timeout and no
 * reconnect: when this process dies, its NBD_DO_IT ends, and the driver fails the I/O in flight and resets
 * the device (size 0).
 */
final class NbdIoctl implements NbdControl {
    private static final long NBD_SET_SOCK = 0xab00;
    private static final long NBD_SET_BLKSIZE = 0xab01;
    private static final long NBD_DO_IT = 0xab03;
    private static final long NBD_CLEAR_SOCK = 0xab04;
    private static final long NBD_SET_SIZE_BLOCKS = 0xab07;
    private static final long NBD_DISCONNECT = 0xab08;
    private static final long NBD_SET_TIMEOUT = 0xab09;
    private static final long NBD_SET_FLAGS = 0xab0a;
    private static final long START_MILLIS = 20_000;
    private static final Path SYS_BLOCK = Path.of("/sys/block");

    private int index = -1;
    private int fd = -1;
    /** Completes when NBD_DO_IT returns: with its result, or exceptionally if the setup failed. */
    private CompletableFuture<Integer> connection;

    @Override
    public boolean multipleConnections() {
        return false;
    }

    @Override
    public int connect(Connect c) throws IOException {
        if (c.fds().size() != 1) throw new IOException("nbd ioctls: one connection only, not " + c.fds().size());
        if (c.size() % c.blockSize() != 0) throw new IOException("nbd ioctls: size " + c.size() + " is not a multiple of the block size " + c.blockSize());
        for (int candidate : freeDevices()) {
            if (tryDevice(candidate, c)) return candidate;
        }
        throw new IOException("no free /dev/nbdN for the nbd ioctls (load nbd with more devices: modprobe nbd nbds_max=N)");
    }

    /** Devices no one uses now: no size, no receiving task (pid), no backend identifier; lowest first. */
    private static TreeSet<Integer> freeDevices() throws IOException {
        TreeSet<Integer> free = new TreeSet<>();
        try (DirectoryStream<Path> s = Files.newDirectoryStream(SYS_BLOCK, "nbd*")) {
            for (Path dev : s) {
                String n = dev.getFileName().toString().substring(3);
                if (n.isEmpty() || n.length() > 6 || !n.chars().allMatch(Character::isDigit)) continue;
                try {
                    boolean idle = Files.readString(dev.resolve("size")).strip().equals("0") && !Files.exists(dev.resolve("pid"));
                    if (idle && NbdDevices.backend(Integer.parseInt(n)).isEmpty()) free.add(Integer.parseInt(n));
                } catch (IOException goneMeanwhile) {
                    // another one, then
                }
            }
        }
        return free;
    }

    /**
     * Sets /dev/nbd{@code candidate} up on a thread of its own that stays in NBD_DO_IT; true once the driver
     * runs it, false if someone else took it first. The NBD_SET_SOCK owner check is per task, so the whole
     * setup and NBD_DO_IT run on that one thread.
     */
    private boolean tryDevice(int candidate, Connect c) throws IOException {
        String device = NbdDevices.device(candidate);
        CompletableFuture<Boolean> claimed = new CompletableFuture<>();
        CompletableFuture<Integer> done = new CompletableFuture<>();
        Thread t = new Thread(() -> run(device, c, claimed, done), "vdiskload-nbd-do-it");
        t.setDaemon(true);
        t.start();
        try {
            if (!claimed.get(START_MILLIS, TimeUnit.MILLISECONDS)) return false;
            // NBD_DO_IT is under way once the driver shows the receiving task's pid; it may also fail at once.
            long deadline = System.currentTimeMillis() + START_MILLIS;
            Path pid = SYS_BLOCK.resolve("nbd" + candidate).resolve("pid");
            while (!Files.exists(pid)) {
                if (done.isDone()) {
                    done.get();
                    throw new IOException("NBD_DO_IT " + device + " ended at once");
                }
                if (System.currentTimeMillis() > deadline) throw new IOException("NBD_DO_IT " + device + ": the device did not start in " + START_MILLIS / 1000 + " s");
                Thread.sleep(20);
            }
        } catch (ExecutionException e) {
            throw e.getCause() instanceof IOException io ? io : new IOException(device + ": " + e.getCause());
        } catch (TimeoutException e) {
            throw new IOException(device + ": setting it up took longer than " + START_MILLIS / 1000 + " s");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(device + ": interrupted while setting it up");
        }
        index = candidate;
        connection = done;
        return true;
    }

    /** The setup thread: claims the device, configures it, and serves as the driver's NBD_DO_IT caller. */
    private void run(String device, Connect c, CompletableFuture<Boolean> claimed, CompletableFuture<Integer> done) {
        try {
            Libc.require();
        } catch (IOException e) {
            claimed.completeExceptionally(e);
            return;
        }
        int f = Libc.open(device, Libc.O_RDWR | Libc.O_CLOEXEC);
        if (f < 0) {
            claimed.completeExceptionally(Libc.failure("open " + device));
            return;
        }
        try {
            ioctl(f, NBD_SET_SOCK, c.fds().get(0), "NBD_SET_SOCK", device);
        } catch (SysCallException e) {
            // EBUSY: another task is setting it up; EINVAL: netlink connected it meanwhile
            if (e.errno() == Errno.EBUSY || e.errno() == Errno.EINVAL) claimed.complete(false);
            else claimed.completeExceptionally(e);
            Libc.close(f);
            return;
        }
        try {
            ioctl(f, NBD_SET_BLKSIZE, c.blockSize(), "NBD_SET_BLKSIZE", device);
            ioctl(f, NBD_SET_SIZE_BLOCKS, c.size() / c.blockSize(), "NBD_SET_SIZE_BLOCKS", device);
            ioctl(f, NBD_SET_TIMEOUT, c.timeout(), "NBD_SET_TIMEOUT", device);
            ioctl(f, NBD_SET_FLAGS, c.serverFlags(), "NBD_SET_FLAGS", device);
        } catch (IOException e) {
            Libc.ioctl(f, NBD_CLEAR_SOCK, 0);
            Libc.close(f);
            claimed.completeExceptionally(e);
            return;
        }
        fd = f;
        claimed.complete(true);
        int rc = Libc.ioctl(f, NBD_DO_IT, 0); // blocks while the device is connected
        IOException failed = rc != 0 ? Libc.failure("NBD_DO_IT " + device) : null;
        Libc.ioctl(f, NBD_CLEAR_SOCK, 0);
        Libc.close(f); // before the future completes: once it has, no one uses the descriptor
        if (failed != null) done.completeExceptionally(failed);
        else done.complete(0);
    }

    private static void ioctl(int f, long request, long arg, String name, String device) throws SysCallException {
        if (Libc.ioctl(f, request, arg) != 0) throw Libc.failure(name + " " + device);
    }

    /** The device this process connected, while its NBD_DO_IT runs (there is no backend identifier to ask). */
    @Override
    public boolean holds(int device, String backend) {
        return device == index && connection != null && !connection.isDone();
    }

    @Override
    public void reconnect(int device, String backend, List<Integer> fds) throws IOException {
        throw new IOException("/dev/nbd" + device + ": the nbd ioctls cannot reconnect (a kernel without nbd's netlink interface, or "
                + FORCE_IOCTL_ENV + " set)");
    }

    /** NBD_DISCONNECT, then waits for NBD_DO_IT to return (the driver has let go of the socket). */
    @Override
    public void disconnect(int device) throws IOException {
        if (!holds(device, "")) return;
        if (Libc.ioctl(fd, NBD_DISCONNECT, 0) != 0) throw Libc.failure("NBD_DISCONNECT /dev/nbd" + device);
        try {
            connection.get(NbdBackend.TIMEOUT_SECONDS, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            // NBD_DO_IT reported the connection's end as an error: it has ended all the same
        } catch (TimeoutException e) {
            throw new IOException("/dev/nbd" + device + ": NBD_DO_IT did not return in " + NbdBackend.TIMEOUT_SECONDS + " s after NBD_DISCONNECT");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("/dev/nbd" + device + ": interrupted while disconnecting");
        }
    }
}
