// SPDX-License-Identifier: GPL-2.0
/*
 * vdisk: requests. Each request runs on the disk's workqueue, as loop's do:
 * the file I/O blocks, and must run where a file system's locks are not held
 * (memalloc_noio: no allocation here recurses into I/O).
 *
 * A request is split at extent edges. Reads of DATA extents read the file,
 * reads of ZERO extents are zero-filled, and what remains of a read goes up
 * as one READ upcall (from its first upcall byte to its last). A write whose
 * every piece is DATA_RW is written to the files; any other write, and every
 * discard and write-zeroes, goes up whole.
 *
 * The table is only changed by upcall replies, and safely so because of
 * held ranges: before a write, discard or write-zeroes goes up, it holds its
 * range widened to the disk's granularity (the most one operation can
 * remap). Requests doing in-kernel I/O on the range are drained first (the
 * upcall is queued when the last of them ends), and new requests touching it
 * wait on the holder until the reply has replaced the range's extents. A
 * request that starts in-kernel I/O registers on dev->inflight under
 * dev->lock after checking that nothing holds its range, so the extents it
 * then looks up stay valid until it unregisters.
 */
#include <linux/blkdev.h>
#include <linux/fs.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/uio.h>

#include "vdisk.h"

static bool vdisk_overlaps(u64 s1, u64 e1, u64 s2, u64 e2)
{
	return s1 < e2 && s2 < e1;
}

/* The command holding a range that overlaps [start, end), or NULL. Under dev->lock. */
static struct vdisk_cmd *vdisk_find_holder(struct vdisk_dev *dev, u64 start, u64 end)
{
	struct vdisk_cmd *h;

	list_for_each_entry(h, &dev->held, held_node)
		if (vdisk_overlaps(h->held_start, h->held_end, start, end))
			return h;
	return NULL;
}

/*
 * Registers @cmd for in-kernel I/O on its range, unless a held range covers
 * part of it: then it waits on the holder and runs again when released.
 */
static bool vdisk_admit(struct vdisk_dev *dev, struct vdisk_cmd *cmd)
{
	struct vdisk_cmd *holder;

	spin_lock(&dev->lock);
	holder = vdisk_find_holder(dev, cmd->start, cmd->end);
	if (holder)
		list_add_tail(&cmd->node, &holder->waiters);
	else
		list_add_tail(&cmd->node, &dev->inflight);
	spin_unlock(&dev->lock);
	return !holder;
}

/* Ends @cmd's in-kernel I/O; a held range waiting for it may now go up. */
static void vdisk_unregister(struct vdisk_dev *dev, struct vdisk_cmd *cmd)
{
	struct vdisk_cmd *h;
	bool wake = false;

	spin_lock(&dev->lock);
	list_del_init(&cmd->node);
	list_for_each_entry(h, &dev->held, held_node) {
		if (!h->drain || !vdisk_overlaps(h->held_start, h->held_end, cmd->start, cmd->end))
			continue;
		if (--h->drain == 0) {
			vdisk_upcall_queue(dev, h);
			wake = true;
		}
	}
	spin_unlock(&dev->lock);
	if (wake)
		wake_up(&dev->fetch_wait);
}

/* Runs the commands that waited for a held range again. */
static void vdisk_rerun(struct vdisk_dev *dev, struct list_head *waiters)
{
	struct vdisk_cmd *w, *tmp;

	list_for_each_entry_safe(w, tmp, waiters, node) {
		list_del_init(&w->node);
		queue_work(dev->wq, &w->work);
	}
}

/* Drops @cmd's held range (after its reply, or its failure) and reruns its waiters. */
void vdisk_release_range(struct vdisk_dev *dev, struct vdisk_cmd *cmd)
{
	LIST_HEAD(waiters);

	spin_lock(&dev->lock);
	if (cmd->holding) {
		list_del_init(&cmd->held_node);
		list_splice_init(&cmd->waiters, &waiters);
		cmd->holding = false;
	}
	spin_unlock(&dev->lock);
	vdisk_rerun(dev, &waiters);
}

/* One part of @cmd is done; the last one ends the request. */
void vdisk_cmd_part_done(struct vdisk_cmd *cmd, blk_status_t status)
{
	if (status)
		cmpxchg(&cmd->status, 0, (int)status);
	if (atomic_dec_and_test(&cmd->parts))
		blk_mq_end_request(blk_mq_rq_from_pdu(cmd), (blk_status_t)cmd->status);
}

