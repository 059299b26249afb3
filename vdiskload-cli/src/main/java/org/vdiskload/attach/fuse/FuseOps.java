package org.vdiskload.attach.fuse;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.vdiskload.attach.fuse.Fuse.*;
import static org.vdiskload.sys.Errno.*;

/**
 * The file system itself: a root directory (node 1) holding the files (node 2, 3...), none of which can
 * be created, renamed, grown or removed. {@link #handle} answers one request by writing its reply's
 * payload after the out header; refusals are {@link FuseError}s, image failures IOExceptions.
 */
final class FuseOps {
    /** {@link #handle}'s result for requests that get no reply. */
    static final int NO_REPLY = -1;

    /** Attributes and names never change while mounted: the kernel may cache them for long. */
    private static final long VALID_SECONDS = 3600;
    private static final int BLOCK = 4096;

    private final List<FuseFile> files;
    private final Map<String, Long> nodes = new HashMap<>();
    private final int openFlags;
    private final long mountTime = System.currentTimeMillis() / 1000;

    FuseOps(List<FuseFile> files, boolean directIo) {
        this.files = List.copyOf(files);
        for (int i = 0; i < this.files.size(); i++) {
            if (nodes.put(this.files.get(i).name(), i + 2L) != null)
                throw new IllegalArgumentException("two FUSE files named '" + this.files.get(i).name() + "'");
        }
        // Direct I/O: the whole-disk file and the partition files share bytes, so page caches of
        // each would go stale; the loop devices on top keep their own cache anyway.
        this.openFlags = directIo ? FOPEN_DIRECT_IO | FOPEN_PARALLEL_DIRECT_WRITES : FOPEN_KEEP_CACHE;
    }

    int handle(Request in, ByteBuffer out) throws FuseError, IOException {
        switch (in.opcode) {
            case FORGET, BATCH_FORGET, INTERRUPT: // nothing to forget; requests are not interruptible
                return NO_REPLY;
            case LOOKUP: return lookup(in, out);
            case GETATTR: return attrOut(out, in.nodeid);
            case SETATTR: return setattr(in, out);
            case OPEN: return open(in, out);
            case READ: return read(in, out);
            case WRITE: return write(in, out);
            case FSYNC: return fsync(in);
            case FALLOCATE: return fallocate(in);
            case OPENDIR: return opendir(in, out);
            case READDIR: return readdir(in, out);
            case STATFS: return statfs(out);
            case ACCESS: return access(in);
            case FLUSH, RELEASE, RELEASEDIR, FSYNCDIR, DESTROY:
                return 0;
            default: // INIT again, xattrs, links, creation, locks...: the kernel remembers ENOSYS and stops asking
                throw new FuseError(ENOSYS);
        }
    }

    private FuseFile file(long nodeid) throws FuseError {
        if (nodeid == ROOT_ID) throw new FuseError(EISDIR);
        if (nodeid < 2 || nodeid - 2 >= files.size()) throw new FuseError(ENOENT);
        return files.get((int) (nodeid - 2));
    }

    private void requireRoot(long nodeid) throws FuseError {
        if (nodeid == ROOT_ID) return;
        file(nodeid); // ENOENT for an unknown node
        throw new FuseError(ENOTDIR);
    }

    private void requireNode(long nodeid) throws FuseError {
        if (nodeid != ROOT_ID) file(nodeid);
    }

    private int lookup(Request in, ByteBuffer out) throws FuseError {
        requireRoot(in.nodeid);
        Long node = nodes.get(in.name());
        if (node == null) throw new FuseError(ENOENT);
        int p = OUT_HEADER;
        out.putLong(p, node).putLong(p + 8, 0).putLong(p + 16, VALID_SECONDS).putLong(p + 24, VALID_SECONDS)
                .putInt(p + 32, 0).putInt(p + 36, 0);
        putAttr(out, p + 40, node);
        return ENTRY_OUT;
    }

