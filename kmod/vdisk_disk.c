// SPDX-License-Identifier: GPL-2.0
/*
 * vdisk: the gendisk side. A disk is named after its format family and the
 * lowest free index (vdi0, qcow1); its partitions are the kernel's own
 * (vdi0p1). It is removable, answers hdparm's identity ioctls, and shows its
 * image in /sys/block/NAME/vdisk/ and a model in /sys/block/NAME/device/.
 */
#include <linux/blkdev.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/hdreg.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/pagemap.h>
#include <linux/slab.h>

#include "vdisk.h"

struct vdisk_dev *vdisk_dev_alloc(void)
{
	struct vdisk_dev *dev = kmem_cache_zalloc(vdisk_dev_cache, GFP_KERNEL);

	if (!dev)
		return NULL;
	kref_init(&dev->kref);
	INIT_LIST_HEAD(&dev->list);
	spin_lock_init(&dev->lock);
	INIT_LIST_HEAD(&dev->inflight);
	INIT_LIST_HEAD(&dev->held);
	INIT_LIST_HEAD(&dev->upcalls);
	INIT_LIST_HEAD(&dev->fetched);
	init_waitqueue_head(&dev->fetch_wait);
	INIT_DELAYED_WORK(&dev->dead_work, vdisk_dead_work);
	init_completion(&dev->scanned);
	dev->index = -1;
	dev->state = VDISK_STATE_NEW;
	return dev;
}

/* ---- Files ---- */

/*
 * Takes the kernel's own references to the daemon's files: regular files,
 * open for reading (and writing where the kernel is to write them).
 */
int vdisk_files_open(struct vdisk_dev *dev, const struct vdisk_file *uf, unsigned int nr)
{
	unsigned int i;

	dev->files = kcalloc(nr, sizeof(*dev->files), GFP_KERNEL);
	if (!dev->files)
		return -ENOMEM;
	for (i = 0; i < nr; i++) {
		struct vdisk_file_ref *f = &dev->files[i];
		struct file *file;
		struct inode *inode;

		if (uf[i].reserved || (uf[i].flags & ~VDISK_FILE_WRITABLE))
			return -EINVAL;
		file = fget(uf[i].fd);
		if (!file)
			return -EBADF;
		f->file = file;
		dev->nr_files = i + 1;
		inode = file_inode(file);
		if (!S_ISREG(inode->i_mode) || !(file->f_mode & FMODE_READ) ||
		    !file->f_op->read_iter)
			return -EINVAL;
		f->writable = uf[i].flags & VDISK_FILE_WRITABLE;
		if (f->writable && (!(file->f_mode & FMODE_WRITE) || (file->f_flags & O_APPEND) ||
				    !file->f_op->write_iter || IS_IMMUTABLE(inode)))
			return -EINVAL;
		if (file->f_mode & FMODE_CAN_ODIRECT && (dev->features & VDISK_F_DIRECT_IO))
			f->dio_align = inode->i_sb->s_bdev ?
				bdev_logical_block_size(inode->i_sb->s_bdev) : SECTOR_SIZE;
		f->old_gfp_mask = mapping_gfp_mask(file->f_mapping);
		mapping_set_gfp_mask(file->f_mapping, f->old_gfp_mask & ~(__GFP_IO | __GFP_FS));
		f->gfp_masked = true;
	}
	return 0;
}

void vdisk_files_close(struct vdisk_dev *dev)
{
	unsigned int i;

	/* Backwards: a file listed twice gets its first mask back last. */
	for (i = dev->nr_files; i-- > 0; ) {
		struct vdisk_file_ref *f = &dev->files[i];

		if (f->gfp_masked)
			mapping_set_gfp_mask(f->file->f_mapping, f->old_gfp_mask);
		fput(f->file);
	}
	kfree(dev->files);
	dev->files = NULL;
	dev->nr_files = 0;
}

