/* SPDX-License-Identifier: MIT */
/*
 * tools/bench/sleep.c - bench_sleep: many tasks sleeping at once, against Python's asyncio doing
 * the same in the same run, and what a deadline that does not fire costs.
 *
 *   sleep     N tasks (a task group) each ur_sleep(MS), from the first spawn until the last has
 *             returned: wall time, and the peak RSS of the process that ran it (each side runs in
 *             a child of its own, measured with wait4). The anchor is python3 running
 *             asyncio.gather() over N asyncio.sleep(MS) tasks, timed the same way. Also the SQEs
 *             and CQEs the loop handled for the whole run (ur_loop_stats): the sleeps are entries
 *             of the loop's timer heap, so they need none of their own.
 *   deadline  D ur_nop() calls, each inside its own timeout scope of 10 s that never fires,
 *             against the same NOPs without scopes: SQEs and CQEs per call (must be the same)
 *             and the time per call.
 *
 * Usage: bench_sleep [-n TASKS] [-m MS] [-d NOPS] [-p]   (-p: leave Python out, e.g. for 10^6)
 * Prints a ratio per figure; the goal (issue 6) is wall <= 1.0x asyncio's.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "urio.h"

struct result {
	double wall_s;
	long rss_kib;
	uint64_t sqes, cqes;
	int err;
};

static uint64_t sleep_ns;

static int sleeper(void *arg)
{
	(void)arg;
	return ur_sleep(sleep_ns);
}

static int sleep_main(void *arg)
{
	struct result *r = arg;
	struct ur_task_group g;
	struct ur_loop_stats a, b;
	unsigned long n = (unsigned long)r->sqes; /* the count comes in here */
	ur_loop_stats(ur_current_loop(), &a);
	uint64_t t0 = ur_now_ns();
	ur_group_init(&g, ur_current_loop());
	for (unsigned long i = 0; i < n; i++) {
		int e = ur_group_spawn(&g, sleeper, NULL, NULL);
		if (e < 0)
			return e;
	}
	int e = ur_group_wait(&g);
	r->wall_s = (double)(ur_now_ns() - t0) / 1e9;
	ur_loop_stats(ur_current_loop(), &b);
	r->sqes = b.submitted - a.submitted;
	r->cqes = b.reaped - a.reaped;
	return e;
}

/* Runs @fn in a child; its result comes back through a pipe, its peak RSS through wait4. */
static int in_child(int (*fn)(struct result *), struct result *r)
{
	int p[2];
	if (pipe(p) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		close(p[0]);
		r->err = fn(r);
		ssize_t w = write(p[1], r, sizeof(*r));
		_exit(w == (ssize_t)sizeof(*r) ? 0 : 1);
	}
	close(p[1]);
	ssize_t got = read(p[0], r, sizeof(*r));
	close(p[0]);
	int status;
	struct rusage ru;
	if (wait4(pid, &status, 0, &ru) < 0)
		return -errno;
	if (got != (ssize_t)sizeof(*r) || !WIFEXITED(status) || WEXITSTATUS(status))
		return -EIO;
	r->rss_kib = ru.ru_maxrss;
	return r->err;
}

static int run_urio(struct result *r)
{
	int res = 0;
	int e = ur_run(NULL, sleep_main, r, &res);
	return e < 0 ? e : res;
}

static unsigned long n_tasks = 100000;
static unsigned ms = 200;

