// SPDX-License-Identifier: GPL-2.0
/*
 * vdisk: upcalls. What the kernel cannot serve is queued for the daemon;
 * daemon threads take upcalls with FETCH (a WRITE's data copied to their
 * buffer) and answer with COMPLETE (a READ's data copied from theirs, and for
 * a held range its new extents). Both run in the daemon's context.
 *
 * When the daemon's control file closes while the disk lives (it died), the
 * upcalls it had fetched are queued again (VDISK_F_REISSUE) or failed, and
 * the disk waits dead_timeout seconds for a new daemon (VDISK_IOC_RECOVER);
 * after that, upcalls fail with EIO until one comes. In-kernel I/O goes on
 * all the while.
 */
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/uio.h>

#include "vdisk.h"

/* Queues @cmd's upcall for the daemon. Under dev->lock; the caller wakes fetch_wait. */
void vdisk_upcall_queue(struct vdisk_dev *dev, struct vdisk_cmd *cmd)
{
	cmd->up_state = VDISK_UP_QUEUED;
	list_add_tail(&cmd->up_node, &dev->upcalls);
}

/* Whether a new upcall fails at once: no daemon, and none to wait for. Under dev->lock. */
bool vdisk_upcalls_fail_now(struct vdisk_dev *dev)
{
	return dev->state == VDISK_STATE_FAILING ||
	       (dev->state == VDISK_STATE_DELETING && !dev->daemon);
}

/*
 * Ends an upcall that no daemon will answer, with EIO. A held range goes
 * to upcalls whole: the operation may have been done in part.
 */
void vdisk_upcall_fail(struct vdisk_dev *dev, struct vdisk_cmd *cmd)
{
	if (cmd->holding) {
		struct vdisk_ext_list none = {};

		vdisk_map_replace(&dev->map, cmd->held_start, cmd->held_end, &none);
		vdisk_release_range(dev, cmd);
	}
	if (cmd->up_op == VDISK_OP_FLUSH) {
		spin_lock(&dev->lock);
		dev->meta_dirty = true;
		spin_unlock(&dev->lock);
	}
	vdisk_cmd_part_done(cmd, BLK_STS_IOERR);
}

/* Fails the queued upcalls (@queued) and the fetched ones (@fetched). */
static void vdisk_fail_upcalls(struct vdisk_dev *dev, bool queued, bool fetched)
{
	struct vdisk_cmd *cmd, *tmp;
	LIST_HEAD(failed);

	spin_lock(&dev->lock);
	if (queued)
		list_splice_init(&dev->upcalls, &failed);
	if (fetched)
		list_splice_init(&dev->fetched, &failed);
	list_for_each_entry(cmd, &failed, up_node)
		cmd->up_state = VDISK_UP_NONE;
	spin_unlock(&dev->lock);
	list_for_each_entry_safe(cmd, tmp, &failed, up_node) {
		list_del_init(&cmd->up_node);
		vdisk_upcall_fail(dev, cmd);
	}
}

void vdisk_fail_all_upcalls(struct vdisk_dev *dev)
{
	vdisk_fail_upcalls(dev, true, true);
}

static bool vdisk_fetchable(struct vdisk_dev *dev, struct vdisk_conn *conn)
{
	bool ready;

	spin_lock(&dev->lock);
	ready = dev->gone || dev->daemon != conn || !list_empty(&dev->upcalls);
	spin_unlock(&dev->lock);
	return ready;
}

/*
 * Copies [off, off + len) of the request's data to (@to_user) or from the
 * daemon's buffer, segment by segment.
 */
static int vdisk_copy_user(struct request *rq, u64 off, u64 len, void __user *buf, bool to_user)
{
	struct req_iterator it;
	struct bio_vec bv;
	struct iov_iter user;
	struct iovec iov;
	u64 pos = 0;
	int ret;

	ret = import_single_range(to_user ? READ : WRITE, buf, len, &iov, &user);
	if (ret)
		return ret;
	rq_for_each_segment(bv, rq, it) {
		u64 seg_end = pos + bv.bv_len;

		if (seg_end > off && pos < off + len) {
			u64 skip = off > pos ? off - pos : 0;
			size_t n = min_t(u64, seg_end, off + len) - pos - skip;
			size_t done = to_user ?
				copy_page_to_iter(bv.bv_page, bv.bv_offset + skip, n, &user) :
				copy_page_from_iter(bv.bv_page, bv.bv_offset + skip, n, &user);

			if (done != n)
				return -EFAULT;
		}
		pos = seg_end;
		if (pos >= off + len)
			break;
	}
	return 0;
}

