/* SPDX-License-Identifier: MIT */
/*
 * tests/core/test_bufring.c - buffer rings and the multishot recv that feeds from them, close
 * against it, and cancelled descriptor-creating operations.
 */
#include "io_fixtures.h"

TestSuite(bufring, .timeout = 30);

/* ---- multishot recv over a buffer ring ---- */

#define STREAM_LEN (1u << 20)

/*
 * The writer is a forked child, not a thread: valgrind keeps its big lock across
 * io_uring_enter(2), so a writer thread would never run while the loop waits.
 * Writes the whole pattern in pieces of varying size, blocking, then exits (closing the socket).
 * Exit status: 0, or the errno of the failed write.
 */
static pid_t start_writer(int fd, const uint8_t *data, size_t len)
{
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid > 0)
		return pid;
	uint32_t x = 12345;
	size_t off = 0;
	while (off < len) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		size_t n = 1 + x % 20000;
		if (n > len - off)
			n = len - off;
		ssize_t r = write(fd, data + off, n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			_exit(errno);
		}
		off += (size_t)r;
	}
	_exit(0);
}

struct stream {
	struct ur_loop *l;
	struct ur_bufring *br;
	struct ur_future f;
	const uint8_t *expect;
	size_t got;
	unsigned calls, chunks, finals;
	int final_res, final_buf;
	long first_bad; /* offset of the first byte that did not match, -1 if none */
	unsigned bad_bid, bad_res, oversize, dry;
	uint32_t rng;
	/* buffers held back and recycled on a later loop turn */
	unsigned held[4], nheld, held_overflow;
	struct ur_future later;
	unsigned later_starts;
};

static uint32_t stream_rand(struct stream *s)
{
	s->rng ^= s->rng << 13;
	s->rng ^= s->rng >> 17;
	s->rng ^= s->rng << 5;
	return s->rng;
}

static void stream_later_cb(struct ur_future *f, void *arg)
{
	struct stream *s = arg;
	(void)f;
	for (unsigned i = 0; i < s->nheld; i++)
		ur_bufring_recycle(s->br, s->held[i]);
	s->nheld = 0;
}

static void stream_cb(struct ur_future *f, void *arg)
{
	struct stream *s = arg;
	s->calls++;
	if (!ur_future_more(f)) {
		s->finals++;
		s->final_res = f->res;
		s->final_buf = ur_future_buffer(f);
		return;
	}
	int bid = ur_future_buffer(f);
	if (f->res <= 0) {
		s->bad_res++;
		if (bid >= 0)
			ur_bufring_recycle(s->br, (unsigned)bid);
		return;
	}
	if (bid < 0 || bid >= 2) {
		s->bad_bid++;
		return;
	}
	size_t n = (size_t)f->res;
	if (n > ur_bufring_size(s->br) || s->got + n > STREAM_LEN) {
		s->oversize++;
		n = s->got < STREAM_LEN ? STREAM_LEN - s->got : 0;
	}
	const uint8_t *p = ur_bufring_buf(s->br, (unsigned)bid);
	if (s->first_bad < 0 && memcmp(p, s->expect + s->got, n) != 0) {
		size_t i = 0;
		while (p[i] == s->expect[s->got + i])
			i++;
		s->first_bad = (long)(s->got + i);
	}
	s->got += n;
	s->chunks++;
	if (ur_bufring_available(s->br) == 0)
		s->dry++;

	/*
	 * One buffer in four goes back at once; the others wait for a later loop turn (a nop, or a
	 * short timeout), so the two-buffer ring runs dry while the writer still has data queued.
	 */
	uint32_t r = stream_rand(s) % 4;
	if (r == 0) {
		ur_bufring_recycle(s->br, (unsigned)bid);
		return;
	}
	if (s->nheld == 4) {
		s->held_overflow++;
		ur_bufring_recycle(s->br, (unsigned)bid);
		return;
	}
	s->held[s->nheld++] = (unsigned)bid;
	if (ur_future_state(&s->later) != UR_FUTURE_PENDING) {
		int ret = r == 1 ? ur_nop_start(s->l, &s->later)
		                 : ur_timeout_start(s->l, &s->later, 200 * UR_USEC, 0);
		if (ret == 0)
			s->later_starts++;
		else
			stream_later_cb(&s->later, s); /* recorded as a shortfall below */
	}
}

