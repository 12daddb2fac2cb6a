/* SPDX-License-Identifier: MIT */
/*
 * tools/bench/task.c - bench_task: what tasks cost, each figure against its anchor in the same run.
 *
 *   switch  two tasks handing the CPU to each other with ur_yield(), against two ucontext_t
 *           contexts doing swapcontext() back and forth. One "switch" is one hand-over from one
 *           task to the other: for urio a yield (task -> loop scheduler -> other task, two register
 *           switches and a run-queue push and pop, and one kernel entry per 128 yields: the loop
 *           runs two 64-task budgets between entries), for ucontext one swapcontext (one
 *           register switch and one rt_sigprocmask syscall).
 *   spawn   ur_spawn + ur_join of a task that returns at once, in batches (spawn the batch, then
 *           join it) from a main task; against pthread_create + pthread_join in the same batches.
 *   sleep   resident memory of many tasks suspended in ur_sleep(): VmRSS and VmPTE before and
 *           while all of them sleep, with vm.max_map_count and the lines of /proc/self/maps.
 *   await   N tasks each looping on ur_nop() (start, suspend, completion, resume) until a fixed
 *           total is done, against raw liburing keeping N NOPs in flight (prep, submit_and_wait,
 *           reap, resubmit) on a ring with urio's sizes and the setup flags urio settled on.
 *   enters  io_uring_enter calls per NOP of those awaiters under ur_run, under
 *           ur_loop_run(UR_RUN_DEFAULT) and for raw liburing (counts from ur_loop_stats).
 *
 * Timed figures are measured -r times, the two sides alternating so that drift in the machine hits
 * both; tables report the best run (lowest time) of each side, and the ratio of the medians as a
 * check on noise. Options: -n SCALE multiplies every count; -b picks the benchmarks; -d one depth
 * of "await" only; -t and -s shape "sleep"; -o runs one side only, for a profiler. Single-threaded
 * (but for the pthread anchor): pin it (taskset) for steadier figures.
 */
#include <errno.h>
#include <inttypes.h>
#include <liburing.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "urio.h"

#include "bench.h"

#define MAX_REPEATS 100
#define SQ_ENTRIES  256u /* urio's default loop: 256 SQ entries, 8 * 256 CQ entries */
#define CQ_ENTRIES  (8u * SQ_ENTRIES)

static const unsigned depths[] = {1, 64, 256};

static unsigned repeats = 5;

/* Which sides run (-o): both by default; one alone, to profile it (callgrind, perf). */
enum {
	SIDE_URIO = 1,
	SIDE_ANCHOR = 2
};
static unsigned sides = SIDE_URIO | SIDE_ANCHOR;

/* The verdict on a goal, or none when a side was left out. */
static const char *verdict(double ratio, bool met)
{
	return isnan(ratio) ? "n/a (one side only)" : met ? "met" : "MISSED";
}

static double now_ns(void)
{
	return bench_now_ns();
}

static void die(const char *what, int err)
{
	fprintf(stderr, "bench_task: %s: %s\n", what, ur_strerror(err < 0 ? err : -err));
	exit(1);
}

/* Best (lowest) of @v[0..n). */
static double best(const double *v, unsigned n)
{
	double b = v[0];
	for (unsigned i = 1; i < n; i++)
		if (v[i] < b)
			b = v[i];
	return b;
}

/* Summary of the two sides of one measurement: best of each, ratio of bests and of medians. */
struct pair {
	double a_best, b_best, ratio_best, ratio_median;
};

static struct pair summarize(double *a, double *b, unsigned n)
{
	struct pair p = {.a_best = best(a, n), .b_best = best(b, n)};
	p.ratio_best = p.a_best / p.b_best;
	p.ratio_median = median(a, n) / median(b, n);
	return p;
}

static struct ur_loop *loop_new(void)
{
	struct ur_loop *l;
	int ret = ur_loop_new(&l, NULL);
	if (ret < 0)
		die("ur_loop_new", ret);
	return l;
}

/* ---- switch: ur_yield between two tasks -------------------------------------------------- */

static int yielder(void *arg)
{
	long n = *(const long *)arg;
	for (long i = 0; i < n; i++)
		if (ur_yield() < 0)
			return -1;
	return 0;
}

