/* SPDX-License-Identifier: MIT */
/*
 * tools/bench/nop.c - bench_nop: the cost of one operation through urio, against raw liburing.
 *
 * A NOP does nothing in the kernel, so what is left is the machinery around it: getting an SQE,
 * submitting, reaping the CQE, finding who waits for it and calling back. Both sides run the same
 * work in the same process: @depth operations in flight, each completion immediately starting the
 * next NOP until @count have completed.
 *
 *   urio      one future per slot; its callback restarts a NOP on itself; ur_loop_run(DEFAULT).
 *   liburing  prep NOP, io_uring_submit_and_wait(1), io_uring_for_each_cqe + io_uring_cq_advance,
 *             one new NOP per reaped CQE. Same SQ/CQ sizes and the setup flags urio ended up with
 *             (ur_loop_setup_flags()), and the ring fd registered, as urio does.
 *
 * Each (depth, side) pair is measured -r times, the two sides alternating so that drift in the
 * machine hits both; the table reports the best run (lowest time) of each, plus the ratio of the
 * medians as a check on noise. Options: -n COUNT (NOPs per run), -r REPEATS, -d DEPTH (that depth
 * only, for profiling one shape under callgrind).
 */
#include <errno.h>
#include <inttypes.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "urio.h"

#include "bench.h"

#define SQ_ENTRIES 256u
#define CQ_ENTRIES (8u * SQ_ENTRIES) /* urio's default: 8 * sq_entries */

static const unsigned depths[] = {1, 64, 256};

struct result {
	double ns;          /* wall time of the run */
	double enters;      /* io_uring_enter(2) calls made */
	unsigned long errs; /* completions with res != 0, failed starts */
};

static double now_ns(void)
{
	return bench_now_ns();
}

/* ---- urio side ---------------------------------------------------------------------------- */

struct nop_ctx {
	struct ur_loop *loop;
	uint64_t started, total;
	unsigned long errs;
};

static void nop_cb(struct ur_future *f, void *arg)
{
	struct nop_ctx *c = arg;
	if (f->res != 0)
		c->errs++;
	if (c->started < c->total) {
		c->started++;
		if (ur_nop_start(c->loop, f) < 0)
			c->errs++;
	}
}

static int run_urio(unsigned depth, uint64_t total, struct result *r)
{
	struct ur_loop_opts o = {.sq_entries = SQ_ENTRIES, .cq_entries = CQ_ENTRIES};
	struct ur_future *fs = calloc(depth, sizeof(*fs));
	struct nop_ctx c = {.total = total};
	struct ur_loop_stats st;
	int ret;

	if (!fs)
		return -ENOMEM;
	ret = ur_loop_new(&c.loop, &o);
	if (ret < 0) {
		free(fs);
		return ret;
	}
	double t0 = now_ns();
	for (unsigned i = 0; i < depth && c.started < total; i++) {
		ur_future_init(&fs[i], nop_cb, &c);
		c.started++;
		if (ur_nop_start(c.loop, &fs[i]) < 0)
			c.errs++;
	}
	ret = ur_loop_run(c.loop, UR_RUN_DEFAULT);
	r->ns = now_ns() - t0;
	ur_loop_stats(c.loop, &st);
	r->enters = (double)st.enters;
	r->errs = c.errs;
	ur_loop_free(&c.loop);
	free(fs);
	return ret < 0 ? ret : 0;
}

/* ---- raw liburing side -------------------------------------------------------------------- */

static int run_raw(unsigned depth, uint64_t total, uint32_t setup_flags, struct result *r)
{
	struct bench_raw raw;
	int ret = bench_raw_nops(depth, total, setup_flags, SQ_ENTRIES, CQ_ENTRIES, &raw);
	r->ns = raw.ns;
	r->enters = raw.enters;
	r->errs = raw.errs;
	return ret;
}

/* ---- driver ------------------------------------------------------------------------------- */

static void print_flags(uint32_t fl)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} names[] = {
	    {IORING_SETUP_SINGLE_ISSUER, "SINGLE_ISSUER"},
	    {IORING_SETUP_DEFER_TASKRUN, "DEFER_TASKRUN"},
	    {IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN"},
	    {IORING_SETUP_TASKRUN_FLAG, "TASKRUN_FLAG"},
	    {IORING_SETUP_SUBMIT_ALL, "SUBMIT_ALL"},
	};
	printf("0x%" PRIx32, fl);
	const char *sep = " (";
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (fl & names[i].bit) {
			printf("%s%s", sep, names[i].name);
			sep = "|";
		}
	}
	printf("%s", sep[0] == '|' ? ")" : "");
}

