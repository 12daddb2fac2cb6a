/* SPDX-License-Identifier: MIT */
/*
 * tests/core/test_cancel.c - cancel by descriptor and per-operation deadlines
 * (ur_future_set_deadline).
 */
#include "io_fixtures.h"

TestSuite(cancel, .timeout = 30);

/* ---- cancel by descriptor ---- */

Test(cancel, cancel_fd_all_and_none)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	int c, s;
	t_tcp_pair(&c, &s);
	struct op r1, r2, co;
	char b1[8], b2[8];
	memset(b1, 0, sizeof(b1));
	memset(b2, 0, sizeof(b2));

	START(&r1, ur_recv_start(l, &r1.f, s, b1, sizeof(b1), 0));
	START(&r2, ur_recv_start(l, &r2.f, s, b2, sizeof(b2), 0));
	settle(l);
	cr_assert_eq(r1.calls + r2.calls, 0);
	START(&co, ur_cancel_fd_start(l, &co.f, s, 1));
	ASSERT_RES(op_wait(l, &co), 2);
	ASSERT_RES(op_wait(l, &r1), -ECANCELED);
	ASSERT_RES(op_wait(l, &r2), -ECANCELED);

	/* Nothing left on s. */
	START(&co, ur_cancel_fd_start(l, &co.f, s, 1));
	ASSERT_RES(op_wait(l, &co), -ENOENT);
	START(&co, ur_cancel_fd_start(l, &co.f, s, 0));
	ASSERT_RES(op_wait(l, &co), -ENOENT);

	/* all = 0 cancels one of two; the other still gets its data. */
	START(&r1, ur_recv_start(l, &r1.f, s, b1, sizeof(b1), 0));
	START(&r2, ur_recv_start(l, &r2.f, s, b2, sizeof(b2), 0));
	settle(l);
	START(&co, ur_cancel_fd_start(l, &co.f, s, 0));
	ASSERT_RES(op_wait(l, &co), 1);
	settle(l);
	cr_assert_eq(r1.calls + r2.calls, 1, "cancelled %d recvs", r1.calls + r2.calls);
	struct op *gone = r1.calls ? &r1 : &r2, *live = r1.calls ? &r2 : &r1;
	ASSERT_RES(gone->res, -ECANCELED);
	cr_assert_eq(write(c, "data", 4), 4);
	ASSERT_RES(op_wait(l, live), 4);
	cr_assert_arr_eq(live == &r1 ? b1 : b2, "data", 4);
	cr_assert_eq(gone->calls, 1);

	/* Operations on another descriptor are not touched. */
	START(&r1, ur_recv_start(l, &r1.f, c, b1, sizeof(b1), 0));
	settle(l);
	START(&co, ur_cancel_fd_start(l, &co.f, s, 1));
	ASSERT_RES(op_wait(l, &co), -ENOENT);
	settle(l);
	cr_assert_eq(r1.calls, 0);
	cr_assert_eq(write(s, "ok", 2), 2);
	ASSERT_RES(op_wait(l, &r1), 2);

	close(c);
	close(s);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

/* ---- per-operation deadlines ---- */

Test(cancel, deadline_expires_with_etimedout)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	need_op(l, IORING_OP_LINK_TIMEOUT, "IORING_OP_LINK_TIMEOUT");
	int c, s;
	t_tcp_pair(&c, &s);
	struct op o;
	char buf[8];
	memset(buf, 0, sizeof(buf));

	op_init(&o);
	ASSERT_RES(ur_future_set_deadline(&o.f, 50 * UR_MSEC), 0);
	uint64_t t0 = ur_now_ns();
	ASSERT_RES(ur_recv_start(l, &o.f, s, buf, sizeof(buf), 0), 0);
	cr_assert_eq(o.calls, 0);
	ASSERT_RES(op_wait(l, &o), -ETIMEDOUT);
	uint64_t el = o.at - t0;
	cr_assert_geq(el, 45 * UR_MSEC, "timed out after %llu ns", (unsigned long long)el);
	cr_assert_lt(el, 10 * UR_SEC, "timed out after %llu ns", (unsigned long long)el);

	/* The socket is unharmed: data sent now is there for the next recv. */
	cr_assert_eq(write(c, "late", 4), 4);
	START(&o, ur_recv_start(l, &o.f, s, buf, sizeof(buf), 0));
	ASSERT_RES(op_wait(l, &o), 4);
	cr_assert_arr_eq(buf, "late", 4);

	close(c);
	close(s);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