    private int attrOut(ByteBuffer out, long nodeid) throws FuseError {
        requireNode(nodeid);
        out.putLong(OUT_HEADER, VALID_SECONDS).putInt(OUT_HEADER + 8, 0).putInt(OUT_HEADER + 12, 0);
        putAttr(out, OUT_HEADER + 16, nodeid);
        return ATTR_OUT;
    }

    private void putAttr(ByteBuffer out, int p, long nodeid) throws FuseError {
        boolean dir = nodeid == ROOT_ID;
        FuseFile f = dir ? null : file(nodeid);
        long size = dir ? 0 : f.length();
        int mode = dir ? S_IFDIR | 0755 : S_IFREG | (f.canWrite() ? 0600 : 0400);
        out.putLong(p, nodeid).putLong(p + 8, size).putLong(p + 16, (size + 511) / 512)
                .putLong(p + 24, mountTime).putLong(p + 32, mountTime).putLong(p + 40, mountTime)
                .putInt(p + 48, 0).putInt(p + 52, 0).putInt(p + 56, 0)
                .putInt(p + 60, mode).putInt(p + 64, dir ? 2 : 1).putInt(p + 68, 0).putInt(p + 72, 0)
                .putInt(p + 76, 0).putInt(p + 80, BLOCK).putInt(p + 84, 0);
    }

    /** Only what changes nothing: times (not kept) and a "truncate" to the current size. */
    private int setattr(Request in, ByteBuffer out) throws FuseError {
        in.require(SETATTR_IN);
        int valid = in.u32(0);
        if ((valid & (FATTR_MODE | FATTR_UID | FATTR_GID)) != 0) throw new FuseError(EPERM);
        if ((valid & FATTR_SIZE) != 0 && in.u64(16) != file(in.nodeid).length()) throw new FuseError(EPERM);
        return attrOut(out, in.nodeid);
    }

    private int open(Request in, ByteBuffer out) throws FuseError {
        in.require(OPEN_IN);
        FuseFile f = file(in.nodeid);
        if ((in.u32(0) & O_ACCMODE) != O_RDONLY && !f.canWrite()) throw new FuseError(EROFS);
        out.putLong(OUT_HEADER, in.nodeid).putInt(OUT_HEADER + 8, openFlags).putInt(OUT_HEADER + 12, 0);
        return OPEN_OUT;
    }

    private int read(Request in, ByteBuffer out) throws FuseError, IOException {
        in.require(READ_IN);
        FuseFile f = file(in.nodeid);
        long offset = in.u64(8);
        long size = in.u32(16) & 0xffffffffL;
        if (offset < 0 || size > MAX_IO) throw new FuseError(EINVAL);
        if (offset >= f.length()) return 0;
        int n = (int) Math.min(size, f.length() - offset);
        f.image().read(out.duplicate().position(OUT_HEADER).limit(OUT_HEADER + n), f.offset() + offset);
        return n;
    }

    /** Writes inside the file; one reaching past its end writes what fits, one starting there gets ENOSPC. */
    private int write(Request in, ByteBuffer out) throws FuseError, IOException {
        in.require(WRITE_IN);
        FuseFile f = file(in.nodeid);
        long offset = in.u64(8);
        long size = in.u32(16) & 0xffffffffL;
        if (offset < 0 || size != in.bodyLength() - WRITE_IN) throw new FuseError(EINVAL);
        if (!f.canWrite()) throw new FuseError(EBADF);
        int n = 0;
        if (size > 0) {
            if (offset >= f.length()) throw new FuseError(ENOSPC);
            n = (int) Math.min(size, f.length() - offset);
            f.image().write(in.slice(WRITE_IN, n), f.offset() + offset);
        }
        out.putInt(OUT_HEADER, n).putInt(OUT_HEADER + 4, 0);
        return WRITE_OUT;
    }

    private int fsync(Request in) throws FuseError, IOException {
        FuseFile f = file(in.nodeid);
        if (f.canWrite()) f.image().flush();
        return 0;
    }

