/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vdisk: the module's internal interfaces. The ABI with the serving process
 * is include/uapi/linux/vdisk.h; this file is for the module's own parts:
 *
 *   vdisk_main.c    module init/exit, the list of disks, the control device
 *   vdisk_ctl.c     control ioctls: argument checks, ADD, START, DEL, INFO, RECOVER
 *   vdisk_disk.c    the gendisk: name, limits, identity, sysfs, teardown
 *   vdisk_map.c     the extent table
 *   vdisk_io.c      requests: held ranges, in-kernel file I/O, routing to upcalls
 *   vdisk_upcall.c  upcalls: queue, FETCH, COMPLETE, the daemon's death
 */
#ifndef _VDISK_H
#define _VDISK_H

#include <linux/blk-mq.h>
#include <linux/completion.h>
#include <linux/kref.h>
#include <linux/rbtree.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <linux/vdisk.h>

#define VDISK_MAX_FILES		4096
#define VDISK_MAX_IO_BYTES	(1U << 20)
#define VDISK_QUEUE_DEPTH	128
#define VDISK_MAX_GRANULARITY	(1ULL << 30)
#define VDISK_IMAGE_PATH_MAX	4096
#define VDISK_BACKING_MAX	(16 * 4096)

extern unsigned int vdisk_max_extents;

/* One image file, with the kernel's own reference. */
struct vdisk_file_ref {
	struct file *file;
	bool writable;
	/* Set when an in-kernel write to it completed; a flush clears it and fsyncs. */
	unsigned long written;
	/* Direct I/O alignment (0: buffered only). */
	unsigned int dio_align;
	/*
	 * The file's page-cache gfp mask before the disk took it: while the
	 * disk serves it, its page cache is allocated without __GFP_IO and
	 * __GFP_FS (as loop does), so no reclaim entered from there waits for
	 * I/O that may need this disk.
	 */
	gfp_t old_gfp_mask;
	bool gfp_masked;
};

/* A contiguous piece of the disk as the table maps it (copied out of the table). */
struct vdisk_piece {
	u64 start;
	u64 len;
	u64 file_offset;
	u32 file;
	u16 kind;
};

/* One stored extent; ranges without one are VDISK_EXT_UPCALL. */
struct vdisk_ext {
	struct rb_node node;
	u64 start;
	u64 len;
	u64 file_offset;
	u32 file;
	u16 kind;
};

struct vdisk_map {
	rwlock_t lock;
	struct rb_root root;
	u64 size;
	unsigned int count;
};

/*
 * Extents checked and ready to go into a table, with the nodes
 * vdisk_map_replace may need: allocated before the table is locked.
 */
struct vdisk_ext_list {
	struct vdisk_ext **ext;
	unsigned int nr;
	struct vdisk_ext *spare;	/* for splitting an extent in two */
};

enum vdisk_up_state {
	VDISK_UP_NONE,
	VDISK_UP_QUEUED,	/* on dev->upcalls */
	VDISK_UP_FETCHED,	/* on dev->fetched */
	VDISK_UP_ANSWERING,	/* a COMPLETE is finishing it */
};

/* Per request (blk-mq pdu). */
struct vdisk_cmd {
	struct work_struct work;
	struct vdisk_dev *dev;
	/* On dev->inflight while in-kernel I/O runs, or on a held range's waiters. */
	struct list_head node;
	u64 start;		/* the request's range on the disk */
	u64 end;
	atomic_t parts;		/* parts still running: the worker's, the upcall's */
	int status;		/* first failure (blk_status_t) */

	/* The upcall (at most one per request). */
	struct list_head up_node;
	enum vdisk_up_state up_state;
	u16 up_op;
	u16 up_flags;
	u64 up_seq;
	u64 up_start;
	u64 up_len;
	u32 up_rq_off;		/* where up_start lies in the request's data */

	/* The range a write, discard or write-zeroes upcall holds. */
	struct list_head held_node;	/* on dev->held */
	bool holding;
	u64 held_start;
	u64 held_end;
	unsigned int drain;	/* in-kernel requests on it still running */
	struct list_head waiters;	/* requests waiting for it */
};

struct vdisk_conn;

struct vdisk_dev {
	struct kref kref;
	struct list_head list;		/* vdisk_devices, under vdisk_ctl_mutex */
	int index;
	char name[VDISK_NAME_LEN];

