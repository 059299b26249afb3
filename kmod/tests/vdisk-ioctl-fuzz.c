// SPDX-License-Identifier: GPL-2.0
/*
 * vdisk-ioctl-fuzz: every vdisk ioctl with bad arguments. Each case names
 * what it breaks and the errno the module must answer; then random bytes in
 * every struct, for every ioctl, many times over. A bad argument must be
 * refused and leave nothing behind (no disk, no reference kept); the VM
 * check reads dmesg for oopses and warnings.
 *
 *   vdisk-ioctl-fuzz SCRATCH_DIR [RANDOM_ROUNDS]
 *
 * Exit 0 when every case answered as expected; it prints each that did not.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/vdisk.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define DISK_SIZE	(4 << 20)
#define MAX_IO		(1U << 20)

static int failures, cases;
static int ctl;
static int rw_fd, ro_fd, dir_fd, pipe_fds[2], null_fd;

static int ctl_open(void)
{
	int fd = open("/dev/" VDISK_CONTROL_NAME, O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		perror("/dev/" VDISK_CONTROL_NAME);
		exit(1);
	}
	return fd;
}

/* Runs an ioctl and checks its errno (0: success expected). */
static int expect(const char *what, int fd, unsigned long req, void *arg, int want)
{
	int ret = ioctl(fd, req, arg), got = ret ? errno : 0;

	cases++;
	if (got != want) {
		failures++;
		printf("FAIL %s: got %s, want %s\n", what, got ? strerror(got) : "success",
		       want ? strerror(want) : "success");
	}
	return ret;
}

static struct vdisk_extent whole_rw[1];
static struct vdisk_file one_rw = { .flags = VDISK_FILE_WRITABLE };

/* An ADD that the module takes: one writable file, the whole disk DATA_RW. */
static void good_add(struct vdisk_add *a, const char *family)
{
	memset(a, 0, sizeof(*a));
	a->version = VDISK_VERSION;
	a->size = DISK_SIZE;
	a->logical_block_size = 512;
	a->physical_block_size = 4096;
	a->granularity = 65536;
	a->dead_timeout = 1;
	a->index = -1;
	snprintf(a->family, sizeof(a->family), "%s", family);
	snprintf(a->format, sizeof(a->format), "raw");
	snprintf(a->model, sizeof(a->model), "vdiskload fuzz");
	snprintf(a->serial, sizeof(a->serial), "FUZZ");
	snprintf(a->firmware, sizeof(a->firmware), "0");
	a->image = (uintptr_t)"/fuzz/image";
	one_rw.fd = rw_fd;
	a->files = (uintptr_t)&one_rw;
	a->nr_files = 1;
	whole_rw[0] = (struct vdisk_extent){ .start = 0, .length = DISK_SIZE,
					     .kind = VDISK_EXT_DATA_RW };
	a->extents = (uintptr_t)whole_rw;
	a->nr_extents = 1;
}

/* ADD on a fresh control file must fail with @want; the file is closed, so nothing can stay. */
static void add_fails(const char *what, struct vdisk_add *a, int want)
{
	int fd = ctl_open();

	if (!expect(what, fd, VDISK_IOC_ADD, a, want)) {
		struct vdisk_del d = { 0 };

		snprintf(d.name, sizeof(d.name), "%s", a->name);
		ioctl(fd, VDISK_IOC_DEL, &d);
	}
	close(fd);
}

