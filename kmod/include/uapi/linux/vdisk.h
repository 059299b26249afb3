/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * vdisk: block devices served from virtual-disk images (vdiskload).
 *
 * This header is the whole ABI between the vdisk module and its serving
 * process (the "daemon", vdiskload's attach process). Everything goes through
 * one control device, /dev/vdisk-control (root only):
 *
 *   1. The daemon opens the control device, once per disk it serves, and
 *      issues VDISK_IOC_ADD with the image's extent table and the files the
 *      table points into. The kernel creates the disk (not yet visible) and
 *      binds it to that open file.
 *   2. Daemon threads loop on VDISK_IOC_FETCH / VDISK_IOC_COMPLETE on that
 *      file: requests the kernel cannot serve itself ("upcalls") go to them.
 *   3. VDISK_IOC_START adds the disk: the kernel reads its partition table
 *      then, so step 2 must already be running.
 *   4. VDISK_IOC_DEL removes a disk. When the daemon's file is closed without
 *      it (the daemon died), the disk stays; upcalls wait up to the disk's
 *      dead timeout for a new daemon, which takes over with
 *      VDISK_IOC_RECOVER on a file of its own.
 *
 * The extent table maps the virtual disk to the image files. The kernel
 * serves reads of DATA_RW, DATA_RO and ZERO extents and writes of DATA_RW
 * extents itself; everything else (allocating writes, copy-on-write,
 * compressed data, discards, write-zeroes) goes up. A write, discard or
 * write-zeroes upcall holds the range widened to the disk's granularity:
 * in-kernel I/O on it is drained before the upcall is fetched and held until
 * the reply, which carries the range's new extents. A range's mapping thus
 * only changes while the daemon handles an upcall covering it.
 *
 * Every struct has a fixed size and reserved fields that must be zero. The
 * ABI grows by feature bits: ADD clears the bits of vdisk_add.features this
 * module does not know and hands the rest back. Flags (vdisk_add.flags and
 * the like) must be known: an unknown flag, a reserved field that is not
 * zero or a version other than VDISK_VERSION is EINVAL.
 *
 * All offsets and lengths are in bytes. Pointers are user addresses in u64.
 */
#ifndef _UAPI_LINUX_VDISK_H
#define _UAPI_LINUX_VDISK_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define VDISK_VERSION		1
#define VDISK_CONTROL_NAME	"vdisk-control"
#define VDISK_NAME_LEN		32	/* disk names, NUL included */

/* Features: asked for in vdisk_add.features, granted if the module has them. */
/* In-kernel file I/O may use direct I/O where the file and alignment allow. */
#define VDISK_F_DIRECT_IO	(1ULL << 0)
/* The disk takes discards (they go up as VDISK_OP_DISCARD). */
#define VDISK_F_DISCARD		(1ULL << 1)
/* The disk takes write-zeroes (they go up as VDISK_OP_WRITE_ZEROES). */
#define VDISK_F_WRITE_ZEROES	(1ULL << 2)
/*
 * When the daemon dies, upcalls it fetched and did not answer are handed to
 * the next daemon (VDISK_IOC_RECOVER) again, instead of failing with EIO.
 * Safe when the daemon's operations are idempotent.
 */
#define VDISK_F_REISSUE		(1ULL << 3)

/* vdisk_add.flags */
#define VDISK_ADD_READ_ONLY	(1U << 0)

/* vdisk_file.flags */
#define VDISK_FILE_WRITABLE	(1U << 0)	/* the kernel may write it (DATA_RW) */

/* vdisk_extent.kind */
#define VDISK_EXT_UPCALL	0	/* reads and writes go up (also: any gap) */
#define VDISK_EXT_DATA_RW	1	/* reads and writes in the kernel, at file + file_offset */
#define VDISK_EXT_DATA_RO	2	/* reads in the kernel, writes go up */
#define VDISK_EXT_ZERO		3	/* reads are zeros, writes go up */

/* vdisk_upcall.op */
#define VDISK_OP_READ		0
#define VDISK_OP_WRITE		1
#define VDISK_OP_FLUSH		2
#define VDISK_OP_DISCARD	3
#define VDISK_OP_WRITE_ZEROES	4

/* vdisk_upcall.flags */
#define VDISK_UP_NOUNMAP	(1U << 0)	/* write-zeroes: keep the space allocated */

/* vdisk_info.state */
#define VDISK_STATE_NEW		0	/* added, not started */
#define VDISK_STATE_LIVE	1	/* a daemon serves it */
#define VDISK_STATE_NO_DAEMON	2	/* the daemon died: upcalls wait for a new one */
#define VDISK_STATE_FAILING	3	/* no daemon for dead_timeout: upcalls fail (EIO) */
#define VDISK_STATE_DELETING	4

/* vdisk_del.flags */
#define VDISK_DEL_FORCE		(1U << 0)	/* even while open: its users get EIO */

/* Module-wide limits, in vdisk_features. */
struct vdisk_features {
	__u32 version;		/* out: VDISK_VERSION */
	__u32 max_files;	/* out: most files one disk may have */
	__u64 features;		/* out: every VDISK_F_* the module has */
	__u32 max_extents;	/* out: most extents one table may hold */
	__u32 max_io_bytes;	/* out: largest READ or WRITE upcall */
	__u64 reserved[6];
};

/* One image file the kernel does I/O on: a regular file, open for reading. */
struct vdisk_file {
	__s32 fd;		/* the daemon's descriptor; the kernel takes its own reference */
	__u32 flags;		/* VDISK_FILE_* ; WRITABLE needs a descriptor open for writing */
	__u64 reserved;
};

/*
 * One extent: [start, start + length) of the disk, sorted and not overlapping
 * the others. Offsets and lengths are multiples of the logical block size
 * (file_offset of 512). Ranges no extent covers are VDISK_EXT_UPCALL.
 */
struct vdisk_extent {
	__u64 start;
	__u64 length;
	__u64 file_offset;	/* DATA_RW, DATA_RO: where start lies in the file; else 0 */
	__u32 file;		/* DATA_RW, DATA_RO: index into the files; else 0 */
	__u16 kind;		/* VDISK_EXT_* */
	__u16 reserved;
};

struct vdisk_add {
	__u32 version;		/* in: VDISK_VERSION */
	__u32 flags;		/* in: VDISK_ADD_* */
	__u64 features;		/* in: VDISK_F_* wanted; out: those granted */
	__u64 size;		/* in: bytes, a multiple of logical_block_size */
	__u32 logical_block_size;	/* in: 512, 1024, 2048 or 4096 */
	__u32 physical_block_size;	/* in: a power of two, logical..65536 */
	/*
	 * in: a power of two, logical_block_size..1 GiB: a write, discard or
	 * write-zeroes changes the mapping only inside its range widened to
	 * multiples of this (the image's allocation unit).
	 */
	__u64 granularity;
	__u32 dead_timeout;	/* in: seconds upcalls wait for a new daemon (0: fail at once) */
	__s32 index;		/* in: index wanted, or -1: the lowest free; out: the index */
	char family[16];	/* in: name stem, [a-z]+ ("vdi": /dev/vdi0) */
	char format[16];	/* in: format name for sysfs ("qcow2") */
	char model[48];		/* in: identify model, printable, at most 40 bytes */
	char serial[24];	/* in: identify serial, printable, at most 20 bytes */
	char firmware[16];	/* in: identify firmware, printable, at most 8 bytes */
	__u64 image;		/* in: the image's path, printable, NUL-terminated */
	__u64 backing;		/* in: the backing files, one per line, or 0 */
	__u64 files;		/* in: struct vdisk_file[nr_files] */
	__u64 extents;		/* in: struct vdisk_extent[nr_extents] */
	__u32 nr_files;		/* in: 1..max_files */
	__u32 nr_extents;	/* in: 0..max_extents */
	char name[VDISK_NAME_LEN];	/* out: the disk's name ("vdi0") */
	__u32 max_io_bytes;	/* out: largest READ or WRITE upcall: the FETCH buffer size */
	__u32 reserved0;
	__u64 reserved[8];
};

/*
 * FETCH waits for an upcall (interruptible) and describes it. For a WRITE
 * the data (length bytes) is copied to buffer first. A FETCH on a disk that
 * is gone is ENODEV.
 */
struct vdisk_upcall {
	__u64 buffer;		/* in: max_io_bytes of daemon memory */
	__u32 buffer_len;	/* in: its size, at least max_io_bytes */
	__u16 op;		/* out: VDISK_OP_* */
	__u16 flags;		/* out: VDISK_UP_* */
	__u64 seq;		/* out: names the upcall in the reply */
	__u64 offset;		/* out: the disk range of the operation */
	__u64 length;
	/*
	 * out: for WRITE, DISCARD and WRITE_ZEROES the range held for the
	 * upcall (offset..length widened to the granularity): the reply gives
	 * its new mapping. Empty (0, 0) for READ and FLUSH.
	 */
	__u64 map_start;
	__u64 map_length;
	__u64 reserved[4];
};

/*
 * COMPLETE answers one fetched upcall. A READ's data (length bytes) comes
 * from buffer when status is 0. A WRITE, DISCARD or WRITE_ZEROES reply gives
 * the new extents of [map_start, map_start + map_length), which replace the
 * old ones there (whatever the status: the operation may have been done in
 * part); nr_extents 0 leaves the whole range to upcalls.
 */
struct vdisk_reply {
	__u64 seq;		/* the upcall's */
	__s32 status;		/* 0, or a negative errno for the request */
	__u32 nr_extents;
	__u64 buffer;		/* READ data */
	__u64 extents;		/* struct vdisk_extent[nr_extents] */
	__u64 reserved[4];
};

/* Names a disk: INFO, DEL. */
struct vdisk_info {
	char name[VDISK_NAME_LEN];	/* in */
	__u32 version;		/* out: VDISK_VERSION */
	__u32 state;		/* out: VDISK_STATE_* */
	__u64 features;		/* out: the disk's features */
	__u64 size;		/* out */
	__s32 daemon_pid;	/* out: the serving process, 0 while none */
	__u32 open_count;	/* out: opens of the disk and its partitions */
	__u64 upcalls;		/* out: upcalls sent */
	__u64 kernel_reads;	/* out: read requests served in the kernel (in part or whole) */
	__u64 kernel_writes;	/* out: write requests served in the kernel */
	__u32 nr_files;		/* out */
	__u32 nr_extents;	/* out: extents in the table now */
	__u32 dead_timeout;	/* out */
	__u32 reserved0;
	__u64 reserved[6];
};

struct vdisk_del {
	char name[VDISK_NAME_LEN];
	__u32 flags;		/* VDISK_DEL_* */
	__u32 reserved0;
	__u64 reserved[3];
};

/*
 * RECOVER binds the caller's control file, as the new daemon, to a disk whose
 * daemon died. The files must be the disk's files (same inodes), in the same
 * order, as the kernel keeps serving its table.
 */
struct vdisk_recover {
	char name[VDISK_NAME_LEN];
	__u64 files;		/* struct vdisk_file[nr_files] */
	__u32 nr_files;
	__u32 reserved0;
	__u64 reserved[4];
};

#define VDISK_IOC_MAGIC		0xDA

#define VDISK_IOC_FEATURES	_IOR(VDISK_IOC_MAGIC, 0x00, struct vdisk_features)
#define VDISK_IOC_ADD		_IOWR(VDISK_IOC_MAGIC, 0x01, struct vdisk_add)
#define VDISK_IOC_START		_IO(VDISK_IOC_MAGIC, 0x02)
#define VDISK_IOC_DEL		_IOW(VDISK_IOC_MAGIC, 0x03, struct vdisk_del)
#define VDISK_IOC_INFO		_IOWR(VDISK_IOC_MAGIC, 0x04, struct vdisk_info)
#define VDISK_IOC_FETCH		_IOWR(VDISK_IOC_MAGIC, 0x05, struct vdisk_upcall)
#define VDISK_IOC_COMPLETE	_IOW(VDISK_IOC_MAGIC, 0x06, struct vdisk_reply)
#define VDISK_IOC_RECOVER	_IOW(VDISK_IOC_MAGIC, 0x07, struct vdisk_recover)

#endif /* _UAPI_LINUX_VDISK_H */