/* Puts a fetched upcall back at the head of the queue, if it is still fetched under @seq. */
static void vdisk_unfetch(struct vdisk_dev *dev, struct vdisk_cmd *cmd, u64 seq)
{
	spin_lock(&dev->lock);
	if (cmd->up_state == VDISK_UP_FETCHED && cmd->up_seq == seq) {
		cmd->up_state = VDISK_UP_QUEUED;
		list_move(&cmd->up_node, &dev->upcalls);
	}
	spin_unlock(&dev->lock);
	wake_up(&dev->fetch_wait);
}

long vdisk_fetch(struct vdisk_conn *conn, struct vdisk_upcall __user *arg)
{
	struct vdisk_upcall up;
	struct vdisk_dev *dev;
	struct vdisk_cmd *cmd;
	unsigned int noio;
	long ret;
	int i;

	if (copy_from_user(&up, arg, sizeof(up)))
		return -EFAULT;
	for (i = 0; i < ARRAY_SIZE(up.reserved); i++)
		if (up.reserved[i])
			return -EINVAL;
	dev = vdisk_conn_dev(conn);
	if (!dev)
		return -ENXIO;
	ret = -EINVAL;
	if (up.buffer_len < VDISK_MAX_IO_BYTES ||
	    !access_ok(u64_to_user_ptr(up.buffer), up.buffer_len))
		goto out;

	for (;;) {
		ret = wait_event_interruptible(dev->fetch_wait, vdisk_fetchable(dev, conn));
		if (ret)
			goto out;
		spin_lock(&dev->lock);
		if (dev->gone || dev->daemon != conn) {
			spin_unlock(&dev->lock);
			ret = -ENODEV;
			goto out;
		}
		cmd = list_first_entry_or_null(&dev->upcalls, struct vdisk_cmd, up_node);
		if (cmd)
			break;
		spin_unlock(&dev->lock);
	}
	list_move_tail(&cmd->up_node, &dev->fetched);
	cmd->up_state = VDISK_UP_FETCHED;
	cmd->up_seq = ++dev->next_seq;
	spin_unlock(&dev->lock);

	up.op = cmd->up_op;
	up.flags = cmd->up_flags;
	up.seq = cmd->up_seq;
	up.offset = cmd->up_start;
	up.length = cmd->up_len;
	up.map_start = cmd->holding ? cmd->held_start : 0;
	up.map_length = cmd->holding ? cmd->held_end - cmd->held_start : 0;

	ret = 0;
	noio = memalloc_noio_save();
	if (cmd->up_op == VDISK_OP_WRITE)
		ret = vdisk_copy_user(blk_mq_rq_from_pdu(cmd), cmd->up_rq_off, cmd->up_len,
				      u64_to_user_ptr(up.buffer), true);
	memalloc_noio_restore(noio);
	if (!ret && copy_to_user(arg, &up, sizeof(up)))
		ret = -EFAULT;
	if (ret)
		vdisk_unfetch(dev, cmd, up.seq);
	else
		atomic64_inc(&dev->upcall_count);
out:
	vdisk_dev_put(dev);
	return ret;
}

/* Takes the fetched upcall @seq off the fetched list for answering, or NULL. */
static struct vdisk_cmd *vdisk_take_fetched(struct vdisk_dev *dev, u64 seq)
{
	struct vdisk_cmd *cmd;

	spin_lock(&dev->lock);
	list_for_each_entry(cmd, &dev->fetched, up_node) {
		if (cmd->up_seq == seq && cmd->up_state == VDISK_UP_FETCHED) {
			cmd->up_state = VDISK_UP_ANSWERING;
			list_del_init(&cmd->up_node);
			spin_unlock(&dev->lock);
			return cmd;
		}
	}
	spin_unlock(&dev->lock);
	return NULL;
}

/* Most extents one reply may carry. */
#define VDISK_REPLY_MAX_EXTENTS	65536

static long vdisk_complete_held(struct vdisk_dev *dev, struct vdisk_cmd *cmd,
				const struct vdisk_reply *r)
{
	struct vdisk_ext_list list = {};
	u64 span = cmd->held_end - cmd->held_start;
	long ret = 0;

	if (r->nr_extents > VDISK_REPLY_MAX_EXTENTS || r->nr_extents > span / dev->lbs)
		ret = -E2BIG;
	else
		ret = vdisk_ext_list_load(dev, &list, u64_to_user_ptr(r->extents), r->nr_extents,
					  cmd->held_start, cmd->held_end);
	/* A reply the kernel cannot use leaves the range to upcalls: never a wrong mapping. */
	if (ret)
		memset(&list, 0, sizeof(list));
	vdisk_map_replace(&dev->map, cmd->held_start, cmd->held_end, &list);
	spin_lock(&dev->lock);
	dev->meta_dirty = true;
	spin_unlock(&dev->lock);
	vdisk_release_range(dev, cmd);
	return ret;
}