/* Syncs the files the kernel wrote since the last flush (@all: every writable one). */
int vdisk_files_flush(struct vdisk_dev *dev, bool all)
{
	unsigned int i;
	int ret = 0;

	for (i = 0; i < dev->nr_files; i++) {
		struct vdisk_file_ref *f = &dev->files[i];
		int err;

		if (!f->writable || !(test_and_clear_bit(0, &f->written) || all))
			continue;
		err = vfs_fsync(f->file, 0);
		if (err) {
			set_bit(0, &f->written);
			if (!ret)
				ret = err;
		}
	}
	return ret;
}

/* ---- Identity: hdparm -i, /sys/block/NAME/device/ ---- */

/* A string into identify words, space-padded and not byte-swapped, as libata's ioctl gives it. */
static void vdisk_id_string(u16 *id, unsigned int word, unsigned int bytes, const char *s)
{
	char *p = (char *)(id + word);
	size_t n = strnlen(s, bytes);

	memset(p, ' ', bytes);
	memcpy(p, s, n);
}

static void vdisk_identify(struct vdisk_dev *dev, u16 *id)
{
	u64 sectors = dev->size / dev->lbs;
	u32 lba28 = min_t(u64, sectors, 0x0fffffff);
	unsigned int per_phys = ilog2(dev->pbs / dev->lbs);

	memset(id, 0, 512);
	id[0] = 0x0080;			/* removable media */
	id[1] = min_t(u64, sectors / (16 * 63), 16383);
	id[3] = 16;
	id[6] = 63;
	vdisk_id_string(id, 10, 20, dev->serial);
	vdisk_id_string(id, 23, 8, dev->firmware);
	vdisk_id_string(id, 27, 40, dev->model);
	id[47] = 0x8000;		/* no READ/WRITE MULTIPLE */
	id[49] = 0x0200;		/* LBA */
	id[60] = lba28 & 0xffff;
	id[61] = lba28 >> 16;
	id[80] = 0x01f0;		/* ATA/ATAPI-4 to -8 */
	id[82] = dev->read_only ? 0 : 0x0020;	/* write cache */
	id[83] = 0x4000 | 0x0400 | (dev->read_only ? 0 : 0x1000);	/* LBA48, FLUSH CACHE */
	id[84] = 0x4000;
	id[85] = id[82];
	id[86] = id[83] & ~0x4000;
	id[87] = 0x4000;
	id[100] = sectors & 0xffff;
	id[101] = (sectors >> 16) & 0xffff;
	id[102] = (sectors >> 32) & 0xffff;
	id[103] = (sectors >> 48) & 0xffff;
	id[106] = 0x4000 | (per_phys ? 0x2000 | per_phys : 0) | (dev->lbs > 512 ? 0x1000 : 0);
	if (dev->lbs > 512) {
		id[117] = (dev->lbs / 2) & 0xffff;
		id[118] = (dev->lbs / 2) >> 16;
	}
	id[217] = 1;			/* not rotating */
}

static int vdisk_blk_ioctl(struct block_device *bdev, fmode_t mode, unsigned int cmd,
			   unsigned long arg)
{
	struct vdisk_dev *dev = bdev->bd_disk->private_data;
	u16 *id;
	int ret;

	switch (cmd) {
	case HDIO_GET_IDENTITY:
		id = kmalloc(512, GFP_KERNEL);
		if (!id)
			return -ENOMEM;
		vdisk_identify(dev, id);
		ret = copy_to_user((void __user *)arg, id, 512) ? -EFAULT : 0;
		kfree(id);
		return ret;
	case HDIO_GET_MULTCOUNT:
		return put_user(0L, (long __user *)arg);
	default:
		return -ENOTTY;
	}
}

static int vdisk_getgeo(struct block_device *bdev, struct hd_geometry *geo)
{
	struct vdisk_dev *dev = bdev->bd_disk->private_data;

	geo->heads = 255;
	geo->sectors = 63;
	geo->cylinders = min_t(u64, (dev->size >> SECTOR_SHIFT) / (255 * 63), 65535);
	geo->start = get_start_sect(bdev);
	return 0;
}