static void usage(const char *argv0)
{
	fprintf(stderr,
	        "usage: %s [-c] [-n COUNT] [-r REPEATS] [-d DEPTH]\n"
	        "  -c          time with the process's CPU clock, not the wall clock\n"
	        "  -n COUNT    NOPs completed per run (default 2000000)\n"
	        "  -r REPEATS  runs per depth and side; the best is reported (default 5)\n"
	        "  -d DEPTH    measure this queue depth only, 1..256 (default 1, 64 and 256)\n",
	        argv0);
}

int main(int argc, char **argv)
{
	uint64_t count = 2000000;
	unsigned repeats = 5, only = 0;
	int opt;

	while ((opt = getopt(argc, argv, "cn:r:d:h")) != -1) {
		switch (opt) {
		case 'n':
			count = strtoull(optarg, NULL, 0);
			break;
		case 'r':
			repeats = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'c':
			bench_clock = CLOCK_PROCESS_CPUTIME_ID;
			break;
		case 'd':
			only = (unsigned)strtoul(optarg, NULL, 0);
			if (only == 0 || only > SQ_ENTRIES) {
				usage(argv[0]);
				return 2;
			}
			break;
		default:
			usage(argv[0]);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (count == 0 || repeats == 0 || repeats > 1000) {
		usage(argv[0]);
		return 2;
	}

	/* The flags urio's setup settled on on this kernel; the raw ring gets exactly these. */
	struct ur_loop *probe;
	int ret = ur_loop_new(&probe, NULL);
	if (ret < 0) {
		fprintf(stderr, "bench_nop: ur_loop_new: %s\n", ur_strerror(ret));
		return 1;
	}
	uint32_t flags = ur_loop_setup_flags(probe);
	ur_loop_free(&probe);

	printf("bench_nop: %" PRIu64 " NOPs per run, best of %u runs (lowest %s time), "
	       "ring %u SQ / %u CQ\n",
	       count, repeats, bench_clock == CLOCK_MONOTONIC ? "wall" : "CPU", SQ_ENTRIES,
	       CQ_ENTRIES);
	printf("setup flags for both rings: ");
	print_flags(flags);
	printf("\n\n");
	printf("%5s  %11s  %15s  %10s  %14s  %11s  %12s  %10s  %s\n", "depth", "urio Mops/s",
	       "liburing Mops/s", "urio ns/op", "liburing ns/op", "ratio(best)", "ratio(median)",
	       "enters/op", "goal (<= 1.1x)");

	size_t ndepths = only ? 1 : sizeof(depths) / sizeof(depths[0]);
	for (size_t d = 0; d < ndepths; d++) {
		unsigned depth = only ? only : depths[d];
		double u[1000], w[1000], best_u = 0, best_w = 0, enters_u = 0, enters_w = 0;
		struct result r;

		/* One untimed warm-up pair: page faults on the rings, caches, CPU frequency. */
		if (run_urio(depth, count / 10 + depth, &r) < 0 ||
		    run_raw(depth, count / 10 + depth, flags, &r) < 0) {
			fprintf(stderr, "bench_nop: ring setup failed\n");
			return 1;
		}
		for (unsigned i = 0; i < repeats; i++) {
			ret = run_urio(depth, count, &r);
			if (ret < 0 || r.errs) {
				fprintf(stderr, "bench_nop: urio run failed: %s, %lu errors\n",
				        ur_strerror(ret), r.errs);
				return 1;
			}
			u[i] = r.ns / (double)count;
			if (i == 0 || u[i] < best_u) {
				best_u = u[i];
				enters_u = r.enters / (double)count;
			}
			ret = run_raw(depth, count, flags, &r);
			if (ret < 0 || r.errs) {
				fprintf(stderr, "bench_nop: liburing run failed: %s, %lu errors\n",
				        strerror(-ret), r.errs);
				return 1;
			}
			w[i] = r.ns / (double)count;
			if (i == 0 || w[i] < best_w) {
				best_w = w[i];
				enters_w = r.enters / (double)count;
			}
		}
		double ratio = best_u / best_w;
		double ratio_med = median(u, repeats) / median(w, repeats);
		char enters[32];
		snprintf(enters, sizeof(enters), "%.3f/%.3f", enters_u, enters_w);
		printf("%5u  %11.2f  %15.2f  %10.1f  %14.1f  %10.2fx  %11.2fx  %10s  %s\n", depth,
		       1e3 / best_u, 1e3 / best_w, best_u, best_w, ratio, ratio_med, enters,
		       depth < 64     ? "(none at depth 1)"
		       : ratio <= 1.1 ? "met"
		                      : "MISSED");
	}
	printf("\nratio = urio ns/op / liburing ns/op; enters/op = io_uring_enter calls per NOP, "
	       "urio/liburing.\n");
	return 0;
}
