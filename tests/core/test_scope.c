/* SPDX-License-Identifier: MIT */
/*
 * tests/core/test_scope.c - timeout scopes (asyncio.timeout) and the loop's timer heap: expiry
 * during every kind of wait, nesting, reschedule, ending before expiry, misuse, and what a
 * deadline that does not fire costs.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/socket.h>

#define T_FAULT_UNSAFE_FILE "enomem"
#define T_FAULT_UNSAFE_WHY                                                                         \
	"each test asserts its starts succeed so that the only error left is the scope's"
#include "helpers.h"

TestSuite(scope, .timeout = 120);

/* Runs @fn(@arg) as the main task of a loop made for the test; returns the task's result. */
static int run_task(ur_task_fn *fn, void *arg)
{
	struct ur_loop *l = t_loop();
	int result = INT32_MIN;
	cr_assert_eq(ur_run(l, fn, arg, &result), 0);
	t_loop_done(&l);
	return result;
}

/* A connected socket pair; [0] is read in the tests, [1] written (or never). */
static void pair(int sv[2])
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static int expiry_body(void *arg)
{
	int *sv = arg;
	char buf[8];
	struct ur_timeout to;
	ASSERT_RES(ur_timeout_begin(&to, 20 * UR_MSEC), 0);
	cr_assert_not(ur_timeout_expired(&to));
	ASSERT_RES((int)ur_recv(sv[0], buf, sizeof(buf), 0), -ETIMEDOUT);
	cr_assert(ur_timeout_expired(&to));
	ASSERT_RES(ur_timeout_end(&to), -ETIMEDOUT);
	cr_assert(ur_timeout_expired(&to)); /* still says so after the end */
	/* After the block, waits work again. */
	cr_assert_eq(write(sv[1], "abc", 3), 3);
	ASSERT_RES((int)ur_recv(sv[0], buf, sizeof(buf), 0), 3);
	return 0;
}

Test(scope, expiry_cancels_the_io_and_the_end_reports_it)
{
	t_fault_unsafe("eintr", "its recv must stay pending until the scope expires");
	int sv[2];
	pair(sv);
	ASSERT_RES(run_task(expiry_body, sv), 0);
	close(sv[0]);
	close(sv[1]);
}

static void *never_called(void *arg)
{
	(void)arg;
	cr_assert_fail("must not run");
	return NULL;
}

static int expired_body(void *arg)
{
	(void)arg;
	struct ur_timeout to;
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	ASSERT_RES(ur_timeout_begin(&to, 0), 0); /* 0: expired at once */
	cr_assert(ur_timeout_expired(&to));
	ASSERT_RES(ur_nop(), -ETIMEDOUT);
	ASSERT_RES(ur_sleep(UR_MSEC), -ETIMEDOUT);
	ASSERT_RES(ur_yield(), -ETIMEDOUT);
	ASSERT_RES(ur_to_thread_ptr(never_called, NULL, NULL, NULL), -ETIMEDOUT);
	struct ur_future nop;
	ur_future_init(&nop, NULL, NULL);
	cr_assert_eq(ur_nop_start(ur_current_loop(), &nop), 0);
	struct ur_future *fs[1] = {&nop};
	ASSERT_RES(ur_wait_any(fs, 1), -ETIMEDOUT);
	int r = ur_await(&nop); /* cancelled, or won the race: never left pending */
	cr_assert(r == -ETIMEDOUT || r == 0, "%d", r);
	cr_assert(ur_future_done(&nop));
	/* Closing still closes, as it does in a cancelled task. */
	ASSERT_RES(ur_close(p[0]), 0);
	cr_assert_not(t_fd_is_open(p[0]));
	ASSERT_RES(ur_timeout_end(&to), -ETIMEDOUT);
	ASSERT_RES(ur_nop(), 0);
	close(p[1]);
	return 0;
}

Test(scope, every_wait_in_an_expired_scope_fails_at_once)
{
	ASSERT_RES(run_task(expired_body, NULL), 0);
}

