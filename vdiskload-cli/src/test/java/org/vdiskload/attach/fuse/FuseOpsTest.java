package org.vdiskload.attach.fuse;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.vdiskload.attach.fuse.Fuse.*;
import static org.vdiskload.sys.Errno.*;

/** Requests the kernel would never send, or that the files cannot allow, answered with the right errno. */
class FuseOpsTest {
    private static final long DISK = 2, PART = 3, RO = 4;

    @TempDir
    Path dir;
    private DiskImage image;
    private FuseOps ops;
    private final ByteBuffer in = ByteBuffer.allocate(Fuse.MAX_IO + 4096).order(ByteOrder.nativeOrder());
    private final ByteBuffer out = ByteBuffer.allocate(OUT_HEADER + Fuse.MAX_IO).order(ByteOrder.nativeOrder());

    @BeforeEach
    void setUp() throws Exception {
        byte[] b = new byte[1 << 20];
        for (int i = 0; i < b.length; i++) b[i] = (byte) (i * 7);
        Path raw = Files.write(dir.resolve("disk.raw"), b);
        image = Images.open(raw, OpenOptions.DEFAULTS.withWritable(true));
        ops = new FuseOps(List.of(new FuseFile("disk", image, 0, 1 << 20, true),
                new FuseFile("part", image, 4096, 8192, true), new FuseFile("ro", image, 0, 4096, false)), true);
    }

    @AfterEach
    void tearDown() throws Exception {
        image.close();
    }

    /** Builds a request with {@code body} and answers it; returns the payload length. */
    private int send(int opcode, long nodeid, ByteBuffer body) throws Exception {
        int n = IN_HEADER + body.remaining();
        in.clear();
        in.putInt(0, n).putInt(4, opcode).putLong(8, 42).putLong(16, nodeid).putShort(36, (short) 0);
        in.position(IN_HEADER);
        in.put(body);
        Request r = new Request(in);
        r.parse(n);
        return ops.handle(r, out);
    }

    private int errno(int opcode, long nodeid, ByteBuffer body) {
        return assertThrows(FuseError.class, () -> send(opcode, nodeid, body)).errno;
    }

    private static ByteBuffer body(int size) {
        return ByteBuffer.allocate(size).order(ByteOrder.nativeOrder());
    }

    private static ByteBuffer readIn(long offset, int size) {
        return body(READ_IN).putLong(8, offset).putInt(16, size);
    }

    private static ByteBuffer writeIn(long offset, int size, int dataBytes) {
        return body(WRITE_IN + dataBytes).putLong(8, offset).putInt(16, size);
    }

    private static ByteBuffer fallocateIn(long offset, long length, int mode) {
        return body(FALLOCATE_IN).putLong(8, offset).putLong(16, length).putInt(24, mode);
    }