Test(cancel, deadline_met_delivers_data_and_applies_to_one_start)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	need_op(l, IORING_OP_LINK_TIMEOUT, "IORING_OP_LINK_TIMEOUT");
	int c, s;
	t_tcp_pair(&c, &s);
	struct op o, to;
	char buf[8];
	memset(buf, 0, sizeof(buf));

	/* Data arrives while the recv waits under a 10 s deadline. */
	op_init(&o);
	ASSERT_RES(ur_future_set_deadline(&o.f, 10 * UR_SEC), 0);
	uint64_t t0 = ur_now_ns();
	ASSERT_RES(ur_recv_start(l, &o.f, s, buf, sizeof(buf), 0), 0);
	ASSERT_RES(ur_future_set_deadline(&o.f, UR_SEC), -EBUSY);
	settle(l);
	cr_assert_eq(o.calls, 0);
	cr_assert_eq(write(c, "intime", 6), 6);
	ASSERT_RES(op_wait(l, &o), 6);
	cr_assert_arr_eq(buf, "intime", 6);
	cr_assert_lt(o.at - t0, 5 * UR_SEC, "waited for the deadline despite the data");

	/* A 50 ms deadline on a recv whose data is already there. */
	cr_assert_eq(write(c, "ready", 5), 5);
	ASSERT_RES(ur_future_set_deadline(&o.f, 50 * UR_MSEC), 0);
	o.calls = 0;
	ASSERT_RES(ur_recv_start(l, &o.f, s, buf, sizeof(buf), 0), 0);
	ASSERT_RES(op_wait(l, &o), 5);
	cr_assert_arr_eq(buf, "ready", 5);

	/* The next start of the same future has no deadline: still waiting well after 50 ms. */
	o.calls = 0;
	ASSERT_RES(ur_recv_start(l, &o.f, s, buf, sizeof(buf), 0), 0);
	START(&to, ur_timeout_start(l, &to.f, 150 * UR_MSEC, 0));
	ASSERT_RES(op_wait(l, &to), 0);
	cr_assert_eq(o.calls, 0, "deadline carried over to a later start: res %d (%s)", o.res,
	             ur_strerror_name(o.res));
	cr_assert_eq(write(c, "after", 5), 5);
	ASSERT_RES(op_wait(l, &o), 5);
	cr_assert_arr_eq(buf, "after", 5);

	/* Deadlines on file operations too: a read that completes at once. */
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_eq(write(p[1], "pipe", 4), 4);
	ASSERT_RES(ur_future_set_deadline(&o.f, UR_SEC), 0);
	o.calls = 0;
	ASSERT_RES(ur_read_start(l, &o.f, p[0], buf, sizeof(buf), UR_OFF_CURRENT), 0);
	ASSERT_RES(op_wait(l, &o), 4);
	cr_assert_arr_eq(buf, "pipe", 4);
	/* ...and one on an empty pipe that times out. */
	ASSERT_RES(ur_future_set_deadline(&o.f, 30 * UR_MSEC), 0);
	o.calls = 0;
	ASSERT_RES(ur_read_start(l, &o.f, p[0], buf, sizeof(buf), UR_OFF_CURRENT), 0);
	ASSERT_RES(op_wait(l, &o), -ETIMEDOUT);
	close(p[0]);
	close(p[1]);

	close(c);
	close(s);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

Test(cancel, deadline_refused_on_timeout_and_multishot)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	struct ur_bufring *br = t_bufring(&l, 2, 1024);
	int c, s;
	t_tcp_pair(&c, &s);
	uint16_t port;
	int lfd = t_listen_tcp(&port);
	struct op o;

	op_init(&o);
	ASSERT_RES(ur_future_set_deadline(&o.f, 50 * UR_MSEC), 0);
	ASSERT_RES(ur_timeout_start(l, &o.f, UR_MSEC, 0), -EINVAL);
	cr_assert_eq(ur_future_state(&o.f), UR_FUTURE_IDLE);
	ASSERT_RES(ur_accept_multishot_start(l, &o.f, lfd, 0), -EINVAL);
	cr_assert_eq(ur_future_state(&o.f), UR_FUTURE_IDLE);
	ASSERT_RES(ur_recv_multishot_start(l, &o.f, s, br, 0), -EINVAL);
	cr_assert_eq(ur_future_state(&o.f), UR_FUTURE_IDLE);
	ASSERT_RES(ur_cancel(&o.f), -ENOENT);

	/* A failed start never completes, and holds nothing. */
	struct op to;
	START(&to, ur_timeout_start(l, &to.f, 10 * UR_MSEC, 0));
	ASSERT_RES(op_wait(l, &to), 0);
	cr_assert_eq(o.calls, 0);
	cr_assert_eq(ur_loop_pending(l), 0);

	ASSERT_RES(ur_bufring_free(&br), 0);
	close(lfd);
	close(c);
	close(s);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}
