/* SPDX-License-Identifier: MIT */
/*
 * tests/core/test_timer.c - kernel timeouts (urio/timer.h): relative, absolute, clocks,
 * cancellation, ordering, many at once.
 *
 * Timing is only ever checked from below (a timeout never fires early); upper bounds are loose
 * sanity limits of seconds, never thresholds.
 */
#include <time.h>

/* Every test here asserts results that these faults change by design (see t_fault_unsafe). */
#define T_FAULT_UNSAFE_FILE "enomem"
#define T_FAULT_UNSAFE_WHY  "asserts that every start succeeds"
#include "helpers.h"

TestSuite(timer, .timeout = 30);

struct tmo {
	struct ur_future f;
	int calls;
	int res;
	bool more;
	uint64_t start; /* ur_now_ns() just before the start call */
	uint64_t dur;
	uint64_t at; /* ur_now_ns() in the callback */
	int order;   /* position among the completions of the test */
	int *seq;    /* the test's completion counter */
};

static void tmo_cb(struct ur_future *f, void *arg)
{
	struct tmo *t = arg;
	t->calls++;
	t->res = f->res;
	t->more = ur_future_more(f);
	t->at = ur_now_ns();
	if (t->seq)
		t->order = (*t->seq)++;
}

/* Starts @t as a timeout of @ns with @flags; the start must succeed and not complete inline. */
static void tmo_start(struct ur_loop *l, struct tmo *t, uint64_t ns, unsigned flags, int *seq)
{
	memset(t, 0, sizeof(*t));
	ur_future_init(&t->f, tmo_cb, t);
	t->seq = seq;
	t->dur = ns;
	t->start = ur_now_ns();
	int r = ur_timeout_start(l, &t->f, ns, flags);
	cr_assert_eq(r, 0, "ur_timeout_start(%llu, %#x): %s", (unsigned long long)ns, flags,
	             ur_strerror(r));
	cr_assert_eq(t->calls, 0, "timeout completed inside its start call");
	cr_assert_eq(ur_future_state(&t->f), UR_FUTURE_PENDING);
}

static int tmo_wait(struct ur_loop *l, struct tmo *t)
{
	t_run_until(l, &t->f);
	cr_assert_eq(t->calls, 1, "callback ran %d times", t->calls);
	cr_assert_not(t->more);
	return t->res;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	cr_assert_eq(clock_gettime(id, &ts), 0);
	return (uint64_t)ts.tv_sec * UR_SEC + (uint64_t)ts.tv_nsec;
}

Test(timer, now_is_monotonic_clock)
{
	uint64_t a = clock_ns(CLOCK_MONOTONIC);
	uint64_t n = ur_now_ns();
	uint64_t b = clock_ns(CLOCK_MONOTONIC);
	cr_assert_geq(n, a);
	cr_assert_leq(n, b);
}

Test(timer, relative_completes_with_zero_after_the_delay)
{
	struct ur_loop *l = t_loop();
	struct tmo t;

	tmo_start(l, &t, 20 * UR_MSEC, 0, NULL);
	ASSERT_RES(tmo_wait(l, &t), 0);
	cr_assert_geq(t.at - t.start, 20 * UR_MSEC, "fired after %llu ns",
	              (unsigned long long)(t.at - t.start));
	cr_assert_lt(t.at - t.start, 10 * UR_SEC);

	/* Zero: completes on the next turn, still with 0, still not inline. */
	tmo_start(l, &t, 0, 0, NULL);
	ASSERT_RES(tmo_wait(l, &t), 0);

	/* Longer than a second: seconds and nanoseconds both count. */
	tmo_start(l, &t, UR_SEC + 5 * UR_MSEC, 0, NULL);
	ASSERT_RES(tmo_wait(l, &t), 0);
	cr_assert_geq(t.at - t.start, UR_SEC + 5 * UR_MSEC);

	t_loop_done(&l);
}

Test(timer, absolute_completes_at_the_time)
{
	struct ur_loop *l = t_loop();
	struct tmo t;

	uint64_t when = ur_now_ns() + 30 * UR_MSEC;
	tmo_start(l, &t, when, UR_TIMEOUT_ABS, NULL);
	ASSERT_RES(tmo_wait(l, &t), 0);
	cr_assert_geq(t.at, when, "fired %llu ns early", (unsigned long long)(when - t.at));
	cr_assert_lt(t.at - when, 10 * UR_SEC);

	/* A time already past completes at once, with 0. */
	uint64_t past = ur_now_ns() - 5 * UR_MSEC;
	tmo_start(l, &t, past, UR_TIMEOUT_ABS, NULL);
	ASSERT_RES(tmo_wait(l, &t), 0);
	cr_assert_lt(t.at - t.start, 5 * UR_SEC);

	t_loop_done(&l);
}

