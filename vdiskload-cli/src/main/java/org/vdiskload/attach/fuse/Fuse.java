package org.vdiskload.attach.fuse;

/** Numbers of the kernel's FUSE protocol (include/uapi/linux/fuse.h, 7.38 layouts); the errnos are {@link org.vdiskload.sys.Errno}'s. */
final class Fuse {
    private Fuse() {}

    static final int KERNEL_MAJOR = 7;
    static final int KERNEL_MINOR = 38;
    static final long ROOT_ID = 1;

    // opcodes
    static final int LOOKUP = 1, FORGET = 2, GETATTR = 3, SETATTR = 4, OPEN = 14, READ = 15, WRITE = 16,
            STATFS = 17, RELEASE = 18, FSYNC = 20, FLUSH = 25, INIT = 26, OPENDIR = 27, READDIR = 28,
            RELEASEDIR = 29, FSYNCDIR = 30, ACCESS = 34, INTERRUPT = 36, DESTROY = 38, BATCH_FORGET = 42,
            FALLOCATE = 43;

    // fuse_init flags
    static final int ASYNC_READ = 1 << 0, BIG_WRITES = 1 << 5, ASYNC_DIO = 1 << 15, MAX_PAGES = 1 << 22;

    // fuse_open_out.open_flags
    static final int FOPEN_DIRECT_IO = 1 << 0, FOPEN_KEEP_CACHE = 1 << 1, FOPEN_PARALLEL_DIRECT_WRITES = 1 << 6;

    // fuse_setattr_in.valid
    static final int FATTR_MODE = 1, FATTR_UID = 2, FATTR_GID = 4, FATTR_SIZE = 8;

    // fallocate modes
    static final int FALLOC_FL_KEEP_SIZE = 0x01, FALLOC_FL_PUNCH_HOLE = 0x02, FALLOC_FL_ZERO_RANGE = 0x10;

    // struct sizes
    static final int IN_HEADER = 40, OUT_HEADER = 16, ATTR = 88, ENTRY_OUT = 40 + ATTR, ATTR_OUT = 16 + ATTR,
            INIT_IN_V7_6 = 16, INIT_OUT = 64, OPEN_IN = 8, OPEN_OUT = 16, READ_IN = 40, WRITE_IN = 40, WRITE_OUT = 8,
            SETATTR_IN = 88, FSYNC_IN = 16, ACCESS_IN = 8, FALLOCATE_IN = 32, STATFS_OUT = 80, DIRENT = 24;

    /** Largest READ/WRITE payload: max_write and max_pages (256 pages of 4 KiB). */
    static final int MAX_IO = 1 << 20;
    static final int MAX_PAGES_COUNT = 256;

    static final int O_ACCMODE = 3, O_RDONLY = 0, W_OK = 2;
    static final int S_IFDIR = 0040000, S_IFREG = 0100000;
    static final int DT_DIR = 4, DT_REG = 8;
}