static int read_all_body(void *arg)
{
	int *sv = arg;
	char buf[16];
	struct ur_timeout to;
	cr_assert_eq(write(sv[1], "1234", 4), 4); /* 4 of the 16 bytes ever come */
	ur_timeout_begin(&to, 30 * UR_MSEC);
	/* The first read returns 4 bytes, the second waits: the scope bounds it too. */
	ASSERT_RES((int)ur_read_all(sv[0], buf, sizeof(buf), UR_OFF_CURRENT), -ETIMEDOUT);
	return ur_timeout_end(&to);
}

Test(scope, bounds_every_transfer_of_read_all)
{
	int sv[2];
	pair(sv);
	ASSERT_RES(run_task(read_all_body, sv), -ETIMEDOUT);
	close(sv[0]);
	close(sv[1]);
}

static int nested_body(void *arg)
{
	int *sv = arg;
	char buf[8];
	struct ur_timeout outer, inner;

	/* The outer deadline is the earlier: it bounds the inner block too. */
	ur_timeout_begin(&outer, 20 * UR_MSEC);
	ur_timeout_begin(&inner, 100 * UR_SEC);
	ASSERT_RES((int)ur_recv(sv[0], buf, sizeof(buf), 0), -ETIMEDOUT);
	cr_assert_not(ur_timeout_expired(&inner));
	cr_assert(ur_timeout_expired(&outer));
	ASSERT_RES(ur_timeout_end(&inner), 0); /* it did not expire itself */
	ASSERT_RES(ur_nop(), -ETIMEDOUT);      /* still inside the expired outer block */
	ASSERT_RES(ur_timeout_end(&outer), -ETIMEDOUT);

	/* The inner deadline is the earlier: only the inner block ends. */
	ur_timeout_begin(&outer, 100 * UR_SEC);
	ur_timeout_begin(&inner, 20 * UR_MSEC);
	ASSERT_RES((int)ur_recv(sv[0], buf, sizeof(buf), 0), -ETIMEDOUT);
	ASSERT_RES(ur_timeout_end(&inner), -ETIMEDOUT);
	ASSERT_RES(ur_nop(), 0);
	ASSERT_RES(ur_timeout_end(&outer), 0);
	cr_assert_not(ur_timeout_expired(&outer));
	return 0;
}

Test(scope, nested_scopes_earliest_deadline_wins)
{
	t_fault_unsafe("eintr", "its recv must stay pending until the scope expires");
	int sv[2];
	pair(sv);
	ASSERT_RES(run_task(nested_body, sv), 0);
	close(sv[0]);
	close(sv[1]);
}

static int sleep_body(void *arg)
{
	(void)arg;
	struct ur_timeout to;
	uint64_t t0 = ur_now_ns();
	ur_timeout_begin(&to, 20 * UR_MSEC);
	ASSERT_RES(ur_sleep(100 * UR_SEC), -ETIMEDOUT);
	cr_assert_lt(ur_now_ns() - t0, 100 * UR_SEC);
	return ur_timeout_end(&to);
}

Test(scope, expires_during_sleep)
{
	ASSERT_RES(run_task(sleep_body, NULL), -ETIMEDOUT);
}

struct child {
	int sleep_res;
	bool ran;
};

static int sleeping_child(void *arg)
{
	struct child *c = arg;
	c->ran = true;
	c->sleep_res = ur_sleep(100 * UR_SEC);
	return c->sleep_res;
}