/*
 * An iterator over the request's data from byte @off on, to at most @len
 * bytes, as far as the bio holding @off goes (a merged request has several):
 * its length is what it covers.
 */
static void vdisk_rq_part(struct request *rq, unsigned int dir, u64 off, u64 len,
			  struct iov_iter *iter)
{
	struct bio *bio = rq->bio;
	u64 bio_start = 0;

	while (off >= bio_start + bio->bi_iter.bi_size) {
		bio_start += bio->bi_iter.bi_size;
		bio = bio->bi_next;
	}
	iov_iter_bvec(iter, dir, __bvec_iter_bvec(bio->bi_io_vec, bio->bi_iter),
		      bio_segments(bio), bio->bi_iter.bi_size);
	iter->iov_offset = bio->bi_iter.bi_bvec_done;
	iov_iter_advance(iter, off - bio_start);
	iov_iter_truncate(iter, len);
}

/* Reads or writes @iter at @pos in @f, all of it (reads past EOF are zeros). */
static blk_status_t vdisk_file_io(struct vdisk_file_ref *f, unsigned int dir,
				  struct iov_iter *iter, loff_t pos)
{
	/* Direct I/O where the file takes it and this piece is aligned for it. */
	bool direct = f->dio_align &&
		!((pos | iov_iter_count(iter) | iov_iter_alignment(iter)) & (f->dio_align - 1));
	ssize_t ret;

	while (iov_iter_count(iter)) {
		if (direct) {
			struct kiocb kiocb;

			init_sync_kiocb(&kiocb, f->file);
			kiocb.ki_pos = pos;
			kiocb.ki_flags |= IOCB_DIRECT;
			if (dir == WRITE) {
				file_start_write(f->file);
				ret = call_write_iter(f->file, &kiocb, iter);
				file_end_write(f->file);
			} else {
				ret = call_read_iter(f->file, &kiocb, iter);
			}
			if (ret > 0)
				pos += ret;
		} else if (dir == WRITE) {
			ret = vfs_iter_write(f->file, iter, &pos, 0);
		} else {
			ret = vfs_iter_read(f->file, iter, &pos, 0);
		}
		if (ret < 0)
			return errno_to_blk_status(ret);
		if (ret == 0) {
			if (dir == WRITE)
				return BLK_STS_IOERR;
			iov_iter_zero(iov_iter_count(iter), iter);
		}
	}
	return BLK_STS_OK;
}

/* Serves one table piece of a read or write in the kernel, bio by bio. */
static blk_status_t vdisk_piece_io(struct vdisk_dev *dev, struct vdisk_cmd *cmd,
				   unsigned int dir, const struct vdisk_piece *p)
{
	struct request *rq = blk_mq_rq_from_pdu(cmd);
	u64 done = 0;

	while (done < p->len) {
		struct iov_iter part;
		blk_status_t status = BLK_STS_OK;
		size_t n;

		vdisk_rq_part(rq, dir, p->start - cmd->start + done, p->len - done, &part);
		n = iov_iter_count(&part);
		if (p->kind == VDISK_EXT_ZERO)
			iov_iter_zero(n, &part);
		else
			status = vdisk_file_io(&dev->files[p->file], dir, &part, p->file_offset + done);
		if (status)
			return status;
		done += n;
	}
	if (dir == WRITE)
		set_bit(0, &dev->files[p->file].written);
	return BLK_STS_OK;
}

/* Sends @cmd's [start, start + len) up as @op (not a held one). */
static void vdisk_send_up(struct vdisk_dev *dev, struct vdisk_cmd *cmd, u16 op, u64 start, u64 len)
{
	cmd->up_op = op;
	cmd->up_flags = 0;
	cmd->up_start = start;
	cmd->up_len = len;
	cmd->up_rq_off = start - cmd->start;
	atomic_inc(&cmd->parts);
	spin_lock(&dev->lock);
	if (vdisk_upcalls_fail_now(dev)) {
		spin_unlock(&dev->lock);
		vdisk_cmd_part_done(cmd, BLK_STS_IOERR);
		return;
	}
	vdisk_upcall_queue(dev, cmd);
	spin_unlock(&dev->lock);
	wake_up(&dev->fetch_wait);
}