static int vdisk_open(struct block_device *bdev, fmode_t mode)
{
	struct vdisk_dev *dev = bdev->bd_disk->private_data;

	if (READ_ONCE(dev->state) == VDISK_STATE_DELETING)
		return -ENXIO;
	return 0;
}

/* The gendisk's last reference is gone (it may outlive DEL while open). */
static void vdisk_free_disk(struct gendisk *disk)
{
	vdisk_dev_put(disk->private_data);
}

static const struct block_device_operations vdisk_fops = {
	.owner		= THIS_MODULE,
	.open		= vdisk_open,
	.ioctl		= vdisk_blk_ioctl,
	.compat_ioctl	= blkdev_compat_ptr_ioctl,
	.getgeo		= vdisk_getgeo,
	.free_disk	= vdisk_free_disk,
};

/* The disk's parent device: what lsblk and udev read as the model. */
struct vdisk_parent {
	struct device dev;
	char model[41];
	char serial[21];
	char firmware[9];
};

#define to_vdisk_parent(d) container_of(d, struct vdisk_parent, dev)

static ssize_t model_show(struct device *d, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%s\n", to_vdisk_parent(d)->model);
}
static DEVICE_ATTR_RO(model);

static ssize_t vendor_show(struct device *d, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "vdiskload\n");
}
static DEVICE_ATTR_RO(vendor);

static ssize_t serial_show(struct device *d, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%s\n", to_vdisk_parent(d)->serial);
}
static DEVICE_ATTR_RO(serial);

static ssize_t rev_show(struct device *d, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%s\n", to_vdisk_parent(d)->firmware);
}
static DEVICE_ATTR_RO(rev);

static struct attribute *vdisk_parent_attrs[] = {
	&dev_attr_model.attr,
	&dev_attr_vendor.attr,
	&dev_attr_serial.attr,
	&dev_attr_rev.attr,
	NULL,
};
ATTRIBUTE_GROUPS(vdisk_parent);

static void vdisk_parent_release(struct device *d)
{
	kfree(to_vdisk_parent(d));
}

/* ---- /sys/block/NAME/vdisk/ ---- */

static struct vdisk_dev *vdisk_of(struct device *d)
{
	return dev_to_disk(d)->private_data;
}

static ssize_t image_show(struct device *d, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%s\n", vdisk_of(d)->image);
}
static DEVICE_ATTR_RO(image);

static ssize_t format_show(struct device *d, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%s\n", vdisk_of(d)->format);
}
static DEVICE_ATTR_RO(format);

static ssize_t backing_show(struct device *d, struct device_attribute *attr, char *buf)
{
	const char *b = vdisk_of(d)->backing;

	return b ? sysfs_emit(buf, "%s\n", b) : 0;
}
static DEVICE_ATTR_RO(backing);

static ssize_t daemon_pid_show(struct device *d, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", READ_ONCE(vdisk_of(d)->daemon_pid));
}
static DEVICE_ATTR_RO(daemon_pid);

static ssize_t state_show(struct device *d, struct device_attribute *attr, char *buf)
{
	static const char *const names[] = {
		[VDISK_STATE_NEW] = "new",
		[VDISK_STATE_LIVE] = "live",
		[VDISK_STATE_NO_DAEMON] = "no-daemon",
		[VDISK_STATE_FAILING] = "failing",
		[VDISK_STATE_DELETING] = "deleting",
	};

	return sysfs_emit(buf, "%s\n", names[READ_ONCE(vdisk_of(d)->state)]);
}
static DEVICE_ATTR_RO(state);

static ssize_t extents_show(struct device *d, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", READ_ONCE(vdisk_of(d)->map.count));
}
static DEVICE_ATTR_RO(extents);

#define VDISK_COUNTER_ATTR(field)						\
static ssize_t field##_show(struct device *d, struct device_attribute *attr, char *buf) \
{										\
	return sysfs_emit(buf, "%lld\n", atomic64_read(&vdisk_of(d)->field));	\
}										\
static DEVICE_ATTR_RO(field)

VDISK_COUNTER_ATTR(kernel_reads);
VDISK_COUNTER_ATTR(kernel_writes);

