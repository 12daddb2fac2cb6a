/* SPDX-License-Identifier: MIT */
/*
 * tests/core/test_sendzc.c - zero-copy send (ur_send_zc_start, ur_send_zc): the bytes, one
 * completion after both of the kernel's CQEs, cancellation, the fallback to a plain send, zero
 * length, the task-style call.
 */
#include "io_fixtures.h"

TestSuite(sendzc, .timeout = 30);

#define LEN (32 * 1024)

static void need_zc(struct ur_loop *l)
{
	need_op(l, IORING_OP_SEND_ZC, "IORING_OP_SEND_ZC (6.0)");
}

/* Reads exactly @n bytes from blocking @fd. */
static void read_exact(int fd, uint8_t *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = recv(fd, buf + got, n - got, 0);
		cr_assert_gt(r, 0, "recv: %zd", r);
		got += (size_t)r;
	}
}

Test(sendzc, tcp_bytes_arrive_identical_and_complete_once)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	need_zc(l);
	int c, s;
	t_tcp_pair(&c, &s);
	static uint8_t out[LEN], in[LEN];
	fill_pattern(out, LEN, 7);
	size_t sent = 0;
	while (sent < LEN) {
		struct op o;
		START(&o, ur_send_zc_start(l, &o.f, c, out + sent, LEN - sent, 0));
		int n = op_wait(l, &o);
		cr_assert_gt(n, 0, "send_zc: %s", ur_strerror(n));
		sent += (size_t)n;
	}
	read_exact(s, in, LEN);
	cr_assert_arr_eq(in, out, LEN);
	close(c);
	close(s);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

Test(sendzc, zero_length_completes_with_zero)
{
	struct ur_loop *l = t_loop();
	need_zc(l);
	int c, s;
	t_tcp_pair(&c, &s);
	struct op o;
	START(&o, ur_send_zc_start(l, &o.f, c, "", 0, 0));
	ASSERT_RES(op_wait(l, &o), 0);
	close(c);
	close(s);
	t_loop_done(&l);
}

/*
 * A Unix socket does not do zero copy: the kernel refuses when the send runs (-EOPNOTSUPP), the
 * same send goes out plainly, and the loop remembers: the next one is one plain SQE.
 */
Test(sendzc, refused_by_the_socket_falls_back_to_a_plain_send_and_is_remembered)
{
	struct ur_loop *l = t_loop();
	need_zc(l);
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	uint8_t out[4096], in[4096];
	fill_pattern(out, sizeof(out), 3);
	struct ur_loop_stats before, after;

	for (int round = 0; round < 2; round++) {
		struct op o;
		ur_loop_stats(l, &before);
		START(&o, ur_send_zc_start(l, &o.f, sv[0], out, sizeof(out), 0));
		ASSERT_RES(op_wait(l, &o), (int)sizeof(out));
		ur_loop_stats(l, &after);
		unsigned sqes = (unsigned)(after.submitted - before.submitted);
		if (round == 0 && sqes == 1)
			cr_skip_test(
			    "this kernel does zero copy on Unix sockets: no fallback to test");
		/* the refused zero-copy SQE and the plain one; then the plain one only */
		cr_assert_eq(sqes, round == 0 ? 2u : 1u, "round %d: %u SQEs", round, sqes);
		memset(in, 0, sizeof(in));
		read_exact(sv[1], in, sizeof(in));
		cr_assert_arr_eq(in, out, sizeof(in));
	}
	close(sv[0]);
	close(sv[1]);
	t_loop_done(&l);
}

/* Fills @fd's send buffer until the kernel would block. */
static void fill_sndbuf(int fd)
{
	static char junk[65536];
	int small = 4096;
	cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	while (send(fd, junk, sizeof(junk), MSG_DONTWAIT) > 0)
		;
}

Test(sendzc, cancelled_while_blocked_completes_once_with_ecanceled)
{
	struct ur_loop *l = t_loop();
	need_zc(l);
	int c, s;
	t_tcp_pair(&c, &s);
	fill_sndbuf(c);
	static uint8_t out[LEN];
	struct op o;
	START(&o, ur_send_zc_start(l, &o.f, c, out, LEN, 0));
	settle(l);
	cr_assert_eq(o.calls, 0, "a send into a full buffer completed: %d", o.res);
	cr_assert_eq(ur_cancel(&o.f), 0);
	ASSERT_RES(op_wait(l, &o), -ECANCELED);
	settle(l);
	cr_assert_eq(o.calls, 1);
	close(c);
	close(s);
	t_loop_done(&l);
}

Test(sendzc, takes_no_deadline)
{
	struct ur_loop *l = t_loop();
	struct ur_future f;
	ur_future_init(&f, NULL, NULL);
	cr_assert_eq(ur_future_set_deadline(&f, UR_SEC), 0);
	ASSERT_RES(ur_send_zc_start(l, &f, 0, "", 0, 0), -EINVAL);
	cr_assert_eq(ur_future_state(&f), UR_FUTURE_IDLE);
	t_loop_done(&l);
}

struct pair {
	int c, s;
};

static int task_send(void *arg)
{
	struct pair *p = arg;
	static uint8_t out[LEN], in[LEN];
	fill_pattern(out, LEN, 11);
	size_t sent = 0;
	while (sent < LEN) {
		ssize_t n = ur_send_zc(p->c, out + sent, LEN - sent, MSG_NOSIGNAL);
		cr_assert_gt(n, 0, "ur_send_zc: %s", ur_strerror((int)n));
		sent += (size_t)n;
	}
	size_t got = 0;
	while (got < LEN) {
		ssize_t n = ur_recv(p->s, in + got, LEN - got, 0);
		cr_assert_gt(n, 0);
		got += (size_t)n;
	}
	cr_assert_arr_eq(in, out, LEN);
	return 0;
}

Test(sendzc, task_style_call)
{
	struct pair p;
	t_tcp_pair(&p.c, &p.s);
	int result = -1;
	cr_assert_eq(t_run(task_send, &p, &result), 0);
	cr_assert_eq(result, 0);
	close(p.c);
	close(p.s);
}