static void add_cases(void)
{
	struct vdisk_add a;
	struct vdisk_extent x[3];
	struct vdisk_file f[2];
	char long_path[5000];

#define ADD_CASE(what, change, want) do { good_add(&a, "vfuzz"); change; add_fails(what, &a, want); } while (0)
	ADD_CASE("version 0", a.version = 0, EINVAL);
	ADD_CASE("version 2", a.version = 2, EINVAL);
	ADD_CASE("unknown add flag", a.flags = 1U << 7, EINVAL);
	ADD_CASE("reserved0", a.reserved0 = 1, EINVAL);
	ADD_CASE("reserved[7]", a.reserved[7] = 1, EINVAL);
	ADD_CASE("logical block 0", a.logical_block_size = 0, EINVAL);
	ADD_CASE("logical block 3000", a.logical_block_size = 3000, EINVAL);
	ADD_CASE("logical block 8192", a.logical_block_size = a.physical_block_size = 8192, EINVAL);
	ADD_CASE("physical below logical", a.logical_block_size = 4096; a.physical_block_size = 512, EINVAL);
	ADD_CASE("physical 1 MiB", a.physical_block_size = 1 << 20, EINVAL);
	ADD_CASE("size 0", a.size = 0, EINVAL);
	ADD_CASE("size unaligned", a.size = DISK_SIZE + 1, EINVAL);
	ADD_CASE("size past 2^63", a.size = 1ULL << 63, EINVAL);
	ADD_CASE("granularity 0", a.granularity = 0, EINVAL);
	ADD_CASE("granularity not a power of two", a.granularity = 65536 + 512, EINVAL);
	ADD_CASE("granularity below the block", a.granularity = 256, EINVAL);
	ADD_CASE("granularity 2 GiB", a.granularity = 2ULL << 30, EINVAL);
	ADD_CASE("dead timeout a year", a.dead_timeout = 365 * 86400, EINVAL);
	ADD_CASE("index -2", a.index = -2, EINVAL);
	ADD_CASE("index 2^30", a.index = 1 << 30, EINVAL);
	ADD_CASE("family empty", a.family[0] = 0, EINVAL);
	ADD_CASE("family upper case", a.family[0] = 'V', EINVAL);
	ADD_CASE("family with a digit", a.family[1] = '9', EINVAL);
	ADD_CASE("family unterminated", memset(a.family, 'a', sizeof(a.family)), EINVAL);
	ADD_CASE("format unterminated", memset(a.format, 'a', sizeof(a.format)), EINVAL);
	ADD_CASE("model of 41 bytes", memset(a.model, 'm', 41); a.model[41] = 0, EINVAL);
	ADD_CASE("model with ESC", a.model[2] = 0x1b, EINVAL);
	ADD_CASE("serial of 21 bytes", memset(a.serial, 's', 21); a.serial[21] = 0, EINVAL);
	ADD_CASE("firmware of 9 bytes", memset(a.firmware, 'f', 9); a.firmware[9] = 0, EINVAL);
	ADD_CASE("image NULL", a.image = 0, EINVAL);
	ADD_CASE("image unreadable", a.image = 8, EFAULT);
	ADD_CASE("image with a newline", a.image = (uintptr_t)"/a\nb", EINVAL);
	memset(long_path, 'p', sizeof(long_path) - 1);
	long_path[sizeof(long_path) - 1] = 0;
	ADD_CASE("image path of 4999 bytes", a.image = (uintptr_t)long_path, EINVAL);
	ADD_CASE("backing with CR", a.backing = (uintptr_t)"base\r.qcow2", EINVAL);
	ADD_CASE("files NULL", a.files = 0, EINVAL);
	ADD_CASE("no files", a.nr_files = 0, EINVAL);
	ADD_CASE("a million files", a.nr_files = 1000000, EINVAL);
	ADD_CASE("files unreadable", a.files = 8, EFAULT);
	f[0] = one_rw;
	f[0].fd = -1;
	ADD_CASE("fd -1", a.files = (uintptr_t)f, EBADF);
	f[0].fd = 9999;
	ADD_CASE("fd not open", a.files = (uintptr_t)f, EBADF);
	f[0].fd = dir_fd;
	f[0].flags = 0;
	ADD_CASE("fd of a directory", a.files = (uintptr_t)f; a.nr_extents = 0, EINVAL);
	f[0].fd = pipe_fds[0];
	ADD_CASE("fd of a pipe", a.files = (uintptr_t)f; a.nr_extents = 0, EINVAL);
	f[0].fd = null_fd;
	ADD_CASE("fd of /dev/null", a.files = (uintptr_t)f; a.nr_extents = 0, EINVAL);
	f[0].fd = ro_fd;
	f[0].flags = VDISK_FILE_WRITABLE;
	ADD_CASE("writable file open read-only", a.files = (uintptr_t)f, EINVAL);
	f[0].fd = rw_fd;
	f[0].flags = 1U << 5;
	ADD_CASE("unknown file flag", a.files = (uintptr_t)f, EINVAL);
	f[0].flags = VDISK_FILE_WRITABLE;
	f[0].reserved = 1;
	ADD_CASE("file reserved", a.files = (uintptr_t)f, EINVAL);
	f[0] = one_rw;
	f[1] = (struct vdisk_file){ .fd = ro_fd };
	x[0] = (struct vdisk_extent){ .start = 0, .length = DISK_SIZE, .file = 1, .kind = VDISK_EXT_DATA_RW };
	ADD_CASE("DATA_RW in a read-only file", a.files = (uintptr_t)f; a.nr_files = 2; a.extents = (uintptr_t)x, EINVAL);
	ADD_CASE("DATA_RW on a read-only disk", a.flags = VDISK_ADD_READ_ONLY, EINVAL);
	ADD_CASE("extents NULL", a.extents = 0, EINVAL);
	ADD_CASE("extents unreadable", a.extents = 8, EFAULT);
	ADD_CASE("two million extents", a.nr_extents = 2000000, EINVAL);

#define EXT_CASE(what, fill, n, want) do { good_add(&a, "vfuzz"); memset(x, 0, sizeof(x)); fill; \
	a.extents = (uintptr_t)x; a.nr_extents = n; add_fails(what, &a, want); } while (0)
	EXT_CASE("extent of length 0", x[0].length = 0; x[0].kind = VDISK_EXT_ZERO, 1, EINVAL);
	EXT_CASE("extent start unaligned", x[0].start = 100; x[0].length = 512; x[0].kind = VDISK_EXT_ZERO, 1, EINVAL);
	EXT_CASE("extent length unaligned", x[0].length = 1000; x[0].kind = VDISK_EXT_ZERO, 1, EINVAL);
	EXT_CASE("extent past the disk", x[0].length = DISK_SIZE + 512; x[0].kind = VDISK_EXT_ZERO, 1, EINVAL);
	EXT_CASE("extent wrapping around", x[0].start = 512; x[0].length = -512ULL; x[0].kind = VDISK_EXT_ZERO, 1, EINVAL);
	EXT_CASE("extent kind 7", x[0].length = 512; x[0].kind = 7, 1, EINVAL);
	EXT_CASE("extent reserved", x[0].length = 512; x[0].kind = VDISK_EXT_ZERO; x[0].reserved = 1, 1, EINVAL);
	EXT_CASE("extent file 5 of 1", x[0].length = 512; x[0].kind = VDISK_EXT_DATA_RO; x[0].file = 5, 1, EINVAL);
	EXT_CASE("extent file offset unaligned", x[0].length = 512; x[0].kind = VDISK_EXT_DATA_RO;
		 x[0].file_offset = 3, 1, EINVAL);
	EXT_CASE("extent file offset past 2^63", x[0].length = 512; x[0].kind = VDISK_EXT_DATA_RO;
		 x[0].file_offset = -512ULL, 1, EINVAL);
	EXT_CASE("ZERO extent with a file offset", x[0].length = 512; x[0].kind = VDISK_EXT_ZERO;
		 x[0].file_offset = 512, 1, EINVAL);
	EXT_CASE("extents unsorted", x[0].start = 4096; x[0].length = 512; x[0].kind = VDISK_EXT_ZERO;
		 x[1].start = 0; x[1].length = 512; x[1].kind = VDISK_EXT_ZERO, 2, EINVAL);
	EXT_CASE("extents overlapping", x[0].length = 4096; x[0].kind = VDISK_EXT_ZERO;
		 x[1].start = 2048; x[1].length = 4096; x[1].kind = VDISK_EXT_ZERO, 2, EINVAL);

	/* Unknown features are cleared and handed back, not refused. */
	{
		int fd = ctl_open();

		good_add(&a, "vfuzz");
		a.features = ~0ULL;
		if (!expect("every feature bit", fd, VDISK_IOC_ADD, &a, 0)) {
			cases++;
			if (a.features & ~(VDISK_F_DIRECT_IO | VDISK_F_DISCARD | VDISK_F_WRITE_ZEROES |
					   VDISK_F_REISSUE)) {
				failures++;
				printf("FAIL every feature bit: granted %#llx\n", (unsigned long long)a.features);
			}
			expect("second ADD on one file", fd, VDISK_IOC_ADD, &a, EBUSY);
		}
		close(fd);	/* never started: it goes with the file */
	}
}