/* As loop's dio: 1 when the kernel reads and writes every file of the disk with direct I/O. */
static ssize_t dio_show(struct device *d, struct device_attribute *attr, char *buf)
{
	struct vdisk_dev *dev = vdisk_of(d);
	unsigned int i;

	for (i = 0; i < dev->nr_files; i++)
		if (!dev->files[i].dio_align)
			return sysfs_emit(buf, "0\n");
	return sysfs_emit(buf, "1\n");
}
static DEVICE_ATTR_RO(dio);

static ssize_t upcalls_show(struct device *d, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%lld\n", atomic64_read(&vdisk_of(d)->upcall_count));
}
static DEVICE_ATTR_RO(upcalls);

static struct attribute *vdisk_attrs[] = {
	&dev_attr_image.attr,
	&dev_attr_format.attr,
	&dev_attr_backing.attr,
	&dev_attr_daemon_pid.attr,
	&dev_attr_state.attr,
	&dev_attr_extents.attr,
	&dev_attr_upcalls.attr,
	&dev_attr_kernel_reads.attr,
	&dev_attr_kernel_writes.attr,
	&dev_attr_dio.attr,
	NULL,
};

static const struct attribute_group vdisk_attr_group = {
	.name = "vdisk",
	.attrs = vdisk_attrs,
};

static const struct attribute_group *vdisk_disk_groups[] = {
	&vdisk_attr_group,
	NULL,
};

/* ---- Life cycle ---- */

static int vdisk_match_name(struct device *d, const void *name)
{
	return !strcmp(dev_name(d), name);
}

/*
 * Whether FAMILY@index can be the disk's name: no vdisk has it, and no block
 * device the kernel has (virtio's ninth disk is "vdi", its partitions vdi1...).
 */
static bool vdisk_name_free(struct vdisk_dev *dev, int index)
{
	struct vdisk_dev *other;
	struct device *found;
	char name[VDISK_NAME_LEN];

	snprintf(name, sizeof(name), "%s%d", dev->family, index);
	list_for_each_entry(other, &vdisk_devices, list)
		if (!strcmp(other->name, name))
			return false;
	found = class_find_device(disk_to_dev(dev->disk)->class, NULL, name, vdisk_match_name);
	if (found) {
		put_device(found);
		return false;
	}
	return true;
}

static void vdisk_set_limits(struct vdisk_dev *dev)
{
	struct request_queue *q = dev->disk->queue;

	blk_queue_logical_block_size(q, dev->lbs);
	blk_queue_physical_block_size(q, dev->pbs);
	blk_queue_io_min(q, dev->pbs);
	blk_queue_max_hw_sectors(q, VDISK_MAX_IO_BYTES >> SECTOR_SHIFT);
	blk_queue_max_segments(q, USHRT_MAX);
	blk_queue_max_segment_size(q, UINT_MAX);
	blk_queue_write_cache(q, !dev->read_only, false);
	if (!dev->read_only && (dev->features & VDISK_F_DISCARD)) {
		blk_queue_max_discard_sectors(q, UINT_MAX >> SECTOR_SHIFT);
		q->limits.discard_granularity = min_t(u64, dev->granularity, UINT_MAX);
	}
	if (!dev->read_only && (dev->features & VDISK_F_WRITE_ZEROES))
		blk_queue_max_write_zeroes_sectors(q, UINT_MAX >> SECTOR_SHIFT);
}

/*
 * Makes the disk (not yet added) and names it: @index, or the lowest free
 * index if -1. Under vdisk_ctl_mutex.
 */