static int gather_body(void *arg)
{
	(void)arg;
	struct child c[3] = {0};
	struct ur_task *t[3];
	struct ur_future *fs[4];
	struct ur_future nop;
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(ur_spawn(ur_current_loop(), &t[i], sleeping_child, &c[i], NULL), 0);
		fs[i] = ur_task_future(t[i]);
	}
	ur_future_init(&nop, NULL, NULL);
	cr_assert_eq(ur_nop_start(ur_current_loop(), &nop), 0);
	fs[3] = &nop; /* completes at once: gather waits on the rest */
	struct ur_timeout to;
	ur_timeout_begin(&to, 20 * UR_MSEC);
	ASSERT_RES(ur_gather(fs, 4, 0), -ETIMEDOUT);
	ASSERT_RES(ur_timeout_end(&to), -ETIMEDOUT);
	ASSERT_RES(nop.res, 0);
	for (int i = 0; i < 3; i++) {
		cr_assert(ur_future_done(fs[i])); /* gather returned only when all were done */
		ASSERT_RES(c[i].sleep_res, -ECANCELED);
		ASSERT_RES(ur_join(t[i]), -ECANCELED);
	}
	return 0;
}

Test(scope, expires_during_gather_cancelling_every_child)
{
	ASSERT_RES(run_task(gather_body, NULL), 0);
}

static int join_body(void *arg)
{
	(void)arg;
	struct child c = {0};
	struct ur_task *t;
	struct ur_timeout to;
	cr_assert_eq(ur_spawn(ur_current_loop(), &t, sleeping_child, &c, NULL), 0);
	ur_timeout_begin(&to, 20 * UR_MSEC);
	ASSERT_RES(ur_join(t), -ETIMEDOUT); /* the joined task is cancelled, awaited, freed */
	ASSERT_RES(c.sleep_res, -ECANCELED);
	return ur_timeout_end(&to);
}

Test(scope, expires_during_join)
{
	ASSERT_RES(run_task(join_body, NULL), -ETIMEDOUT);
}

static int await_wait_for_body(void *arg)
{
	int *sv = arg;
	char buf[8];
	struct ur_future rf;
	struct ur_timeout to;
	ur_future_init(&rf, NULL, NULL);
	cr_assert_eq(ur_recv_start(ur_current_loop(), &rf, sv[0], buf, sizeof(buf), 0), 0);
	ur_timeout_begin(&to, 20 * UR_MSEC);
	/* wait_for's own deadline is later: the scope's wins, and the target is cancelled. */
	ASSERT_RES(ur_wait_for(&rf, 100 * UR_SEC), -ETIMEDOUT);
	cr_assert(ur_future_done(&rf));
	ASSERT_RES(rf.res, -ECANCELED);
	ASSERT_RES(ur_timeout_end(&to), -ETIMEDOUT);

	cr_assert_eq(ur_recv_start(ur_current_loop(), &rf, sv[0], buf, sizeof(buf), 0), 0);
	ur_timeout_begin(&to, 20 * UR_MSEC);
	ASSERT_RES(ur_await(&rf), -ETIMEDOUT);
	return ur_timeout_end(&to);
}

Test(scope, expires_during_await_and_wait_for)
{
	t_fault_unsafe("eintr", "its recv must stay pending until the scope expires");
	int sv[2];
	pair(sv);
	ASSERT_RES(run_task(await_wait_for_body, sv), -ETIMEDOUT);
	close(sv[0]);
	close(sv[1]);
}

static int slow_thread(void *arg)
{
	t_gate_wait(arg); /* still running when the scope expires, however late that is */
	return 7;
}

static int to_thread_body(void *arg)
{
	(void)arg;
	static struct t_gate gate; /* not on this stack: the worker still touches it once opened */
	gate = (struct t_gate)T_GATE_INIT;
	struct ur_timeout to;
	ur_timeout_begin(&to, 10 * UR_MSEC);
	ASSERT_RES(ur_to_thread(slow_thread, &gate), -ETIMEDOUT);
	t_gate_open(&gate); /* the loop's teardown waits for the function */
	return ur_timeout_end(&to);
}

Test(scope, expires_during_to_thread)
{
	t_skip_under_valgrind();
	ASSERT_RES(run_task(to_thread_body, NULL), -ETIMEDOUT);
}

static int helper_writes_late(void *arg)
{
	int *sv = arg;
	ur_sleep(60 * UR_MSEC);
	return write(sv[1], "x", 1) == 1 ? 0 : -EIO;
}