/* ns per hand-over for @n yields in all, half by each task; *@enters: kernel entries per yield. */
static double switch_urio(long n, double *enters)
{
	struct ur_loop *l = loop_new();
	struct ur_task *a, *b;
	struct ur_loop_stats st0, st1;
	long half = n / 2;

	int ret = ur_spawn(l, &a, yielder, &half, NULL);
	if (ret == 0)
		ret = ur_spawn(l, &b, yielder, &half, NULL);
	if (ret < 0)
		die("ur_spawn", ret);
	ur_loop_stats(l, &st0);
	double t0 = now_ns();
	ret = ur_loop_run(l, UR_RUN_DEFAULT);
	double ns = now_ns() - t0;
	ur_loop_stats(l, &st1);
	if (ret < 0)
		die("ur_loop_run", ret);
	if (ur_join(a) != 0 || ur_join(b) != 0)
		die("yielder", -EPROTO);
	ur_loop_free(&l);
	*enters = (double)(st1.enters - st0.enters) / (double)(2 * half);
	return ns / (double)(2 * half);
}

static ucontext_t uc_main, uc_peer;

static void uc_peer_fn(void)
{
	for (;;)
		swapcontext(&uc_peer, &uc_main);
}

/* ns per swapcontext for @n in all, half each way; @stack holds the peer. */
static double switch_ucontext(long n, void *stack, size_t size)
{
	long half = n / 2;
	if (getcontext(&uc_peer))
		die("getcontext", errno);
	uc_peer.uc_stack.ss_sp = stack;
	uc_peer.uc_stack.ss_size = size;
	uc_peer.uc_link = NULL;
	makecontext(&uc_peer, uc_peer_fn, 0);
	swapcontext(&uc_main, &uc_peer); /* first entry, out of the timing */
	double t0 = now_ns();
	for (long i = 0; i < half; i++)
		swapcontext(&uc_main, &uc_peer);
	return (now_ns() - t0) / (double)(2 * half);
}

static void bench_switch(double scale)
{
	long n = (long)(10e6 * scale);
	size_t size = 256 * 1024;
	double u[MAX_REPEATS], c[MAX_REPEATS], enters = 0, e;

	if (n < 2)
		n = 2;
	void *stack = mmap(NULL, size, PROT_READ | PROT_WRITE,
	                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED)
		die("mmap", errno);
	if (sides & SIDE_URIO)
		switch_urio(n / 10, &e); /* warm-up: caches, page faults, CPU clock */
	if (sides & SIDE_ANCHOR)
		switch_ucontext(n / 10, stack, size);
	for (unsigned i = 0; i < repeats; i++) {
		u[i] = sides & SIDE_URIO ? switch_urio(n, &e) : NAN;
		if (i == 0 || u[i] <= best(u, i))
			enters = e;
		c[i] = sides & SIDE_ANCHOR ? switch_ucontext(n, stack, size) : NAN;
	}
	munmap(stack, size);
	struct pair p = summarize(c, u, repeats);
	printf("1. task switch: %ld hand-overs between two tasks, best of %u runs\n", n, repeats);
	printf("  %-34s %10s %10s\n", "", "ns/switch", "enters/sw");
	printf("  %-34s %10.1f %10.4f\n", "urio: ur_yield, 2 tasks", p.b_best, enters);
	printf("  %-34s %10.1f %10s\n", "ucontext: swapcontext, 2 contexts", p.a_best, "-");
	printf("  ratio ucontext/urio: %.1fx (medians: %.1fx); goal >= 20x (issue 6): %s\n\n",
	       p.ratio_best, p.ratio_median, verdict(p.ratio_best, p.ratio_best >= 20));
}

/* ---- spawn + join ------------------------------------------------------------------------- */

static int trivial(void *arg)
{
	(void)arg;
	return 0;
}

struct spawn_job {
	long batches;
	unsigned batch;
	double ns;
};

static int spawn_main(void *arg)
{
	struct spawn_job *j = arg;
	struct ur_loop *l = ur_current_loop();
	struct ur_task **ts = calloc(j->batch, sizeof(*ts));
	if (!ts)
		return -ENOMEM;
	int ret = 0;
	double t0 = now_ns();
	for (long b = 0; b < j->batches && ret == 0; b++) {
		unsigned n = 0;
		while (n < j->batch && (ret = ur_spawn(l, &ts[n], trivial, NULL, NULL)) == 0)
			n++;
		for (unsigned i = 0; i < n; i++)
			if (ur_join(ts[i]) != 0 && ret == 0)
				ret = -EPROTO;
	}
	j->ns = (now_ns() - t0) / ((double)j->batches * j->batch);
	free(ts);
	return ret;
}

