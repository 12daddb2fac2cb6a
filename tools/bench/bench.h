/* SPDX-License-Identifier: MIT */
/*
 * tools/bench/bench.h - what the benchmarks share: statistics over repeated runs.
 */
#ifndef UR_BENCH_H
#define UR_BENCH_H

#include <liburing.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * The clock every timed figure reads: wall time by default; with -c, the process's CPU time
 * (CLOCK_PROCESS_CPUTIME_ID), which time spent waiting for a CPU on a shared machine does not
 * inflate. Both sides of a comparison always read the same clock.
 */
static clockid_t bench_clock = CLOCK_MONOTONIC;

static inline double bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(bench_clock, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Median of @v[0..n); sorts @v in place (ascending). */
static inline double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), bench_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * The anchor of bench_nop and bench_task's await: raw liburing keeping @depth NOPs in flight
 * until @total have completed (prep, submit_and_wait(1), reap every CQE, one new NOP per CQE), on
 * a ring of urio's default sizes and the setup flags urio's loop got, ring fd registered as urio
 * does. Stores the elapsed ns, the io_uring_enter calls and the failed CQEs; returns 0 or -errno.
 */
struct bench_raw {
	double ns;
	double enters;
	unsigned long errs;
};

static inline int bench_raw_nops(unsigned depth, uint64_t total, uint32_t setup_flags, unsigned sq,
                                 unsigned cq, struct bench_raw *out)
{
	struct io_uring ring;
	struct io_uring_params p;
	double t0;
	uint64_t started = 0, done = 0;
	int ret;

	memset(&p, 0, sizeof(p));
	memset(out, 0, sizeof(*out));
	p.flags = setup_flags | IORING_SETUP_CQSIZE;
	p.cq_entries = cq;
	ret = io_uring_queue_init_params(sq, &ring, &p);
	if (ret < 0)
		return ret;
	io_uring_register_ring_fd(&ring);

	t0 = bench_now_ns();
	for (unsigned i = 0; i < depth && started < total; i++, started++)
		io_uring_prep_nop(io_uring_get_sqe(&ring));
	while (done < total) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;

		ret = io_uring_submit_and_wait(&ring, 1);
		out->enters++;
		if (ret < 0 && ret != -EINTR)
			break;
		io_uring_for_each_cqe(&ring, head, cqe)
		{
			n++;
			out->errs += cqe->res != 0;
			/* At most @depth <= @sq NOPs are ever in flight: the SQ always has room. */
			if (started < total) {
				io_uring_prep_nop(io_uring_get_sqe(&ring));
				started++;
			}
		}
		io_uring_cq_advance(&ring, n);
		done += n;
	}
	out->ns = bench_now_ns() - t0;
	io_uring_queue_exit(&ring);
	return ret < 0 && ret != -EINTR ? ret : 0;
}

#endif