    /** What loop devices send for discard (punch hole) and write-zeroes (zero range, or punch hole). */
    private int fallocate(Request in) throws FuseError, IOException {
        in.require(FALLOCATE_IN);
        FuseFile f = file(in.nodeid);
        long offset = in.u64(8), length = in.u64(16);
        int mode = in.u32(24);
        if (offset < 0 || length <= 0 || offset > Long.MAX_VALUE - length) throw new FuseError(EINVAL);
        boolean keepSize = (mode & FALLOC_FL_KEEP_SIZE) != 0;
        long end = offset + length;
        if (end > f.length() && !keepSize) throw new FuseError(EOPNOTSUPP); // it would grow the file
        int op = mode & ~FALLOC_FL_KEEP_SIZE;
        if (op == 0) return 0; // every byte inside the size is there already
        if (op != FALLOC_FL_PUNCH_HOLE && op != FALLOC_FL_ZERO_RANGE) throw new FuseError(EOPNOTSUPP);
        if (op == FALLOC_FL_PUNCH_HOLE && !keepSize) throw new FuseError(EOPNOTSUPP); // as the kernel requires
        if (!f.canWrite()) throw new FuseError(EBADF);
        end = Math.min(end, f.length());
        if (offset >= end) return 0;
        if (op == FALLOC_FL_PUNCH_HOLE) f.image().discard(f.offset() + offset, end - offset);
        else f.image().writeZeroes(f.offset() + offset, end - offset, false);
        return 0;
    }

    private int opendir(Request in, ByteBuffer out) throws FuseError {
        in.require(OPEN_IN);
        requireRoot(in.nodeid);
        out.putLong(OUT_HEADER, 0).putInt(OUT_HEADER + 8, 0).putInt(OUT_HEADER + 12, 0);
        return OPEN_OUT;
    }

    /** Entries ".", "..", then the files; an entry's cookie (fuse_dirent.off) is the index of the next one. */
    private int readdir(Request in, ByteBuffer out) throws FuseError {
        in.require(READ_IN);
        requireRoot(in.nodeid);
        long cookie = in.u64(8);
        int size = (int) Math.min(in.u32(16) & 0xffffffffL, MAX_IO);
        int used = 0;
        for (long i = Math.max(cookie, 0); i < files.size() + 2; i++) {
            String name = i == 0 ? "." : i == 1 ? ".." : files.get((int) (i - 2)).name();
            byte[] b = name.getBytes(StandardCharsets.UTF_8);
            int entry = (DIRENT + b.length + 7) & ~7;
            if (used + entry > size) break;
            int p = OUT_HEADER + used;
            out.putLong(p, i < 2 ? ROOT_ID : i).putLong(p + 8, i + 1).putInt(p + 16, b.length)
                    .putInt(p + 20, i < 2 ? DT_DIR : DT_REG);
            out.put(p + DIRENT, b);
            for (int z = p + DIRENT + b.length; z < p + entry; z++) out.put(z, (byte) 0);
            used += entry;
        }
        return used;
    }

    private int statfs(ByteBuffer out) {
        long bytes = 0;
        for (FuseFile f : files) bytes += f.length();
        int p = OUT_HEADER;
        out.putLong(p, (bytes + BLOCK - 1) / BLOCK).putLong(p + 8, 0).putLong(p + 16, 0)
                .putLong(p + 24, files.size() + 1L).putLong(p + 32, 0)
                .putInt(p + 40, BLOCK).putInt(p + 44, 255).putInt(p + 48, BLOCK);
        for (int z = p + 52; z < p + STATFS_OUT; z++) out.put(z, (byte) 0);
        return STATFS_OUT;
    }

    private int access(Request in) throws FuseError {
        in.require(ACCESS_IN);
        if (in.nodeid != ROOT_ID && (in.u32(0) & W_OK) != 0 && !file(in.nodeid).canWrite()) throw new FuseError(EROFS);
        requireNode(in.nodeid);
        return 0;
    }
}