static double spawn_urio(long batches, unsigned batch)
{
	struct ur_loop *l = loop_new();
	struct spawn_job j = {.batches = batches, .batch = batch};
	int res, ret = ur_run(l, spawn_main, &j, &res);
	if (ret < 0 || res < 0)
		die("spawn + join", ret < 0 ? ret : res);
	ur_loop_free(&l);
	return j.ns;
}

static void *pt_trivial(void *arg)
{
	return arg;
}

static double spawn_pthread(long batches, unsigned batch)
{
	pthread_t *ts = calloc(batch, sizeof(*ts));
	if (!ts)
		die("calloc", ENOMEM);
	double t0 = now_ns();
	for (long b = 0; b < batches; b++) {
		for (unsigned i = 0; i < batch; i++) {
			int ret = pthread_create(&ts[i], NULL, pt_trivial, NULL);
			if (ret)
				die("pthread_create", ret);
		}
		for (unsigned i = 0; i < batch; i++)
			pthread_join(ts[i], NULL);
	}
	double ns = (now_ns() - t0) / ((double)batches * batch);
	free(ts);
	return ns;
}

static void bench_spawn(double scale)
{
	const unsigned batch = 1000;
	long batches = (long)(1000 * scale), pt_batches = batches / 20;
	double u[MAX_REPEATS], t[MAX_REPEATS];

	if (batches < 1)
		batches = 1;
	if (pt_batches < 1)
		pt_batches = 1;
	if (sides & SIDE_URIO)
		spawn_urio(batches / 10 + 1, batch);
	if (sides & SIDE_ANCHOR)
		spawn_pthread(1, batch);
	for (unsigned i = 0; i < repeats; i++) {
		u[i] = sides & SIDE_URIO ? spawn_urio(batches, batch) : NAN;
		t[i] = sides & SIDE_ANCHOR ? spawn_pthread(pt_batches, batch) : NAN;
	}
	struct pair p = summarize(t, u, repeats);
	printf("2a. spawn + join of a task that returns at once, batches of %u, best of %u runs\n",
	       batch, repeats);
	printf("  %-40s %10s %10s\n", "", "tasks", "ns/task");
	printf("  %-40s %10ld %10.1f\n", "urio: ur_spawn + ur_join (in a task)", batches * batch,
	       p.b_best);
	printf("  %-40s %10ld %10.1f\n", "pthread_create + pthread_join", pt_batches * batch,
	       p.a_best);
	printf("  ratio pthread/urio: %.1fx (medians: %.1fx); no goal set\n\n", p.ratio_best,
	       p.ratio_median);
}

/* ---- sleeping tasks: memory -------------------------------------------------------------- */

