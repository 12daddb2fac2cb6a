/* SPDX-License-Identifier: MIT */
/*
 * tests/core/test_future.c - the invariants of DESIGN.md, one by one: exactly-once completion,
 * never inline, start failure, cancellation in every phase, descriptors of operations cancelled
 * too late.
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <time.h>

#define T_FAULT_UNSAFE_FILE "enomem"
#define T_FAULT_UNSAFE_WHY                                                                         \
	"each test asserts its starts succeed: the raw future and cancellation semantics"
#include "helpers.h"

TestSuite(future, .timeout = 30);

Test(future, completes_exactly_once_and_restarts)
{
	struct ur_loop *l = t_loop();
	struct ur_future f;
	int calls = 0;

	ur_future_init(&f, t_count_cb, &calls);
	cr_assert_eq(ur_future_state(&f), UR_FUTURE_IDLE);
	cr_assert_eq(ur_nop_start(l, &f), 0);
	cr_assert_eq(ur_future_state(&f), UR_FUTURE_PENDING);
	cr_assert_eq(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	cr_assert_eq(calls, 1);
	cr_assert_eq(f.res, 0);
	cr_assert(ur_future_done(&f));
	cr_assert_eq(ur_loop_run(l, UR_RUN_NOWAIT), 0);
	cr_assert_eq(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	cr_assert_eq(calls, 1, "a done future must not complete again");

	cr_assert_eq(ur_nop_start(l, &f), 0, "a done future may be started again");
	cr_assert_eq(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	cr_assert_eq(calls, 2);
	t_loop_done(&l);
}

Test(future, never_completes_inside_the_start_call)
{
	t_fault_unsafe("enomem", "asserts its starts succeed");
	/* Eight SQ slots and eighty starts: the start calls must enter the kernel to make room, and
	 * still no callback may run before the loop does. */
	struct ur_loop_opts o = {.sq_entries = 8};
	struct ur_loop *l = t_loop_opts(&o);
	struct ur_future f[80];
	int calls = 0;

	for (int i = 0; i < 80; i++) {
		ur_future_init(&f[i], t_count_cb, &calls);
		cr_assert_eq(ur_nop_start(l, &f[i]), 0);
	}
	cr_assert_eq(calls, 0);
	cr_assert_eq(ur_loop_pending(l), 80);
	cr_assert_eq(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	cr_assert_eq(calls, 80);
	t_loop_done(&l);
}

static int cb_calls;
static void cb_record(struct ur_future *f, void *arg)
{
	(void)f;
	(void)arg;
	cb_calls++;
}