int vdisk_disk_create(struct vdisk_dev *dev, int index)
{
	struct gendisk *disk;
	int ret;

	dev->tag_set.ops = &vdisk_mq_ops;
	dev->tag_set.nr_hw_queues = 1;
	dev->tag_set.queue_depth = VDISK_QUEUE_DEPTH;
	dev->tag_set.numa_node = NUMA_NO_NODE;
	dev->tag_set.cmd_size = sizeof(struct vdisk_cmd);
	dev->tag_set.flags = BLK_MQ_F_SHOULD_MERGE | BLK_MQ_F_NO_SCHED_BY_DEFAULT;
	dev->tag_set.driver_data = dev;
	ret = blk_mq_alloc_tag_set(&dev->tag_set);
	if (ret)
		return ret;

	disk = blk_mq_alloc_disk(&dev->tag_set, dev);
	if (IS_ERR(disk)) {
		ret = PTR_ERR(disk);
		goto err_tags;
	}
	dev->disk = disk;

	if (index < 0) {
		for (index = 0; index < INT_MAX && !vdisk_name_free(dev, index); index++)
			;
	} else if (!vdisk_name_free(dev, index)) {
		ret = -EEXIST;
		goto err_disk;
	}
	dev->index = index;
	snprintf(dev->name, sizeof(dev->name), "%s%d", dev->family, index);

	dev->wq = alloc_workqueue("vdisk-%s", WQ_UNBOUND | WQ_MEM_RECLAIM, VDISK_QUEUE_DEPTH, dev->name);
	if (!dev->wq) {
		ret = -ENOMEM;
		goto err_disk;
	}

	strscpy(disk->disk_name, dev->name, DISK_NAME_LEN);
	disk->fops = &vdisk_fops;
	disk->private_data = dev;
	disk->flags |= GENHD_FL_REMOVABLE;
	set_capacity(disk, dev->size >> SECTOR_SHIFT);
	set_disk_ro(disk, dev->read_only);
	vdisk_set_limits(dev);
	return 0;

err_disk:
	put_disk(disk);
	dev->disk = NULL;
err_tags:
	blk_mq_free_tag_set(&dev->tag_set);
	return ret;
}

static int vdisk_parent_add(struct vdisk_dev *dev)
{
	struct vdisk_parent *p = kzalloc(sizeof(*p), GFP_KERNEL);
	int ret;

	if (!p)
		return -ENOMEM;
	strscpy(p->model, dev->model, sizeof(p->model));
	strscpy(p->serial, dev->serial, sizeof(p->serial));
	strscpy(p->firmware, dev->firmware, sizeof(p->firmware));
	device_initialize(&p->dev);
	p->dev.parent = vdisk_misc.this_device;
	p->dev.release = vdisk_parent_release;
	p->dev.groups = vdisk_parent_groups;
	ret = dev_set_name(&p->dev, "%s", dev->name);
	if (!ret)
		ret = device_add(&p->dev);
	if (ret) {
		put_device(&p->dev);
		return ret;
	}
	dev->parent = &p->dev;
	return 0;
}

/*
 * Adds the disk: the kernel reads its partition table now, so the daemon
 * must be fetching upcalls already. Under vdisk_ctl_mutex.
 */
int vdisk_disk_start(struct vdisk_dev *dev)
{
	int ret;

	ret = vdisk_parent_add(dev);
	if (ret)
		return ret;
	ret = device_add_disk(dev->parent, dev->disk, vdisk_disk_groups);
	if (ret) {
		device_unregister(dev->parent);
		dev->parent = NULL;
		return ret;
	}
	/* The gendisk holds a reference, dropped in vdisk_free_disk. */
	kref_get(&dev->kref);
	dev->added = true;
	return 0;
}

/*
 * Removes the disk: its I/O is drained (upcalls answered or failed before),
 * its files synced and released. A disk still open (a forced DEL) lives on
 * for its users, failing their I/O, until the last of them closes it.
 */
void vdisk_disk_destroy(struct vdisk_dev *dev)
{
	if (dev->added)
		del_gendisk(dev->disk);
	cancel_delayed_work_sync(&dev->dead_work);
	if (dev->wq)
		destroy_workqueue(dev->wq);
	if (dev->parent)
		device_unregister(dev->parent);
	if (dev->files) {
		vdisk_files_flush(dev, false);
		vdisk_files_close(dev);
	}
	vdisk_map_free(&dev->map);
	if (dev->disk) {
		put_disk(dev->disk);
		blk_mq_free_tag_set(&dev->tag_set);
	}
}
