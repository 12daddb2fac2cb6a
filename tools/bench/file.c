/* SPDX-License-Identifier: MIT */
/*
 * tools/bench/file.c - bench_file: 4 KiB random reads at queue depth 64, urio against fio.
 *
 * urio side: 64 futures, each with its own 4 KiB-aligned buffer; each callback restarts a read at
 * a new random 4 KiB-aligned offset of a 1 GiB file. A kernel timeout future (ur_timeout_start)
 * ends the measured window: reads completed before it fired are counted, the ones still in flight
 * are drained uncounted. fio side, in the same run: fio --ioengine=io_uring --rw=randread --bs=4k
 * --iodepth=64 on the same file for the same time, IOPS taken from its JSON output. Two fio anchors
 * run: the plain command (the goal is stated against it) and "fio-batched", tuned to submit and
 * reap in batches without per-I/O clock reads, the strongest fio we found without registered
 * files or buffers (urio uses neither); its ratio is printed for information.
 *
 * Two modes: O_DIRECT (the device's speed, urio's cost hidden behind it), and through the page
 * cache with the whole file resident (no device at all: reads are memory copies done inline at
 * submit, so the framework's own cost shows). For the page-cache mode the file is read once
 * sequentially first, residency is checked with mincore(2), and fio is told not to drop the cache
 * (--invalidate=0, its default being to invalidate it before the job).
 *
 * Before every page-cache run the residency is checked again and the file re-read if pages went
 * missing (another process may have pushed them out).
 *
 * Options: -d SECONDS, -f PATH, -r REPEATS (best reported), --direct-only, --buffered-only,
 * --no-fio, --fio PATH, --plain-setup (urio's loop with UR_LOOP_PLAIN_SETUP).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "urio.h"

#include "bench.h"

extern char **environ;

#define FILE_SIZE (UINT64_C(1) << 30)
#define BS        4096u
#define DEPTH     64u
#define CHUNK     (1u << 20)

#define MAX_REPEATS 100u

struct opts {
	const char *path;
	const char *fio;
	unsigned seconds;
	unsigned repeats;
	bool direct, buffered, use_fio;
	uint32_t loop_flags; /* ur_loop_opts.flags of urio's loop */
	unsigned recached;   /* times the file had to be read again between page-cache runs */
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

/* ---- the test file ------------------------------------------------------------------------ */

/*
 * Makes sure @path holds FILE_SIZE bytes of non-zero data. A file already of that size is taken
 * as filled (written by an earlier run); a shorter one (an interrupted fill) is rewritten. Random
 * bytes, so nothing below us can deduplicate or compress the reads away.
 */
static int ensure_file(const char *path)
{
	struct stat st;
	if (stat(path, &st) == 0 && (uint64_t)st.st_size == FILE_SIZE)
		return 0;

	printf("creating %s (1 GiB of non-zero data)...\n", path);
	fflush(stdout);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	uint8_t *buf = malloc(CHUNK);
	int ret = 0;
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	uint64_t seed = 0x9e3779b97f4a7c15u;
	for (uint64_t off = 0; off < FILE_SIZE && ret == 0; off += CHUNK) {
		for (size_t i = 0; i < CHUNK; i += 8) {
			uint64_t v = xorshift(&seed) | 0x0101010101010101u;
			memcpy(buf + i, &v, 8);
		}
		for (size_t done = 0; done < CHUNK;) {
			ssize_t n = pwrite(fd, buf + done, CHUNK - done, (off_t)(off + done));
			if (n < 0) {
				if (errno == EINTR)
					continue;
				ret = -errno;
				break;
			}
			done += (size_t)n;
		}
	}
	if (ret == 0 && fsync(fd) < 0)
		ret = -errno;
	free(buf);
	close(fd);
	return ret;
}

/* Reads the whole file once so that every page is in the page cache. Returns seconds taken. */
static double cache_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	char *buf = malloc(CHUNK);
	double t0 = now_s();
	posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
	while (buf && read(fd, buf, CHUNK) > 0)
		;
	double t = now_s() - t0;
	free(buf);
	close(fd);
	return t;
}

