package org.vdiskload.attach.kmod;

/**
 * The Java mirror of kmod/include/uapi/linux/vdisk.h, the whole ABI between vdisk.ko and the serving
 * process: every constant under its C name, and every struct as a nested class holding its size and
 * each field's offset (named after the field, upper case). {@code VdiskAbiTest} compiles a C program
 * against the header and checks every name, value, size and offset here against it, both ways.
 */
final class VdiskAbi {
    private VdiskAbi() {}

    static final long VDISK_VERSION = 1;
    static final String VDISK_CONTROL_NAME = "vdisk-control";
    static final long VDISK_NAME_LEN = 32;

    static final long VDISK_F_DIRECT_IO = 1L << 0;
    static final long VDISK_F_DISCARD = 1L << 1;
    static final long VDISK_F_WRITE_ZEROES = 1L << 2;
    static final long VDISK_F_REISSUE = 1L << 3;

    static final long VDISK_ADD_READ_ONLY = 1 << 0;
    static final long VDISK_FILE_WRITABLE = 1 << 0;

    static final long VDISK_EXT_UPCALL = 0;
    static final long VDISK_EXT_DATA_RW = 1;
    static final long VDISK_EXT_DATA_RO = 2;
    static final long VDISK_EXT_ZERO = 3;

    static final long VDISK_OP_READ = 0;
    static final long VDISK_OP_WRITE = 1;
    static final long VDISK_OP_FLUSH = 2;
    static final long VDISK_OP_DISCARD = 3;
    static final long VDISK_OP_WRITE_ZEROES = 4;

    static final long VDISK_UP_NOUNMAP = 1 << 0;

    static final long VDISK_STATE_NEW = 0;
    static final long VDISK_STATE_LIVE = 1;
    static final long VDISK_STATE_NO_DAEMON = 2;
    static final long VDISK_STATE_FAILING = 3;
    static final long VDISK_STATE_DELETING = 4;

    static final long VDISK_DEL_FORCE = 1 << 0;

    static final long VDISK_IOC_MAGIC = 0xDA;
    static final long VDISK_IOC_FEATURES = ior(0x00, Features.SIZE);
    static final long VDISK_IOC_ADD = iowr(0x01, Add.SIZE);
    static final long VDISK_IOC_START = io(0x02);
    static final long VDISK_IOC_DEL = iow(0x03, Del.SIZE);
    static final long VDISK_IOC_INFO = iowr(0x04, Info.SIZE);
    static final long VDISK_IOC_FETCH = iowr(0x05, Upcall.SIZE);
    static final long VDISK_IOC_COMPLETE = iow(0x06, Reply.SIZE);
    static final long VDISK_IOC_RECOVER = iow(0x07, Recover.SIZE);

    /** struct vdisk_features */
    static final class Features {
        static final int SIZE = 72;
        static final int VERSION = 0, MAX_FILES = 4, FEATURES = 8, MAX_EXTENTS = 16, MAX_IO_BYTES = 20, RESERVED = 24;
    }

    /** struct vdisk_file */
    static final class File {
        static final int SIZE = 16;
        static final int FD = 0, FLAGS = 4, RESERVED = 8;
    }

    /** struct vdisk_extent */
    static final class Extent {
        static final int SIZE = 32;
        static final int START = 0, LENGTH = 8, FILE_OFFSET = 16, FILE = 24, KIND = 28, RESERVED = 30;
    }

    /** struct vdisk_add */
    static final class Add {
        static final int SIZE = 312;
        static final int VERSION = 0, FLAGS = 4, FEATURES = 8, SIZE_ = 16, LOGICAL_BLOCK_SIZE = 24,
                PHYSICAL_BLOCK_SIZE = 28, GRANULARITY = 32, DEAD_TIMEOUT = 40, INDEX = 44, FAMILY = 48, FORMAT = 64,
                MODEL = 80, SERIAL = 128, FIRMWARE = 152, IMAGE = 168, BACKING = 176, FILES = 184, EXTENTS = 192,
                NR_FILES = 200, NR_EXTENTS = 204, NAME = 208, MAX_IO_BYTES = 240, RESERVED0 = 244, RESERVED = 248;
        /** The text fields' sizes, NUL included. */
        static final int LEN_FAMILY = 16, LEN_FORMAT = 16, LEN_MODEL = 48, LEN_SERIAL = 24, LEN_FIRMWARE = 16, LEN_NAME = 32;
    }

    /** struct vdisk_upcall */
    static final class Upcall {
        static final int SIZE = 88;
        static final int BUFFER = 0, BUFFER_LEN = 8, OP = 12, FLAGS = 14, SEQ = 16, OFFSET = 24, LENGTH = 32,
                MAP_START = 40, MAP_LENGTH = 48, RESERVED = 56;
    }

    /** struct vdisk_reply */
    static final class Reply {
        static final int SIZE = 64;
        static final int SEQ = 0, STATUS = 8, NR_EXTENTS = 12, BUFFER = 16, EXTENTS = 24, RESERVED = 32;
    }

    /** struct vdisk_info */
    static final class Info {
        static final int SIZE = 152;
        static final int LEN_NAME = 32;
        static final int NAME = 0, VERSION = 32, STATE = 36, FEATURES = 40, SIZE_ = 48, DAEMON_PID = 56,
                OPEN_COUNT = 60, UPCALLS = 64, KERNEL_READS = 72, KERNEL_WRITES = 80, NR_FILES = 88,
                NR_EXTENTS = 92, DEAD_TIMEOUT = 96, RESERVED0 = 100, RESERVED = 104;
    }

    /** struct vdisk_del */
    static final class Del {
        static final int SIZE = 64;
        static final int LEN_NAME = 32;
        static final int NAME = 0, FLAGS = 32, RESERVED0 = 36, RESERVED = 40;
    }

    /** struct vdisk_recover */
    static final class Recover {
        static final int SIZE = 80;
        static final int LEN_NAME = 32;
        static final int NAME = 0, FILES = 32, NR_FILES = 40, RESERVED0 = 44, RESERVED = 48;
    }

    // asm-generic/ioctl.h: direction in bits 30-31, size in 16-29, type in 8-15, number in 0-7.
    private static long ioc(long dir, long nr, long size) {
        return dir << 30 | size << 16 | VDISK_IOC_MAGIC << 8 | nr;
    }

    private static long io(long nr) {
        return ioc(0, nr, 0);
    }

    private static long iow(long nr, long size) {
        return ioc(1, nr, size);
    }

    private static long ior(long nr, long size) {
        return ioc(2, nr, size);
    }

    private static long iowr(long nr, long size) {
        return ioc(3, nr, size);
    }
}
