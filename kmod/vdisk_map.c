// SPDX-License-Identifier: GPL-2.0
/*
 * vdisk: the extent table. A red-black tree of extents by start, under a
 * rwlock: requests look pieces up (read lock, copied out), upcall replies
 * replace a range (write lock). Ranges without an extent are upcalls, so a
 * table that runs out of room, or a reply that is refused, only sends more
 * I/O up; it never maps a range wrongly.
 *
 * Nothing in here decides when a range may change: vdisk_io.c holds a range
 * and drains its in-kernel I/O before anyone replaces it.
 */
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "vdisk.h"

static struct kmem_cache *vdisk_ext_cache;

/* Extents are checked and copied in batches of this many. */
#define VDISK_EXT_BATCH	256

int vdisk_map_init(void)
{
	vdisk_ext_cache = KMEM_CACHE(vdisk_ext, 0);
	return vdisk_ext_cache ? 0 : -ENOMEM;
}

void vdisk_map_exit(void)
{
	kmem_cache_destroy(vdisk_ext_cache);
}

void vdisk_map_create(struct vdisk_map *map, u64 size)
{
	rwlock_init(&map->lock);
	map->root = RB_ROOT;
	map->size = size;
	map->count = 0;
}

void vdisk_map_free(struct vdisk_map *map)
{
	struct vdisk_ext *e, *next;

	rbtree_postorder_for_each_entry_safe(e, next, &map->root, node)
		kmem_cache_free(vdisk_ext_cache, e);
	map->root = RB_ROOT;
	map->count = 0;
}

static u64 vdisk_ext_end(const struct vdisk_ext *e)
{
	return e->start + e->len;
}

/* One extent from the daemon, against the disk and the range [lo, hi). */
static int vdisk_extent_check(struct vdisk_dev *dev, const struct vdisk_extent *x,
			      u64 prev_end, u64 lo, u64 hi)
{
	u64 mask = dev->lbs - 1;

	if (x->reserved || x->kind > VDISK_EXT_ZERO)
		return -EINVAL;
	if (!x->length || (x->start & mask) || (x->length & mask))
		return -EINVAL;
	if (x->start < prev_end || x->start < lo || x->start >= hi || x->length > hi - x->start)
		return -EINVAL;
	if (x->kind == VDISK_EXT_DATA_RW || x->kind == VDISK_EXT_DATA_RO) {
		if (x->file >= dev->nr_files || (x->file_offset & 511))
			return -EINVAL;
		if (x->file_offset > (u64)LLONG_MAX || x->length > (u64)LLONG_MAX - x->file_offset)
			return -EINVAL;
		if (x->kind == VDISK_EXT_DATA_RW &&
		    (dev->read_only || !dev->files[x->file].writable))
			return -EINVAL;
	} else if (x->file || x->file_offset) {
		return -EINVAL;
	}
	return 0;
}

/* Frees what is left in @list (nodes a replace did not take are NULL). */
void vdisk_ext_list_free(struct vdisk_ext_list *list)
{
	unsigned int i;

	for (i = 0; i < list->nr; i++)
		if (list->ext[i])
			kmem_cache_free(vdisk_ext_cache, list->ext[i]);
	kvfree(list->ext);
	if (list->spare)
		kmem_cache_free(vdisk_ext_cache, list->spare);
	memset(list, 0, sizeof(*list));
}

/*
 * Copies @nr extents from the daemon, checks each (sorted, not overlapping,
 * inside [lo, hi), files and offsets valid) and makes a node for each that is
 * not an upcall. Called in the daemon's context; on the reply path with
 * memalloc_noio in force, as a range is held.
 */
int vdisk_ext_list_load(struct vdisk_dev *dev, struct vdisk_ext_list *list,
			const struct vdisk_extent __user *uext, unsigned int nr,
			u64 lo, u64 hi)
{
	struct vdisk_extent *batch;
	u64 prev_end = 0;
	unsigned int done, i;
	int ret = 0;

	memset(list, 0, sizeof(*list));
	list->spare = kmem_cache_alloc(vdisk_ext_cache, GFP_KERNEL);
	if (!list->spare)
		return -ENOMEM;
	if (!nr)
		return 0;
	list->ext = kvmalloc_array(nr, sizeof(*list->ext), GFP_KERNEL);
	batch = kmalloc_array(VDISK_EXT_BATCH, sizeof(*batch), GFP_KERNEL);
	if (!list->ext || !batch) {
		ret = -ENOMEM;
		goto out;
	}
	for (done = 0; done < nr; done += VDISK_EXT_BATCH) {
		unsigned int n = min_t(unsigned int, nr - done, VDISK_EXT_BATCH);

		if (copy_from_user(batch, uext + done, n * sizeof(*batch))) {
			ret = -EFAULT;
			goto out;
		}
		for (i = 0; i < n; i++) {
			struct vdisk_extent *x = &batch[i];
			struct vdisk_ext *e;

			ret = vdisk_extent_check(dev, x, prev_end, lo, hi);
			if (ret)
				goto out;
			prev_end = x->start + x->length;
			if (x->kind == VDISK_EXT_UPCALL)
				continue;
			e = kmem_cache_alloc(vdisk_ext_cache, GFP_KERNEL);
			if (!e) {
				ret = -ENOMEM;
				goto out;
			}
			e->start = x->start;
			e->len = x->length;
			e->file_offset = x->file_offset;
			e->file = x->file;
			e->kind = x->kind;
			list->ext[list->nr++] = e;
		}
		cond_resched();
	}
out:
	kfree(batch);
	if (ret)
		vdisk_ext_list_free(list);
	return ret;
}