static void other_cases(void)
{
	struct vdisk_upcall up = { 0 };
	struct vdisk_reply r = { 0 };
	struct vdisk_del d = { 0 };
	struct vdisk_info info = { 0 };
	struct vdisk_recover rc = { 0 };
	int fd = ctl_open();

	expect("START unbound", fd, VDISK_IOC_START, NULL, ENXIO);
	expect("FETCH unbound", fd, VDISK_IOC_FETCH, &up, ENXIO);
	r.seq = 1;
	expect("COMPLETE unbound", fd, VDISK_IOC_COMPLETE, &r, ENXIO);
	expect("unknown ioctl", fd, _IO(VDISK_IOC_MAGIC, 0x7f), NULL, ENOTTY);
	expect("ADD with a wrong size", fd, _IOWR(VDISK_IOC_MAGIC, 0x01, struct vdisk_info), &info, ENOTTY);
	snprintf(d.name, sizeof(d.name), "vfuzz99");
	expect("DEL unknown", fd, VDISK_IOC_DEL, &d, ENXIO);
	d.flags = 1U << 9;
	expect("DEL unknown flag", fd, VDISK_IOC_DEL, &d, EINVAL);
	d.flags = 0;
	d.reserved[2] = 1;
	expect("DEL reserved", fd, VDISK_IOC_DEL, &d, EINVAL);
	memset(d.name, 'x', sizeof(d.name));
	d.reserved[2] = 0;
	expect("DEL name unterminated", fd, VDISK_IOC_DEL, &d, EINVAL);
	memset(info.name, 'x', sizeof(info.name));
	expect("INFO name unterminated", fd, VDISK_IOC_INFO, &info, EINVAL);
	snprintf(info.name, sizeof(info.name), "vfuzz99");
	expect("INFO unknown", fd, VDISK_IOC_INFO, &info, ENXIO);
	snprintf(rc.name, sizeof(rc.name), "vfuzz99");
	rc.nr_files = 1;
	rc.files = (uintptr_t)&one_rw;
	expect("RECOVER unknown", fd, VDISK_IOC_RECOVER, &rc, ENXIO);
	rc.nr_files = 0;
	expect("RECOVER no files", fd, VDISK_IOC_RECOVER, &rc, EINVAL);
	expect("FEATURES to a bad pointer", fd, VDISK_IOC_FEATURES, (void *)8, EFAULT);
	close(fd);
}