/* Fraction of the file's pages resident in the page cache, by mincore(2); -1 on error. */
static double resident(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	void *m = mmap(NULL, FILE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return -1;
	size_t pages = FILE_SIZE / (size_t)sysconf(_SC_PAGESIZE), in = 0;
	unsigned char *vec = malloc(pages);
	double frac = -1;
	if (vec && mincore(m, FILE_SIZE, vec) == 0) {
		for (size_t i = 0; i < pages; i++)
			in += vec[i] & 1;
		frac = (double)in / (double)pages;
	}
	free(vec);
	munmap(m, FILE_SIZE);
	return frac;
}

/* ---- urio side ---------------------------------------------------------------------------- */

struct rd_ctx {
	struct ur_loop *loop;
	int fd;
	bool stop;
	uint64_t rng;
	uint64_t done;      /* reads completed inside the window */
	unsigned long errs; /* short reads, errors, failed starts */
	double t_end;
};

struct rd_slot {
	struct ur_future f;
	struct rd_ctx *c;
	void *buf;
};

static int read_next(struct rd_slot *s)
{
	struct rd_ctx *c = s->c;
	uint64_t off = (xorshift(&c->rng) % (FILE_SIZE / BS)) * BS;
	return ur_read_start(c->loop, &s->f, c->fd, s->buf, BS, off);
}

static void read_cb(struct ur_future *f, void *arg)
{
	struct rd_slot *s = arg;
	struct rd_ctx *c = s->c;
	(void)f;
	if (s->f.res != (int32_t)BS)
		c->errs++;
	if (c->stop)
		return; /* draining: the window is over */
	c->done++;
	if (read_next(s) < 0)
		c->errs++;
}

static void window_cb(struct ur_future *f, void *arg)
{
	struct rd_ctx *c = arg;
	(void)f;
	c->stop = true;
	c->t_end = now_s();
}

static double cpu_ns(const struct timeval *tv)
{
	return (double)tv->tv_sec * 1e9 + (double)tv->tv_usec * 1e3;
}

/*
 * Returns IOPS, or a negative -errno. *@user and *@sys get the CPU time the process spent per read
 * (RUSAGE_SELF counts the kernel's io-wq workers too: they are threads of this process).
 */
static double urio_run(const struct opts *o, bool direct, double *user, double *sys, double *batch)
{
	struct ur_loop_opts lo = {.flags = o->loop_flags};
	struct rusage ru0, ru1;
	struct rd_slot slots[DEPTH];
	struct ur_future window;
	struct rd_ctx c = {.rng = 0x2545f4914f6cdd1du ^ (uint64_t)time(NULL)};
	double ret;

	memset(slots, 0, sizeof(slots));
	c.fd = open(o->path, O_RDONLY | O_CLOEXEC | (direct ? O_DIRECT : 0));
	if (c.fd < 0)
		return -errno;
	int r = ur_loop_new(&c.loop, &lo);
	if (r < 0) {
		close(c.fd);
		return r;
	}
	for (unsigned i = 0; i < DEPTH; i++) {
		/* O_DIRECT wants buffer, offset and length aligned to the logical block size. */
		if (posix_memalign(&slots[i].buf, BS, BS) != 0) {
			ret = -ENOMEM;
			goto out;
		}
		slots[i].c = &c;
		ur_future_init(&slots[i].f, read_cb, &slots[i]);
	}
	ur_future_init(&window, window_cb, &c);

	getrusage(RUSAGE_SELF, &ru0);
	double t0 = now_s();
	r = ur_timeout_start(c.loop, &window, (uint64_t)o->seconds * UR_SEC, 0);
	for (unsigned i = 0; i < DEPTH && r == 0; i++)
		r = read_next(&slots[i]);
	if (r == 0)
		r = ur_loop_run(c.loop, UR_RUN_DEFAULT);
	if (r < 0) {
		ret = r;
	} else if (c.errs) {
		fprintf(stderr, "bench_file: %lu reads failed or came back short\n", c.errs);
		ret = -EIO;
	} else {
		ret = (double)c.done / (c.t_end - t0);
		/* The drain after the window is in these too: at most 64 reads of millions. */
		getrusage(RUSAGE_SELF, &ru1);
		*user = (cpu_ns(&ru1.ru_utime) - cpu_ns(&ru0.ru_utime)) / (double)c.done;
		*sys = (cpu_ns(&ru1.ru_stime) - cpu_ns(&ru0.ru_stime)) / (double)c.done;
		struct ur_loop_stats st;
		ur_loop_stats(c.loop, &st);
		*batch = st.enters ? (double)st.submitted / (double)st.enters : 0;
	}
out:
	ur_loop_free(&c.loop);
	for (unsigned i = 0; i < DEPTH; i++)
		free(slots[i].buf);
	close(c.fd);
	return ret;
}

/* ---- fio side ----------------------------------------------------------------------------- */

/*
 * The "iops" of the "read" section of fio's JSON. A string search is enough: the first "read" key
 * is the job's read statistics, and "iops" (closing quote included) does not match "iops_mean" and
 * its siblings.
 */
static double parse_fio_iops(const char *json)
{
	const char *p = strstr(json, "\"read\"");
	if (p)
		p = strstr(p, "\"iops\"");
	if (!p)
		return -1;
	p = strchr(p + 6, ':');
	return p ? strtod(p + 1, NULL) : -1;
}

/*
 * Runs fio and returns its read IOPS; -ENOENT if fio cannot be found, another negative on failure.
 * posix_spawnp, not popen: the arguments (the file path) never go through a shell.
 */
static double fio_run(const struct opts *o, bool direct, bool batched)
{
	char filename[4096 + 16], runtime[32];
	snprintf(filename, sizeof(filename), "--filename=%s", o->path);
	snprintf(runtime, sizeof(runtime), "--runtime=%u", o->seconds);
	char *argv[] = {
	    (char *)o->fio,
	    "--name=x",
	    "--ioengine=io_uring",
	    "--rw=randread",
	    "--bs=4k",
	    "--iodepth=64",
	    direct ? "--direct=1" : "--direct=0",
	    "--invalidate=0", /* keep the page cache the buffered mode relies on */
	    filename,
	    "--size=1G",
	    runtime,
	    "--time_based",
	    "--output-format=json",
	    /*
	     * The tuned anchor: submit and reap in batches, as urio does on every loop turn, and
	     * skip fio's per-I/O clock reads and random map, bookkeeping urio does not do either.
	     * Registered files and buffers stay off: urio's plain read uses neither. For the plain
	     * anchor the NULL below ends the list here.
	     */
	    batched ? "--iodepth_batch_submit=32" : NULL,
	    "--iodepth_batch_complete_max=64",
	    "--gtod_reduce=1",
	    "--norandommap",
	    NULL,
	};
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], STDOUT_FILENO);
	pid_t pid;
	int err = posix_spawnp(&pid, o->fio, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	if (err) {
		close(pfd[0]);
		return -err;
	}

	/* fio's JSON for one job is about 10 KiB; anything past the buffer is read and dropped. */
	static char out[1 << 18];
	size_t len = 0;
	for (;;) {
		char sink[4096];
		bool room = len < sizeof(out) - 1;
		ssize_t n = room ? read(pfd[0], out + len, sizeof(out) - 1 - len)
		                 : read(pfd[0], sink, sizeof(sink));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (room)
			len += (size_t)n;
	}
	out[len] = '\0';
	close(pfd[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	double iops = parse_fio_iops(out);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "bench_file: fio exited with status %d\n",
		        WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		return -EIO;
	}
	return iops < 0 ? -EPROTO : iops;
}

/* True if @fio can be started at all (fio --version, output dropped). */
static bool fio_present(const char *fio)
{
	char *argv[] = {(char *)fio, "--version", NULL};
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int status;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	int err = posix_spawnp(&pid, fio, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (err)
		return false;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* ---- driver ------------------------------------------------------------------------------- */

/*
 * Runs one mode: urio and both fio anchors alternating, -r times each, so that the device's drift
 * over minutes hits all three alike; prints one table row, best and median.
 */
static int bench_mode(struct opts *o, bool direct)
{
	double u[MAX_REPEATS], f[2][MAX_REPEATS], user = 0, sys = 0, batch = 0, best_u = 0;

	for (unsigned i = 0; i < o->repeats; i++) {
		double us = 0, sy = 0, ba = 0;
		if (!direct && resident(o->path) < 0.99) {
			cache_file(o->path);
			o->recached++;
		}
		u[i] = urio_run(o, direct, &us, &sy, &ba);
		if (u[i] < 0) {
			fprintf(stderr, "bench_file: urio %s run: %s\n",
			        direct ? "O_DIRECT" : "buffered", ur_strerror((int)u[i]));
			return 1;
		}
		if (u[i] > best_u) {
			best_u = u[i];
			user = us;
			sys = sy;
			batch = ba;
		}
		for (int batched = 0; batched < 2 && o->use_fio; batched++) {
			if (!direct && resident(o->path) < 0.99) {
				cache_file(o->path);
				o->recached++;
			}
			f[batched][i] = fio_run(o, direct, batched);
			if (f[batched][i] < 0) {
				fprintf(stderr, "bench_file: fio run failed: %s\n",
				        ur_strerror((int)f[batched][i]));
				return 1;
			}
		}
	}
	unsigned n = o->repeats;
	const char *mode = direct ? "O_DIRECT" : "page cache";
	double mu = median(u, n);
	if (o->use_fio) {
		double mf = median(f[0], n), mb = median(f[1], n);
		double bf = f[0][n - 1], bb = f[1][n - 1];
		printf("%-11s  %10.0f  %10.0f  %8.3fx  %8.3fx  %-15s  %12.0f  %10.3fx  %8.3fx\n",
		       mode, best_u, bf, best_u / bf, mu / mf,
		       best_u / bf >= 0.95 ? "met" : "MISSED", bb, best_u / bb, mu / mb);
	} else {
		printf("%-11s  %10.0f  %10.0f\n", mode, best_u, mu);
	}
	printf("%-11s  urio per read: %.0f ns user CPU, %.0f ns system CPU, %.0f ns wall; "
	       "%.1f SQEs per io_uring_enter\n",
	       "", user, sys, 1e9 / best_u, batch);
	fflush(stdout);
	return 0;
}

static void usage(const char *argv0)
{
	fprintf(stderr,
	        "usage: %s [-d SECONDS] [-f PATH] [-r REPEATS] [--direct-only | --buffered-only]\n"
	        "          [--no-fio] [--fio PATH]\n"
	        "  -d, --duration SECONDS  length of each run (default 5)\n"
	        "  -f, --file PATH         1 GiB test file, created if missing "
	        "(default /var/tmp/urio-bench-file.dat)\n"
	        "  -r, --repeats N         runs per side and mode, best reported (default 1)\n"
	        "      --direct-only       only the O_DIRECT mode\n"
	        "      --buffered-only     only the page-cache mode\n"
	        "      --no-fio            urio only\n"
	        "      --fio PATH          fio executable (default: fio from PATH)\n"
	        "      --plain-setup       urio's loop with UR_LOOP_PLAIN_SETUP (no "
	        "DEFER_TASKRUN...)\n",
	        argv0);
}

int main(int argc, char **argv)
{
	struct opts o = {
	    .path = "/var/tmp/urio-bench-file.dat",
	    .fio = "fio",
	    .seconds = 5,
	    .repeats = 1,
	    .direct = true,
	    .buffered = true,
	    .use_fio = true,
	};
	static const struct option lopts[] = {
	    {"duration", required_argument, NULL, 'd'},
	    {"file", required_argument, NULL, 'f'},
	    {"repeats", required_argument, NULL, 'r'},
	    {"direct-only", no_argument, NULL, 'D'},
	    {"buffered-only", no_argument, NULL, 'B'},
	    {"no-direct", no_argument, NULL, 'B'},
	    {"no-fio", no_argument, NULL, 'N'},
	    {"fio", required_argument, NULL, 'F'},
	    {"plain-setup", no_argument, NULL, 'P'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}, /* this comment keeps clang-format from packing the table */
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "d:f:r:h", lopts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			o.seconds = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'f':
			o.path = optarg;
			break;
		case 'r':
			o.repeats = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'D':
			o.buffered = false;
			break;
		case 'B':
			o.direct = false;
			break;
		case 'N':
			o.use_fio = false;
			break;
		case 'P':
			o.loop_flags |= UR_LOOP_PLAIN_SETUP;
			break;
		case 'F':
			o.fio = optarg;
			break;
		default:
			usage(argv[0]);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (o.seconds == 0 || o.repeats == 0 || o.repeats > MAX_REPEATS ||
	    (!o.direct && !o.buffered) || optind != argc) {
		usage(argv[0]);
		return 2;
	}

	if (o.use_fio && !fio_present(o.fio)) {
		printf("fio not found (%s): urio's numbers only\n", o.fio);
		o.use_fio = false;
	}
	int ret = ensure_file(o.path);
	if (ret < 0) {
		fprintf(stderr, "bench_file: %s: %s\n", o.path, strerror(-ret));
		return 1;
	}
	printf("bench_file: 4 KiB random reads, queue depth %u, 1 GiB file %s, %u s per run, "
	       "best of %u\n",
	       DEPTH, o.path, o.seconds, o.repeats);
	if (o.buffered) {
		double t = cache_file(o.path);
		printf("page-cache mode: file read once beforehand (%.2f s) to cache it; "
		       "%.1f%% resident (mincore)\n",
		       t, 100 * resident(o.path));
	}
	if (o.use_fio)
		printf("\n%-11s  %10s  %10s  %9s  %9s  %-15s  %12s  %11s  %9s\n", "mode",
		       "urio IOPS", "fio IOPS", "urio/fio", "(median)", "goal (>= 0.95x)",
		       "fio-batched", "urio/fio-b", "(median)");
	else
		printf("\n%-11s  %10s  %10s\n", "mode", "urio IOPS", "(median)");
	fflush(stdout);
	if (o.direct && bench_mode(&o, true))
		return 1;
	if (o.buffered) {
		if (bench_mode(&o, false))
			return 1;
		printf("(page cache after the runs: %.1f%% resident; file re-read %u times between "
		       "runs)\n",
		       100 * resident(o.path), o.recached);
	}
	if (o.use_fio)
		printf("\nIOPS: the best of the -r runs of each side. Ratios: best over best, and "
		       "(median)\n"
		       "the ratio of the medians. The goal is judged on the best.\n"
		       "fio: --ioengine=io_uring --rw=randread --bs=4k --iodepth=64 --direct=1|0 "
		       "--invalidate=0 --size=1G --time_based\n"
		       "fio-batched: the same plus --iodepth_batch_submit=32 "
		       "--iodepth_batch_complete_max=64 --gtod_reduce=1 --norandommap\n");
	return 0;
}
