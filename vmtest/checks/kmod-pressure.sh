#!/bin/sh
# vmtest: long
# vmtest: scratch
# The kmod backend under memory pressure (issue 16): a qcow2 taking allocating writes (its serving process
# busy with upcalls) while the guest swaps heavily for two minutes to a swap file on a second kmod-attached
# qcow2. The swap image is preallocated (preallocation=full: every cluster mapped and written in the
# scratch file system), so swapping out is served in the kernel with direct I/O, as loop serves a swap file
# on a raw image with --direct-io=on: it never waits for a serving process, whose own allocations
# (PF_MEMALLOC_NOIO) can then always be met by swapping others out, allocates no page cache, and overwrites
# written blocks (an fallocated image's unwritten extents need converting after each write, and the
# conversion needs memory: with falloc this check hung in ext4-rsv-conversion, waiting on swap-out). The
# check proves that: no upcall on the swap disk during the run, and its in-kernel I/O direct (vdisk/dio). No hang (a watchdog fails the check at a time limit; the
# batch fails on a hung-task report), the swap really took pages, the writes verify afterwards and both
# images are clean. The images live on the scratch disk ($VDL_SCRATCH), not on the guest's tmpfs.
# It does not pass yet: swap-out and the direct write serving it deadlock on fs_bio_set (kmod/README.md,
# Memory pressure).
set -e
. "$(dirname "$0")/../kmod-lib.sh"
[ -n "$VDL_SCRATCH" ] || { echo "no VDL_SCRATCH: vmtest/run gives a check marked 'vmtest: scratch' a disk"; exit 1; }
pswpout() { awk '$1 == "pswpout" {print $2}' /proc/vmstat; }
kmod_load
trap "swapoff -a 2> /dev/null" EXIT  # a swap file left on an attached disk would pin it
modprobe ext4 2>/dev/null || true
[ -w /proc/sys/kernel/hung_task_timeout_secs ] && echo 60 > /proc/sys/kernel/hung_task_timeout_secs
echo 7 > /proc/sys/kernel/printk  # a hung-task report's stack reaches the console too
dir="$VDL_SCRATCH/pressure"
mkdir -p "$dir" data swap

# The memory hog: touches every page of SIZE MiB, again and again, for SECS seconds.
cat > hog.c <<'END'
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
int main(int argc, char **argv)
{
	size_t size = strtoull(argv[1], NULL, 10) << 20;
	time_t end = time(NULL) + atoi(argv[2]);
	unsigned char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned long passes = 0;

	if (p == MAP_FAILED)
		return 1;
	while (time(NULL) < end) {
		for (size_t i = 0; i < size; i += 4096)
			p[i]++;
		passes++;
	}
	printf("%lu passes\n", passes);
	return 0;
}
END
gcc -O2 -o hog hog.c || fail "cc hog.c"

# The watchdog: locked in memory and real-time, so neither swapping nor a starved CPU stops it. Every 15 s
# it logs progress (swap traffic, free memory, files written) to the console; past the limit it dumps the
# blocked tasks and memory (sysrq w and m) and fails. A shell loop could not: under pressure it was itself
# swapped out and never woke.
cat > watchdog.c <<'END'
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static unsigned long field(const char *path, const char *name)
{
	char buf[8192], *at;
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	at = strstr(buf, name);
	return at ? strtoul(at + strlen(name), NULL, 10) : 0;
}

static void sysrq(char c)
{
	int fd = open("/proc/sysrq-trigger", O_WRONLY);

	if (fd >= 0) {
		if (write(fd, &c, 1) != 1)
			perror("sysrq");
		close(fd);
	}
}

int main(int argc, char **argv)
{
	pid_t watched = atoi(argv[1]);
	int limit = atoi(argv[2]), t = 0;
	const char *sums = argv[3];
	struct sched_param sp = { .sched_priority = 50 };
	struct stat st;
	FILE *console = fopen("/dev/console", "w");

	if (!console || mlockall(MCL_CURRENT | MCL_FUTURE) || sched_setscheduler(0, SCHED_FIFO, &sp)) {
		perror("watchdog");
		return 2;
	}
	setvbuf(console, NULL, _IOLBF, 0);
	while (kill(watched, 0) == 0 || errno != ESRCH) {
		if (t > limit) {
			fprintf(console, "watchdog: still running after %d s: hung; blocked tasks and memory follow\n", t);
			sysrq('w');
			sysrq('m');
			return 1;
		}
		if (t % 15 == 0)
			fprintf(console, "watchdog: %d s, pswpout %lu pswpin %lu, MemFree %lu kB, sums %lld bytes\n", t,
				field("/proc/vmstat", "pswpout "), field("/proc/vmstat", "pswpin "),
				field("/proc/meminfo", "MemFree:"), stat(sums, &st) ? -1LL : (long long)st.st_size);
		sleep(1);
		t++;
	}
	return 0;
}
END
gcc -O2 -o watchdog watchdog.c || fail "cc watchdog.c"