/* A live disk: START's partition scan, and a write, go up to the thread below. */
struct live {
	int fd;
	char name[VDISK_NAME_LEN];
	char dev[64];
};

static void *write_one(void *arg)
{
	struct live *l = arg;
	char *buf = aligned_alloc(4096, 4096);
	int fd = open(l->dev, O_RDWR | O_DIRECT | O_CLOEXEC);
	long ret = -1;

	memset(buf, 0xab, 4096);
	if (fd >= 0) {
		ret = pwrite(fd, buf, 4096, 8192);
		close(fd);
	}
	free(buf);
	return (void *)ret;
}

/* Answers the next upcall with @status and the given extents; returns the COMPLETE's errno. */
static int answer(struct live *l, char *buf, int status, struct vdisk_extent *x, unsigned int n,
		  struct vdisk_upcall *up)
{
	struct vdisk_reply r = { 0 };

	memset(up, 0, sizeof(*up));
	up->buffer = (uintptr_t)buf;
	up->buffer_len = MAX_IO;
	if (ioctl(l->fd, VDISK_IOC_FETCH, up))
		return -errno;
	r.seq = up->seq;
	r.status = status;
	r.buffer = (uintptr_t)buf;
	r.extents = (uintptr_t)x;
	r.nr_extents = n;
	return ioctl(l->fd, VDISK_IOC_COMPLETE, &r) ? errno : 0;
}