long vdisk_complete(struct vdisk_conn *conn, struct vdisk_reply __user *arg)
{
	struct vdisk_reply r;
	struct vdisk_dev *dev;
	struct vdisk_cmd *cmd;
	blk_status_t status;
	unsigned int noio;
	long ret = 0;
	int i;

	if (copy_from_user(&r, arg, sizeof(r)))
		return -EFAULT;
	for (i = 0; i < ARRAY_SIZE(r.reserved); i++)
		if (r.reserved[i])
			return -EINVAL;
	if (r.status > 0 || r.status < -MAX_ERRNO)
		return -EINVAL;
	dev = vdisk_conn_dev(conn);
	if (!dev)
		return -ENXIO;
	cmd = vdisk_take_fetched(dev, r.seq);
	if (!cmd) {
		ret = -ENOENT;
		goto out;
	}
	if (r.nr_extents && !cmd->holding) {
		/* Only a held range may be remapped; the request still gets its answer. */
		ret = -EINVAL;
		r.status = -EIO;
	}
	status = errno_to_blk_status(r.status);

	/* A range may be held here: no allocation may wait for I/O to it. */
	noio = memalloc_noio_save();
	if (cmd->up_op == VDISK_OP_READ && !r.status) {
		ret = vdisk_copy_user(blk_mq_rq_from_pdu(cmd), cmd->up_rq_off, cmd->up_len,
				      u64_to_user_ptr(r.buffer), false);
		if (ret)
			status = BLK_STS_IOERR;
	}
	if (cmd->holding) {
		long held = vdisk_complete_held(dev, cmd, &r);

		if (!ret)
			ret = held;
	}
	memalloc_noio_restore(noio);
	if (cmd->up_op == VDISK_OP_FLUSH && status) {
		spin_lock(&dev->lock);
		dev->meta_dirty = true;
		spin_unlock(&dev->lock);
	}
	cmd->up_state = VDISK_UP_NONE;
	vdisk_cmd_part_done(cmd, status);
out:
	vdisk_dev_put(dev);
	return ret;
}

/*
 * The daemon's control file closed while bound to @dev. Its fetched upcalls
 * are queued again for the next daemon (VDISK_F_REISSUE) or failed; the disk
 * waits dead_timeout for a new daemon, or fails upcalls at once.
 */
void vdisk_daemon_gone(struct vdisk_dev *dev, struct vdisk_conn *conn)
{
	bool fail_queued, wait, deleting;

	spin_lock(&dev->lock);
	if (dev->daemon != conn) {
		spin_unlock(&dev->lock);
		return;
	}
	deleting = dev->state == VDISK_STATE_DELETING;
	dev->daemon = NULL;
	dev->daemon_pid = 0;
	if (dev->features & VDISK_F_REISSUE) {
		struct vdisk_cmd *cmd;

		list_for_each_entry(cmd, &dev->fetched, up_node)
			cmd->up_state = VDISK_UP_QUEUED;
		list_splice_init(&dev->fetched, &dev->upcalls);
	}
	if (dev->state == VDISK_STATE_LIVE)
		dev->state = dev->dead_timeout ? VDISK_STATE_NO_DAEMON : VDISK_STATE_FAILING;
	wait = dev->state == VDISK_STATE_NO_DAEMON;
	fail_queued = vdisk_upcalls_fail_now(dev);
	spin_unlock(&dev->lock);

	/* Fetched upcalls still there were not reissued. */
	vdisk_fail_upcalls(dev, fail_queued, true);
	if (wait)
		schedule_delayed_work(&dev->dead_work, dev->dead_timeout * HZ);
	wake_up(&dev->fetch_wait);
	if (!deleting)
		pr_info("vdisk: %s: its serving process is gone; %s\n", dev->name,
			wait ? "upcalls wait for a new one" : "upcalls fail");
}

void vdisk_dead_work(struct work_struct *work)
{
	struct vdisk_dev *dev = container_of(to_delayed_work(work), struct vdisk_dev, dead_work);

	spin_lock(&dev->lock);
	if (dev->state != VDISK_STATE_NO_DAEMON) {
		spin_unlock(&dev->lock);
		return;
	}
	dev->state = VDISK_STATE_FAILING;
	spin_unlock(&dev->lock);
	pr_warn("vdisk: %s: no serving process for %u s; upcalls fail with EIO\n",
		dev->name, dev->dead_timeout);
	vdisk_fail_upcalls(dev, true, false);
}