/* The value in kB of @field ("VmRSS:") of /proc/self/status, or -1. */
static long status_kib(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	size_t n = strlen(field);
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, n) == 0) {
			v = strtol(line + n, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static long count_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	long n = 0;
	int c;
	if (!f)
		return -1;
	while ((c = getc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static long read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;
	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

struct sleep_job {
	unsigned n;
	uint64_t sleep_ns;
	unsigned asleep, woke; /* tasks in ur_sleep now; tasks back from it */
	unsigned woke_early;   /* tasks already back from it when memory was read */
	double t_all;          /* when main saw all of them asleep */
	long rss0, rss1, pte0, pte1, maps0, maps1;
	int err;
};

static int sleeper(void *arg)
{
	struct sleep_job *j = arg;
	j->asleep++;
	int ret = ur_sleep(j->sleep_ns);
	j->asleep--;
	j->woke++;
	return ret;
}

static int sleep_main(void *arg)
{
	struct sleep_job *j = arg;
	struct ur_loop *l = ur_current_loop();
	struct ur_task **ts = calloc(j->n, sizeof(*ts));
	if (!ts)
		return -ENOMEM;
	/* Touched now, so that "before" counts it: the array is the benchmark's, not urio's. */
	memset(ts, 0, j->n * sizeof(*ts));
	j->rss0 = status_kib("VmRSS:");
	j->pte0 = status_kib("VmPTE:");
	j->maps0 = count_lines("/proc/self/maps");
	double t0 = now_ns();
	for (unsigned i = 0; i < j->n; i++) {
		int ret = ur_spawn(l, &ts[i], sleeper, j, NULL);
		if (ret < 0)
			return ret;
	}
	while (j->asleep + j->woke < j->n)
		ur_yield();
	j->t_all = now_ns() - t0;
	j->woke_early = j->woke;
	j->rss1 = status_kib("VmRSS:");
	j->pte1 = status_kib("VmPTE:");
	j->maps1 = count_lines("/proc/self/maps");
	for (unsigned i = 0; i < j->n; i++) {
		int ret = ur_join(ts[i]);
		if (ret < 0 && !j->err)
			j->err = ret;
	}
	free(ts);
	return 0;
}

static void bench_sleep(unsigned n, double secs)
{
	struct ur_loop *l = loop_new();
	struct sleep_job j = {.n = n, .sleep_ns = (uint64_t)(secs * 1e9)};
	int res, ret = ur_run(l, sleep_main, &j, &res);
	if (ret < 0 || res < 0 || j.err)
		die("sleeping tasks", ret < 0 ? ret : res < 0 ? res : j.err);
	ur_loop_free(&l);

	double mib = (double)(j.rss1 - j.rss0) / 1024;
	printf("2b. memory of %u tasks suspended in ur_sleep(%.1f s), default 256 KiB stacks\n", n,
	       secs);
	printf("  %-30s %12s %12s %12s\n", "", "before", "all asleep", "per task");
	printf("  %-30s %12ld %12ld %12.2f\n", "VmRSS (KiB)", j.rss0, j.rss1,
	       (double)(j.rss1 - j.rss0) / n);
	printf("  %-30s %12ld %12ld %12.2f\n", "VmPTE (KiB, page tables)", j.pte0, j.pte1,
	       (double)(j.pte1 - j.pte0) / n);
	printf("  %-30s %12ld %12ld\n", "lines of /proc/self/maps", j.maps0, j.maps1);
	printf(
	    "  vm.max_map_count %ld; spawn + run until all asleep: %.2f us/task; all %u asleep at "
	    "once: %s\n",
	    read_long("/proc/sys/vm/max_map_count"), j.t_all / 1e3 / n, n,
	    j.woke_early == 0 ? "yes" : "NO (raise -s)");
	printf("  RSS with all asleep: %.1f MiB in all, %.1f MiB added (%.2f KiB per task); goal "
	       "<= 1 GiB in all: %s\n\n",
	       (double)j.rss1 / 1024, mib, (double)(j.rss1 - j.rss0) / n,
	       j.rss1 <= 1024L * 1024 ? "met" : "MISSED");
}

/* ---- await round trip ----------------------------------------------------------------------- */

struct nop_job {
	long ops;
	long errs;
};

static int nopper(void *arg)
{
	struct nop_job *j = arg;
	for (long i = 0; i < j->ops; i++)
		if (ur_nop() != 0)
			j->errs++;
	return 0;
}

/* @depth tasks sharing @total NOPs; ns per NOP, *@enters kernel entries per NOP. */
static double await_urio(unsigned depth, long total, double *enters)
{
	struct ur_loop *l = loop_new();
	struct ur_task *ts[256];
	struct nop_job jobs[256];
	struct ur_loop_stats st0, st1;

	for (unsigned i = 0; i < depth; i++) {
		jobs[i] = (struct nop_job){.ops = total / depth + (i < total % depth)};
		int ret = ur_spawn(l, &ts[i], nopper, &jobs[i], NULL);
		if (ret < 0)
			die("ur_spawn", ret);
	}
	ur_loop_stats(l, &st0);
	double t0 = now_ns();
	int ret = ur_loop_run(l, UR_RUN_DEFAULT);
	double ns = now_ns() - t0;
	ur_loop_stats(l, &st1);
	if (ret < 0)
		die("ur_loop_run", ret);
	for (unsigned i = 0; i < depth; i++)
		if (ur_join(ts[i]) != 0 || jobs[i].errs)
			die("ur_nop", -EPROTO);
	ur_loop_free(&l);
	*enters = (double)(st1.enters - st0.enters) / (double)total;
	return ns / (double)total;
}

struct run_job {
	unsigned depth;
	long total;
	struct ur_task *ts[256];
	struct nop_job jobs[256];
};

/* ur_run's main task: spawns the awaiters and joins them. */
static int run_main(void *arg)
{
	struct run_job *r = arg;
	for (unsigned i = 0; i < r->depth; i++) {
		r->jobs[i] =
		    (struct nop_job){.ops = r->total / r->depth + (i < r->total % r->depth)};
		int ret = ur_spawn(ur_current_loop(), &r->ts[i], nopper, &r->jobs[i], NULL);
		if (ret < 0)
			return ret;
	}
	for (unsigned i = 0; i < r->depth; i++)
		if (ur_join(r->ts[i]) != 0 || r->jobs[i].errs)
			return -EPROTO;
	return 0;
}

/* The same awaiters under ur_run (spawned and joined by its main task); as await_urio. */
static double await_urio_run(unsigned depth, long total, double *enters)
{
	struct ur_loop *l = loop_new();
	struct run_job *r = calloc(1, sizeof(*r));
	struct ur_loop_stats st0, st1;
	int res = 0;

	if (!r)
		die("calloc", ENOMEM);
	r->depth = depth;
	r->total = total;
	ur_loop_stats(l, &st0);
	double t0 = now_ns();
	int ret = ur_run(l, run_main, r, &res);
	double ns = now_ns() - t0;
	ur_loop_stats(l, &st1);
	if (ret < 0 || res < 0)
		die("ur_run", ret < 0 ? ret : res);
	ur_loop_free(&l);
	free(r);
	*enters = (double)(st1.enters - st0.enters) / (double)total;
	return ns / (double)total;
}

static double await_raw(unsigned depth, long total, uint32_t setup_flags, double *enters)
{
	struct bench_raw raw;
	int ret = bench_raw_nops(depth, (uint64_t)total, setup_flags, SQ_ENTRIES, CQ_ENTRIES, &raw);
	if (ret < 0)
		die("raw liburing NOPs", ret);
	if (raw.errs)
		die("raw NOP", -EPROTO);
	*enters = raw.enters / (double)total;
	return raw.ns / (double)total;
}

static void bench_await(double scale, unsigned only)
{
	long total = (long)(5e6 * scale);
	struct ur_loop *probe = loop_new();
	uint32_t flags = ur_loop_setup_flags(probe);
	ur_loop_free(&probe);
	if (total < 256)
		total = 256;

	printf("3. await round trip: %ld NOPs per run, best of %u runs, ring %u SQ / %u CQ, setup "
	       "flags 0x%" PRIx32 " on both\n",
	       total, repeats, SQ_ENTRIES, CQ_ENTRIES, flags);
	printf("  %5s %12s %12s %12s %12s %22s  %s\n", "tasks", "urio ns/op", "raw ns/op", "ratio",
	       "(medians)", "enters/op urio/raw", "goal <= 1.25x");
	size_t nd = only ? 1 : sizeof(depths) / sizeof(depths[0]);
	for (size_t d = 0; d < nd; d++) {
		unsigned depth = only ? only : depths[d];
		double u[MAX_REPEATS], w[MAX_REPEATS], eu = 0, ew = 0, e;
		if (sides & SIDE_URIO)
			await_urio(depth, total / 10, &e);
		if (sides & SIDE_ANCHOR)
			await_raw(depth, total / 10, flags, &e);
		for (unsigned i = 0; i < repeats; i++) {
			u[i] = sides & SIDE_URIO ? await_urio(depth, total, &e) : NAN;
			if (i == 0 || u[i] <= best(u, i))
				eu = e;
			w[i] = sides & SIDE_ANCHOR ? await_raw(depth, total, flags, &e) : NAN;
			if (i == 0 || w[i] <= best(w, i))
				ew = e;
		}
		struct pair p = summarize(u, w, repeats);
		char en[32];
		snprintf(en, sizeof(en), "%.4f/%.4f", eu, ew);
		printf("  %5u %12.1f %12.1f %11.2fx %11.2fx %22s  %s\n", depth, p.a_best, p.b_best,
		       p.ratio_best, p.ratio_median, en,
		       verdict(p.ratio_best, p.ratio_best <= 1.25));
	}
	printf("  ratio = urio ns/op / liburing ns/op\n\n");
}

/*
 * Kernel entries per NOP of the same awaiters driven three ways: ur_run (a main task spawns and
 * joins them), ur_loop_run(UR_RUN_DEFAULT), raw liburing. Counts, one run each; ns/op beside.
 */
static void bench_enters(double scale, unsigned only)
{
	long total = (long)(1e6 * scale);
	struct ur_loop *probe = loop_new();
	uint32_t flags = ur_loop_setup_flags(probe);
	ur_loop_free(&probe);
	if (total < 256)
		total = 256;

	printf("4. kernel entries per await: %ld NOPs, io_uring_enter calls per NOP (ns/op)\n",
	       total);
	printf("  %5s %22s %22s %22s  %s\n", "tasks", "ur_run", "ur_loop_run(DEFAULT)",
	       "raw liburing", "goal: ur_run = ur_loop_run");
	size_t nd = only ? 1 : sizeof(depths) / sizeof(depths[0]);
	for (size_t d = 0; d < nd; d++) {
		unsigned depth = only ? only : depths[d];
		double er, el, ew;
		double nr = await_urio_run(depth, total, &er);
		double nl = await_urio(depth, total, &el);
		double nw = await_raw(depth, total, flags, &ew);
		char a[32], b[32], c[32];
		snprintf(a, sizeof(a), "%.4f (%.0f)", er, nr);
		snprintf(b, sizeof(b), "%.4f (%.0f)", el, nl);
		snprintf(c, sizeof(c), "%.4f (%.0f)", ew, nw);
		printf("  %5u %22s %22s %22s  %s\n", depth, a, b, c,
		       er <= el * 1.01 ? "met" : "MISSED");
	}
	printf("\n");
}

/* ---- driver ------------------------------------------------------------------------------- */

static void usage(const char *argv0)
{
	fprintf(
	    stderr,
	    "usage: %s [-n SCALE] [-r REPEATS] [-b LIST] [-d DEPTH] [-t TASKS] [-s SECONDS]\n"
	    "                   [-o SIDE] [-c]\n"
	    "  -c          time with the process's CPU clock, not the wall clock\n"
	    "  -n SCALE    multiplies every count (default 1: 10M switches, 1M spawns,\n"
	    "              5M NOPs per run)\n"
	    "  -r REPEATS  runs per side; the best (lowest time) is reported (default 5)\n"
	    "  -b LIST     benchmarks to run, comma-separated: switch,spawn,sleep,await,\n"
	    "              enters\n"
	    "              (default all)\n"
	    "  -d DEPTH    await: this number of tasks only, 1..256 (default 1, 64, 256)\n"
	    "  -t TASKS    sleep: tasks put to sleep (default 100000)\n"
	    "  -s SECONDS  sleep: how long each sleeps (default 2)\n"
	    "  -o SIDE     timed benchmarks: run one side only, urio or anchor (to profile it)\n",
	    argv0);
}

int main(int argc, char **argv)
{
	double scale = 1, secs = 2;
	unsigned only = 0, sleepers = 100000;
	const char *list = "switch,spawn,sleep,await,enters";
	int opt;

	while ((opt = getopt(argc, argv, "cn:r:b:d:t:s:o:h")) != -1) {
		switch (opt) {
		case 'n':
			scale = strtod(optarg, NULL);
			break;
		case 'r':
			repeats = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'b':
			list = optarg;
			break;
		case 'c':
			bench_clock = CLOCK_PROCESS_CPUTIME_ID;
			break;
		case 'd':
			only = (unsigned)strtoul(optarg, NULL, 0);
			if (only == 0 || only > 256) {
				usage(argv[0]);
				return 2;
			}
			break;
		case 't':
			sleepers = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 's':
			secs = strtod(optarg, NULL);
			break;
		case 'o':
			if (strcmp(optarg, "urio") == 0) {
				sides = SIDE_URIO;
			} else if (strcmp(optarg, "anchor") == 0) {
				sides = SIDE_ANCHOR;
			} else {
				usage(argv[0]);
				return 2;
			}
			break;
		default:
			usage(argv[0]);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (!(scale > 0) || repeats == 0 || repeats > MAX_REPEATS || sleepers == 0 || !(secs > 0)) {
		usage(argv[0]);
		return 2;
	}
	struct utsname un;
	if (uname(&un) != 0)
		strcpy(un.release, "?");
	printf("bench_task: scale %g, %u runs per side; Linux %s, %ld CPUs online; %s time\n\n",
	       scale, repeats, un.release, sysconf(_SC_NPROCESSORS_ONLN),
	       bench_clock == CLOCK_MONOTONIC ? "wall" : "CPU");
	if (strstr(list, "switch"))
		bench_switch(scale);
	if (strstr(list, "spawn"))
		bench_spawn(scale);
	if (strstr(list, "sleep"))
		bench_sleep(sleepers, secs);
	if (strstr(list, "await"))
		bench_await(scale, only);
	if (strstr(list, "enters"))
		bench_enters(scale, only);
	return 0;
}