Test(bufring, recv_multishot_two_buffers_rearms_and_loses_nothing_of_1mib)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	struct ur_bufring *br = t_bufring(&l, 2, 4096);
	int c, s;
	t_tcp_pair(&c, &s);

	uint8_t *data = malloc(STREAM_LEN);
	cr_assert_not_null(data);
	fill_pattern(data, STREAM_LEN, 0xC0FFEE);

	static struct stream st;
	memset(&st, 0, sizeof(st));
	st.l = l;
	st.br = br;
	st.expect = data;
	st.first_bad = -1;
	st.final_res = 1;
	st.rng = 99;
	ur_future_init(&st.f, stream_cb, &st);
	ur_future_init(&st.later, stream_later_cb, &st);

	int r = ur_recv_multishot_start(l, &st.f, s, br, 0);
	if (r == -EOPNOTSUPP || r == -EINVAL) {
		close(c);
		close(s);
		free(data);
		ur_bufring_free(&br);
		t_loop_done(&l);
		cr_skip_test("multishot recv unsupported (6.0): %s", ur_strerror(r));
	}
	ASSERT_RES(r, 0);
	cr_assert_eq(st.calls, 0);

	pid_t writer = start_writer(c, data, STREAM_LEN);
	close(c); /* the child's copy is the only writer: its exit ends the stream */
	t_run_until(l, &st.f);
	drain(l); /* the last deferred recycle */
	int status = 0;
	cr_assert_eq(waitpid(writer, &status, 0), writer);
	cr_assert(WIFEXITED(status), "writer died: status %#x", status);
	cr_assert_eq(WEXITSTATUS(status), 0, "writer: %s", strerror(WEXITSTATUS(status)));

	cr_assert_eq(st.bad_res, 0, "%u chunks flagged more with res <= 0", st.bad_res);
	cr_assert_eq(st.bad_bid, 0, "%u chunks with no valid buffer id", st.bad_bid);
	cr_assert_eq(st.oversize, 0, "%u chunks larger than a buffer or past the end", st.oversize);
	cr_assert_eq(st.first_bad, -1, "stream corrupt from byte %ld", st.first_bad);
	cr_assert_eq(st.got, STREAM_LEN, "received %zu of %u bytes", st.got, STREAM_LEN);
	cr_assert_geq(st.chunks, STREAM_LEN / 4096);
	cr_assert_eq(st.finals, 1);
	ASSERT_RES(st.final_res, 0);
	cr_assert_eq(st.final_buf, -1, "the end-of-stream completion names buffer %d",
	             st.final_buf);
	cr_assert_not(ur_future_more(&st.f));
	cr_assert_eq(st.calls, st.chunks + 1);
	cr_assert_eq(st.held_overflow, 0);
	cr_assert_eq(st.nheld, 0);
	cr_assert_eq(ur_bufring_available(br), 2, "buffers lost: %u of 2 in the ring",
	             ur_bufring_available(br));

	/*
	 * The test must have made the ring run dry. Every SQE but the wake-up read, the recv and
	 * the deferrals is a re-arm of the recv.
	 */
	cr_assert_gt(st.dry, 0, "the ring never ran dry: re-arming was not exercised");
	struct ur_loop_stats ls;
	ur_loop_stats(l, &ls);
	cr_assert_gt(ls.submitted, 2 + (uint64_t)st.later_starts,
	             "no re-arm was submitted: the ring never stopped the multishot");

	ASSERT_RES(ur_bufring_free(&br), 0);
	cr_assert_null(br);
	close(s);
	free(data);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

struct chunks {
	struct ur_future f;
	int calls, finals;
	int res[8], bid[8];
	bool more[8];
};

static void chunks_cb(struct ur_future *f, void *arg)
{
	struct chunks *k = arg;
	if (k->calls < 8) {
		k->res[k->calls] = f->res;
		k->bid[k->calls] = ur_future_buffer(f);
		k->more[k->calls] = ur_future_more(f);
	}
	k->calls++;
	if (!ur_future_more(f))
		k->finals++;
}