static int reschedule_body(void *arg)
{
	int *sv = arg;
	char buf[8];
	struct ur_timeout to;
	struct ur_task *h;

	/* Later: the 30 ms deadline moves 100 s out, so the data at 60 ms arrives in time. */
	ur_timeout_begin(&to, 30 * UR_MSEC);
	uint64_t later = ur_now_ns() + 100 * UR_SEC;
	ASSERT_RES(ur_timeout_reschedule(&to, later), 0);
	cr_assert_eq(ur_timeout_when(&to), later);
	cr_assert_eq(ur_spawn(ur_current_loop(), &h, helper_writes_late, sv, NULL), 0);
	ASSERT_RES((int)ur_recv(sv[0], buf, sizeof(buf), 0), 1);
	ASSERT_RES(ur_join(h), 0);
	ASSERT_RES(ur_timeout_end(&to), 0);

	/* Earlier: from "never" to 20 ms from now. */
	ASSERT_RES(ur_timeout_begin(&to, UR_NO_DEADLINE), 0);
	cr_assert_eq(ur_timeout_when(&to), UR_NO_DEADLINE);
	ASSERT_RES(ur_timeout_reschedule(&to, ur_now_ns() + 20 * UR_MSEC), 0);
	ASSERT_RES((int)ur_recv(sv[0], buf, sizeof(buf), 0), -ETIMEDOUT);
	ASSERT_RES(ur_timeout_reschedule(&to, later), -EALREADY);
	ASSERT_RES(ur_timeout_end(&to), -ETIMEDOUT);
	ASSERT_RES(ur_timeout_reschedule(&to, later), -EINVAL); /* ended */

	/* A time already past expires it at once. */
	ur_timeout_begin(&to, 100 * UR_SEC);
	ASSERT_RES(ur_timeout_reschedule(&to, ur_now_ns() - 1), 0);
	cr_assert(ur_timeout_expired(&to));
	ASSERT_RES(ur_nop(), -ETIMEDOUT);
	return ur_timeout_end(&to);
}

Test(scope, reschedule_later_earlier_and_into_the_past)
{
	t_fault_unsafe("eintr", "its recv must stay pending until the scope expires");
	int sv[2];
	pair(sv);
	ASSERT_RES(run_task(reschedule_body, sv), -ETIMEDOUT);
	close(sv[0]);
	close(sv[1]);
}

struct shared_scope {
	struct ur_timeout to;
	int sv[2];
	int res;
};

static void reschedule_cb(struct ur_future *f, void *arg)
{
	struct shared_scope *s = arg;
	(void)f;
	ASSERT_RES(ur_timeout_begin(&s->to, 0), UR_ENOTASK); /* a callback is no task */
	ASSERT_RES(ur_timeout_end(&s->to), UR_ENOTASK);
	ASSERT_RES(ur_timeout_reschedule(&s->to, 0), 0); /* but may move a task's deadline */
}

static int waits_under_never(void *arg)
{
	struct shared_scope *s = arg;
	char buf[8];
	ur_timeout_begin(&s->to, UR_NO_DEADLINE);
	s->res = (int)ur_recv(s->sv[0], buf, sizeof(buf), 0);
	return ur_timeout_end(&s->to);
}

static int from_callback_body(void *arg)
{
	struct shared_scope *s = arg;
	struct ur_task *t;
	struct ur_future nop;
	cr_assert_eq(ur_spawn(ur_current_loop(), &t, waits_under_never, s, NULL), 0);
	ASSERT_RES(ur_sleep(5 * UR_MSEC), 0); /* t now waits in its recv */
	ur_future_init(&nop, reschedule_cb, s);
	cr_assert_eq(ur_nop_start(ur_current_loop(), &nop), 0);
	ASSERT_RES(ur_join(t), -ETIMEDOUT);
	ASSERT_RES(s->res, -ETIMEDOUT);
	return 0;
}