static void live_cases(void)
{
	struct live l = { 0 };
	struct vdisk_add a;
	struct vdisk_upcall up;
	struct vdisk_reply r = { 0 };
	struct vdisk_recover rc = { 0 };
	struct vdisk_extent x[2];
	struct vdisk_del d = { 0 };
	char *buf = aligned_alloc(4096, MAX_IO);
	pthread_t t;
	void *ret;
	int got, other;


	l.fd = ctl_open();
	good_add(&a, "vfuzz");
	whole_rw[0].kind = VDISK_EXT_ZERO;
	a.features = VDISK_F_DISCARD | VDISK_F_WRITE_ZEROES;
	if (expect("ADD live", l.fd, VDISK_IOC_ADD, &a, 0))
		return;
	snprintf(l.name, sizeof(l.name), "%s", a.name);
	snprintf(l.dev, sizeof(l.dev), "/dev/%s", a.name);

	up.buffer = (uintptr_t)buf;
	up.buffer_len = 4096;
	expect("FETCH with a small buffer", l.fd, VDISK_IOC_FETCH, &up, EINVAL);
	up.buffer_len = MAX_IO;
	up.reserved[1] = 1;
	expect("FETCH reserved", l.fd, VDISK_IOC_FETCH, &up, EINVAL);
	up.reserved[1] = 0;
	up.buffer = 0xffff800000000000ULL;
	expect("FETCH into kernel memory", l.fd, VDISK_IOC_FETCH, &up, EINVAL);
	r.seq = 12345;
	expect("COMPLETE of no upcall", l.fd, VDISK_IOC_COMPLETE, &r, ENOENT);
	r.status = 5;
	expect("COMPLETE with a positive status", l.fd, VDISK_IOC_COMPLETE, &r, EINVAL);
	r.status = 0;
	r.reserved[0] = 1;
	expect("COMPLETE reserved", l.fd, VDISK_IOC_COMPLETE, &r, EINVAL);
	snprintf(rc.name, sizeof(rc.name), "%s", l.name);
	rc.files = (uintptr_t)&one_rw;
	rc.nr_files = 1;
	other = ctl_open();
	expect("RECOVER a disk with a daemon", other, VDISK_IOC_RECOVER, &rc, EBUSY);
	close(other);

	/* The whole disk reads as zeros in the kernel (START's partition scan needs no upcall); writes go up. */
	expect("START", l.fd, VDISK_IOC_START, NULL, 0);
	expect("START again", l.fd, VDISK_IOC_START, NULL, EBUSY);

	/* A write goes up holding its range: bad extents in the reply are refused, the write answered. */
	pthread_create(&t, NULL, write_one, &l);
	x[0] = (struct vdisk_extent){ .start = 0, .length = DISK_SIZE, .kind = VDISK_EXT_ZERO };
	got = answer(&l, buf, 0, x, 1, &up);
	cases++;
	if (got != EINVAL || up.op != VDISK_OP_WRITE || up.map_length != 65536) {
		failures++;
		printf("FAIL extents past the held range: COMPLETE %s, op %u, held %llu+%llu\n", strerror(got),
		       up.op, (unsigned long long)up.map_start, (unsigned long long)up.map_length);
	}
	pthread_join(t, &ret);
	cases++;
	if ((long)ret != 4096) {
		failures++;
		printf("FAIL the write under a refused reply: %ld\n", (long)ret);
	}
	/* The range went to upcalls: the next write goes up again; answer it with overlapping extents. */
	pthread_create(&t, NULL, write_one, &l);
	x[0] = (struct vdisk_extent){ .start = 0, .length = 8192, .kind = VDISK_EXT_ZERO };
	x[1] = (struct vdisk_extent){ .start = 4096, .length = 8192, .kind = VDISK_EXT_ZERO };
	got = answer(&l, buf, -ENOSPC, x, 2, &up);
	cases++;
	if (got != EINVAL || up.op != VDISK_OP_WRITE) {
		failures++;
		printf("FAIL overlapping extents in a reply: COMPLETE %s, op %u\n", strerror(got), up.op);
	}
	pthread_join(t, &ret);
	cases++;
	if ((long)ret != -1) {
		failures++;
		printf("FAIL a write answered ENOSPC returned %ld\n", (long)ret);
	}
	/* A good reply: DATA_RW for the held range; the next write there stays in the kernel. */
	pthread_create(&t, NULL, write_one, &l);
	x[0] = (struct vdisk_extent){ .start = 0, .length = 65536, .kind = VDISK_EXT_DATA_RW };
	got = answer(&l, buf, 0, x, 1, &up);
	cases++;
	if (got) {
		failures++;
		printf("FAIL a good held reply: %s\n", strerror(got));
	}
	pthread_join(t, &ret);
	write_one(&l);	/* in the kernel: no upcall to answer, or this would hang */

	snprintf(d.name, sizeof(d.name), "%s", l.name);
	{
		int h = open(l.dev, O_RDONLY | O_CLOEXEC);

		expect("DEL of an open disk", l.fd, VDISK_IOC_DEL, &d, EBUSY);
		close(h);
	}
	expect("DEL", l.fd, VDISK_IOC_DEL, &d, 0);
	up.buffer = (uintptr_t)buf;
	up.buffer_len = MAX_IO;
	expect("FETCH after DEL", l.fd, VDISK_IOC_FETCH, &up, ENODEV);
	expect("DEL again", l.fd, VDISK_IOC_DEL, &d, ENXIO);
	close(l.fd);
	free(buf);
}

