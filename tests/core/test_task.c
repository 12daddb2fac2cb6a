/* SPDX-License-Identifier: MIT */
/*
 * tests/core/test_task.c - tasks: run, spawn and join, await inside and outside tasks, gather,
 * wait_any, as_completed, wait_for, sleep, yield, cancellation in every kind of wait,
 * to_thread, stacks (overflow, 100,000 tasks), loops on several threads.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

/* enomem also refuses spawns and stacks (core/fault.h): test_fault covers those. */
#define T_FAULT_UNSAFE_FILE "enomem"
#define T_FAULT_UNSAFE_WHY  "every test spawns tasks and asserts they are spawned and run"
#include "helpers.h"

TestSuite(task, .timeout = 120);

static int return_arg(void *arg)
{
	return (int)(intptr_t)arg;
}

Test(task, run_returns_main_result)
{
	int result = -1;
	cr_assert_eq(ur_run(NULL, return_arg, (void *)42, &result), 0); /* its own loop */
	cr_assert_eq(result, 42);

	struct ur_loop *l = t_loop();
	cr_assert_eq(ur_run(l, return_arg, (void *)7, &result), 0);
	cr_assert_eq(result, 7);
	t_loop_done(&l);
}

/* --- kernel entries ----------------------------------------------------------------------------
 */

#define NOPS_PER_TASK 300

static int nop_loop(void *arg)
{
	(void)arg;
	for (int i = 0; i < NOPS_PER_TASK; i++)
		cr_assert_eq(ur_nop(), 0);
	return 0;
}

/* Spawns *@arg tasks that each await NOPS_PER_TASK NOPs, and joins them. */
static int nop_main(void *arg)
{
	unsigned n = *(const unsigned *)arg;
	struct ur_task *ts[64];
	for (unsigned i = 0; i < n; i++)
		cr_assert_eq(ur_spawn(ur_current_loop(), &ts[i], nop_loop, NULL, NULL), 0);
	for (unsigned i = 0; i < n; i++)
		cr_assert_eq(ur_join(ts[i]), 0);
	return 0;
}

static uint64_t enters_of(const struct ur_loop *l)
{
	struct ur_loop_stats st;
	ur_loop_stats(l, &st);
	return st.enters;
}

/*
 * ur_run turns the loop as ur_loop_run(UR_RUN_DEFAULT) does: what the tasks of one turn started
 * and the next turn's wait share one io_uring_enter. Issue 6 measured two per turn under ur_run
 * (UR_RUN_ONCE's closing submit, then the next turn's wait).
 */
Test(task, run_enters_the_kernel_as_often_as_loop_run)
{
	t_fault_unsafe(UR__FAULT_ALL, "counts kernel entries, which injected faults add");
	for (unsigned tasks = 1; tasks <= 64; tasks *= 64) {
		struct ur_loop *l = t_loop();
		struct ur_task *t;
		int res = -1;

		uint64_t e0 = enters_of(l);
		cr_assert_eq(ur_spawn(l, &t, nop_main, &tasks, NULL), 0);
		cr_assert_eq(ur_loop_run(l, UR_RUN_DEFAULT), 0);
		cr_assert_eq(ur_join(t), 0);
		uint64_t by_loop_run = enters_of(l) - e0;

		e0 = enters_of(l);
		cr_assert_eq(ur_run(l, nop_main, &tasks, &res), 0);
		cr_assert_eq(res, 0);
		uint64_t by_run = enters_of(l) - e0;
		t_loop_done(&l);

		/*
		 * Each round of awaits (one NOP from every task) is one entry; at most two more:
		 * the first turn's budget (64 runs) leaves the last spawned task for the next, and
		 * the end.
		 */
		cr_assert_leq(by_loop_run, NOPS_PER_TASK + 2, "%u tasks: %" PRIu64 " entries",
		              tasks, by_loop_run);
		cr_assert_eq(by_run, by_loop_run,
		             "%u tasks: ur_run %" PRIu64 ", ur_loop_run %" PRIu64, tasks, by_run,
		             by_loop_run);
	}
}

/* Outside any task, each ur_await of a fresh NOP is one kernel entry; a gather of tasks, one per
 * round of their awaits. */
Test(task, waits_outside_a_task_enter_the_kernel_once_per_turn)
{
	t_fault_unsafe(UR__FAULT_ALL, "counts kernel entries, which injected faults add");
	struct ur_loop *l = t_loop();
	struct ur_future f;
	ur_future_init(&f, NULL, NULL);
	uint64_t e0 = enters_of(l);
	for (int i = 0; i < 100; i++) {
		cr_assert_eq(ur_nop_start(l, &f), 0);
		cr_assert_eq(ur_await(&f), 0);
	}
	cr_assert_eq(enters_of(l) - e0, 100);

	struct ur_task *ts[4];
	struct ur_future *fs[4];
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(ur_spawn(l, &ts[i], nop_loop, NULL, NULL), 0);
		fs[i] = ur_task_future(ts[i]);
	}
	e0 = enters_of(l);
	cr_assert_eq(ur_gather(fs, 4, 0), 0);
	cr_assert_leq(enters_of(l) - e0, NOPS_PER_TASK + 1, "%" PRIu64, enters_of(l) - e0);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(ur_join(ts[i]), 0);
	t_loop_done(&l);
}