Test(scope, rescheduled_from_a_loop_callback)
{
	t_fault_unsafe("eintr", "its recv must stay pending until the scope expires");
	struct shared_scope s = {0};
	pair(s.sv);
	ASSERT_RES(run_task(from_callback_body, &s), 0);
	close(s.sv[0]);
	close(s.sv[1]);
}

static int cost_body(void *arg)
{
	(void)arg;
	struct ur_loop_stats a, b;
	struct ur_timeout to;
	ur_loop_stats(ur_current_loop(), &a);
	for (int i = 0; i < 100; i++) {
		ur_timeout_begin(&to, 100 * UR_SEC);
		ASSERT_RES(ur_nop(), 0);
		ASSERT_RES(ur_timeout_end(&to), 0);
	}
	ur_loop_stats(ur_current_loop(), &b);
	/* Exactly the 100 NOPs: the deadlines cost no SQE and no CQE. */
	cr_assert_eq(b.submitted - a.submitted, 100);
	cr_assert_eq(b.reaped - a.reaped, 100);
	return 0;
}

Test(scope, a_deadline_that_does_not_fire_costs_no_sqe_and_leaves_nothing)
{
	ASSERT_RES(run_task(cost_body, NULL), 0); /* run_task checks nothing is left pending */
}

static void begin_cb(struct ur_future *f, void *arg)
{
	(void)f;
	*(int *)arg = ur_timeout_begin(&(struct ur_timeout){0}, UR_SEC);
}

Test(scope, outside_a_task_and_from_a_callback)
{
	struct ur_timeout to = {0};
	ASSERT_RES(ur_timeout_begin(&to, UR_SEC), UR_ENOTASK);
	ASSERT_RES(ur_timeout_begin_at(&to, UR_SEC), UR_ENOTASK);
	ASSERT_RES(ur_timeout_end(&to), UR_ENOTASK);
	ASSERT_RES(ur_timeout_reschedule(&to, UR_SEC), -EINVAL); /* never begun */

	struct ur_loop *l = t_loop();
	struct ur_future f;
	int r = 0;
	ur_future_init(&f, begin_cb, &r);
	cr_assert_eq(ur_nop_start(l, &f), 0);
	t_run_until(l, &f);
	ASSERT_RES(r, UR_ENOTASK);
	t_loop_done(&l);
}

static int order_body(void *arg)
{
	(void)arg;
	struct ur_timeout a, b;
	ur_timeout_begin(&a, UR_SEC);
	ur_timeout_begin(&b, UR_SEC);
	ASSERT_RES(ur_timeout_end(&a), -EINVAL); /* not the innermost: nothing changes */
	ASSERT_RES(ur_timeout_end(&b), 0);
	ASSERT_RES(ur_timeout_end(&b), -EINVAL);
	ASSERT_RES(ur_timeout_end(&a), 0);
	return 0;
}

Test(scope, scopes_end_innermost_first)
{
	ASSERT_RES(run_task(order_body, NULL), 0);
}

static int leaves_scope_begun(void *arg)
{
	struct ur_timeout *to = arg; /* the test reads it after the task: keep it off the stack */
	ur_timeout_begin(to, 10 * UR_MSEC);
	return 0; /* returns inside the scope: urio ends it */
}

static int outlives_body(void *arg)
{
	(void)arg;
	struct ur_timeout to;
	struct ur_task *t;
	cr_assert_eq(ur_spawn(ur_current_loop(), &t, leaves_scope_begun, &to, NULL), 0);
	ASSERT_RES(ur_join(t), 0);
	ASSERT_RES(ur_sleep(30 * UR_MSEC), 0); /* past its deadline: nothing fires on a dead task */
	cr_assert_not(ur_timeout_expired(&to));
	return 0;
}

Test(scope, a_task_returning_inside_a_scope_has_it_ended)
{
	ASSERT_RES(run_task(outlives_body, NULL), 0);
}

