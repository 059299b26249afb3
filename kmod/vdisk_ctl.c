// SPDX-License-Identifier: GPL-2.0
/*
 * vdisk: the control ioctls. Every argument is checked here, before anything
 * is made: a bad one is EINVAL (EBADF for a descriptor that is not open),
 * and leaves nothing behind.
 */
#include <linux/blkdev.h>
#include <linux/completion.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/module.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "vdisk.h"

#define VDISK_FEATURES_ALL	(VDISK_F_DIRECT_IO | VDISK_F_DISCARD | VDISK_F_WRITE_ZEROES | \
				 VDISK_F_REISSUE)
#define VDISK_MAX_DEAD_TIMEOUT	86400
#define VDISK_MAX_INDEX		(1 << 20)

static bool vdisk_zero(const u64 *words, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (words[i])
			return false;
	return true;
}

/* A NUL-terminated string of at most @max bytes in @size, without control characters. */
static bool vdisk_text_ok(const char *s, size_t size, size_t max, bool newlines)
{
	size_t n = strnlen(s, size), i;

	if (n == size || n > max)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = s[i];

		if ((c < 0x20 && !(newlines && c == '\n')) || c == 0x7f)
			return false;
	}
	return true;
}

static bool vdisk_family_ok(const char *s, size_t size)
{
	size_t n = strnlen(s, size), i;

	if (n == 0 || n == size)
		return false;
	for (i = 0; i < n; i++)
		if (s[i] < 'a' || s[i] > 'z')
			return false;
	return true;
}

static bool vdisk_add_ok(const struct vdisk_add *a)
{
	if (a->version != VDISK_VERSION || (a->flags & ~VDISK_ADD_READ_ONLY) || a->reserved0 ||
	    !vdisk_zero(a->reserved, ARRAY_SIZE(a->reserved)))
		return false;
	if (a->logical_block_size < 512 || a->logical_block_size > 4096 ||
	    !is_power_of_2(a->logical_block_size))
		return false;
	if (a->physical_block_size < a->logical_block_size || a->physical_block_size > 65536 ||
	    !is_power_of_2(a->physical_block_size))
		return false;
	if (!a->size || a->size & (a->logical_block_size - 1) || a->size > (u64)LLONG_MAX)
		return false;
	if (a->granularity < a->logical_block_size || a->granularity > VDISK_MAX_GRANULARITY ||
	    !is_power_of_2(a->granularity))
		return false;
	if (a->dead_timeout > VDISK_MAX_DEAD_TIMEOUT || a->index < -1 || a->index >= VDISK_MAX_INDEX)
		return false;
	if (!a->nr_files || a->nr_files > VDISK_MAX_FILES || a->nr_extents > vdisk_max_extents)
		return false;
	if (!a->image || !a->files || (a->nr_extents && !a->extents))
		return false;
	return vdisk_family_ok(a->family, sizeof(a->family)) &&
	       vdisk_text_ok(a->format, sizeof(a->format), sizeof(a->format) - 1, false) &&
	       vdisk_text_ok(a->model, sizeof(a->model), 40, false) &&
	       vdisk_text_ok(a->serial, sizeof(a->serial), 20, false) &&
	       vdisk_text_ok(a->firmware, sizeof(a->firmware), 8, false);
}

/* A string from the daemon: at most @max bytes, no control characters (but newlines if allowed). */
static char *vdisk_user_text(u64 uptr, size_t max, bool newlines)
{
	char *s = strndup_user(u64_to_user_ptr(uptr), max + 1);

	if (IS_ERR(s))
		return s;
	if (!vdisk_text_ok(s, max + 1, max, newlines)) {
		kfree(s);
		return ERR_PTR(-EINVAL);
	}
	return s;
}

static void vdisk_dev_release(struct kref *kref)
{
	struct vdisk_dev *dev = container_of(kref, struct vdisk_dev, kref);

	kfree(dev->image);
	kfree(dev->backing);
	kmem_cache_free(vdisk_dev_cache, dev);
	module_put(THIS_MODULE);
}

void vdisk_dev_put(struct vdisk_dev *dev)
{
	kref_put(&dev->kref, vdisk_dev_release);
}