static void vdisk_do_read(struct vdisk_dev *dev, struct vdisk_cmd *cmd)
{
	struct vdisk_piece p;
	u64 up_start = cmd->end, up_end = cmd->start, pos;
	blk_status_t status = BLK_STS_OK;
	bool in_kernel = false;

	if (!vdisk_admit(dev, cmd))
		return;
	/* What the kernel cannot read: one upcall from its first byte to its last. */
	for (pos = cmd->start; pos < cmd->end; pos += p.len) {
		vdisk_map_lookup(&dev->map, pos, cmd->end, &p);
		if (p.kind == VDISK_EXT_UPCALL) {
			up_start = min(up_start, pos);
			up_end = pos + p.len;
		}
	}
	for (pos = cmd->start; pos < cmd->end && !status; pos += p.len) {
		vdisk_map_lookup(&dev->map, pos, cmd->end, &p);
		if (pos >= up_start && pos < up_end) {
			p.len = up_end - pos;
			continue;
		}
		if (p.start + p.len > up_start && pos < up_start)
			p.len = up_start - pos;
		status = vdisk_piece_io(dev, cmd, READ, &p);
		in_kernel = true;
	}
	if (in_kernel)
		atomic64_inc(&dev->kernel_reads);
	vdisk_unregister(dev, cmd);
	if (!status && up_end > up_start)
		vdisk_send_up(dev, cmd, VDISK_OP_READ, up_start, up_end - up_start);
	vdisk_cmd_part_done(cmd, status);
}

/*
 * Sends a write, discard or write-zeroes up, holding its range: or, if
 * another command holds part of it, waits for that one.
 */
static void vdisk_send_held(struct vdisk_dev *dev, struct vdisk_cmd *cmd, u16 op, u16 flags)
{
	struct vdisk_cmd *holder, *r;
	bool queued = false;

	spin_lock(&dev->lock);
	holder = vdisk_find_holder(dev, cmd->held_start, cmd->held_end);
	if (holder) {
		list_add_tail(&cmd->node, &holder->waiters);
		spin_unlock(&dev->lock);
		return;
	}
	if (vdisk_upcalls_fail_now(dev)) {
		spin_unlock(&dev->lock);
		vdisk_cmd_part_done(cmd, BLK_STS_IOERR);
		return;
	}
	cmd->up_op = op;
	cmd->up_flags = flags;
	cmd->up_start = cmd->start;
	cmd->up_len = cmd->end - cmd->start;
	cmd->up_rq_off = 0;
	cmd->holding = true;
	cmd->drain = 0;
	INIT_LIST_HEAD(&cmd->waiters);
	list_add_tail(&cmd->held_node, &dev->held);
	list_for_each_entry(r, &dev->inflight, node)
		if (vdisk_overlaps(r->start, r->end, cmd->held_start, cmd->held_end))
			cmd->drain++;
	atomic_inc(&cmd->parts);
	if (!cmd->drain) {
		vdisk_upcall_queue(dev, cmd);
		queued = true;
	}
	spin_unlock(&dev->lock);
	if (queued)
		wake_up(&dev->fetch_wait);
	vdisk_cmd_part_done(cmd, BLK_STS_OK);
}

static void vdisk_do_write(struct vdisk_dev *dev, struct vdisk_cmd *cmd)
{
	struct vdisk_piece p;
	blk_status_t status = BLK_STS_OK;
	u64 pos;

	if (!vdisk_admit(dev, cmd))
		return;
	for (pos = cmd->start; pos < cmd->end; pos += p.len) {
		vdisk_map_lookup(&dev->map, pos, cmd->end, &p);
		if (p.kind != VDISK_EXT_DATA_RW) {
			vdisk_unregister(dev, cmd);
			vdisk_send_held(dev, cmd, VDISK_OP_WRITE, 0);
			return;
		}
	}
	for (pos = cmd->start; pos < cmd->end && !status; pos += p.len) {
		vdisk_map_lookup(&dev->map, pos, cmd->end, &p);
		status = vdisk_piece_io(dev, cmd, WRITE, &p);
	}
	atomic64_inc(&dev->kernel_writes);
	vdisk_unregister(dev, cmd);
	vdisk_cmd_part_done(cmd, status);
}

/*
 * A flush: the files written in the kernel are synced here; if a reply
 * changed the mapping since the last flush, the daemon flushes its metadata
 * (after the data: the fsyncs come first).
 */