static int cancel_first_body(void *arg)
{
	(void)arg;
	struct ur_timeout to;
	ur_timeout_begin(&to, 0);
	ASSERT_RES(ur_nop(), -ETIMEDOUT);
	ur_task_cancel(ur_task_current());
	ASSERT_RES(ur_nop(), -ECANCELED); /* cancellation takes precedence */
	ASSERT_RES(ur_timeout_end(&to), -ETIMEDOUT);
	ASSERT_RES(ur_nop(), -ECANCELED);
	return 0;
}

Test(scope, cancellation_takes_precedence)
{
	ASSERT_RES(run_task(cancel_first_body, NULL), 0);
}

/* A turn that has run for a while (3 ms of work here; ASan makes ordinary turns that slow):
 * a zero timeout still expires at once, before the next wait, and so does ur_deadline(0). */
static int zero_after_long_turn_body(void *arg)
{
	(void)arg;
	for (int i = 0; i < 2; i++) {
		uint64_t until = ur_now_ns() + 3 * UR_MSEC;
		while (ur_now_ns() < until)
			; /* the turn's time, read once per turn, falls 3 ms behind */
		struct ur_timeout to;
		if (i == 0) {
			ur_timeout_begin(&to, 0);
			ASSERT_RES(ur_nop(), -ETIMEDOUT);
			ASSERT_RES(ur_timeout_end(&to), -ETIMEDOUT);
		} else {
			ur_deadline(0);
			ASSERT_RES(ur_nop(), -ETIMEDOUT);
		}
	}
	return 0;
}

Test(scope, zero_timeout_expires_at_once_after_a_long_turn)
{
	t_fault_unsafe(UR__FAULT_ALL, "asserts the exact result of a NOP");
	ASSERT_RES(run_task(zero_after_long_turn_body, NULL), 0);
}

/* --- the timer heap -------------------------------------------------------------------------- */

struct wake_order {
	uint64_t base; /* the sleeps end at base + rank * 2 ms, whenever each task starts */
	int next;
	int late; /* sleepers that started after their own deadline (a slow or loaded run) */
	int order[64];
};

struct sleeper {
	struct wake_order *w;
	int rank;
};

static int sleep_ranked(void *arg)
{
	struct sleeper *s = arg;
	/*
	 * An absolute deadline, so the heap entry is exactly base + rank * 2 ms however late this
	 * task runs (a relative sleep would add the time between reading the clock and sleeping,
	 * which a preempted run makes longer than the 2 ms between ranks).
	 */
	struct ur_timeout to;
	ASSERT_RES(ur_timeout_begin_at(&to, s->w->base + (uint64_t)s->rank * 2 * UR_MSEC), 0);
	if (ur_timeout_expired(&to))
		s->w->late++; /* its time had passed: it never entered the heap */
	ASSERT_RES(ur_sleep(UR_NO_DEADLINE), -ETIMEDOUT);
	ASSERT_RES(ur_timeout_end(&to), -ETIMEDOUT);
	s->w->order[s->w->next++] = s->rank;
	return 0;
}

/*
 * Returns 1 if a sleeper started after its deadline: then its place in the order says nothing
 * about the heap, and the caller runs again with more margin (valgrind on a loaded machine).
 */
static int heap_body(void *arg)
{
	const uint64_t *margin = arg;
	struct wake_order w = {.base = ur_now_ns() + *margin};
	struct sleeper s[64];
	struct ur_task *t[64];
	struct ur_timeout sc[32];
	/* Far deadlines, begun and ended in an order that removes inner heap nodes. */
	for (int i = 0; i < 32; i++)
		ur_timeout_begin(&sc[i], (uint64_t)((i * 37) % 32 + 100) * UR_SEC);
	for (int i = 0; i < 64; i++) {
		s[i] = (struct sleeper){.w = &w, .rank = (i * 29) % 64}; /* a permutation */
		cr_assert_eq(ur_spawn(ur_current_loop(), &t[i], sleep_ranked, &s[i], NULL), 0);
	}
	ASSERT_RES(ur_sleep(2 * UR_MSEC), 0);
	for (int i = 31; i >= 0; i--)
		ASSERT_RES(ur_timeout_end(&sc[i]), 0);
	for (int i = 0; i < 64; i++)
		ASSERT_RES(ur_join(t[i]), 0);
	cr_assert_eq(w.next, 64);
	if (w.late)
		return 1;
	for (int i = 0; i < 64; i++)
		cr_assert_eq(w.order[i], i, "woke %d at position %d", w.order[i], i);
	return 0;
}