/* Everything ADD takes from the daemon, checked; the disk made but not added. */
static int vdisk_add_setup(struct vdisk_dev *dev, const struct vdisk_add *a)
{
	struct vdisk_ext_list list;
	struct vdisk_file *uf;
	int ret;

	dev->size = a->size;
	dev->lbs = a->logical_block_size;
	dev->pbs = a->physical_block_size;
	dev->granularity = a->granularity;
	dev->features = a->features & VDISK_FEATURES_ALL;
	dev->read_only = a->flags & VDISK_ADD_READ_ONLY;
	dev->dead_timeout = a->dead_timeout;
	strscpy(dev->family, a->family, sizeof(dev->family));
	strscpy(dev->format, a->format, sizeof(dev->format));
	strscpy(dev->model, a->model, sizeof(dev->model));
	strscpy(dev->serial, a->serial, sizeof(dev->serial));
	strscpy(dev->firmware, a->firmware, sizeof(dev->firmware));

	dev->image = vdisk_user_text(a->image, VDISK_IMAGE_PATH_MAX, false);
	if (IS_ERR(dev->image)) {
		ret = PTR_ERR(dev->image);
		dev->image = NULL;
		return ret;
	}
	if (a->backing) {
		dev->backing = vdisk_user_text(a->backing, VDISK_BACKING_MAX, true);
		if (IS_ERR(dev->backing)) {
			ret = PTR_ERR(dev->backing);
			dev->backing = NULL;
			return ret;
		}
	}

	uf = memdup_user(u64_to_user_ptr(a->files), array_size(a->nr_files, sizeof(*uf)));
	if (IS_ERR(uf))
		return PTR_ERR(uf);
	ret = vdisk_files_open(dev, uf, a->nr_files);
	kfree(uf);
	if (ret)
		return ret;

	vdisk_map_create(&dev->map, dev->size);
	ret = vdisk_ext_list_load(dev, &list, u64_to_user_ptr(a->extents), a->nr_extents, 0, dev->size);
	if (ret)
		return ret;
	vdisk_map_replace(&dev->map, 0, dev->size, &list);

	return vdisk_disk_create(dev, a->index);
}

static long vdisk_ioc_add(struct vdisk_conn *conn, struct vdisk_add __user *uarg)
{
	struct vdisk_add a;
	struct vdisk_dev *dev;
	int ret;

	if (copy_from_user(&a, uarg, sizeof(a)))
		return -EFAULT;
	if (!vdisk_add_ok(&a))
		return -EINVAL;
	dev = vdisk_dev_alloc();
	if (!dev)
		return -ENOMEM;
	__module_get(THIS_MODULE);	/* dropped when dev is freed */

	mutex_lock(&vdisk_ctl_mutex);
	ret = -EBUSY;
	if (conn->dev)
		goto err;
	ret = vdisk_add_setup(dev, &a);
	if (ret)
		goto err;
	a.features = dev->features;
	a.index = dev->index;
	memset(a.name, 0, sizeof(a.name));
	strscpy(a.name, dev->name, sizeof(a.name));
	a.max_io_bytes = VDISK_MAX_IO_BYTES;
	if (copy_to_user(uarg, &a, sizeof(a))) {
		ret = -EFAULT;
		goto err;
	}
	list_add_tail(&dev->list, &vdisk_devices);
	dev->daemon = conn;
	dev->daemon_pid = task_tgid_vnr(current);
	vdisk_conn_bind(conn, dev);
	mutex_unlock(&vdisk_ctl_mutex);
	return 0;

err:
	mutex_unlock(&vdisk_ctl_mutex);
	vdisk_disk_destroy(dev);
	vdisk_dev_put(dev);
	return ret;
}

/* Reads the partition table of a disk just added, away from the daemon's threads. */
static void vdisk_scan_work(struct work_struct *work)
{
	struct vdisk_dev *dev = container_of(work, struct vdisk_dev, scan_work);
	struct gendisk *disk = dev->disk;

	clear_bit(GD_SUPPRESS_PART_SCAN, &disk->state);
	mutex_lock(&disk->open_mutex);
	bdev_disk_changed(disk, false);
	mutex_unlock(&disk->open_mutex);
	complete_all(&dev->scanned);
	vdisk_dev_put(dev);
}

/*
 * START adds the disk, then has the partition table read by a worker and
 * waits for it, killably: were the table read here, in the daemon, and the
 * daemon killed, this thread would wait in the kernel for upcalls no one
 * answers while holding the control file that would tell of the death.
 */
static long vdisk_ioc_start(struct vdisk_conn *conn)
{
	struct vdisk_dev *dev;
	long ret;

	mutex_lock(&vdisk_ctl_mutex);
	dev = conn->dev;
	ret = -ENXIO;
	if (!dev)
		goto out;
	ret = -EBUSY;
	if (dev->state != VDISK_STATE_NEW || dev->daemon != conn)
		goto out;
	set_bit(GD_SUPPRESS_PART_SCAN, &dev->disk->state);
	ret = vdisk_disk_start(dev);
	if (ret)
		goto out;
	spin_lock(&dev->lock);
	dev->state = VDISK_STATE_LIVE;
	spin_unlock(&dev->lock);
	kref_get(&dev->kref);	/* the scan's */
	kref_get(&dev->kref);	/* ours, past the mutex */
	INIT_WORK(&dev->scan_work, vdisk_scan_work);
	queue_work(dev->wq, &dev->scan_work);
	mutex_unlock(&vdisk_ctl_mutex);

	ret = wait_for_completion_killable(&dev->scanned);
	vdisk_dev_put(dev);
	return ret;
out:
	mutex_unlock(&vdisk_ctl_mutex);
	return ret;
}