Test(bufring, recv_multishot_starved_ring_resumes_on_recycle)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	struct ur_bufring *br = t_bufring(&l, 1, 4096);
	int c, s;
	t_tcp_pair(&c, &s);
	struct chunks k;
	memset(&k, 0, sizeof(k));
	ur_future_init(&k.f, chunks_cb, &k);

	ASSERT_RES(ur_recv_multishot_start(l, &k.f, s, br, 0), 0);
	cr_assert_eq(write(c, "first", 5), 5);
	while (k.calls < 1)
		cr_assert_geq(ur_loop_run(l, UR_RUN_ONCE), 0);
	cr_assert_eq(k.calls, 1);
	ASSERT_RES(k.res[0], 5);
	cr_assert(k.more[0]);
	cr_assert_eq(k.bid[0], 0);
	cr_assert_arr_eq(ur_bufring_buf(br, 0), "first", 5);
	cr_assert_eq(ur_bufring_available(br), 0);

	/* More data with the only buffer held: the kernel stops the multishot (ENOBUFS). */
	cr_assert_eq(write(c, "second!", 7), 7);
	struct op to;
	START(&to, ur_timeout_start(l, &to.f, 20 * UR_MSEC, 0));
	ASSERT_RES(op_wait(l, &to), 0);
	cr_assert_eq(k.calls, 1, "a completion with no buffer to carry it: res %d", k.res[1]);
	cr_assert_eq(ur_future_state(&k.f), UR_FUTURE_PENDING);

	/* Recycling re-arms it: the waiting bytes arrive, none lost. */
	ur_bufring_recycle(br, 0);
	while (k.calls < 2)
		cr_assert_geq(ur_loop_run(l, UR_RUN_ONCE), 0);
	cr_assert_eq(k.calls, 2);
	ASSERT_RES(k.res[1], 7);
	cr_assert(k.more[1]);
	cr_assert_eq(k.bid[1], 0);
	cr_assert_arr_eq(ur_bufring_buf(br, 0), "second!", 7);
	ur_bufring_recycle(br, 0);

	/* Starved again, then cancelled: one final -ECANCELED, no data. */
	cr_assert_eq(write(c, "3", 1), 1);
	while (k.calls < 3)
		cr_assert_geq(ur_loop_run(l, UR_RUN_ONCE), 0);
	ASSERT_RES(k.res[2], 1);
	cr_assert_eq(write(c, "4", 1), 1);
	START(&to, ur_timeout_start(l, &to.f, 20 * UR_MSEC, 0));
	ASSERT_RES(op_wait(l, &to), 0);
	cr_assert_eq(k.calls, 3);
	ASSERT_RES(ur_cancel(&k.f), 0);
	cr_assert_eq(k.calls, 3, "ur_cancel completed the future inline");
	t_run_until(l, &k.f);
	cr_assert_eq(k.calls, 4);
	cr_assert_eq(k.finals, 1);
	ASSERT_RES(k.res[3], -ECANCELED);
	cr_assert_not(k.more[3]);
	cr_assert_eq(k.bid[3], -1);
	ur_bufring_recycle(br, 0);
	cr_assert_eq(ur_bufring_available(br), 1);

	ASSERT_RES(ur_bufring_free(&br), 0);
	close(c);
	close(s);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

Test(bufring, bufring_free_while_multishot_active_is_ebusy_then_cancel)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	struct ur_bufring *br = t_bufring(&l, 4, 1024);
	int c, s;
	t_tcp_pair(&c, &s);
	struct chunks k;
	memset(&k, 0, sizeof(k));
	ur_future_init(&k.f, chunks_cb, &k);

	ASSERT_RES(ur_recv_multishot_start(l, &k.f, s, br, 0), 0);
	settle(l);
	cr_assert_eq(k.calls, 0);
	/* A second start of a pending future is refused. */
	ASSERT_RES(ur_recv_multishot_start(l, &k.f, s, br, 0), -EBUSY);
	ASSERT_RES(ur_bufring_free(&br), -EBUSY);
	cr_assert_not_null(br);

	/* Still alive and working after the refused free. */
	cr_assert_eq(write(c, "live", 4), 4);
	while (k.calls < 1)
		cr_assert_geq(ur_loop_run(l, UR_RUN_ONCE), 0);
	ASSERT_RES(k.res[0], 4);
	cr_assert(k.more[0]);
	cr_assert_geq(k.bid[0], 0);
	cr_assert_arr_eq(ur_bufring_buf(br, (unsigned)k.bid[0]), "live", 4);
	ur_bufring_recycle(br, (unsigned)k.bid[0]);

	ASSERT_RES(ur_cancel(&k.f), 0);
	ASSERT_RES(ur_cancel(&k.f), -EALREADY);
	ASSERT_RES(ur_bufring_free(&br), -EBUSY); /* cancel requested, not yet completed */
	t_run_until(l, &k.f);
	cr_assert_eq(k.calls, 2);
	cr_assert_eq(k.finals, 1);
	ASSERT_RES(k.res[1], -ECANCELED);
	cr_assert_not(k.more[1]);
	cr_assert_eq(ur_bufring_available(br), 4);

	ASSERT_RES(ur_bufring_free(&br), 0);
	cr_assert_null(br);
	ASSERT_RES(ur_bufring_free(&br), 0); /* NULL is accepted */
	close(c);
	close(s);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