static int yield_many(void *arg)
{
	int n = *(const int *)arg;
	for (int i = 0; i < n; i++)
		cr_assert_eq(ur_yield(), 0);
	return 0;
}

static int yield_beside_a_sleep(void *arg)
{
	struct ur_task *t;
	cr_assert_eq(ur_spawn(ur_current_loop(), &t, yield_many, arg, NULL), 0);
	struct ur_future f;
	ur_future_init(&f, NULL, NULL);
	/* a NOP in flight while the other task yields: the kernel owes us something */
	cr_assert_eq(ur_nop_start(ur_current_loop(), &f), 0);
	cr_assert_eq(ur_await(&f), 0);
	return ur_join(t);
}

/*
 * A turn with nothing in flight and nothing to submit makes no system call: tasks that only
 * yield never enter the kernel. With an operation in flight the loop still enters every turn,
 * so the completion is not starved by the yields.
 */
Test(task, yields_with_nothing_in_flight_make_no_system_call)
{
	t_fault_unsafe(UR__FAULT_ALL, "counts kernel entries, which injected faults add");
	struct ur_loop *l = t_loop();
	int n = 1000, res = -1;
	struct ur_task *a, *b;
	cr_assert_eq(ur_spawn(l, &a, yield_many, &n, NULL), 0);
	cr_assert_eq(ur_spawn(l, &b, yield_many, &n, NULL), 0);
	uint64_t e0 = enters_of(l);
	cr_assert_eq(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	cr_assert_eq(enters_of(l) - e0, 0, "%" PRIu64 " entries for 2,000 yields",
	             enters_of(l) - e0);
	cr_assert_eq(ur_join(a), 0);
	cr_assert_eq(ur_join(b), 0);

	e0 = enters_of(l);
	cr_assert_eq(ur_run(l, yield_beside_a_sleep, &n, &res), 0);
	cr_assert_eq(res, 0);
	cr_assert_geq(enters_of(l) - e0, 1);
	t_loop_done(&l);
}

static int spawner(void *arg)
{
	int n = (int)(intptr_t)arg;
	struct ur_task **ts = calloc((size_t)n, sizeof(*ts));
	int sum = 0;
	for (int i = 0; i < n; i++)
		cr_assert_eq(
		    ur_spawn(ur_current_loop(), &ts[i], return_arg, (void *)(intptr_t)i, NULL), 0);
	for (int i = 0; i < n; i++)
		sum += ur_join(ts[i]);
	free(ts);
	return sum;
}

Test(task, spawn_and_join)
{
	int result;
	cr_assert_eq(t_run(spawner, (void *)100, &result), 0);
	cr_assert_eq(result, 99 * 100 / 2);
}

Test(task, spawn_never_runs_inline_and_await_outside_a_task_drives_the_loop)
{
	struct ur_loop *l = t_loop();
	struct ur_task *t;
	cr_assert_eq(ur_spawn(l, &t, return_arg, (void *)5, NULL), 0);
	cr_assert_not(ur_future_done(ur_task_future(t)));
	cr_assert_null(ur_task_current());
	cr_assert_eq(ur_await(ur_task_future(t)), 5);
	cr_assert_eq(ur_join(t), 5);
	t_loop_done(&l);
}

/* --- gather ---------------------------------------------------------------------------------- */

static int sleeper(void *arg)
{
	int ms = (int)(intptr_t)arg;
	int r = ur_sleep((uint64_t)ms * UR_MSEC);
	return r < 0 ? r : ms;
}

static int failer(void *arg)
{
	ur_sleep((uint64_t)(intptr_t)arg * UR_MSEC);
	return -EPROTO;
}

static int gather_mixed(void *arg)
{
	(void)arg;
	struct ur_loop *l = ur_current_loop();
	struct ur_task *a, *b;
	struct ur_future nop, rd;
	int p[2];
	char buf[8] = {0};

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_eq(write(p[1], "hey", 3), 3);
	cr_assert_eq(ur_spawn(l, &a, sleeper, (void *)20, NULL), 0);
	cr_assert_eq(ur_spawn(l, &b, sleeper, (void *)10, NULL), 0);
	ur_future_init(&nop, NULL, NULL);
	ur_future_init(&rd, NULL, NULL);
	cr_assert_eq(ur_nop_start(l, &nop), 0);
	cr_assert_eq(ur_read_start(l, &rd, p[0], buf, sizeof(buf), UR_OFF_CURRENT), 0);
	struct ur_future *fs[] = {ur_task_future(a), &nop, ur_task_future(b), &rd};
	cr_assert_eq(ur_gather(fs, 4, 0), 0);
	for (int i = 0; i < 4; i++)
		cr_assert(ur_future_done(fs[i]));
	cr_assert_eq(rd.res, 3);
	cr_assert_str_eq(buf, "hey");
	cr_assert_eq(ur_join(a), 20);
	cr_assert_eq(ur_join(b), 10);
	close(p[0]);
	close(p[1]);
	return 0;
}

Test(task, gather_tasks_and_io_futures)
{
	t_fault_unsafe("enomem,eintr,short", "asserts the exact result of operations it starts");
	int result = -1;
	cr_assert_eq(t_run(gather_mixed, NULL, &result), 0);
	cr_assert_eq(result, 0);
}

static int gather_fail(void *arg)
{
	unsigned flags = (unsigned)(uintptr_t)arg;
	struct ur_loop *l = ur_current_loop();
	struct ur_task *t[3];
	cr_assert_eq(ur_spawn(l, &t[0], sleeper, (void *)300, NULL), 0);
	cr_assert_eq(ur_spawn(l, &t[1], failer, (void *)10, NULL), 0);
	cr_assert_eq(ur_spawn(l, &t[2], sleeper, (void *)5, NULL), 0);
	struct ur_future *fs[3];
	for (int i = 0; i < 3; i++)
		fs[i] = ur_task_future(t[i]);
	uint64_t t0 = ur_now_ns();
	cr_assert_eq(ur_gather(fs, 3, flags), -EPROTO);
	for (int i = 0; i < 3; i++)
		cr_assert(ur_future_done(fs[i]), "child %d not done when gather returned", i);
	uint64_t took = ur_now_ns() - t0;
	int r0 = ur_join(t[0]);
	cr_assert_eq(ur_join(t[1]), -EPROTO);
	int r2 = ur_join(t[2]);
	if (flags & UR_GATHER_CANCEL_ON_ERROR) {
		cr_assert_eq(r0, -ECANCELED);
		/* 5 ms before 10 ms, unless a loaded machine woke the loop late for both: then the
		 * failer may run first and the sleeper is one of "the rest". */
		cr_assert(r2 == 5 || r2 == -ECANCELED, "%s", ur_strerror_name(r2));
	} else {
		cr_assert_eq(r2, 5);
		cr_assert_eq(r0, 300);
		cr_assert_geq(took, 300 * UR_MSEC);
	}
	return 0;
}

Test(task, gather_returns_first_error_after_all)
{
	t_fault_unsafe("enomem", "asserts the exact result of operations it starts");
	int result = -1;
	cr_assert_eq(t_run(gather_fail, (void *)0, &result), 0);
	cr_assert_eq(result, 0);
}

Test(task, gather_cancel_on_error_cancels_the_rest)
{
	t_fault_unsafe("enomem", "asserts the exact result of operations it starts");
	int result = -1;
	cr_assert_eq(t_run(gather_fail, (void *)(uintptr_t)UR_GATHER_CANCEL_ON_ERROR, &result), 0);
	cr_assert_eq(result, 0);
}

Test(task, gather_outside_a_task)
{
	t_fault_unsafe("enomem", "asserts the exact result of operations it starts");
	struct ur_loop *l = t_loop();
	struct ur_future f[3];
	struct ur_future *fs[3];
	for (int i = 0; i < 3; i++) {
		ur_future_init(&f[i], NULL, NULL);
		cr_assert_eq(ur_timeout_start(l, &f[i], (uint64_t)(3 - i) * UR_MSEC, 0), 0);
		fs[i] = &f[i];
	}
	cr_assert_eq(ur_gather(fs, 3, 0), 0);
	for (int i = 0; i < 3; i++)
		cr_assert(ur_future_done(&f[i]));
	/* A future with a callback of its own cannot be awaited. */
	struct ur_future cbf;
	int calls = 0;
	ur_future_init(&cbf, t_count_cb, &calls);
	cr_assert_eq(ur_nop_start(l, &cbf), 0);
	cr_assert_eq(ur_await(&cbf), -EBUSY);
	struct ur_future idle;
	ur_future_init(&idle, NULL, NULL);
	cr_assert_eq(ur_await(&idle), -EINVAL);
	cr_assert_eq(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	cr_assert_eq(calls, 1);
	t_loop_done(&l);
}

/* --- wait_any, as_completed, wait_for -------------------------------------------------------- */

static int any_and_completed(void *arg)
{
	(void)arg;
	struct ur_loop *l = ur_current_loop();
	struct ur_future f[4];
	struct ur_future *fs[4];
	const int ms[4] = {40, 10, 30, 20};
	for (int i = 0; i < 4; i++) {
		ur_future_init(&f[i], NULL, NULL);
		cr_assert_eq(ur_timeout_start(l, &f[i], (uint64_t)ms[i] * UR_MSEC, 0), 0);
		fs[i] = &f[i];
	}
	cr_assert_eq(ur_wait_any(fs, 4), 1);
	struct ur_as_completed it;
	struct ur_future *done;
	int order[4], n = 0;
	ur_as_completed_init(&it, fs, 4);
	while (ur_as_completed_next(&it, &done) == 0)
		order[n++] = (int)(done - f);
	cr_assert_eq(n, 4);
	cr_assert_eq(order[0], 1);
	cr_assert_eq(order[1], 3);
	cr_assert_eq(order[2], 2);
	cr_assert_eq(order[3], 0);
	return 0;
}

Test(task, wait_any_and_as_completed)
{
	t_fault_unsafe("enomem", "asserts the exact result of operations it starts");
	int result = -1;
	cr_assert_eq(t_run(any_and_completed, NULL, &result), 0);
	cr_assert_eq(result, 0);
}

static int wait_for_recv(void *arg)
{
	(void)arg;
	struct ur_loop *l = ur_current_loop();
	int c, s;
	char buf[8];
	struct ur_future f;
	t_tcp_pair(&c, &s);
	ur_future_init(&f, NULL, NULL);
	cr_assert_eq(ur_recv_start(l, &f, s, buf, sizeof(buf), 0), 0);
	uint64_t t0 = ur_now_ns();
	cr_assert_eq(ur_wait_for(&f, 50 * UR_MSEC), -ETIMEDOUT);
	cr_assert_geq(ur_now_ns() - t0, 50 * UR_MSEC);
	cr_assert(ur_future_done(&f), "the target must have completed");
	cr_assert_eq(f.res, -ECANCELED);
	/* In time: the result. */
	cr_assert_eq(write(c, "ok", 2), 2);
	cr_assert_eq(ur_recv_start(l, &f, s, buf, sizeof(buf), 0), 0);
	cr_assert_eq(ur_wait_for(&f, 5 * UR_SEC), 2);
	close(c);
	close(s);
	struct ur_loop_stats st;
	ur_loop_stats(l, &st);
	return (int)st.pending; /* only this task */
}

Test(task, wait_for_times_out_and_leaves_nothing_in_flight)
{
	t_fault_unsafe("eintr,enomem,reset",
	               "its recv must stay pending until the deadline, and its starts succeed");
	int result = -1;
	cr_assert_eq(t_run(wait_for_recv, NULL, &result), 0);
	cr_assert_eq(result, 1);
}

static int deadline_op(void *arg)
{
	(void)arg;
	int c, s;
	char buf[8];
	t_tcp_pair(&c, &s);
	struct ur_timeout to;
	cr_assert_eq(ur_timeout_begin(&to, 30 * UR_MSEC), 0);
	cr_assert_eq(ur_recv(s, buf, sizeof(buf), 0), -ETIMEDOUT);
	cr_assert_eq(ur_timeout_end(&to), -ETIMEDOUT);
	/* The deadline applied to the scope only. */
	cr_assert_eq(write(c, "x", 1), 1);
	cr_assert_eq(ur_recv(s, buf, sizeof(buf), 0), 1);
	close(c);
	close(s);
	return 0;
}

Test(task, deadline_on_task_operation)
{
	t_fault_unsafe("eintr,reset,enomem", "a recv on a TCP socket must stay pending (EINTR, a "
	                                     "reset or a refused start completes it)");
	int result = -1;
	cr_assert_eq(t_run(deadline_op, NULL, &result), 0);
	cr_assert_eq(result, 0);
}

/* --- yield ----------------------------------------------------------------------------------- */

struct yield_log {
	char log[8];
	int n;
};

struct yielder_arg {
	struct yield_log *log;
	char id;
};

static int yielder(void *arg)
{
	struct yielder_arg *y = arg;
	for (int i = 0; i < 3; i++) {
		y->log->log[y->log->n++] = y->id;
		cr_assert_eq(ur_yield(), 0);
	}
	return 0;
}

static int yield_main(void *arg)
{
	struct yield_log *log = arg;
	struct yielder_arg ya = {log, 'a'}, yb = {log, 'b'};
	struct ur_task *a, *b;
	cr_assert_eq(ur_spawn(ur_current_loop(), &a, yielder, &ya, NULL), 0);
	cr_assert_eq(ur_spawn(ur_current_loop(), &b, yielder, &yb, NULL), 0);
	ur_join(a);
	ur_join(b);
	return log->n;
}

Test(task, yield_interleaves)
{
	int result = -1;
	struct yield_log log = {0};
	cr_assert_eq(t_run(yield_main, &log, &result), 0);
	cr_assert_eq(result, 6);
	cr_assert_str_eq(log.log, "ababab");
	cr_assert_eq(ur_yield(), UR_ENOTASK);
	cr_assert_eq(ur_sleep(1), UR_ENOTASK);
	cr_assert_eq(ur_nop(), UR_ENOTASK);
	char b;
	cr_assert_eq(ur_read(0, &b, 1, 0), UR_ENOTASK);
}

/* --- cancellation in every kind of wait ------------------------------------------------------ */

enum block_kind {
	B_PIPE,
	B_RECV,
	B_ACCEPT,
	B_CONNECT,
	B_SLEEP,
	B_THREAD,
	B_GATHER,
	B_N
};

/* A function that runs until its caller gave up on it: the caller opens the gate then. */
static struct t_gate slow_gate;

static int slow_fn(void *arg)
{
	(void)arg;
	t_gate_wait(&slow_gate);
	return 1;
}

struct blocker {
	enum block_kind kind;
	int fd, fd2;
	struct sockaddr_in addr;
	int after;     /* the result of one more await after the cancelled one */
	bool blocking; /* set just before the call that blocks (tasks switch only inside calls) */
};

static int blocked(void *arg)
{
	struct blocker *b = arg;
	char buf[8];
	int r = 0;
	/* -EINTR (fault passes inject it) means "try again", as a real program would. */
	b->blocking = true;
	switch (b->kind) {
	case B_PIPE:
		do
			r = (int)ur_read(b->fd, buf, sizeof(buf), UR_OFF_CURRENT);
		while (r == -EINTR);
		break;
	case B_RECV:
		do
			r = (int)ur_recv(b->fd, buf, sizeof(buf), 0);
		while (r == -EINTR);
		break;
	case B_ACCEPT:
		do
			r = ur_accept(b->fd, NULL, NULL, 0);
		while (r == -EINTR);
		break;
	case B_CONNECT:
		r = ur_connect(b->fd, (struct sockaddr *)&b->addr, sizeof(b->addr));
		break;
	case B_SLEEP:
		r = ur_sleep(30 * UR_SEC);
		break;
	case B_THREAD:
		r = ur_to_thread(slow_fn, NULL);
		break;
	case B_GATHER: {
		struct ur_task *t;
		cr_assert_eq(ur_spawn(ur_current_loop(), &t, sleeper, (void *)30000, NULL), 0);
		struct ur_future *fs[] = {ur_task_future(t)};
		r = ur_gather(fs, 1, 0);
		cr_assert_eq(ur_join(t), -ECANCELED);
		break;
	}
	default:
		break;
	}
	b->after = ur_nop();
	return r;
}

static int cancel_main(void *arg)
{
	struct blocker *b = arg;
	struct ur_task *t;
	cr_assert_eq(ur_spawn(ur_current_loop(), &t, blocked, b, NULL), 0);
	/* Let it block: once it has set the flag, it gave us the thread back from inside its call.
	 */
	while (!b->blocking)
		cr_assert_eq(ur_yield(), 0);
	cr_assert_eq(ur_yield(), 0); /* B_GATHER: its sleeper starts sleeping too */
	cr_assert_not(ur_future_done(ur_task_future(t)), "kind %d did not block", b->kind);
	uint64_t t0 = ur_now_ns();
	cr_assert_eq(ur_task_cancel(t), 0);
	cr_assert_eq(ur_task_cancel(t), -EALREADY);
	int r = ur_join(t);
	cr_assert_lt(ur_now_ns() - t0, 5 * UR_SEC);
	t_gate_open(&slow_gate); /* B_THREAD: the loop's teardown waits for slow_fn */
	return r;
}

static void cancel_blocked(enum block_kind kind)
{
	struct blocker b = {.kind = kind, .fd = -1, .fd2 = -1};
	slow_gate = (struct t_gate)T_GATE_INIT;
	int p[2] = {-1, -1}, c = -1;
	uint16_t port;
	int before = t_count_fds();

	/* The blocker must still be waiting when it is cancelled: a start refused with ENOMEM, or a
	 * TCP recv ended by a reset, returns at once. */
	t_fault_unsafe("enomem,reset", "its blocker must stay blocked until cancelled");
	switch (kind) {
	case B_PIPE:
		cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
		b.fd = p[0];
		break;
	case B_RECV:
		t_tcp_pair(&c, &b.fd);
		break;
	case B_ACCEPT:
		b.fd = t_listen_tcp(&port);
		break;
	case B_CONNECT: {
		/* A silent peer: a listener whose accept queue is full drops further SYNs. */
		b.fd2 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in a = t_loopback(0);
		cr_assert_eq(bind(b.fd2, (struct sockaddr *)&a, sizeof(a)), 0);
		cr_assert_eq(listen(b.fd2, 0), 0);
		socklen_t len = sizeof(a);
		getsockname(b.fd2, (struct sockaddr *)&a, &len);
		b.addr = a;
		static int fill[4];
		for (int i = 0; i < 4; i++) {
			fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
			connect(fill[i], (struct sockaddr *)&a, sizeof(a));
		}
		t_wait_accept_queue_full(b.fd2); /* else the connect below could succeed */
		b.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int result = 0;
		cr_assert_eq(t_run(cancel_main, &b, &result), 0);
		cr_assert_eq(result, -ECANCELED, "connect: %s", ur_strerror_name(result));
		for (int i = 0; i < 4; i++)
			close(fill[i]);
		close(b.fd);
		close(b.fd2);
		cr_assert_eq(b.after, -ECANCELED);
		return;
	}
	default:
		break;
	}
	int result = 0;
	cr_assert_eq(t_run(cancel_main, &b, &result), 0);
	cr_assert_eq(result, -ECANCELED, "kind %d: %s", kind, ur_strerror_name(result));
	cr_assert_eq(b.after, -ECANCELED, "an await after cancellation must fail at once");
	if (p[0] >= 0) {
		close(p[0]);
		close(p[1]);
	} else if (b.fd >= 0) {
		close(b.fd);
	}
	if (c >= 0)
		close(c);
	if (kind != B_THREAD)
		cr_assert_eq(t_count_fds(), before);
}

Test(task, cancel_while_reading_a_pipe)
{
	cancel_blocked(B_PIPE);
}
Test(task, cancel_while_in_recv)
{
	cancel_blocked(B_RECV);
}
Test(task, cancel_while_in_accept)
{
	cancel_blocked(B_ACCEPT);
}
Test(task, cancel_while_connecting_to_a_silent_peer)
{
	cancel_blocked(B_CONNECT);
}
Test(task, cancel_while_sleeping)
{
	cancel_blocked(B_SLEEP);
}
Test(task, cancel_while_in_to_thread)
{
	cancel_blocked(B_THREAD);
}
Test(task, cancel_while_in_gather)
{
	cancel_blocked(B_GATHER);
}

static int never_runs(void *arg)
{
	*(int *)arg = 1;
	return 0;
}

Test(task, cancel_before_start_never_runs)
{
	struct ur_loop *l = t_loop();
	struct ur_task *t;
	int ran = 0;
	cr_assert_eq(ur_spawn(l, &t, never_runs, &ran, NULL), 0);
	cr_assert_eq(ur_cancel(ur_task_future(t)), 0, "cancelling a task's future cancels it");
	cr_assert_eq(ur_join(t), -ECANCELED);
	cr_assert_eq(ran, 0);
	t_loop_done(&l);
}

/* --- to_thread ------------------------------------------------------------------------------- */

static int square(void *arg)
{
	int v = (int)(intptr_t)arg;
	return v * v;
}

static int thread_task(void *arg)
{
	return ur_to_thread(square, arg);
}

static int many_threads(void *arg)
{
	(void)arg;
	enum {
		N = 1000
	};
	struct ur_task *t[N];
	struct ur_future *fs[N];
	for (int i = 0; i < N; i++) {
		cr_assert_eq(
		    ur_spawn(ur_current_loop(), &t[i], thread_task, (void *)(intptr_t)i, NULL), 0);
		fs[i] = ur_task_future(t[i]);
	}
	cr_assert_eq(ur_gather(fs, N, 0), 0);
	for (int i = 0; i < N; i++)
		cr_assert_eq(ur_join(t[i]), i * i);
	return 0;
}

Test(task, thousand_concurrent_to_thread_calls)
{
	int result = -1;
	cr_assert_eq(t_run(many_threads, NULL, &result), 0);
	cr_assert_eq(result, 0);
}

static int thread_deadline(void *arg)
{
	(void)arg;
	struct ur_timeout to;
	slow_gate = (struct t_gate)T_GATE_INIT;
	ur_timeout_begin(&to, 20 * UR_MSEC);
	int r = ur_to_thread(slow_fn, NULL);
	t_gate_open(&slow_gate); /* slow_fn returns now: the loop's teardown must wait for it */
	return ur_timeout_end(&to) == -ETIMEDOUT ? r : -1;
}

Test(task, to_thread_times_out_and_the_loop_waits_for_the_worker)
{
	int result = 0;
	cr_assert_eq(t_run(thread_deadline, NULL, &result), 0);
	cr_assert_eq(result, -ETIMEDOUT);
}

/* --- stacks ---------------------------------------------------------------------------------- */

static int recurse(int depth)
{
	volatile char pad[512];
	pad[0] = (char)depth;
	return depth > 1000000 ? pad[0] : recurse(depth + 1) + pad[0];
}

static int overflow(void *arg)
{
	(void)arg;
	return recurse(0);
}

Test(task, stack_overflow_dies_on_the_guard_page)
{
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
		dup2(devnull, 2); /* the sanitizer's or valgrind's report is expected noise here */
		struct ur_task_opts o = {.stack_size = 64 * 1024};
		struct ur_loop *l;
		struct ur_task *t;
		if (t_loop_new(&l) < 0 || ur_spawn(l, &t, overflow, NULL, &o) < 0)
			_exit(3);
		ur_await(ur_task_future(t));
		_exit(0); /* not reached */
	}
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
#if defined(__SANITIZE_ADDRESS__)
	/* ASan catches the fault itself, reports a stack-overflow and exits non-zero. */
	cr_assert(WIFSIGNALED(st) ||
	          (WIFEXITED(st) && WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 3));
#else
	cr_assert(WIFSIGNALED(st), "child exited with %d", WEXITSTATUS(st));
	cr_assert_eq(WTERMSIG(st), SIGSEGV);
#endif
}

static int index_after_sleep(void *arg)
{
	int r = ur_sleep(10 * UR_MSEC);
	return r < 0 ? r : (int)(intptr_t)arg;
}

Test(task, hundred_thousand_sleeping_tasks)
{
	t_fault_unsafe("enomem", "asserts the exact result of operations it starts");
	/* Under valgrind 10,000: memcheck's cost per task made 100,000 take over 15 min when
	 * loaded. */
	const int N = T_UNDER_VALGRIND() ? 10000 : 100000;
	struct ur_loop *l = t_loop();
	struct ur_task **t = calloc((size_t)N, sizeof(*t));
	for (int i = 0; i < N; i++)
		cr_assert_eq(ur_spawn(l, &t[i], index_after_sleep, (void *)(intptr_t)i, NULL), 0);
	cr_assert_eq(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	for (int i = 0; i < N; i++)
		cr_assert_eq(ur_join(t[i]), i, "task %d", i);
	free(t);
	t_loop_done(&l);
}

/* --- loops on threads ------------------------------------------------------------------------ */

enum {
	ROUNDS = 100000
};

struct peer {
	struct ur_loop *loop;
	struct peer *other;
	struct ur_post post;
	struct ur_future got; /* resolved by the other side's post */
	pthread_t th;
	int count;
	pthread_barrier_t *ready;
};

static void deliver(void *arg)
{
	struct peer *p = arg;
	ur_future_resolve(&p->got, p->count);
}

/* Posts to the other loop, which resolves our future from its thread... via our loop. */
static void bounce(void *arg)
{
	struct peer *to = arg; /* runs on the other loop: post back to the sender */
	to->post.fn = deliver;
	to->post.arg = to;
	ur_loop_post(to->loop, &to->post);
}

static int pinger(void *arg)
{
	struct peer *p = arg;
	struct ur_post out;
	for (int i = 0; i < ROUNDS; i++) {
		ur_future_init(&p->got, NULL, NULL);
		cr_assert_eq(ur_future_begin(p->loop, &p->got), 0);
		p->count = i;
		out.fn = bounce;
		out.arg = p;
		cr_assert_eq(ur_loop_post(p->other->loop, &out), 0);
		cr_assert_eq(ur_await(&p->got), i);
	}
	return ROUNDS;
}

static void *ponger_thread(void *arg)
{
	struct peer *p = arg;
	cr_assert_eq(t_loop_new(&p->loop), 0);
	ur_loop_ref(p->loop);
	pthread_barrier_wait(p->ready);
	ur_loop_run(p->loop, UR_RUN_DEFAULT); /* until the pinger unrefs us */
	ur_loop_free(&p->loop);
	return NULL;
}

static void unref(void *arg)
{
	ur_loop_unref(arg);
}

Test(task, ping_pong_between_loops_on_two_threads)
{
	t_skip_under_valgrind(); /* two loops on two threads: still hangs there */
	pthread_barrier_t ready;
	struct peer a = {0}, b = {0};
	pthread_barrier_init(&ready, NULL, 2);
	a.other = &b;
	b.other = &a;
	b.ready = &ready;
	cr_assert_eq(pthread_create(&b.th, NULL, ponger_thread, &b), 0);
	pthread_barrier_wait(&ready);
	a.loop = t_loop();
	int result = 0;
	uint64_t t0 = ur_now_ns();
	cr_assert_eq(ur_run(a.loop, pinger, &a, &result), 0);
	cr_assert_eq(result, ROUNDS);
	cr_log_info("%d round trips between two loops: %.2f us each", ROUNDS,
	            (double)(ur_now_ns() - t0) / ROUNDS / 1000.0);
	struct ur_post stop = {.fn = unref, .arg = b.loop};
	cr_assert_eq(ur_loop_post(b.loop, &stop), 0);
	pthread_join(b.th, NULL);
	t_loop_done(&a.loop);
	pthread_barrier_destroy(&ready);
}

/* --- read_all / write_all -------------------------------------------------------------------- */

struct pipe_writer {
	int fd;
	char *buf;
	size_t len;
};

static int writer(void *arg)
{
	struct pipe_writer *w = arg;
	ssize_t n = ur_write_all(w->fd, w->buf, w->len, UR_OFF_CURRENT);
	ur_close(w->fd);
	return (int)n;
}

static int pipe_all(void *arg)
{
	(void)arg;
	enum {
		LEN = 1 << 20
	};
	/* calloc: valgrind cannot see the kernel write into @in, only that it was defined before */
	char *out = malloc(LEN), *in = calloc(1, LEN);
	int p[2];
	for (int i = 0; i < LEN; i++)
		out[i] = (char)(i * 7 + 3);
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	struct pipe_writer wr = {p[1], out, LEN};
	struct ur_task *w;
	cr_assert_eq(ur_spawn(ur_current_loop(), &w, NULL, NULL, NULL), -EINVAL);
	cr_assert_eq(ur_spawn(ur_current_loop(), &w, writer, &wr, NULL), 0);
	/* A pipe moves 64 KiB at a time: read_all must loop. */
	cr_assert_eq(ur_read_all(p[0], in, LEN, UR_OFF_CURRENT), LEN);
	cr_assert_eq(ur_join(w), LEN);
	cr_assert_eq(memcmp(in, out, LEN), 0);
	cr_assert_eq(ur_close(p[0]), 0);
	free(in);
	free(out);
	return 0;
}

Test(task, read_all_and_write_all_loop_over_short_transfers)
{
	t_fault_unsafe("enomem", "asserts the exact result of operations it starts");
	int result = -1;
	cr_assert_eq(t_run(pipe_all, NULL, &result), 0);
	cr_assert_eq(result, 0);
}

/* --- teardown, detach ------------------------------------------------------------------------ */

struct unwinder {
	int sleep_res;
	int after;
	bool returned;
};

static int unwinding(void *arg)
{
	struct unwinder *u = arg;
	u->sleep_res = ur_sleep(60 * UR_SEC);
	u->after = ur_nop();
	u->returned = true;
	return 0;
}

Test(task, loop_free_cancels_and_awaits_live_tasks)
{
	struct ur_loop *l = t_loop();
	struct ur_task *t, *d;
	struct unwinder u = {0}, ud = {0};
	cr_assert_eq(ur_spawn(l, &t, unwinding, &u, NULL), 0);
	cr_assert_eq(ur_spawn(l, &d, unwinding, &ud, NULL), 0);
	ur_task_detach(d);
	/* Two task futures; their sleeps are timer entries, not futures. */
	cr_assert_eq(ur_loop_run(l, UR_RUN_NOWAIT), 2);
	ur_loop_free(&l); /* frees the unjoined task too: t must not be used after this */
	cr_assert(u.returned);
	cr_assert(ud.returned);
	cr_assert_eq(u.sleep_res, -ECANCELED);
	cr_assert_eq(u.after, -ECANCELED);
}

static int detached_child(void *arg)
{
	ur_sleep(UR_MSEC);
	(*(int *)arg)++;
	return 0;
}

static int detach_main(void *arg)
{
	int *count = arg;
	for (int i = 0; i < 10; i++) {
		struct ur_task *t;
		cr_assert_eq(ur_spawn(ur_current_loop(), &t, detached_child, count, NULL), 0);
		ur_task_detach(t);
	}
	while (*count < 10)
		ur_sleep(UR_MSEC);
	return 0;
}

Test(task, detached_tasks_free_themselves)
{
	int count = 0;
	cr_assert_eq(t_run(detach_main, &count, NULL), 0);
	cr_assert_eq(count, 10);
}

/* --- waits leave no continuation behind (review findings) ------------------------------------ */

static int wait_for_restarted(void *arg)
{
	(void)arg;
	struct ur_loop *l = ur_current_loop();
	struct ur_future f;
	ur_future_init(&f, NULL, NULL);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(ur_nop_start(l, &f), 0);
		cr_assert_eq(ur_wait_for(&f, UR_SEC), 0, "round %d", i);
	}
	struct ur_future g;
	ur_future_init(&g, NULL, NULL);
	cr_assert_eq(ur_nop_start(l, &g), 0);
	struct ur_future *fs[] = {&g};
	cr_assert_eq(ur_wait_any(fs, 1), 0);
	cr_assert_eq(ur_nop_start(l, &g), 0);
	cr_assert_eq(ur_await(&g), 0, "wait_any left its callback on the done future");
	return 0;
}

Test(task, wait_for_and_wait_any_can_be_repeated_on_a_restarted_future)
{
	t_fault_unsafe("enomem", "asserts the exact result of operations it starts");
	int result = -1;
	cr_assert_eq(t_run(wait_for_restarted, NULL, &result), 0);
	cr_assert_eq(result, 0);
}

struct from_cb {
	struct ur_task *task;
	struct ur_future other;
	int join_ret, gather_ret, wait_for_ret;
};

static void waits_from_callback(struct ur_future *f, void *arg)
{
	struct from_cb *c = arg;
	(void)f;
	struct ur_future *fs[] = {&c->other};
	c->join_ret = ur_join(c->task);
	c->gather_ret = ur_gather(fs, 1, 0);
	c->wait_for_ret = ur_wait_for(&c->other, UR_MSEC);
}

Test(task, waits_from_a_loop_callback_are_refused_and_touch_nothing)
{
	t_fault_unsafe("enomem", "asserts the exact result of operations it starts");
	struct ur_loop *l = t_loop();
	struct from_cb c = {0};
	struct ur_future trigger;
	cr_assert_eq(ur_spawn(l, &c.task, sleeper, (void *)20, NULL), 0);
	ur_future_init(&c.other, NULL, NULL);
	cr_assert_eq(ur_timeout_start(l, &c.other, 30 * UR_MSEC, 0), 0);
	ur_future_init(&trigger, waits_from_callback, &c);
	cr_assert_eq(ur_nop_start(l, &trigger), 0);
	cr_assert_eq(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	cr_assert_eq(c.join_ret, -EBUSY);
	cr_assert_eq(c.gather_ret, -EBUSY);
	cr_assert_eq(c.wait_for_ret, -EBUSY);
	cr_assert_eq(c.other.res, 0, "a refused wait_for must not cancel its target");
	cr_assert_eq(ur_join(c.task), 20, "the task survived the refused join");
	t_loop_done(&l);
}

static int as_completed_stopped(void *arg)
{
	(void)arg;
	struct ur_loop *l = ur_current_loop();
	struct ur_future a, b;
	struct ur_future *fs[] = {&a, &b};
	ur_future_init(&a, NULL, NULL);
	ur_future_init(&b, NULL, NULL);
	cr_assert_eq(ur_nop_start(l, &a), 0);
	cr_assert_eq(ur_nop_start(l, &b), 0);
	struct ur_as_completed it;
	struct ur_future *got;
	ur_as_completed_init(&it, fs, 2);
	cr_assert_eq(ur_as_completed_next(&it, &got), 0);
	struct ur_future *other = got == &a ? &b : &a;
	while (!ur_future_done(other))
		ur_yield(); /* the other completes, not yet yielded by the iterator */
	ur_as_completed_stop(&it);
	cr_assert_eq(ur_nop_start(l, other), 0);
	cr_assert_eq(ur_await(other), 0, "stop left its callback on a done future");
	return 0;
}

Test(task, as_completed_stop_releases_done_futures)
{
	t_fault_unsafe("enomem", "asserts the exact result of operations it starts");
	int result = -1;
	cr_assert_eq(t_run(as_completed_stopped, NULL, &result), 0);
	cr_assert_eq(result, 0);
}