static struct vdisk_dev *vdisk_find(const char *name)
{
	struct vdisk_dev *dev;

	list_for_each_entry(dev, &vdisk_devices, list)
		if (!strcmp(dev->name, name))
			return dev;
	return NULL;
}

static bool vdisk_name_arg_ok(const char *name)
{
	return strnlen(name, VDISK_NAME_LEN) < VDISK_NAME_LEN;
}

/*
 * Removes a disk. Refused while it is open, unless forced. The disk leaves
 * the list at once; its I/O drains (the daemon, if there is one, answers
 * what is left; else it fails), then it is torn down.
 */
static long vdisk_ioc_del(struct vdisk_del __user *uarg)
{
	struct vdisk_del d;
	struct vdisk_dev *dev;
	bool no_daemon;

	if (copy_from_user(&d, uarg, sizeof(d)))
		return -EFAULT;
	if ((d.flags & ~VDISK_DEL_FORCE) || d.reserved0 ||
	    !vdisk_zero(d.reserved, ARRAY_SIZE(d.reserved)) || !vdisk_name_arg_ok(d.name))
		return -EINVAL;

	mutex_lock(&vdisk_ctl_mutex);
	dev = vdisk_find(d.name);
	if (!dev) {
		mutex_unlock(&vdisk_ctl_mutex);
		return -ENXIO;
	}
	if (dev->added && disk_openers(dev->disk) && !(d.flags & VDISK_DEL_FORCE)) {
		mutex_unlock(&vdisk_ctl_mutex);
		return -EBUSY;
	}
	list_del_init(&dev->list);
	spin_lock(&dev->lock);
	dev->state = VDISK_STATE_DELETING;
	no_daemon = !dev->daemon;
	spin_unlock(&dev->lock);
	mutex_unlock(&vdisk_ctl_mutex);

	if (no_daemon)
		vdisk_fail_all_upcalls(dev);
	vdisk_disk_destroy(dev);
	spin_lock(&dev->lock);
	dev->gone = true;
	spin_unlock(&dev->lock);
	wake_up_all(&dev->fetch_wait);
	pr_info("vdisk: %s: removed%s\n", dev->name, d.flags & VDISK_DEL_FORCE ? " (forced)" : "");
	vdisk_dev_put(dev);	/* the list's */
	return 0;
}

static long vdisk_ioc_info(struct vdisk_info __user *uarg)
{
	struct vdisk_info info;
	struct vdisk_dev *dev;

	if (copy_from_user(&info, uarg, sizeof(info)))
		return -EFAULT;
	if (!vdisk_name_arg_ok(info.name))
		return -EINVAL;
	mutex_lock(&vdisk_ctl_mutex);
	dev = vdisk_find(info.name);
	if (!dev) {
		mutex_unlock(&vdisk_ctl_mutex);
		return -ENXIO;
	}
	memset(&info, 0, sizeof(info));
	strscpy(info.name, dev->name, sizeof(info.name));
	info.version = VDISK_VERSION;
	spin_lock(&dev->lock);
	info.state = dev->state;
	info.daemon_pid = dev->daemon_pid;
	spin_unlock(&dev->lock);
	info.features = dev->features;
	info.size = dev->size;
	info.open_count = dev->added ? disk_openers(dev->disk) : 0;
	info.upcalls = atomic64_read(&dev->upcall_count);
	info.kernel_reads = atomic64_read(&dev->kernel_reads);
	info.kernel_writes = atomic64_read(&dev->kernel_writes);
	info.nr_files = dev->nr_files;
	info.nr_extents = READ_ONCE(dev->map.count);
	info.dead_timeout = dev->dead_timeout;
	mutex_unlock(&vdisk_ctl_mutex);
	return copy_to_user(uarg, &info, sizeof(info)) ? -EFAULT : 0;
}