    private static ByteBuffer name(String s) {
        return ByteBuffer.wrap(s.getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void headerLengthMustMatchWhatWasRead() {
        in.clear();
        in.putInt(0, 100).putInt(4, READ).putLong(8, 9);
        Request r = new Request(in);
        assertEquals(EIO, assertThrows(FuseError.class, () -> r.parse(80)).errno);
        assertEquals(9, r.unique);
        assertEquals(EIO, assertThrows(FuseError.class, () -> r.parse(20)).errno);
    }

    @Test
    void nodesAreChecked() {
        assertEquals(ENOENT, errno(READ, 99, readIn(0, 10)));
        assertEquals(ENOENT, errno(GETATTR, 0, body(16)));
        assertEquals(ENOENT, errno(GETATTR, -1, body(16)));
        assertEquals(EISDIR, errno(READ, ROOT_ID, readIn(0, 10)));
        assertEquals(EISDIR, errno(OPEN, ROOT_ID, body(OPEN_IN)));
        assertEquals(ENOTDIR, errno(LOOKUP, DISK, name("disk\0")));
        assertEquals(ENOTDIR, errno(READDIR, DISK, readIn(0, 4096)));
    }

    @Test
    void shortBodiesAndBadFieldsAreInvalid() {
        assertEquals(EINVAL, errno(READ, DISK, body(READ_IN - 1)));
        assertEquals(EINVAL, errno(WRITE, DISK, body(8)));
        assertEquals(EINVAL, errno(SETATTR, DISK, body(8)));
        assertEquals(EINVAL, errno(FALLOCATE, DISK, body(8)));
        assertEquals(EINVAL, errno(LOOKUP, ROOT_ID, name("disk"))); // no NUL
        assertEquals(EINVAL, errno(READ, DISK, readIn(-1, 10)));
        assertEquals(EINVAL, errno(READ, DISK, readIn(0, Fuse.MAX_IO + 1)));
        assertEquals(EINVAL, errno(WRITE, DISK, writeIn(0, 100, 50))); // claims more data than it carries
        assertEquals(EINVAL, errno(FALLOCATE, DISK, fallocateIn(0, 0, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)));
        assertEquals(EINVAL, errno(FALLOCATE, DISK, fallocateIn(Long.MAX_VALUE, 2, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)));
        assertEquals(ENOSYS, errno(999, DISK, body(0)));
        assertEquals(ENOSYS, errno(INIT, ROOT_ID, body(64)));
    }

    @Test
    void lookupFindsOnlyOurNames() throws Exception {
        assertEquals(ENTRY_OUT, send(LOOKUP, ROOT_ID, name("part\0")));
        assertEquals(PART, out.getLong(OUT_HEADER));
        assertEquals(8192, out.getLong(OUT_HEADER + 40 + 8));
        assertEquals(ENOENT, errno(LOOKUP, ROOT_ID, name("nothing\0")));
        assertEquals(ENOENT, errno(LOOKUP, ROOT_ID, ByteBuffer.wrap(new byte[] {(byte) 0xff, 0})));
    }

    @Test
    void readsStopAtTheEndOfTheFile() throws Exception {
        assertEquals(0, send(READ, PART, readIn(8192, 100)));
        assertEquals(0, send(READ, PART, readIn(Long.MAX_VALUE, 100)));
        assertEquals(92, send(READ, PART, readIn(8100, 100)));
        assertEquals((byte) ((4096 + 8100) * 7), out.get(OUT_HEADER));
    }

    @Test
    void writesNeverGrowAndReadOnlyFilesRefuse() throws Exception {
        assertEquals(ENOSPC, errno(WRITE, PART, writeIn(8192, 10, 10)));
        assertEquals(WRITE_OUT, send(WRITE, PART, writeIn(8190, 10, 10)));
        assertEquals(2, out.getInt(OUT_HEADER));
        assertEquals(EBADF, errno(WRITE, RO, writeIn(0, 10, 10)));
        assertEquals(EROFS, errno(OPEN, RO, body(OPEN_IN).putInt(0, 2)));
        assertEquals(EROFS, errno(ACCESS, RO, body(ACCESS_IN).putInt(0, W_OK)));
        assertEquals(OPEN_OUT, send(OPEN, RO, body(OPEN_IN)));
        assertEquals(FOPEN_DIRECT_IO, out.getInt(OUT_HEADER + 8) & FOPEN_DIRECT_IO);
    }

    @Test
    void setattrChangesNothing() throws Exception {
        assertEquals(EPERM, errno(SETATTR, DISK, body(SETATTR_IN).putInt(0, FATTR_SIZE).putLong(16, 0)));
        assertEquals(EPERM, errno(SETATTR, DISK, body(SETATTR_IN).putInt(0, FATTR_MODE)));
        assertEquals(EPERM, errno(SETATTR, DISK, body(SETATTR_IN).putInt(0, FATTR_UID)));
        assertEquals(ATTR_OUT, send(SETATTR, DISK, body(SETATTR_IN).putInt(0, FATTR_SIZE).putLong(16, 1 << 20)));
        assertEquals(1 << 20, out.getLong(OUT_HEADER + 16 + 8));
    }

    @Test
    void fallocateModes() throws Exception {
        assertEquals(EOPNOTSUPP, errno(FALLOCATE, PART, fallocateIn(0, 10, FALLOC_FL_PUNCH_HOLE)));
        assertEquals(EOPNOTSUPP, errno(FALLOCATE, PART, fallocateIn(0, 10, 0x08))); // collapse range
        assertEquals(EOPNOTSUPP, errno(FALLOCATE, PART, fallocateIn(8000, 1000, 0))); // would grow
        assertEquals(EBADF, errno(FALLOCATE, RO, fallocateIn(0, 10, FALLOC_FL_ZERO_RANGE)));
        assertEquals(0, send(FALLOCATE, PART, fallocateIn(0, 8192, 0)));
        assertEquals(0, send(FALLOCATE, PART, fallocateIn(8000, 1000, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE)));
        assertEquals(192, send(READ, PART, readIn(8000, 1000)));
        for (int i = 0; i < 192; i++) assertEquals(0, out.get(OUT_HEADER + i));
        assertEquals(100, send(READ, DISK, readIn(4096 + 8192, 100)));
        assertEquals((byte) ((4096 + 8192) * 7), out.get(OUT_HEADER));
    }

    @Test
    void readdirResumesFromItsCookie() throws Exception {
        int n = send(READDIR, ROOT_ID, readIn(0, 64)); // room for "." and ".." only
        assertEquals(64, n);
        assertEquals(2, out.getLong(OUT_HEADER + 32 + 8)); // cookie of ".."
        n = send(READDIR, ROOT_ID, readIn(2, 4096));
        assertEquals(3 * 32, n);
        assertEquals(RO, out.getLong(OUT_HEADER + 64));
        assertEquals(0, send(READDIR, ROOT_ID, readIn(5, 4096)));
        assertEquals(0, send(READDIR, ROOT_ID, readIn(0, 10)));
    }

    @Test
    void duplicateNamesAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> new FuseOps(List.of(new FuseFile("a", image, 0, 1, true),
                new FuseFile("a", image, 1, 1, true)), true));
        assertThrows(IllegalArgumentException.class, () -> new FuseFile("a/b", image, 0, 1, true));
        assertThrows(IllegalArgumentException.class, () -> new FuseFile("..", image, 0, 1, true));
        assertThrows(IllegalArgumentException.class, () -> new FuseFile("a", image, 1, 1 << 20, true));
    }
}