/* Random bytes in every struct, for every ioctl, on a fresh (unbound) control file. */
static void random_rounds(long rounds)
{
	static const unsigned long reqs[] = {
		VDISK_IOC_FEATURES, VDISK_IOC_ADD, VDISK_IOC_START, VDISK_IOC_DEL, VDISK_IOC_INFO,
		VDISK_IOC_FETCH, VDISK_IOC_COMPLETE, VDISK_IOC_RECOVER,
	};
	unsigned char arg[512];
	long i;
	int fd = ctl_open();

	srandom(20261207);
	for (i = 0; i < rounds; i++) {
		unsigned long req = reqs[random() % (sizeof(reqs) / sizeof(reqs[0]))];
		size_t j;

		for (j = 0; j < sizeof(arg); j++)
			arg[j] = random();
		/* Often a valid version and small counts, so the checks past them run too. */
		if (req == VDISK_IOC_ADD && random() % 2) {
			struct vdisk_add *a = (struct vdisk_add *)arg;

			a->version = VDISK_VERSION;
			a->nr_files = random() % 3;
			a->nr_extents = random() % 3;
			a->files = random() % 2 ? (uintptr_t)&one_rw : a->files;
			a->extents = random() % 2 ? (uintptr_t)whole_rw : a->extents;
		}
		if (req == VDISK_IOC_FETCH)
			continue;	/* unbound: ENXIO before it reads anything (case above) */
		if (!ioctl(fd, req, arg) && req != VDISK_IOC_FEATURES) {
			printf("FAIL random round %ld: ioctl %#lx succeeded\n", i, req);
			failures++;
			close(fd);
			fd = ctl_open();
		}
	}
	cases += rounds;
	close(fd);
}

int main(int argc, char **argv)
{
	char path[4096];
	long rounds = argc > 2 ? atol(argv[2]) : 100000;

	if (argc < 2)
		return fprintf(stderr, "usage: vdisk-ioctl-fuzz SCRATCH_DIR [RANDOM_ROUNDS]\n"), 2;
	snprintf(path, sizeof(path), "%s/fuzz.img", argv[1]);
	rw_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	ro_fd = open(path, O_RDONLY | O_CLOEXEC);
	dir_fd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (rw_fd < 0 || ro_fd < 0 || dir_fd < 0 || null_fd < 0 || pipe2(pipe_fds, O_CLOEXEC) ||
	    ftruncate(rw_fd, DISK_SIZE)) {
		perror(argv[1]);
		return 1;
	}
	ctl = ctl_open();
	add_cases();
	other_cases();
	live_cases();
	random_rounds(rounds);
	close(ctl);
	printf("%d cases, %d failed\n", cases, failures);
	return failures ? 1 : 0;
}