/* The daemon's files again, from a new daemon: the same inodes, as the table points into them. */
static int vdisk_recover_files_ok(struct vdisk_dev *dev, const struct vdisk_recover *r)
{
	struct vdisk_file *uf;
	unsigned int i;
	int ret = 0;

	if (r->nr_files != dev->nr_files)
		return -EINVAL;
	uf = memdup_user(u64_to_user_ptr(r->files), array_size(r->nr_files, sizeof(*uf)));
	if (IS_ERR(uf))
		return PTR_ERR(uf);
	for (i = 0; i < r->nr_files && !ret; i++) {
		struct file *file;
		bool writable = uf[i].flags & VDISK_FILE_WRITABLE;

		if (uf[i].reserved || (uf[i].flags & ~VDISK_FILE_WRITABLE) ||
		    writable != dev->files[i].writable) {
			ret = -EINVAL;
			break;
		}
		file = fget(uf[i].fd);
		if (!file) {
			ret = -EBADF;
			break;
		}
		if (file_inode(file) != file_inode(dev->files[i].file) ||
		    (writable && !(file->f_mode & FMODE_WRITE)))
			ret = -EINVAL;
		fput(file);
	}
	kfree(uf);
	return ret;
}

static long vdisk_ioc_recover(struct vdisk_conn *conn, struct vdisk_recover __user *uarg)
{
	struct vdisk_recover r;
	struct vdisk_dev *dev;
	long ret;

	if (copy_from_user(&r, uarg, sizeof(r)))
		return -EFAULT;
	if (r.reserved0 || !vdisk_zero(r.reserved, ARRAY_SIZE(r.reserved)) ||
	    !vdisk_name_arg_ok(r.name) || !r.nr_files || r.nr_files > VDISK_MAX_FILES)
		return -EINVAL;

	mutex_lock(&vdisk_ctl_mutex);
	ret = -EBUSY;
	if (conn->dev)
		goto out;
	dev = vdisk_find(r.name);
	ret = -ENXIO;
	if (!dev)
		goto out;
	ret = -EBUSY;
	if (dev->state != VDISK_STATE_NO_DAEMON && dev->state != VDISK_STATE_FAILING)
		goto out;
	ret = vdisk_recover_files_ok(dev, &r);
	if (ret)
		goto out;
	vdisk_conn_bind(conn, dev);
	spin_lock(&dev->lock);
	dev->daemon = conn;
	dev->daemon_pid = task_tgid_vnr(current);
	dev->state = VDISK_STATE_LIVE;
	spin_unlock(&dev->lock);
	cancel_delayed_work(&dev->dead_work);
	wake_up_all(&dev->fetch_wait);
	pr_info("vdisk: %s: serving process %d took over\n", dev->name, dev->daemon_pid);
out:
	mutex_unlock(&vdisk_ctl_mutex);
	return ret;
}

static long vdisk_ioc_features(struct vdisk_features __user *uarg)
{
	struct vdisk_features f = {
		.version = VDISK_VERSION,
		.max_files = VDISK_MAX_FILES,
		.features = VDISK_FEATURES_ALL,
		.max_extents = vdisk_max_extents,
		.max_io_bytes = VDISK_MAX_IO_BYTES,
	};

	return copy_to_user(uarg, &f, sizeof(f)) ? -EFAULT : 0;
}

long vdisk_ctl_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct vdisk_conn *conn = file->private_data;
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case VDISK_IOC_FEATURES:
		return vdisk_ioc_features(uarg);
	case VDISK_IOC_ADD:
		return vdisk_ioc_add(conn, uarg);
	case VDISK_IOC_START:
		return vdisk_ioc_start(conn);
	case VDISK_IOC_DEL:
		return vdisk_ioc_del(uarg);
	case VDISK_IOC_INFO:
		return vdisk_ioc_info(uarg);
	case VDISK_IOC_FETCH:
		return vdisk_fetch(conn, uarg);
	case VDISK_IOC_COMPLETE:
		return vdisk_complete(conn, uarg);
	case VDISK_IOC_RECOVER:
		return vdisk_ioc_recover(conn, uarg);
	default:
		return -ENOTTY;
	}
}

/*
 * The control file closes. A disk it added and never started goes with it;
 * a started one loses its daemon (see vdisk_daemon_gone).
 */
void vdisk_ctl_release(struct vdisk_conn *conn)
{
	struct vdisk_dev *dev = vdisk_conn_dev(conn);
	bool unstarted;

	if (!dev)
		return;
	mutex_lock(&vdisk_ctl_mutex);
	unstarted = dev->state == VDISK_STATE_NEW && dev->daemon == conn && !list_empty(&dev->list);
	if (unstarted) {
		list_del_init(&dev->list);
		dev->daemon = NULL;
	}
	mutex_unlock(&vdisk_ctl_mutex);
	if (unstarted) {
		vdisk_disk_destroy(dev);
		vdisk_dev_put(dev);	/* the list's */
	} else {
		vdisk_daemon_gone(dev, conn);
	}
	vdisk_conn_bind(conn, NULL);
	vdisk_dev_put(dev);
}