static void vdisk_do_flush(struct vdisk_dev *dev, struct vdisk_cmd *cmd)
{
	blk_status_t status;
	bool dirty;

	status = errno_to_blk_status(vdisk_files_flush(dev, false));
	spin_lock(&dev->lock);
	dirty = dev->meta_dirty;
	if (!status)
		dev->meta_dirty = false;
	spin_unlock(&dev->lock);
	if (!status && dirty)
		vdisk_send_up(dev, cmd, VDISK_OP_FLUSH, 0, 0);
	vdisk_cmd_part_done(cmd, status);
}

static void vdisk_cmd_work(struct work_struct *work)
{
	struct vdisk_cmd *cmd = container_of(work, struct vdisk_cmd, work);
	struct request *rq = blk_mq_rq_from_pdu(cmd);
	struct vdisk_dev *dev = cmd->dev;
	unsigned int orig_flags = current->flags;

	/*
	 * As loop's workers: no allocation here may recurse into I/O, and the
	 * image files' writes are throttled only by their own device's
	 * writeback, not by the dirty pages of file systems on this disk.
	 */
	current->flags |= PF_LOCAL_THROTTLE | PF_MEMALLOC_NOIO;
	/*
	 * Swapping out is how reclaim frees anonymous memory: its I/O must not
	 * wait for reclaim itself. What the file system allocates to write it
	 * (a journal handle, the direct I/O's bio) may take the reserves, as
	 * nbd's socket I/O does (memalloc_noreclaim_save).
	 */
	if (rq->cmd_flags & REQ_SWAP)
		current->flags |= PF_MEMALLOC;

	switch (req_op(rq)) {
	case REQ_OP_READ:
		vdisk_do_read(dev, cmd);
		break;
	case REQ_OP_WRITE:
		vdisk_do_write(dev, cmd);
		break;
	case REQ_OP_FLUSH:
		vdisk_do_flush(dev, cmd);
		break;
	case REQ_OP_DISCARD:
		vdisk_send_held(dev, cmd, VDISK_OP_DISCARD, 0);
		break;
	case REQ_OP_WRITE_ZEROES:
		vdisk_send_held(dev, cmd, VDISK_OP_WRITE_ZEROES,
				(rq->cmd_flags & REQ_NOUNMAP) ? VDISK_UP_NOUNMAP : 0);
		break;
	default:
		vdisk_cmd_part_done(cmd, BLK_STS_NOTSUPP);
	}
	current->flags = orig_flags;
}

static blk_status_t vdisk_queue_rq(struct blk_mq_hw_ctx *hctx, const struct blk_mq_queue_data *bd)
{
	struct request *rq = bd->rq;
	struct vdisk_cmd *cmd = blk_mq_rq_to_pdu(rq);
	struct vdisk_dev *dev = rq->q->queuedata;
	enum req_op op = req_op(rq);

	blk_mq_start_request(rq);
	if (op != REQ_OP_READ && op != REQ_OP_WRITE && op != REQ_OP_FLUSH &&
	    op != REQ_OP_DISCARD && op != REQ_OP_WRITE_ZEROES)
		return BLK_STS_NOTSUPP;
	/* The block core only warns about writes to a read-only disk. */
	if (op_is_write(op) && dev->read_only)
		return BLK_STS_IOERR;
	if (READ_ONCE(dev->state) == VDISK_STATE_DELETING)
		return BLK_STS_IOERR;

	cmd->start = blk_rq_pos(rq) << SECTOR_SHIFT;
	cmd->end = cmd->start + blk_rq_bytes(rq);
	cmd->held_start = round_down(cmd->start, dev->granularity);
	cmd->held_end = min(round_up(cmd->end, dev->granularity), dev->size);
	cmd->status = BLK_STS_OK;
	cmd->up_state = VDISK_UP_NONE;
	cmd->holding = false;
	atomic_set(&cmd->parts, 1);
	queue_work(dev->wq, &cmd->work);
	return BLK_STS_OK;
}

static int vdisk_init_request(struct blk_mq_tag_set *set, struct request *rq,
			      unsigned int hctx_idx, unsigned int numa_node)
{
	struct vdisk_cmd *cmd = blk_mq_rq_to_pdu(rq);

	cmd->dev = set->driver_data;
	INIT_WORK(&cmd->work, vdisk_cmd_work);
	INIT_LIST_HEAD(&cmd->node);
	INIT_LIST_HEAD(&cmd->up_node);
	INIT_LIST_HEAD(&cmd->held_node);
	INIT_LIST_HEAD(&cmd->waiters);
	return 0;
}

const struct blk_mq_ops vdisk_mq_ops = {
	.queue_rq	= vdisk_queue_rq,
	.init_request	= vdisk_init_request,
};