	/* Fixed at ADD. */
	u64 size;
	u32 lbs;
	u32 pbs;
	u64 granularity;
	u64 features;
	bool read_only;
	u32 dead_timeout;
	char family[16];
	char format[16];
	char model[41];
	char serial[21];
	char firmware[9];
	char *image;
	char *backing;
	unsigned int nr_files;
	struct vdisk_file_ref *files;

	struct vdisk_map map;
	struct blk_mq_tag_set tag_set;
	struct gendisk *disk;
	struct device *parent;		/* /sys/block/NAME/device: model, serial... */
	bool added;			/* add_disk done */
	struct workqueue_struct *wq;
	struct work_struct scan_work;	/* reads the partition table after START */
	struct completion scanned;

	/* Under lock. */
	spinlock_t lock;
	u32 state;			/* VDISK_STATE_* */
	struct list_head inflight;	/* requests doing in-kernel I/O */
	struct list_head held;		/* commands holding a range */
	struct list_head upcalls;	/* queued upcalls */
	struct list_head fetched;	/* fetched, not answered */
	u64 next_seq;
	bool meta_dirty;		/* a mapping changed since the last flush upcall */
	struct vdisk_conn *daemon;
	pid_t daemon_pid;
	bool gone;			/* deleted: FETCH says ENODEV */

	wait_queue_head_t fetch_wait;
	struct delayed_work dead_work;

	atomic64_t upcall_count;
	atomic64_t kernel_reads;
	atomic64_t kernel_writes;
};

/* One open file of the control device; binds to at most one disk. */
struct vdisk_conn {
	struct vdisk_dev *dev;	/* under vdisk_conn_lock */
};

/* vdisk_main.c */
extern struct kmem_cache *vdisk_dev_cache;
extern struct mutex vdisk_ctl_mutex;
extern struct list_head vdisk_devices;
extern struct miscdevice vdisk_misc;
struct vdisk_dev *vdisk_conn_dev(struct vdisk_conn *conn);
void vdisk_conn_bind(struct vdisk_conn *conn, struct vdisk_dev *dev);
void vdisk_dev_put(struct vdisk_dev *dev);

/* vdisk_ctl.c */
long vdisk_ctl_ioctl(struct file *file, unsigned int cmd, unsigned long arg);
void vdisk_ctl_release(struct vdisk_conn *conn);

/* vdisk_disk.c */
struct vdisk_dev *vdisk_dev_alloc(void);
int vdisk_disk_create(struct vdisk_dev *dev, int index);
int vdisk_disk_start(struct vdisk_dev *dev);
void vdisk_disk_destroy(struct vdisk_dev *dev);
int vdisk_files_open(struct vdisk_dev *dev, const struct vdisk_file *uf, unsigned int nr);
void vdisk_files_close(struct vdisk_dev *dev);
int vdisk_files_flush(struct vdisk_dev *dev, bool all);

/* vdisk_map.c */
int vdisk_map_init(void);
void vdisk_map_exit(void);
void vdisk_map_create(struct vdisk_map *map, u64 size);
void vdisk_map_free(struct vdisk_map *map);
int vdisk_ext_list_load(struct vdisk_dev *dev, struct vdisk_ext_list *list,
			const struct vdisk_extent __user *uext, unsigned int nr,
			u64 lo, u64 hi);
void vdisk_ext_list_free(struct vdisk_ext_list *list);
void vdisk_map_replace(struct vdisk_map *map, u64 start, u64 end,
		       struct vdisk_ext_list *list);
void vdisk_map_lookup(struct vdisk_map *map, u64 pos, u64 end,
		      struct vdisk_piece *piece);

/* vdisk_io.c */
extern const struct blk_mq_ops vdisk_mq_ops;
void vdisk_cmd_part_done(struct vdisk_cmd *cmd, blk_status_t status);
void vdisk_release_range(struct vdisk_dev *dev, struct vdisk_cmd *cmd);

/* vdisk_upcall.c */
void vdisk_upcall_queue(struct vdisk_dev *dev, struct vdisk_cmd *cmd);
bool vdisk_upcalls_fail_now(struct vdisk_dev *dev);
void vdisk_upcall_fail(struct vdisk_dev *dev, struct vdisk_cmd *cmd);
long vdisk_fetch(struct vdisk_conn *conn, struct vdisk_upcall __user *arg);
long vdisk_complete(struct vdisk_conn *conn, struct vdisk_reply __user *arg);
void vdisk_daemon_gone(struct vdisk_dev *dev, struct vdisk_conn *conn);
void vdisk_dead_work(struct work_struct *work);
void vdisk_fail_all_upcalls(struct vdisk_dev *dev);

#endif /* _VDISK_H */