Test(future, failed_start_never_completes)
{
	struct ur_loop *l = t_loop();
	struct ur_future f, g;
	int fcalls = 0;

	cb_calls = 0;
	ur_future_init(&f, t_count_cb, &fcalls);
	ur_future_init(&g, cb_record, NULL);
	cr_assert_eq(ur_timeout_start(l, &f, 10 * UR_SEC, 0), 0);
	/* Busy: started twice. */
	cr_assert_eq(ur_nop_start(l, &f), -EBUSY);
	/* A deadline on a timeout is refused. */
	cr_assert_eq(ur_future_set_deadline(&g, UR_MSEC), 0);
	cr_assert_eq(ur_timeout_start(l, &g, UR_MSEC, 0), -EINVAL);
	/* Bad flags. */
	ur_future_init(&g, cb_record, NULL);
	cr_assert_eq(ur_timeout_start(l, &g, UR_MSEC, 1u << 7), -EINVAL);
	cr_assert_eq(ur_loop_run(l, UR_RUN_NOWAIT), 1);
	cr_assert_eq(cb_calls, 0);
	cr_assert_eq(ur_future_state(&g), UR_FUTURE_IDLE);

	cr_assert_eq(ur_cancel(&f), 0);
	cr_assert_eq(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	cr_assert_eq(fcalls, 1);
	cr_assert_eq(f.res, -ECANCELED);
	cr_assert_eq(cb_calls, 0, "a future whose start failed must never complete");
	t_loop_done(&l);
}

struct teardown_probe {
	struct ur_loop *loop;
	struct ur_future late;
	int calls;
	int late_ret;
	int res;
};

static void teardown_cb(struct ur_future *f, void *arg)
{
	struct teardown_probe *p = arg;
	p->calls++;
	p->res = f->res;
	p->late_ret = ur_nop_start(p->loop, &p->late);
}

Test(future, start_during_teardown_fails_and_never_completes)
{
	t_fault_unsafe("eintr,reset",
	               "a recv on a TCP socket must stay pending (EINTR or a reset completes it)");
	struct teardown_probe p = {0};
	int fds[2];
	char buf[8];
	struct ur_future f;

	cb_calls = 0;
	p.loop = t_loop();
	cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
	ur_future_init(&f, teardown_cb, &p);
	ur_future_init(&p.late, cb_record, NULL);
	cr_assert_eq(ur_read_start(p.loop, &f, fds[0], buf, sizeof(buf), UR_OFF_CURRENT), 0);
	cr_assert_eq(ur_loop_run(p.loop, UR_RUN_NOWAIT), 1);
	struct ur_loop *l = p.loop; /* ur_loop_free clears the pointer it is given */
	ur_loop_free(&l);
	cr_assert_eq(p.calls, 1);
	cr_assert_eq(p.res, -ECANCELED);
	cr_assert_eq(p.late_ret, UR_ELOOPCLOSED);
	cr_assert_eq(cb_calls, 0);
	close(fds[0]);
	close(fds[1]);
}

/* --- cancellation, phase by phase --------------------------------------------------------- */

Test(future, cancel_while_queued_locally)
{
	/* LAZY_SUBMIT with a 4-entry SQ: starts 5..8 wait in urio's local queue. */
	struct ur_loop_opts o = {.sq_entries = 4, .flags = UR_LOOP_LAZY_SUBMIT};
	struct ur_loop *l = t_loop_opts(&o);
	struct ur_future f[8];
	int calls[8] = {0};
	struct ur_loop_stats st;

	for (int i = 0; i < 8; i++) {
		ur_future_init(&f[i], t_count_cb, &calls[i]);
		cr_assert_eq(ur_nop_start(l, &f[i]), 0);
	}
	ur_loop_stats(l, &st);
	cr_assert_eq(st.waiting, 4, "4 SQEs must wait locally, %u do", st.waiting);
	cr_assert_eq(ur_cancel(&f[6]), 0);
	cr_assert_eq(calls[6], 0, "cancel must not complete inline");
	cr_assert_eq(ur_cancel(&f[6]), -EALREADY);
	cr_assert_eq(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	for (int i = 0; i < 8; i++) {
		cr_assert_eq(calls[i], 1, "future %d completed %d times", i, calls[i]);
		cr_assert_eq(f[i].res, i == 6 ? -ECANCELED : 0, "future %d: %d", i, f[i].res);
	}
	ur_loop_stats(l, &st);
	cr_assert_eq(st.submitted, 8 - 1 + 1 /* the loop's wake-up read */, "%lu",
	             (unsigned long)st.submitted);
	cr_assert_eq(ur_cancel(&f[6]), -ENOENT);
	t_loop_done(&l);
}

Test(future, cancel_in_sq_before_submission_loses_the_race)
{
	/* The NOP is issued before the cancel that follows it in the same submission: it completes
	 * inline, so the real result wins and the cancel finds nothing. Target CQE first. */
	struct ur_loop *l = t_loop();
	struct ur_future f;
	int calls = 0;

	ur_future_init(&f, t_count_cb, &calls);
	cr_assert_eq(ur_nop_start(l, &f), 0);
	cr_assert_eq(ur_cancel(&f), 0);
	cr_assert_eq(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	cr_assert_eq(calls, 1);
	cr_assert_eq(f.res, 0);
	t_loop_done(&l);
}

Test(future, cancel_in_kernel)
{
	t_fault_unsafe("eintr,reset",
	               "a recv on a TCP socket must stay pending (EINTR or a reset completes it)");
	struct ur_loop *l = t_loop();
	struct ur_future f;
	int calls = 0, c, s;
	char buf[16];

	t_tcp_pair(&c, &s);
	ur_future_init(&f, t_count_cb, &calls);
	cr_assert_eq(ur_recv_start(l, &f, s, buf, sizeof(buf), 0), 0);
	cr_assert_eq(ur_loop_run(l, UR_RUN_NOWAIT), 1);
	cr_assert_eq(calls, 0);
	cr_assert_eq(ur_cancel(&f), 0);
	cr_assert_eq(calls, 0);
	cr_assert_eq(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	cr_assert_eq(calls, 1);
	cr_assert_eq(f.res, -ECANCELED);
	/* The socket is still usable: nothing was consumed. */
	cr_assert_eq(write(c, "x", 1), 1);
	cr_assert_eq(read(s, buf, 1), 1);
	close(c);
	close(s);
	t_loop_done(&l);
}

Test(future, cancel_timeout_in_kernel_cancel_cqe_first)
{
	/* Cancelling a timeout completes the cancel request inline while the timeout's own
	 * completion is queued as task work: on current kernels the cancel's CQE comes first. The
	 * future must still complete once, with -ECANCELED, whatever the order. */
	struct ur_loop_opts o = {.max_per_turn = 1};
	struct ur_loop *l = t_loop_opts(&o);
	struct ur_future f;
	int calls = 0;

	ur_future_init(&f, t_count_cb, &calls);
	cr_assert_eq(ur_timeout_start(l, &f, 30 * UR_SEC, 0), 0);
	cr_assert_eq(ur_loop_run(l, UR_RUN_NOWAIT), 1);
	cr_assert_eq(ur_cancel(&f), 0);
	while (!ur_future_done(&f))
		cr_assert_geq(ur_loop_run(l, UR_RUN_ONCE), 0);
	cr_assert_eq(calls, 1);
	cr_assert_eq(f.res, -ECANCELED);
	cr_assert_eq(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	cr_assert_eq(calls, 1);
	t_loop_done(&l);
}

Test(future, cancel_after_kernel_completed_before_reaped)
{
	/* max_per_turn = 1: the second NOP's CQE sits in the CQ, unreaped, while we cancel it. The
	 * cancel finds nothing in the kernel; the real result must be delivered, once. */
	struct ur_loop_opts o = {.max_per_turn = 1};
	struct ur_loop *l = t_loop_opts(&o);
	struct ur_future a, b;
	int ca = 0, cb = 0;

	ur_future_init(&a, t_count_cb, &ca);
	ur_future_init(&b, t_count_cb, &cb);
	cr_assert_eq(ur_nop_start(l, &a), 0);
	cr_assert_eq(ur_nop_start(l, &b), 0);
	cr_assert_geq(ur_loop_run(l, UR_RUN_ONCE), 0);
	cr_assert_eq(ca + cb, 1, "one completion per turn");
	struct ur_future *late = ca ? &b : &a;
	cr_assert_eq(ur_cancel(late), 0);
	cr_assert_eq(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	cr_assert_eq(ca, 1);
	cr_assert_eq(cb, 1);
	cr_assert_eq(late->res, 0);
	t_loop_done(&l);
}

Test(future, cancel_after_done_is_refused)
{
	struct ur_loop *l = t_loop();
	struct ur_future f;
	int calls = 0;

	ur_future_init(&f, t_count_cb, &calls);
	cr_assert_eq(ur_cancel(&f), -ENOENT, "never started");
	cr_assert_eq(ur_nop_start(l, &f), 0);
	cr_assert_eq(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	cr_assert_eq(ur_cancel(&f), -ENOENT);
	cr_assert_eq(calls, 1);
	t_loop_done(&l);
}

/* --- descriptors created by operations cancelled too late --------------------------------- */

/* The number the next descriptor will get. */
static int next_fd(void)
{
	int fd = dup(0);
	cr_assert_geq(fd, 0);
	close(fd);
	return fd;
}

/* Waits (bounded) until descriptor @fd exists: the kernel has completed the operation. */
static void wait_fd_open(int fd)
{
	for (int i = 0; i < 2000 && !t_fd_is_open(fd); i++)
		usleep(1000);
	cr_assert(t_fd_is_open(fd), "fd %d never appeared", fd);
}

static void cancel_after_success(struct ur_loop *l, struct ur_future *target, int fd)
{
	wait_fd_open(fd);
	cr_assert_eq(ur_cancel(target), 0);
	cr_assert_eq(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	cr_assert_eq(target->res, -ECANCELED);
	cr_assert_not(t_fd_is_open(fd), "fd %d leaked", fd);
}

Test(future, openat_cancelled_after_success_closes_fd)
{
	struct ur_loop_opts o = {.max_per_turn = 1};
	struct ur_loop *l = t_loop_opts(&o);
	struct ur_future a, b;
	int ca = 0, cb = 0;
	int before = t_count_fds();

	ur_future_init(&a, t_count_cb, &ca);
	ur_future_init(&b, t_count_cb, &cb);
	int fd = next_fd();
	cr_assert_eq(ur_nop_start(l, &a), 0);
	cr_assert_eq(ur_openat_start(l, &b, AT_FDCWD, "/proc/self/stat", O_RDONLY, 0), 0);
	cr_assert_geq(ur_loop_run(l, UR_RUN_ONCE), 0);
	cr_assert_eq(ca, 1);
	cr_assert_eq(cb, 0);
	cancel_after_success(l, &b, fd);
	cr_assert_eq(cb, 1);
	cr_assert_eq(t_count_fds(), before);
	t_loop_done(&l);
}

Test(future, accept_cancelled_after_success_closes_fd)
{
	t_fault_unsafe("eintr", "its accept must succeed");
	struct ur_loop_opts o = {.max_per_turn = 1};
	struct ur_loop *l = t_loop_opts(&o);
	struct ur_future a, b;
	int ca = 0, cb = 0;
	uint16_t port;
	int before = t_count_fds();

	int lfd = t_listen_tcp(&port);
	int cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ur_future_init(&a, t_count_cb, &ca);
	ur_future_init(&b, t_count_cb, &cb);
	cr_assert_eq(ur_accept_start(l, &b, lfd, NULL, NULL, 0), 0);
	cr_assert_eq(ur_loop_run(l, UR_RUN_NOWAIT), 1); /* the accept waits in the kernel */
	int fd = next_fd();
	struct sockaddr_in sa = t_loopback(port);
	cr_assert_eq(connect(cfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(ur_nop_start(l, &a), 0);
	/* This turn runs the accept's completion in the kernel but hands us only one CQE. */
	while (!ca && !cb)
		cr_assert_geq(ur_loop_run(l, UR_RUN_ONCE), 0);
	if (cb) {
		/* The accept's CQE came first: it was delivered, and is the caller's to close. */
		cr_assert_geq(b.res, 0);
		close(b.res);
		cr_skip_test("accept completed before the NOP on this kernel; phase not reached");
	}
	cancel_after_success(l, &b, fd);
	cr_assert_eq(cb, 1);
	close(cfd);
	close(lfd);
	cr_assert_eq(t_count_fds(), before);
	t_loop_done(&l);
}

/* --- deadlines ------------------------------------------------------------------------------ */

Test(future, deadline_against_silent_peer_times_out)
{
	t_fault_unsafe("eintr,reset",
	               "a recv on a TCP socket must stay pending (EINTR or a reset completes it)");
	struct ur_loop *l = t_loop();
	struct ur_future f;
	int calls = 0, c, s;
	char buf[16];

	t_tcp_pair(&c, &s);
	ur_future_init(&f, t_count_cb, &calls);
	cr_assert_eq(ur_future_set_deadline(&f, 50 * UR_MSEC), 0);
	uint64_t t0 = ur_now_ns();
	cr_assert_eq(ur_recv_start(l, &f, s, buf, sizeof(buf), 0), 0);
	cr_assert_eq(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	cr_assert_eq(calls, 1);
	cr_assert_eq(f.res, -ETIMEDOUT, "got %s", ur_strerror_name(f.res));
	cr_assert_geq(ur_now_ns() - t0, 45 * UR_MSEC);
	/* The deadline applied to that start only. */
	cr_assert_eq(ur_nop_start(l, &f), 0);
	cr_assert_eq(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	cr_assert_eq(f.res, 0);
	close(c);
	close(s);
	t_loop_done(&l);
}

Test(future, deadline_not_reached_keeps_result)
{
	struct ur_loop *l = t_loop();
	struct ur_future f;
	int calls = 0;

	ur_future_init(&f, t_count_cb, &calls);
	cr_assert_eq(ur_future_set_deadline(&f, 10 * UR_SEC), 0);
	cr_assert_eq(ur_nop_start(l, &f), 0);
	cr_assert_eq(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	cr_assert_eq(calls, 1);
	cr_assert_eq(f.res, 0);
	t_loop_done(&l);
}

Test(future, cancel_with_deadline_reports_cancelled)
{
	t_fault_unsafe("eintr,reset",
	               "a recv on a TCP socket must stay pending (EINTR or a reset completes it)");
	struct ur_loop *l = t_loop();
	struct ur_future f;
	int calls = 0, c, s;
	char buf[16];

	t_tcp_pair(&c, &s);
	ur_future_init(&f, t_count_cb, &calls);
	cr_assert_eq(ur_future_set_deadline(&f, 10 * UR_SEC), 0);
	cr_assert_eq(ur_recv_start(l, &f, s, buf, sizeof(buf), 0), 0);
	cr_assert_eq(ur_loop_run(l, UR_RUN_NOWAIT), 1);
	cr_assert_eq(ur_cancel(&f), 0);
	cr_assert_eq(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	cr_assert_eq(calls, 1);
	cr_assert_eq(f.res, -ECANCELED);
	close(c);
	close(s);
	t_loop_done(&l);
}

struct hooked {
	int calls;
	struct ur_future *f;
};

static void on_cancel_hook(struct ur_future *f, void *arg)
{
	struct hooked *h = arg;
	cr_assert_eq(f, h->f);
	h->calls++;
}

Test(future, hooked_cancel_calls_the_hook_and_waits_for_resolve)
{
	struct ur_loop *l = t_loop();
	struct ur_future f;
	int done = 0;
	struct hooked h = {.f = &f};
	struct ur_cancel_hook hook = {.fn = on_cancel_hook, .arg = &h};
	ur_future_init(&f, t_count_cb, &done);
	ASSERT_RES(ur_future_begin_hooked(l, &f, &hook), 0);
	ASSERT_RES(ur_cancel(&f), 0);
	cr_assert_eq(h.calls, 1);
	ASSERT_RES(ur_cancel(&f), -EALREADY);
	cr_assert_eq(h.calls, 1);
	ur_loop_run(l, UR_RUN_NOWAIT);
	cr_assert_eq(done, 0, "a hooked future completes only when resolved");
	cr_assert_eq(ur_future_state(&f), UR_FUTURE_PENDING);
	ASSERT_RES(ur_future_resolve(&f, -ECANCELED), 0);
	t_run_until(l, &f);
	cr_assert_eq(done, 1);
	ASSERT_RES(f.res, -ECANCELED);
	/* a plain begin on the same future afterwards has no hook left */
	ASSERT_RES(ur_future_begin(l, &f), 0);
	ASSERT_RES(ur_cancel(&f), 0);
	t_run_until(l, &f);
	ASSERT_RES(f.res, -ECANCELED);
	cr_assert_eq(h.calls, 1);
	t_loop_done(&l);
}