Test(scope, timers_fire_in_deadline_order)
{
	int r = 1;
	for (uint64_t margin = 50 * UR_MSEC; r == 1 && margin <= 3200 * UR_MSEC; margin *= 4)
		r = run_task(heap_body, &margin);
	ASSERT_RES(r, 0);
}

static int sleep_20ms(void *arg)
{
	(void)arg;
	return ur_sleep(20 * UR_MSEC);
}

Test(scope, a_host_polling_the_loop_fd_is_woken_for_a_timer)
{
	struct ur_loop *l = t_loop();
	struct ur_task *t;
	int fd = ur_loop_fd(l);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ur_spawn(l, &t, sleep_20ms, NULL, NULL), 0);
	while (!ur_future_done(ur_task_future(t))) {
		cr_assert_geq(ur_loop_run(l, UR_RUN_NOWAIT), 0);
		if (ur_future_done(ur_task_future(t)))
			break;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int n = poll(&p, 1, 10000);
		cr_assert_eq(n, 1, "the host was not woken for the sleep's expiry");
	}
	ASSERT_RES(ur_join(t), 0);
	t_loop_done(&l);
}

/* --- ur_deadline: a scope around exactly the next call --------------------------------------- */

static int deadline_body(void *arg)
{
	int *sv = arg;
	char buf[16];
	struct ur_task *h;

	/* Consumed by calls that start no I/O, and gone afterwards: the recv waits for 60 ms. */
	ur_deadline(20 * UR_MSEC);
	ASSERT_RES(ur_yield(), 0);
	ur_deadline(20 * UR_MSEC);
	ASSERT_RES(ur_sleep(UR_MSEC), 0);
	ur_deadline(20 * UR_MSEC);
	ASSERT_RES(ur_gather(NULL, 0, 0), 0);
	cr_assert_eq(ur_spawn(ur_current_loop(), &h, helper_writes_late, sv, NULL), 0);
	ASSERT_RES((int)ur_recv(sv[0], buf, sizeof(buf), 0), 1);
	ASSERT_RES(ur_join(h), 0);

	/* It bounds the whole call: ur_read_all's second read too. */
	cr_assert_eq(write(sv[1], "1234", 4), 4);
	ur_deadline(20 * UR_MSEC);
	ASSERT_RES((int)ur_read_all(sv[0], buf, sizeof(buf), UR_OFF_CURRENT), -ETIMEDOUT);
	ASSERT_RES(ur_nop(), 0); /* and only that call */

	/* 0 expires at once; UR_NO_DEADLINE clears a deadline not yet used. */
	ur_deadline(0);
	ASSERT_RES(ur_nop(), -ETIMEDOUT);
	ASSERT_RES(ur_nop(), 0);
	ur_deadline(0);
	ur_deadline(UR_NO_DEADLINE);
	ASSERT_RES(ur_nop(), 0);

	/* It sleeps 20 ms of a 100 s sleep. */
	ur_deadline(20 * UR_MSEC);
	ASSERT_RES(ur_sleep(100 * UR_SEC), -ETIMEDOUT);
	return 0;
}

Test(scope, ur_deadline_bounds_exactly_the_next_call_of_any_kind)
{
	t_fault_unsafe("eintr", "its recv must wait for the data, not end early");
	int sv[2];
	pair(sv);
	ASSERT_RES(run_task(deadline_body, sv), 0);
	close(sv[0]);
	close(sv[1]);
}
