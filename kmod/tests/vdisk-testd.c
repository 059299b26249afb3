// SPDX-License-Identifier: GPL-2.0
/*
 * vdisk-testd: a small serving process for vdisk.ko, for the module's own
 * tests (vmtest/checks/kmod-*.sh). It serves a toy allocating format, so the
 * module's upcall protocol is tested apart from vdiskload's Java daemon:
 *
 *   STORE       the data: blocks allocated in the order they are first
 *               written, freed blocks reused (which is what makes a stale
 *               mapping visible as wrong data);
 *   STORE.map   one u64 per virtual block: 1 + its block in STORE, or 0;
 *               written through at every change, so a killed daemon loses
 *               nothing and a new one (--recover) carries on.
 *
 * Unallocated blocks are ZERO extents, allocated ones DATA_RW, except that
 * with --upcall-every N every Nth virtual block is left to upcalls (its
 * reads come here). Writes to unallocated blocks, discards and write-zeroes
 * come here and remap whole blocks (the granularity).
 *
 *   vdisk-testd [--size BYTES] [--block BYTES] [--family NAME] [--threads N]
 *               [--upcall-every N] [--dead-timeout S] [--read-only] [--no-reissue]
 *               [--ready FILE] [--recover NAME] STORE
 *
 * It prints the disk's name, then serves until SIGTERM or SIGINT, when it
 * removes the disk (VDISK_IOC_DEL; with --force-del even while open). If the
 * disk is open, it prints "busy" and serves on until the next signal.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/falloc.h>
#include <linux/vdisk.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define VDISK_MAX_IO (1U << 20)	/* what the module's FETCH asks for */

static uint64_t size = 64 << 20, block = 64 << 10;
static unsigned int upcall_every;
static int store_fd, map_fd, ctl_fd;
static uint64_t *map;		/* 1 + store block, or 0 */
static uint8_t *store_used;	/* per store block */
static uint64_t store_blocks;	/* allocated so far (the store's end) */
static pthread_mutex_t map_lock = PTHREAD_MUTEX_INITIALIZER;
static char disk_name[VDISK_NAME_LEN];

/* A size with an optional K, M or G suffix. */
static uint64_t parse_size(const char *s)
{
	char *end;
	uint64_t v = strtoull(s, &end, 0);

	switch (*end) {
	case 'G': v <<= 10; /* fall through */
	case 'M': v <<= 10; /* fall through */
	case 'K': v <<= 10; end++;
	}
	return *end ? 0 : v;
}

static void die(const char *what)
{
	fprintf(stderr, "vdisk-testd: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, off);

		if (n <= 0)
			die("pwrite");
		buf = (const char *)buf + n;
		len -= n;
		off += n;
	}
}

static void pread_all(int fd, void *buf, size_t len, off_t off)
{
	while (len) {
		ssize_t n = pread(fd, buf, len, off);

		if (n < 0)
			die("pread");
		if (n == 0) {
			memset(buf, 0, len);
			return;
		}
		buf = (char *)buf + n;
		len -= n;
		off += n;
	}
}

static void set_map(uint64_t vb, uint64_t entry)
{
	map[vb] = entry;
	pwrite_all(map_fd, &entry, sizeof(entry), vb * sizeof(entry));
}

/* A free store block (the lowest freed one first), zero-filled. Under map_lock. */
static uint64_t alloc_block(void)
{
	static char *zeros;
	uint64_t b;

	for (b = 0; b < store_blocks && store_used[b]; b++)
		;
	if (b == store_blocks)
		store_blocks++;
	store_used[b] = 1;
	if (!zeros)
		zeros = calloc(1, block);
	pwrite_all(store_fd, zeros, block, b * block);
	return b;
}

static void free_block(uint64_t vb)
{
	store_used[map[vb] - 1] = 0;
	set_map(vb, 0);
}

/* The table of [start, end): block by block, adjacent extents merged. Under map_lock. */
static unsigned int make_extents(uint64_t start, uint64_t end, struct vdisk_extent **out)
{
	struct vdisk_extent *x = calloc((end - start) / block + 1, sizeof(*x));
	unsigned int n = 0;
	uint64_t vb;

	for (vb = start / block; vb * block < end; vb++) {
		struct vdisk_extent e = { .start = vb * block, .length = block };

		if (!map[vb]) {
			e.kind = VDISK_EXT_ZERO;
		} else if (upcall_every && vb % upcall_every == 0) {
			e.kind = VDISK_EXT_UPCALL;
		} else {
			e.kind = VDISK_EXT_DATA_RW;
			e.file_offset = (map[vb] - 1) * block;
		}
		if (e.start + e.length > end)
			e.length = end - e.start;
		if (n && x[n - 1].kind == e.kind && x[n - 1].start + x[n - 1].length == e.start &&
		    (e.kind != VDISK_EXT_DATA_RW ||
		     x[n - 1].file_offset + x[n - 1].length == e.file_offset))
			x[n - 1].length += e.length;
		else
			x[n++] = e;
	}
	*out = x;
	return n;
}