Test(timer, boottime_and_realtime_clocks)
{
	struct ur_loop *l = t_loop();
	struct tmo t;

	uint64_t when = clock_ns(CLOCK_BOOTTIME) + 20 * UR_MSEC;
	tmo_start(l, &t, when, UR_TIMEOUT_ABS | UR_TIMEOUT_BOOTTIME, NULL);
	ASSERT_RES(tmo_wait(l, &t), 0);
	cr_assert_geq(clock_ns(CLOCK_BOOTTIME), when);

	when = clock_ns(CLOCK_REALTIME) + 20 * UR_MSEC;
	tmo_start(l, &t, when, UR_TIMEOUT_ABS | UR_TIMEOUT_REALTIME, NULL);
	ASSERT_RES(tmo_wait(l, &t), 0);
	cr_assert_geq(clock_ns(CLOCK_REALTIME), when);

	tmo_start(l, &t, 10 * UR_MSEC, UR_TIMEOUT_BOOTTIME, NULL);
	ASSERT_RES(tmo_wait(l, &t), 0);
	cr_assert_geq(t.at - t.start, 10 * UR_MSEC);

	t_loop_done(&l);
}

Test(timer, invalid_flags_are_einval_and_never_complete)
{
	struct ur_loop *l = t_loop();
	struct tmo bad, t;
	memset(&bad, 0, sizeof(bad));
	ur_future_init(&bad.f, tmo_cb, &bad);

	ASSERT_RES(ur_timeout_start(l, &bad.f, UR_MSEC, 1u << 3), -EINVAL);
	ASSERT_RES(ur_timeout_start(l, &bad.f, UR_MSEC, 1u << 31), -EINVAL);
	ASSERT_RES(ur_timeout_start(l, &bad.f, UR_MSEC, UR_TIMEOUT_BOOTTIME | UR_TIMEOUT_REALTIME),
	           -EINVAL);
	ASSERT_RES(ur_timeout_start(l, &bad.f, UR_MSEC,
	                            UR_TIMEOUT_ABS | UR_TIMEOUT_BOOTTIME | UR_TIMEOUT_REALTIME),
	           -EINVAL);
	cr_assert_eq(ur_future_state(&bad.f), UR_FUTURE_IDLE);
	cr_assert_eq(ur_loop_pending(l), 0);

	/* Run the loop past when it would have fired: it never completes. */
	tmo_start(l, &t, 10 * UR_MSEC, 0, NULL);
	ASSERT_RES(tmo_wait(l, &t), 0);
	cr_assert_eq(bad.calls, 0);

	/* A pending future cannot be started again. */
	tmo_start(l, &t, 10 * UR_SEC, 0, NULL);
	ASSERT_RES(ur_timeout_start(l, &t.f, UR_MSEC, 0), -EBUSY);
	ASSERT_RES(ur_cancel(&t.f), 0);
	ASSERT_RES(tmo_wait(l, &t), -ECANCELED);

	t_loop_done(&l);
}

Test(timer, cancelled_timeout_completes_once_with_ecanceled)
{
	struct ur_loop *l = t_loop();
	struct tmo t;

	/* Cancelled once it is in the kernel. */
	tmo_start(l, &t, 10 * UR_SEC, 0, NULL);
	cr_assert_geq(ur_loop_run(l, UR_RUN_NOWAIT), 0);
	cr_assert_eq(t.calls, 0);
	ASSERT_RES(ur_cancel(&t.f), 0);
	cr_assert_eq(t.calls, 0, "ur_cancel completed the future inline");
	ASSERT_RES(ur_cancel(&t.f), -EALREADY);
	ASSERT_RES(tmo_wait(l, &t), -ECANCELED);
	cr_assert_lt(t.at - t.start, 5 * UR_SEC, "cancellation waited for the timer");
	cr_assert_eq(ur_loop_run(l, UR_RUN_NOWAIT), 0);
	cr_assert_eq(t.calls, 1);
	ASSERT_RES(ur_cancel(&t.f), -ENOENT);

	/* Cancelled before the loop ever submitted it. */
	tmo_start(l, &t, 10 * UR_SEC, 0, NULL);
	ASSERT_RES(ur_cancel(&t.f), 0);
	cr_assert_eq(t.calls, 0);
	ASSERT_RES(tmo_wait(l, &t), -ECANCELED);

	/* Cancelled after it fired: nothing to cancel, the result stands. */
	tmo_start(l, &t, UR_MSEC, 0, NULL);
	ASSERT_RES(tmo_wait(l, &t), 0);
	ASSERT_RES(ur_cancel(&t.f), -ENOENT);

	/* An absolute one too. */
	tmo_start(l, &t, ur_now_ns() + 10 * UR_SEC, UR_TIMEOUT_ABS, NULL);
	cr_assert_geq(ur_loop_run(l, UR_RUN_NOWAIT), 0);
	ASSERT_RES(ur_cancel(&t.f), 0);
	ASSERT_RES(tmo_wait(l, &t), -ECANCELED);

	t_loop_done(&l);
}