/* The extent holding @pos, or NULL; @next gets the start of the first extent after @pos. */
static struct vdisk_ext *vdisk_map_find(struct vdisk_map *map, u64 pos, u64 *next)
{
	struct rb_node *n = map->root.rb_node;

	*next = map->size;
	while (n) {
		struct vdisk_ext *e = rb_entry(n, struct vdisk_ext, node);

		if (pos < e->start) {
			*next = e->start;
			n = n->rb_left;
		} else if (pos >= vdisk_ext_end(e)) {
			n = n->rb_right;
		} else {
			return e;
		}
	}
	return NULL;
}

/* The piece of [pos, end) starting at @pos that one extent (or gap) maps. */
void vdisk_map_lookup(struct vdisk_map *map, u64 pos, u64 end, struct vdisk_piece *piece)
{
	struct vdisk_ext *e;
	u64 next;

	read_lock(&map->lock);
	e = vdisk_map_find(map, pos, &next);
	piece->start = pos;
	if (e) {
		piece->len = min(end, vdisk_ext_end(e)) - pos;
		piece->kind = e->kind;
		piece->file = e->file;
		piece->file_offset = e->file_offset + (pos - e->start);
	} else {
		piece->len = min(end, next) - pos;
		piece->kind = VDISK_EXT_UPCALL;
		piece->file = 0;
		piece->file_offset = 0;
	}
	read_unlock(&map->lock);
}

static void vdisk_map_insert(struct vdisk_map *map, struct vdisk_ext *e)
{
	struct rb_node **link = &map->root.rb_node, *parent = NULL;

	while (*link) {
		parent = *link;
		if (e->start < rb_entry(parent, struct vdisk_ext, node)->start)
			link = &parent->rb_left;
		else
			link = &parent->rb_right;
	}
	rb_link_node(&e->node, parent, link);
	rb_insert_color(&e->node, &map->root);
	map->count++;
}

/* The first extent that ends after @pos, or NULL. */
static struct vdisk_ext *vdisk_map_first_after(struct vdisk_map *map, u64 pos)
{
	struct rb_node *n = map->root.rb_node;
	struct vdisk_ext *found = NULL;

	while (n) {
		struct vdisk_ext *e = rb_entry(n, struct vdisk_ext, node);

		if (vdisk_ext_end(e) > pos) {
			found = e;
			n = n->rb_left;
		} else {
			n = n->rb_right;
		}
	}
	return found;
}

/*
 * Makes the table map [start, end) as @list says (gaps: upcalls), taking the
 * list's nodes. Extents past the table's limit are left out: those ranges go
 * up. The caller holds the range (no in-kernel I/O on it).
 */
void vdisk_map_replace(struct vdisk_map *map, u64 start, u64 end, struct vdisk_ext_list *list)
{
	struct vdisk_ext *e;
	unsigned int i;

	write_lock(&map->lock);
	e = vdisk_map_first_after(map, start);
	while (e && e->start < end) {
		struct vdisk_ext *next = rb_entry_safe(rb_next(&e->node), struct vdisk_ext, node);
		u64 e_end = vdisk_ext_end(e);

		if (e->start < start && e_end > end) {
			/* It spans the range: keep its head here, its tail in the spare node. */
			struct vdisk_ext *tail = list->spare;

			list->spare = NULL;
			*tail = *e;
			tail->start = end;
			tail->len = e_end - end;
			if (tail->kind != VDISK_EXT_ZERO)
				tail->file_offset += end - e->start;
			e->len = start - e->start;
			vdisk_map_insert(map, tail);
			break;
		} else if (e->start < start) {
			e->len = start - e->start;
		} else if (e_end > end) {
			if (e->kind != VDISK_EXT_ZERO)
				e->file_offset += end - e->start;
			e->len = e_end - end;
			e->start = end;
		} else {
			rb_erase(&e->node, &map->root);
			map->count--;
			kmem_cache_free(vdisk_ext_cache, e);
		}
		e = next;
	}
	for (i = 0; i < list->nr; i++) {
		if (map->count >= vdisk_max_extents)
			break;
		vdisk_map_insert(map, list->ext[i]);
		list->ext[i] = NULL;
	}
	write_unlock(&map->lock);
	vdisk_ext_list_free(list);
}
