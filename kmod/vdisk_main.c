// SPDX-License-Identifier: GPL-2.0
/*
 * vdisk: block devices served from virtual-disk images.
 *
 * The module's entry points: the control device /dev/vdisk-control and the
 * list of disks. See include/uapi/linux/vdisk.h for how a serving process
 * drives it.
 */
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/slab.h>

#include "vdisk.h"

unsigned int vdisk_max_extents = 1U << 20;
module_param_named(max_extents, vdisk_max_extents, uint, 0644);
MODULE_PARM_DESC(max_extents, "most extents one disk's table holds (more are served by upcalls)");

/* Disks have a cache of their own: /proc/slabinfo then tells whether any is leaked. */
struct kmem_cache *vdisk_dev_cache;
DEFINE_MUTEX(vdisk_ctl_mutex);
LIST_HEAD(vdisk_devices);

/* Guards vdisk_conn.dev: FETCH and COMPLETE look it up without vdisk_ctl_mutex. */
static DEFINE_SPINLOCK(vdisk_conn_lock);

/* The disk bound to @conn, with a reference, or NULL. */
struct vdisk_dev *vdisk_conn_dev(struct vdisk_conn *conn)
{
	struct vdisk_dev *dev;

	spin_lock(&vdisk_conn_lock);
	dev = conn->dev;
	if (dev)
		kref_get(&dev->kref);
	spin_unlock(&vdisk_conn_lock);
	return dev;
}

/* Binds @conn to @dev (taking a reference), or unbinds it (@dev NULL). */
void vdisk_conn_bind(struct vdisk_conn *conn, struct vdisk_dev *dev)
{
	struct vdisk_dev *old;

	if (dev)
		kref_get(&dev->kref);
	spin_lock(&vdisk_conn_lock);
	old = conn->dev;
	conn->dev = dev;
	spin_unlock(&vdisk_conn_lock);
	if (old)
		vdisk_dev_put(old);
}

static int vdisk_ctl_open(struct inode *inode, struct file *file)
{
	struct vdisk_conn *conn;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	conn = kzalloc(sizeof(*conn), GFP_KERNEL);
	if (!conn)
		return -ENOMEM;
	file->private_data = conn;
	return 0;
}

/* The daemon's file closes: on a clean exit after DEL, or because it died. */
static int vdisk_ctl_close(struct inode *inode, struct file *file)
{
	struct vdisk_conn *conn = file->private_data;

	vdisk_ctl_release(conn);
	kfree(conn);
	return 0;
}

static const struct file_operations vdisk_ctl_fops = {
	.owner		= THIS_MODULE,
	.open		= vdisk_ctl_open,
	.release	= vdisk_ctl_close,
	.unlocked_ioctl	= vdisk_ctl_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= noop_llseek,
};

struct miscdevice vdisk_misc = {
	.minor		= MISC_DYNAMIC_MINOR,
	.name		= VDISK_CONTROL_NAME,
	.fops		= &vdisk_ctl_fops,
	.mode		= 0600,
};

static int __init vdisk_init(void)
{
	int ret;

	vdisk_dev_cache = KMEM_CACHE(vdisk_dev, 0);
	if (!vdisk_dev_cache)
		return -ENOMEM;
	ret = vdisk_map_init();
	if (ret)
		goto err_dev;
	ret = misc_register(&vdisk_misc);
	if (ret)
		goto err_map;
	pr_info("vdisk: version %d, control device /dev/%s\n", VDISK_VERSION, VDISK_CONTROL_NAME);
	return 0;

err_map:
	vdisk_map_exit();
err_dev:
	kmem_cache_destroy(vdisk_dev_cache);
	return ret;
}

/* Every disk holds a module reference, so there are none left here. */
static void __exit vdisk_exit(void)
{
	misc_deregister(&vdisk_misc);
	vdisk_map_exit();
	kmem_cache_destroy(vdisk_dev_cache);
}

module_init(vdisk_init);
module_exit(vdisk_exit);

MODULE_DESCRIPTION("vdisk: block devices served from virtual-disk images (vdiskload)");
MODULE_LICENSE("GPL");