Test(bufring, bufring_new_rejects_bad_sizes)
{
	struct ur_loop *l = t_loop();
	struct ur_bufring *br = (struct ur_bufring *)1;
	ASSERT_RES(ur_bufring_new(l, &br, 0, 4096), -EINVAL);
	cr_assert_null(br);
	ASSERT_RES(ur_bufring_new(l, &br, 3, 4096), -EINVAL);
	ASSERT_RES(ur_bufring_new(l, &br, 65536, 16), -EINVAL);
	ASSERT_RES(ur_bufring_new(l, &br, 2, 0), -EINVAL);
	cr_assert_null(br);
	t_loop_done(&l);
}

Test(bufring, close_ends_an_active_multishot_recv)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	struct ur_bufring *br = t_bufring(&l, 2, 1024);
	int c, s;
	t_tcp_pair(&c, &s);
	struct chunks k;
	memset(&k, 0, sizeof(k));
	ur_future_init(&k.f, chunks_cb, &k);
	struct op co;

	ASSERT_RES(ur_recv_multishot_start(l, &k.f, s, br, 0), 0);
	settle(l);
	cr_assert_eq(k.calls, 0);
	START(&co, ur_close_start(l, &co.f, s));
	ASSERT_RES(op_wait(l, &co), 0);
	t_run_until(l, &k.f);
	cr_assert_eq(k.calls, 1);
	ASSERT_RES(k.res[0], -ECANCELED);
	cr_assert_not(k.more[0]);
	cr_assert_not(t_fd_is_open(s));
	ASSERT_RES(ur_bufring_free(&br), 0);

	close(c);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

/*
 * A multishot recv stopped because its ring ran dry waits inside urio, not in the kernel, so the
 * kernel's cancel-by-fd cannot see it; ur_close_start() must end it all the same (io.h), or the
 * next recycle re-arms it on whatever the fd number has become by then.
 */
Test(bufring, close_ends_a_starved_multishot_recv)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	struct ur_bufring *br = t_bufring(&l, 1, 1024);
	int c, s;
	t_tcp_pair(&c, &s);
	struct chunks k;
	memset(&k, 0, sizeof(k));
	ur_future_init(&k.f, chunks_cb, &k);
	struct op co, to;

	ASSERT_RES(ur_recv_multishot_start(l, &k.f, s, br, 0), 0);
	cr_assert_eq(write(c, "one", 3), 3);
	while (k.calls < 1)
		cr_assert_geq(ur_loop_run(l, UR_RUN_ONCE), 0);
	ASSERT_RES(k.res[0], 3);
	cr_assert(k.more[0]);
	/* The only buffer is held: more data stops the multishot inside urio. */
	cr_assert_eq(write(c, "two", 3), 3);
	START(&to, ur_timeout_start(l, &to.f, 20 * UR_MSEC, 0));
	ASSERT_RES(op_wait(l, &to), 0);
	cr_assert_eq(k.calls, 1);

	START(&co, ur_close_start(l, &co.f, s));
	ASSERT_RES(op_wait(l, &co), 0);
	cr_assert_not(t_fd_is_open(s));
	START(&to, ur_timeout_start(l, &to.f, 20 * UR_MSEC, 0));
	ASSERT_RES(op_wait(l, &to), 0);
	cr_assert_eq(k.calls, 2, "the multishot recv on the closed fd %d is still pending", s);
	ASSERT_RES(k.res[1], -ECANCELED);
	cr_assert_not(k.more[1]);
	cr_assert_eq(k.finals, 1);

	ur_bufring_recycle(br, (unsigned)k.bid[0]);
	ASSERT_RES(ur_bufring_free(&br), 0);
	close(c);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