/* Reads or writes [off, off + len) of the disk through the map. */
static void disk_io(char *buf, uint64_t off, uint64_t len, int write, int zero, int unmap)
{
	pthread_mutex_lock(&map_lock);
	while (len) {
		uint64_t vb = off / block, in = off % block;
		uint64_t n = block - in < len ? block - in : len;

		if (!write) {
			if (map[vb])
				pread_all(store_fd, buf, n, (map[vb] - 1) * block + in);
			else
				memset(buf, 0, n);
		} else if (zero && map[vb] && unmap && n == block) {
			free_block(vb);
		} else if (zero && map[vb]) {
			char *z = calloc(1, n);

			pwrite_all(store_fd, z, n, (map[vb] - 1) * block + in);
			free(z);
		} else if (!zero) {
			if (!map[vb])
				set_map(vb, alloc_block() + 1);
			pwrite_all(store_fd, buf, n, (map[vb] - 1) * block + in);
		}
		if (buf)
			buf += n;
		off += n;
		len -= n;
	}
	pthread_mutex_unlock(&map_lock);
}

static void *serve(void *arg __attribute__((unused)))
{
	char *buf = aligned_alloc(4096, VDISK_MAX_IO);

	for (;;) {
		struct vdisk_upcall up = { .buffer = (uintptr_t)buf, .buffer_len = VDISK_MAX_IO };
		struct vdisk_reply r = { 0 };
		struct vdisk_extent *x = NULL;

		if (ioctl(ctl_fd, VDISK_IOC_FETCH, &up)) {
			if (errno == EINTR)
				continue;
			if (errno == ENODEV)
				return NULL;
			die("VDISK_IOC_FETCH");
		}
		r.seq = up.seq;
		switch (up.op) {
		case VDISK_OP_READ:
			disk_io(buf, up.offset, up.length, 0, 0, 0);
			r.buffer = (uintptr_t)buf;
			break;
		case VDISK_OP_WRITE:
			disk_io(buf, up.offset, up.length, 1, 0, 0);
			break;
		case VDISK_OP_DISCARD:
			disk_io(NULL, up.offset, up.length, 1, 1, 1);
			break;
		case VDISK_OP_WRITE_ZEROES:
			disk_io(NULL, up.offset, up.length, 1, 1, !(up.flags & VDISK_UP_NOUNMAP));
			break;
		case VDISK_OP_FLUSH:
			if (fsync(store_fd) || fsync(map_fd))
				r.status = -errno;
			break;
		default:
			r.status = -EOPNOTSUPP;
		}
		if (up.map_length) {
			pthread_mutex_lock(&map_lock);
			r.nr_extents = make_extents(up.map_start, up.map_start + up.map_length, &x);
			pthread_mutex_unlock(&map_lock);
			r.extents = (uintptr_t)x;
		}
		if (ioctl(ctl_fd, VDISK_IOC_COMPLETE, &r))
			die("VDISK_IOC_COMPLETE");
		free(x);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "size", 1, NULL, 's' }, { "block", 1, NULL, 'b' }, { "family", 1, NULL, 'f' },
		{ "threads", 1, NULL, 't' }, { "upcall-every", 1, NULL, 'u' },
		{ "dead-timeout", 1, NULL, 'd' }, { "read-only", 0, NULL, 'r' },
		{ "no-reissue", 0, NULL, 'n' }, { "ready", 1, NULL, 'R' },
		{ "recover", 1, NULL, 'C' }, { "force-del", 0, NULL, 'F' }, { 0 }
	};
	const char *family = "vtest", *ready = NULL, *recover = NULL;
	unsigned int threads = 4, dead_timeout = 5, i;
	int read_only = 0, reissue = 1, force_del = 0, c;
	pthread_t *tids;
	sigset_t sigs;
	char path[4096];
	uint64_t b, nb;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': size = parse_size(optarg); break;
		case 'b': block = parse_size(optarg); break;
		case 'f': family = optarg; break;
		case 't': threads = atoi(optarg); break;
		case 'u': upcall_every = atoi(optarg); break;
		case 'd': dead_timeout = atoi(optarg); break;
		case 'r': read_only = 1; break;
		case 'n': reissue = 0; break;
		case 'R': ready = optarg; break;
		case 'C': recover = optarg; break;
		case 'F': force_del = 1; break;
		default: return 2;
		}
	}
	if (optind != argc - 1 || !size || !block || size % block)
		return fprintf(stderr, "usage: see the comment at the top of vdisk-testd.c\n"), 2;

	nb = size / block;
	store_fd = open(argv[optind], O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	snprintf(path, sizeof(path), "%s.map", argv[optind]);
	map_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (store_fd < 0 || map_fd < 0)
		die(argv[optind]);
	map = calloc(nb, sizeof(*map));
	store_used = calloc(nb + 1, 1);
	pread_all(map_fd, map, nb * sizeof(*map), 0);
	for (b = 0; b < nb; b++) {
		if (!map[b])
			continue;
		store_used[map[b] - 1] = 1;
		if (map[b] > store_blocks)
			store_blocks = map[b];
	}

	ctl_fd = open("/dev/" VDISK_CONTROL_NAME, O_RDWR | O_CLOEXEC);
	if (ctl_fd < 0)
		die("/dev/" VDISK_CONTROL_NAME);

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	if (recover) {
		struct vdisk_recover rc = { 0 };
		struct vdisk_file f = { .fd = store_fd, .flags = read_only ? 0 : VDISK_FILE_WRITABLE };

		snprintf(rc.name, sizeof(rc.name), "%s", recover);
		rc.files = (uintptr_t)&f;
		rc.nr_files = 1;
		if (ioctl(ctl_fd, VDISK_IOC_RECOVER, &rc))
			die("VDISK_IOC_RECOVER");
		snprintf(disk_name, sizeof(disk_name), "%s", recover);
	} else {
		struct vdisk_add a = { 0 };
		struct vdisk_file f = { .fd = store_fd, .flags = read_only ? 0 : VDISK_FILE_WRITABLE };
		struct vdisk_extent *x;

		a.version = VDISK_VERSION;
		a.flags = read_only ? VDISK_ADD_READ_ONLY : 0;
		a.features = VDISK_F_DISCARD | VDISK_F_WRITE_ZEROES | (reissue ? VDISK_F_REISSUE : 0);
		a.size = size;
		a.logical_block_size = 512;
		a.physical_block_size = 4096;
		a.granularity = block;
		a.dead_timeout = dead_timeout;
		a.index = -1;
		snprintf(a.family, sizeof(a.family), "%s", family);
		snprintf(a.format, sizeof(a.format), "testd");
		snprintf(a.model, sizeof(a.model), "vdiskload testd");
		snprintf(a.serial, sizeof(a.serial), "TESTD-%u", (unsigned int)getpid());
		snprintf(a.firmware, sizeof(a.firmware), "0.1");
		if (!realpath(argv[optind], path))
			die("realpath");
		a.image = (uintptr_t)path;
		a.files = (uintptr_t)&f;
		a.nr_files = 1;
		a.nr_extents = make_extents(0, size, &x);
		a.extents = (uintptr_t)x;
		if (ioctl(ctl_fd, VDISK_IOC_ADD, &a))
			die("VDISK_IOC_ADD");
		free(x);
		snprintf(disk_name, sizeof(disk_name), "%s", a.name);
	}

	tids = calloc(threads, sizeof(*tids));
	for (i = 0; i < threads; i++)
		if (pthread_create(&tids[i], NULL, serve, NULL))
			die("pthread_create");
	if (!recover && ioctl(ctl_fd, VDISK_IOC_START))
		die("VDISK_IOC_START");
	printf("%s\n", disk_name);
	fflush(stdout);
	if (ready) {
		FILE *fp = fopen(ready, "w");

		if (!fp)
			die(ready);
		fprintf(fp, "%s\n", disk_name);
		fclose(fp);
	}

	for (;;) {
		struct vdisk_del d = { .flags = force_del ? VDISK_DEL_FORCE : 0 };

		sigwait(&sigs, &c);
		snprintf(d.name, sizeof(d.name), "%s", disk_name);
		if (!ioctl(ctl_fd, VDISK_IOC_DEL, &d))
			break;
		if (errno != EBUSY)
			die("VDISK_IOC_DEL");
		printf("busy\n");	/* open: serve on until the next signal */
		fflush(stdout);
	}
	for (i = 0; i < threads; i++)
		pthread_join(tids[i], NULL);
	return 0;
}