qemu-img create -q -f qcow2 "$dir/data.qcow2" 1G
# 1200 MiB: qemu-img writes every byte of a fully preallocated image (minutes under TCG).
qemu-img create -q -f qcow2 -o preallocation=full "$dir/swap.qcow2" 1200M
ddev=$(VDISKLOAD_DEAD_TIMEOUT=900 attach "$dir/data.qcow2")
sdev=$(VDISKLOAD_DEAD_TIMEOUT=900 attach "$dir/swap.qcow2")
mkfs.ext4 -q "$ddev" && mount "$ddev" data || fail "ext4 on $ddev"
# nodiscard: mkfs would discard the whole device, unmapping the preallocated clusters. No lazy init: ext4
# would zero its inode tables in the background with write-zeroes, which go up and hold their clusters, so
# a swap-out next to them would wait for a serving process that waits for memory (README "Memory pressure").
mkfs.ext4 -q -E nodiscard,lazy_itable_init=0,lazy_journal_init=0 "$sdev" && mount "$sdev" swap || fail "ext4 on $sdev"
fallocate -l 900M swap/swapfile && chmod 600 swap/swapfile && mkswap -q swap/swapfile && swapon swap/swapfile \
    || fail "swapon a swap file on $sdev"
sname=${sdev#/dev/}
[ "$(cat "/sys/block/$sname/vdisk/dio")" = 1 ] || fail "$sdev: in-kernel I/O is not direct (vdisk/dio 0) on $VDL_SCRATCH"
upcalls_before=$(cat "/sys/block/${ddev#/dev/}/vdisk/upcalls")
swap_upcalls_before=$(cat "/sys/block/$sname/vdisk/upcalls")
swapped_before=$(pswpout)

mem=$(awk '$1 == "MemTotal:" {print int($2 / 1024)}' /proc/meminfo)
./hog $((mem + 300)) 120 > hog.out 2>&1 &
hog=$!
# The writer: 1 MiB files of random bytes, their hashes kept apart, for as long as the hog runs.
( i=0; while kill -0 $hog 2>/dev/null; do
      head -c 1M /dev/urandom | tee "data/f$i" | sha256sum | sed "s|-|data/f$i|" >> sums
      i=$((i + 1))
  done; sync ) > writer.out 2>&1 &
writer=$!
# A hang shows as the writer running 10 minutes past the 2-minute run.
./watchdog $writer 720 sums || fail "the writer still ran 10 minutes after a 2-minute pressure run: hung (hog: $(cat hog.out))"
wait $writer || { cat writer.out; fail "the writer failed"; }
wait $hog || echo "the hog ended with $? (the OOM killer may take it; the serving processes it may not)"
swapped=$(( ($(pswpout) - swapped_before) * 4 / 1024 ))
[ $swapped -ge 128 ] || fail "only ${swapped} MiB swapped out: no real pressure"
upcalls=$(( $(cat "/sys/block/${ddev#/dev/}/vdisk/upcalls") - upcalls_before ))
[ $upcalls -gt 0 ] || fail "no upcalls on $ddev during the run"
swap_upcalls=$(( $(cat "/sys/block/$sname/vdisk/upcalls") - swap_upcalls_before ))
[ $swap_upcalls = 0 ] || fail "$swap_upcalls upcalls on the swap disk $sdev: swapping waited for a serving process"
for d in "$ddev" "$sdev"; do
    pid=$(sed -n 's/^ *"pid" *: *\([0-9]*\).*/\1/p' "/run/vdiskload/${d#/dev/}.json")
    kill -0 "$pid" || fail "the serving process of $d died under pressure"
done
echo "pressure: $(wc -l < sums) files written, $swapped MiB swapped out to $sdev, $upcalls upcalls on $ddev, hog: $(cat hog.out)"

swapoff swap/swapfile || fail "swapoff"
umount swap
echo 3 > /proc/sys/vm/drop_caches
sha256sum -c --quiet sums || fail "files written under pressure differ"
umount data
vdl -d "$ddev" "$sdev" || fail "detach"
qemu-img check -q -f qcow2 "$dir/data.qcow2" || fail "qemu-img check data.qcow2"
qemu-img check -q -f qcow2 "$dir/swap.qcow2" || fail "qemu-img check swap.qcow2"
rm -rf "$dir"
rmmod vdisk || fail "rmmod vdisk"
echo "writes verified after pressure, both images clean, no hang"