static int run_python(struct result *r)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd),
	         "import asyncio, time\n"
	         "async def main(n, s):\n"
	         "    t0 = time.monotonic()\n"
	         "    await asyncio.gather(*(asyncio.sleep(s) for _ in range(n)))\n"
	         "    print(time.monotonic() - t0)\n"
	         "asyncio.run(main(%lu, %f))\n",
	         n_tasks, ms / 1000.0);
	/* python3 -c in a child of our own, so wait4 gives its peak RSS alone. */
	char path[] = "/tmp/bench_sleep_XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return -errno;
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fd, 1);
		execlp("python3", "python3", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	int status;
	struct rusage ru;
	if (pid < 0 || wait4(pid, &status, 0, &ru) < 0) {
		close(fd);
		unlink(path);
		return -ECHILD;
	}
	char buf[64] = {0};
	ssize_t got = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	unlink(path);
	if (got <= 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		return -ENOENT;
	r->wall_s = strtod(buf, NULL);
	r->rss_kib = ru.ru_maxrss;
	return 0;
}

/* --- a deadline that does not fire ----------------------------------------------------------- */

static unsigned long n_nops = 100000;

struct nops {
	bool scoped;
	double ns_per_call;
	double sqes_per_call, cqes_per_call;
};

static int nop_main(void *arg)
{
	struct nops *x = arg;
	struct ur_loop_stats a, b;
	struct ur_timeout to;
	ur_loop_stats(ur_current_loop(), &a);
	uint64_t t0 = ur_now_ns();
	for (unsigned long i = 0; i < n_nops; i++) {
		if (x->scoped)
			ur_timeout_begin(&to, 10 * UR_SEC);
		int e = ur_nop();
		if (x->scoped && ur_timeout_end(&to) < 0)
			return -EIO;
		if (e < 0)
			return e;
	}
	x->ns_per_call = (double)(ur_now_ns() - t0) / (double)n_nops;
	ur_loop_stats(ur_current_loop(), &b);
	x->sqes_per_call = (double)(b.submitted - a.submitted) / (double)n_nops;
	x->cqes_per_call = (double)(b.reaped - a.reaped) / (double)n_nops;
	return 0;
}

int main(int argc, char **argv)
{
	bool python = true;
	int c;
	while ((c = getopt(argc, argv, "n:m:d:p")) != -1) {
		switch (c) {
		case 'n':
			n_tasks = strtoul(optarg, NULL, 10);
			break;
		case 'm':
			ms = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'd':
			n_nops = strtoul(optarg, NULL, 10);
			break;
		case 'p':
			python = false;
			break;
		default:
			fprintf(stderr, "usage: bench_sleep [-n TASKS] [-m MS] [-d NOPS] [-p]\n");
			return 2;
		}
	}
	sleep_ns = (uint64_t)ms * UR_MSEC;

	printf("sleep: %lu tasks each sleeping %u ms\n", n_tasks, ms);
	struct result u = {.sqes = n_tasks}, py = {0};
	int e = in_child(run_urio, &u);
	if (e < 0) {
		fprintf(stderr, "bench_sleep: urio: %s\n", ur_strerror(e));
		return 1;
	}
	printf("  %-8s wall %7.3f s   peak RSS %8.1f MiB   SQEs %" PRIu64 ", CQEs %" PRIu64 "\n",
	       "urio", u.wall_s, u.rss_kib / 1024.0, u.sqes, u.cqes);
	if (python) {
		e = run_python(&py);
		if (e < 0) {
			printf("  asyncio  (python3 not available)\n");
		} else {
			printf("  %-8s wall %7.3f s   peak RSS %8.1f MiB\n", "asyncio", py.wall_s,
			       py.rss_kib / 1024.0);
			printf("  ratio    wall %.2fx asyncio (goal <= 1.0x: %s), RSS %.2fx\n",
			       u.wall_s / py.wall_s, u.wall_s <= py.wall_s ? "met" : "MISSED",
			       (double)u.rss_kib / (double)py.rss_kib);
		}
	}

	struct nops plain = {.scoped = false}, scoped = {.scoped = true};
	int r1 = 0, r2 = 0;
	if (ur_run(NULL, nop_main, &plain, &r1) < 0 || r1 < 0 ||
	    ur_run(NULL, nop_main, &scoped, &r2) < 0 || r2 < 0) {
		fprintf(stderr, "bench_sleep: nops failed\n");
		return 1;
	}
	printf("deadline: %lu ur_nop() calls, each in a 10 s timeout scope that never fires\n",
	       n_nops);
	printf("  %-12s %6.1f ns/call   SQEs/call %.4f   CQEs/call %.4f\n", "no scope",
	       plain.ns_per_call, plain.sqes_per_call, plain.cqes_per_call);
	printf("  %-12s %6.1f ns/call   SQEs/call %.4f   CQEs/call %.4f\n", "scope",
	       scoped.ns_per_call, scoped.sqes_per_call, scoped.cqes_per_call);
	printf("  extra SQEs per deadline %.4f, extra CQEs %.4f, time %.2fx\n",
	       scoped.sqes_per_call - plain.sqes_per_call,
	       scoped.cqes_per_call - plain.cqes_per_call, scoped.ns_per_call / plain.ns_per_call);
	return 0;
}