/*
 * BUG CANDIDATE (core/future.c recv_multi_continues + core/io.c ur_close_start): the same, when
 * the kernel's -ENOBUFS completion is already in the CQ but not yet reaped at ur_close_start():
 * the close finds nothing to cancel, then the loop reaps the -ENOBUFS and parks the recv as
 * starved on a descriptor that is gone. A plain-setup ring posts that completion as soon as the
 * peer's write() returns (task work runs on the way back to user space), which makes the order
 * certain; the loop is forced to plain setup for that reason.
 */
Test(bufring, close_ends_a_multishot_recv_whose_enobufs_is_not_yet_reaped)
{
	int fds = t_count_fds();
	struct ur_loop_opts lo = {.flags = UR_LOOP_PLAIN_SETUP};
	struct ur_loop *l = t_loop_opts(&lo);
	struct ur_bufring *br = t_bufring(&l, 1, 1024);
	int c, s;
	t_tcp_pair(&c, &s);
	struct chunks k;
	memset(&k, 0, sizeof(k));
	ur_future_init(&k.f, chunks_cb, &k);
	struct op co, to;

	ASSERT_RES(ur_recv_multishot_start(l, &k.f, s, br, 0), 0);
	cr_assert_eq(write(c, "one", 3), 3);
	while (k.calls < 1)
		cr_assert_geq(ur_loop_run(l, UR_RUN_ONCE), 0);
	ASSERT_RES(k.res[0], 3);
	cr_assert(k.more[0]);

	/* The only buffer is held; this write makes the kernel end the multishot (-ENOBUFS). */
	cr_assert_eq(write(c, "two", 3), 3);
	START(&co, ur_close_start(l, &co.f, s));
	ASSERT_RES(op_wait(l, &co), 0);
	cr_assert_not(t_fd_is_open(s));
	START(&to, ur_timeout_start(l, &to.f, 20 * UR_MSEC, 0));
	ASSERT_RES(op_wait(l, &to), 0);
	cr_assert_eq(k.calls, 2, "the multishot recv on the closed fd %d is still pending", s);
	ASSERT_RES(k.res[1], -ECANCELED);
	cr_assert_not(k.more[1]);

	ur_bufring_recycle(br, (unsigned)k.bid[0]);
	ASSERT_RES(ur_bufring_free(&br), 0);
	close(c);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

/*
 * BUG CANDIDATE (core/io.c ur_cancel_fd_start): io.h says it cancels the operations on @fd and
 * each one completes with -ECANCELED. A multishot recv parked by urio for want of a buffer is one
 * of them, but the kernel's cancel-by-fd cannot see it.
 */
Test(bufring, cancel_fd_ends_a_starved_multishot_recv)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	struct ur_bufring *br = t_bufring(&l, 1, 1024);
	int c, s;
	t_tcp_pair(&c, &s);
	struct chunks k;
	memset(&k, 0, sizeof(k));
	ur_future_init(&k.f, chunks_cb, &k);
	struct op co, to;

	ASSERT_RES(ur_recv_multishot_start(l, &k.f, s, br, 0), 0);
	cr_assert_eq(write(c, "one", 3), 3);
	while (k.calls < 1)
		cr_assert_geq(ur_loop_run(l, UR_RUN_ONCE), 0);
	ASSERT_RES(k.res[0], 3);
	cr_assert_eq(write(c, "two", 3), 3);
	START(&to, ur_timeout_start(l, &to.f, 20 * UR_MSEC, 0));
	ASSERT_RES(op_wait(l, &to), 0);
	cr_assert_eq(k.calls, 1);

	START(&co, ur_cancel_fd_start(l, &co.f, s, 1));
	ASSERT_RES(op_wait(l, &co), 1);
	t_run_until(l, &k.f);
	cr_assert_eq(k.calls, 2);
	ASSERT_RES(k.res[1], -ECANCELED);
	cr_assert_not(k.more[1]);

	ur_bufring_recycle(br, (unsigned)k.bid[0]);
	ASSERT_RES(ur_bufring_free(&br), 0);
	close(c);
	close(s);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

/*
 * An operation that creates a descriptor, cancelled before the kernel could refuse it: it
 * completes with -ECANCELED whichever way the race went, and a descriptor it may have created is
 * closed by urio.
 */
Test(bufring, cancelled_fd_creating_ops_complete_ecanceled_without_leak, .init = dir_setup,
     .fini = dir_teardown)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	need_op(l, IORING_OP_SOCKET, "IORING_OP_SOCKET (5.19)");
	struct op o;
	close(make_file("f", "x", 1));
	uint16_t port;
	int lfd = t_listen_tcp(&port);
	struct sockaddr_in to = t_loopback(port);

	for (int i = 0; i < 10; i++) {
		START(&o, ur_openat_start(l, &o.f, g_dir.dfd, "f", O_RDONLY, 0));
		ASSERT_RES(ur_cancel(&o.f), 0);
		ASSERT_RES(op_wait(l, &o), -ECANCELED);

		START(&o, ur_socket_start(l, &o.f, AF_INET, SOCK_STREAM, 0));
		ASSERT_RES(ur_cancel(&o.f), 0);
		ASSERT_RES(op_wait(l, &o), -ECANCELED);

		/* A connection is already waiting: accept can succeed at once. */
		int cl = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		cr_assert_eq(connect(cl, (struct sockaddr *)&to, sizeof(to)), 0);
		START(&o, ur_accept_start(l, &o.f, lfd, NULL, NULL, 0));
		ASSERT_RES(ur_cancel(&o.f), 0);
		ASSERT_RES(op_wait(l, &o), -ECANCELED);
		close(cl);
	}
	drain(l);

	close(lfd);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds, "descriptors leaked: %d", t_count_fds() - fds);
}