Test(timer, shorter_completes_first)
{
	struct ur_loop *l = t_loop();
	struct tmo slow, fast;
	int seq = 0;

	/* The longer one is started first, so submission order cannot explain the result. */
	tmo_start(l, &slow, 30 * UR_MSEC, 0, &seq);
	tmo_start(l, &fast, 10 * UR_MSEC, 0, &seq);
	ASSERT_RES(tmo_wait(l, &slow), 0);
	ASSERT_RES(tmo_wait(l, &fast), 0);
	cr_assert_eq(fast.order, 0, "10 ms timeout completed in position %d", fast.order);
	cr_assert_eq(slow.order, 1);
	cr_assert_geq(slow.at, fast.at);
	cr_assert_geq(fast.at - fast.start, 10 * UR_MSEC);
	cr_assert_geq(slow.at - slow.start, 30 * UR_MSEC);
	cr_assert_eq(seq, 2);

	t_loop_done(&l);
}

#define MANY 1000

/* 1,000 timeouts of random durations: each completes exactly once, with 0, never early. */
static void many_timeouts(struct ur_loop_opts *o)
{
	struct ur_loop *l = t_loop_opts(o);
	struct tmo *t = calloc(MANY, sizeof(*t));
	cr_assert_not_null(t);
	int seq = 0;
	unsigned seed = 0x5eed;
	uint64_t longest = 0;

	uint64_t t0 = ur_now_ns();
	for (int i = 0; i < MANY; i++) {
		uint64_t ns = (uint64_t)(rand_r(&seed) % 30000) * UR_USEC;
		tmo_start(l, &t[i], ns, 0, &seq);
		if (ns > longest)
			longest = ns;
	}
	cr_assert_eq(ur_loop_pending(l), MANY);
	struct ur_loop_stats st;
	ur_loop_stats(l, &st);
	if (o && (o->flags & UR_LOOP_LAZY_SUBMIT))
		cr_assert_gt(st.waiting, 0, "nothing waited in the local queue");
	int r = ur_loop_run(l, UR_RUN_DEFAULT);
	cr_assert_eq(r, 0, "ur_loop_run: %d (%s)", r, ur_strerror_name(r));
	cr_assert_geq(ur_now_ns() - t0, longest);

	cr_assert_eq(seq, MANY);
	bool *seen = calloc(MANY, sizeof(*seen));
	cr_assert_not_null(seen);
	for (int i = 0; i < MANY; i++) {
		cr_assert_eq(t[i].calls, 1, "timeout %d completed %d times", i, t[i].calls);
		ASSERT_RES(t[i].res, 0);
		cr_assert(ur_future_done(&t[i].f));
		cr_assert_geq(t[i].at - t[i].start, t[i].dur, "timeout %d (%llu ns) fired early", i,
		              (unsigned long long)t[i].dur);
		cr_assert_lt(t[i].order, MANY);
		cr_assert_not(seen[t[i].order]);
		seen[t[i].order] = true;
	}
	free(seen);
	free(t);
	t_loop_done(&l);
}

Test(timer, thousand_random_timeouts_complete_exactly_once)
{
	many_timeouts(NULL);
}

Test(timer, thousand_timeouts_through_the_local_queue)
{
	/* A tiny SQ and no submitting from start calls: most wait in urio's local queue. */
	struct ur_loop_opts o = {.sq_entries = 8, .flags = UR_LOOP_LAZY_SUBMIT};
	many_timeouts(&o);
}

struct periodic {
	struct ur_future f;
	struct ur_loop *l;
	int fired;
	int bad;
	int restart_err;
};

static void periodic_cb(struct ur_future *f, void *arg)
{
	struct periodic *p = arg;
	if (f->res != 0)
		p->bad++;
	if (++p->fired < 5) {
		int r = ur_timeout_start(p->l, f, 2 * UR_MSEC, 0);
		if (r)
			p->restart_err = r;
	}
}

Test(timer, restarted_from_its_own_callback)
{
	struct ur_loop *l = t_loop();
	struct periodic p = {.l = l};
	ur_future_init(&p.f, periodic_cb, &p);

	uint64_t t0 = ur_now_ns();
	ASSERT_RES(ur_timeout_start(l, &p.f, 2 * UR_MSEC, 0), 0);
	int r = ur_loop_run(l, UR_RUN_DEFAULT);
	cr_assert_eq(r, 0);
	ASSERT_RES(p.restart_err, 0);
	cr_assert_eq(p.fired, 5);
	cr_assert_eq(p.bad, 0);
	cr_assert(ur_future_done(&p.f));
	cr_assert_geq(ur_now_ns() - t0, 10 * UR_MSEC);

	t_loop_done(&l);
}