/* ---- sending a ring buffer, then recycling it ---- */

struct echo {
	struct ur_loop *l;
	struct ur_bufring *br;
	int fd;
	struct op send;
	int avail_in_cb; /* buffers in the ring when the send's callback ran */
};

static void echo_sent(struct ur_future *f, void *arg)
{
	struct echo *e = arg;
	e->send.calls++;
	e->send.res = f->res;
	e->avail_in_cb = (int)ur_bufring_available(e->br);
}

static void echo_recv(struct ur_future *f, void *arg)
{
	struct echo *e = arg;
	if (f->res <= 0)
		return;
	ur_future_init(&e->send.f, echo_sent, e);
	int r = ur_send_buffer_start(e->l, &e->send.f, e->fd, e->br, ur_future_buffer(f),
	                             (size_t)f->res, MSG_NOSIGNAL);
	cr_assert_eq(r, 0, "ur_send_buffer_start: %s", ur_strerror(r));
}

Test(bufring, send_buffer_sends_all_then_recycles_before_its_callback)
{
	struct echo e = {.l = t_loop()};
	e.br = t_bufring(&e.l, 2, 64);
	int c;
	t_tcp_pair(&c, &e.fd);
	struct ur_future rf;
	ur_future_init(&rf, echo_recv, &e);
	ASSERT_RES(ur_recv_multishot_start(e.l, &rf, e.fd, e.br, 0), 0);
	cr_assert_eq(write(c, "ping", 4), 4);
	while (e.send.calls == 0)
		cr_assert_geq(ur_loop_run(e.l, UR_RUN_ONCE), 0);
	ASSERT_RES(e.send.res, 4);
	cr_assert_eq(e.avail_in_cb, 2, "the buffer is back in the ring when the callback runs");
	char buf[8] = {0};
	cr_assert_eq(read(c, buf, sizeof(buf)), 4);
	cr_assert_str_eq(buf, "ping");

	/* bad ids are refused, and nothing is recycled for them */
	struct ur_future bad;
	ur_future_init(&bad, NULL, NULL);
	ASSERT_RES(ur_send_buffer_start(e.l, &bad, e.fd, e.br, -1, 4, 0), -EINVAL);
	ASSERT_RES(ur_send_buffer_start(e.l, &bad, e.fd, e.br, 2, 4, 0), -EINVAL);
	ASSERT_RES(ur_send_buffer_start(e.l, &bad, e.fd, e.br, 0, 65, 0), -EINVAL);
	cr_assert_null(ur_bufring_buf(e.br, -1));
	cr_assert_null(ur_bufring_buf(e.br, 2));

	ASSERT_RES(ur_cancel(&rf), 0);
	t_run_until(e.l, &rf);
	close(c);
	close(e.fd);
	ASSERT_RES(ur_bufring_free(&e.br), 0);
	t_loop_done(&e.l);
}
