/* SPDX-License-Identifier: MIT */
/*
 * tests/proto/test_stream.c - the buffered stream over the plain socket transport.
 */
#include <fcntl.h>
#include <pthread.h>

#define T_FAULT_UNSAFE_FILE "enomem,reset"
#define T_FAULT_UNSAFE_WHY                                                                         \
	"each test asserts the exact bytes or error of its exchange; a refused start or a reset "  \
	"connection ends it with ENOMEM or ECONNRESET instead"
#include "../helpers.h"

struct pair {
	struct ur_stream s;
	int peer; /* the test's blocking end */
};

static void pair_open(struct pair *p, size_t limit)
{
	int fd;
	t_tcp_pair(&fd, &p->peer);
	ASSERT_RES(ur_stream_init(&p->s, fd, limit), 0);
}

/* Bytes written one send at a time by a peer thread, so the stream sees many tiny segments. */
struct dripper {
	int fd;
	const char *data;
	size_t len, chunk;
	bool close_after;
};

static void *drip(void *arg)
{
	struct dripper *d = arg;
	int one = 1;
	setsockopt(d->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	for (size_t i = 0; i < d->len; i += d->chunk) {
		size_t n = d->len - i < d->chunk ? d->len - i : d->chunk;
		cr_assert_eq(send(d->fd, d->data + i, n, MSG_NOSIGNAL), (ssize_t)n);
	}
	if (d->close_after)
		shutdown(d->fd, SHUT_WR);
	return NULL;
}

struct until_case {
	struct pair p;
	char got[3][64];
	ssize_t res[4];
};

static int read_lines(void *arg)
{
	struct until_case *c = arg;
	for (int i = 0; i < 3; i++)
		c->res[i] = ur_stream_read_until(&c->p.s, "\r\n", 2, c->got[i], sizeof(c->got[i]));
	char rest[16];
	c->res[3] = ur_stream_read_until(&c->p.s, "\r\n", 2, rest, sizeof(rest));
	return 0;
}

Test(stream, read_until_across_one_byte_segments)
{
	struct until_case c = {0};
	int fds = t_count_fds();
	static const char text[] = "first\r\nsecond line\r\n\r\ntail";
	pair_open(&c.p, 0);
	struct dripper d = {c.p.peer, text, sizeof(text) - 1, 1, true};
	pthread_t th;
	pthread_create(&th, NULL, drip, &d);
	struct ur_loop *l = t_loop();
	int res;
	ASSERT_RES(ur_run(l, read_lines, &c, &res), 0);
	pthread_join(th, NULL);
	cr_assert_eq(c.res[0], 7);
	cr_assert_arr_eq(c.got[0], "first\r\n", 7);
	cr_assert_eq(c.res[1], 13);
	cr_assert_arr_eq(c.got[1], "second line\r\n", 13);
	cr_assert_eq(c.res[2], 2);
	ASSERT_RES((int)c.res[3], UR_EINCOMPLETE);
	/* the tail that had no delimiter is still there to read */
	size_t n;
	const char *b = ur_stream_buffered(&c.p.s, &n);
	cr_assert_eq(n, 4);
	cr_assert_arr_eq(b, "tail", 4);
	ASSERT_RES(ur_stream_close(&c.p.s), 0);
	close(c.p.peer);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

struct limit_case {
	struct pair p;
	ssize_t first, second, third;
	char line[32];
};

static int read_over_limit(void *arg)
{
	struct limit_case *c = arg;
	char small[8];
	c->first = ur_stream_read_until(&c->p.s, "\n", 1, small, sizeof(small));
	/* nothing was consumed: a larger buffer gets the whole line */
	c->second = ur_stream_read_until(&c->p.s, "\n", 1, c->line, sizeof(c->line));
	c->third = ur_stream_read_until(&c->p.s, "\n", 1, c->line + 20, 12);
	return 0;
}

Test(stream, read_until_limit_loses_nothing)
{
	struct limit_case c = {0};
	pair_open(&c.p, 0);
	static const char text[] = "0123456789abcdef\nok\n";
	cr_assert_eq(send(c.p.peer, text, sizeof(text) - 1, 0), (ssize_t)sizeof(text) - 1);
	struct ur_loop *l = t_loop();
	ASSERT_RES(ur_run(l, read_over_limit, &c, NULL), 0);
	ASSERT_RES((int)c.first, UR_ELIMIT);
	cr_assert_eq(c.second, 17);
	cr_assert_arr_eq(c.line, "0123456789abcdef\n", 17);
	cr_assert_eq(c.third, 3);
	cr_assert_arr_eq(c.line + 20, "ok\n", 3);
	ur_stream_close(&c.p.s);
	close(c.p.peer);
	t_loop_done(&l);
}

static int read_exact_eof(void *arg)
{
	struct pair *p = arg;
	char buf[10];
	ssize_t r = ur_stream_read_exactly(&p->s, buf, 4);
	cr_assert_eq(r, 4);
	cr_assert_arr_eq(buf, "abcd", 4);
	r = ur_stream_read_exactly(&p->s, buf, 10);
	ASSERT_RES((int)r, UR_EINCOMPLETE);
	size_t n;
	const char *b = ur_stream_buffered(&p->s, &n);
	cr_assert_eq(n, 3);
	cr_assert_arr_eq(b, "efg", 3);
	cr_assert_eq(ur_stream_read(&p->s, buf, sizeof(buf)), 3);
	cr_assert_eq(ur_stream_read(&p->s, buf, sizeof(buf)), 0);
	return 0;
}

Test(stream, read_exactly_eof_in_the_middle)
{
	struct pair p;
	pair_open(&p, 0);
	cr_assert_eq(send(p.peer, "abcdefg", 7, 0), 7);
	shutdown(p.peer, SHUT_WR);
	struct ur_loop *l = t_loop();
	ASSERT_RES(ur_run(l, read_exact_eof, &p, NULL), 0);
	ur_stream_close(&p.s);
	close(p.peer);
	t_loop_done(&l);
}

struct big {
	struct pair p;
	char *data;
	size_t len;
	ssize_t wrote;
};

static void *slow_reader(void *arg)
{
	struct big *b = arg;
	char *got = malloc(b->len);
	size_t have = 0;
	while (have < b->len) {
		ssize_t n =
		    recv(b->p.peer, got + have, b->len - have < 4096 ? b->len - have : 4096, 0);
		cr_assert_gt(n, 0);
		have += (size_t)n;
	}
	cr_assert(memcmp(got, b->data, b->len) == 0);
	free(got);
	return NULL;
}

static int write_big(void *arg)
{
	struct big *b = arg;
	struct iovec v[3] = {{b->data, 1}, {b->data + 1, 0}, {b->data + 1, b->len - 1}};
	b->wrote = ur_stream_writev_all(&b->p.s, v, 3);
	return 0;
}

Test(stream, writev_all_64mib_through_a_slow_reader, .timeout = 120)
{
	struct big b = {.len = 64u << 20};
	pair_open(&b.p, 0);
	b.data = malloc(b.len);
	for (size_t i = 0; i < b.len; i++)
		b.data[i] = (char)(i * 2654435761u >> 13);
	pthread_t th;
	pthread_create(&th, NULL, slow_reader, &b);
	struct ur_loop *l = t_loop();
	ASSERT_RES(ur_run(l, write_big, &b, NULL), 0);
	pthread_join(th, NULL);
	cr_assert_eq(b.wrote, (ssize_t)b.len);
	ur_stream_close(&b.p.s);
	close(b.p.peer);
	free(b.data);
	t_loop_done(&l);
}

static int read_with_deadline(void *arg)
{
	struct pair *p = arg;
	char buf[4];
	ur_stream_set_timeout(&p->s, 20 * UR_MSEC);
	ASSERT_RES((int)ur_stream_read(&p->s, buf, sizeof(buf)), -ETIMEDOUT);
	/* a time-out is not sticky: with time again, the data that came meanwhile is read */
	cr_assert_eq(send(p->peer, "x", 1, 0), 1);
	ur_stream_set_deadline(&p->s, UR_NO_DEADLINE);
	cr_assert_eq(ur_stream_read(&p->s, buf, sizeof(buf)), 1);
	ur_stream_set_deadline(&p->s, ur_now_ns() - 1);
	ASSERT_RES((int)ur_stream_read(&p->s, buf, sizeof(buf)), -ETIMEDOUT);
	ASSERT_RES((int)ur_stream_write_all(&p->s, "y", 1), -ETIMEDOUT);
	return 0;
}

Test(stream, deadline_on_a_silent_peer)
{
	struct pair p;
	pair_open(&p, 0);
	struct ur_loop *l = t_loop();
	ASSERT_RES(ur_run(l, read_with_deadline, &p, NULL), 0);
	ur_stream_close(&p.s);
	close(p.peer);
	t_loop_done(&l);
}

Test(stream, init_rejects_bad_arguments)
{
	struct ur_stream s;
	ASSERT_RES(ur_stream_init(&s, -1, 0), -EINVAL);
	ASSERT_RES(ur_stream_init(&s, 0, UR_STREAM_LIMIT_MAX + 1), -EINVAL);
}

Test(stream, close_outside_a_task_and_twice)
{
	struct pair p;
	int fds = t_count_fds();
	pair_open(&p, 0);
	ASSERT_RES(ur_stream_close(&p.s), 0);
	ASSERT_RES(ur_stream_close(&p.s), -EBADF);
	close(p.peer);
	cr_assert_eq(t_count_fds(), fds);
}

/* --- future-returning forms, from plain callbacks ----------------------------------------------
 */

Test(stream, start_calls_without_a_task)
{
	int fds = t_count_fds();
	uint16_t port;
	int lfd = t_listen_tcp(&port);
	char host[] = "127.0.0.1";
	struct ur_loop *l = t_loop();
	struct ur_stream s;
	struct ur_stream_op op;
	struct ur_future f;
	ur_future_init(&f, NULL, NULL);

	ASSERT_RES(ur_tcp_connect_start(l, &f, &op, &s, host, port, NULL), 0);
	ASSERT_RES(ur_tcp_connect_start(l, &f, &op, &s, host, port, NULL), -EBUSY);
	t_run_until(l, &f);
	ASSERT_RES(f.res, 0);
	int peer = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	cr_assert_geq(peer, 0);

	ASSERT_RES(ur_stream_write_all_start(l, &f, &op, &s, "hello", 5), 0);
	t_run_until(l, &f);
	ASSERT_RES(f.res, 5);
	char buf[16];
	cr_assert_eq(recv(peer, buf, 5, MSG_WAITALL), 5);
	cr_assert_arr_eq(buf, "hello", 5);

	cr_assert_eq(send(peer, "one\ntwo", 7, 0), 7);
	ASSERT_RES(ur_stream_read_until_start(l, &f, &op, &s, "\n", 1, buf, sizeof(buf)), 0);
	t_run_until(l, &f);
	ASSERT_RES(f.res, 4);
	cr_assert_arr_eq(buf, "one\n", 4);
	shutdown(peer, SHUT_WR);
	ASSERT_RES(ur_stream_read_exactly_start(l, &f, &op, &s, buf, 5), 0);
	t_run_until(l, &f);
	ASSERT_RES(f.res, UR_EINCOMPLETE);
	ASSERT_RES(ur_stream_read_start(l, &f, &op, &s, buf, sizeof(buf)), 0);
	t_run_until(l, &f);
	ASSERT_RES(f.res, 3);
	cr_assert_arr_eq(buf, "two", 3);

	ur_stream_close(&s);
	close(peer);
	close(lfd);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

static void count_res(struct ur_future *f, void *arg)
{
	*(int *)arg = f->res;
}

Test(stream, cancelling_a_started_read_completes_once_it_stopped)
{
	struct pair p;
	pair_open(&p, 0);
	struct ur_loop *l = t_loop();
	struct ur_stream_op op;
	struct ur_future f;
	int got = 1;
	char buf[8];

	/* cancelled before its task even started */
	ur_future_init(&f, count_res, &got);
	ASSERT_RES(ur_stream_read_start(l, &f, &op, &p.s, buf, sizeof(buf)), 0);
	ASSERT_RES(ur_cancel(&f), 0);
	ASSERT_RES(ur_cancel(&f), -EALREADY);
	t_run_until(l, &f);
	ASSERT_RES(got, -ECANCELED);

	/* cancelled while waiting for data that never comes */
	got = 1;
	ASSERT_RES(ur_stream_read_start(l, &f, &op, &p.s, buf, sizeof(buf)), 0);
	ASSERT_RES(ur_loop_run(l, UR_RUN_NOWAIT) >= 0, 1); /* the task starts and waits in recv */
	cr_assert_eq(got, 1);
	ASSERT_RES(ur_cancel(&f), 0);
	t_run_until(l, &f);
	ASSERT_RES(got, -ECANCELED);

	/* the stream is still usable */
	cr_assert_eq(send(p.peer, "z", 1, 0), 1);
	ASSERT_RES(ur_stream_read_start(l, &f, &op, &p.s, buf, sizeof(buf)), 0);
	t_run_until(l, &f);
	ASSERT_RES(got, 1);
	cr_assert_eq(buf[0], 'z');
	ur_stream_close(&p.s);
	close(p.peer);
	t_loop_done(&l);
}

Test(stream, heap_streams)
{
	int fds = t_count_fds();
	int a, b;
	t_tcp_pair(&a, &b);
	struct ur_stream *s = NULL;
	ASSERT_RES(ur_stream_new(&s, -1, 0), -EINVAL);
	cr_assert_null(s);
	ASSERT_RES(ur_stream_new(&s, a, 128), 0);
	cr_assert_eq(s->fd, a);
	ur_stream_free(&s); /* closes */
	cr_assert_null(s);
	ur_stream_free(&s);
	close(b);
	cr_assert_eq(t_count_fds(), fds);
}

struct small_limit {
	struct pair p;
	ssize_t r[3];
	char line[64];
};

static int read_past_stream_limit(void *arg)
{
	struct small_limit *c = arg;
	/* the caller's buffer is large, the stream's limit (16) is not */
	c->r[0] = ur_stream_read_until(&c->p.s, "\n", 1, c->line, sizeof(c->line));
	size_t n;
	ur_stream_buffered(&c->p.s, &n);
	c->r[1] = (ssize_t)n;
	char all[32];
	c->r[2] = ur_stream_read_exactly(&c->p.s, all, 24);
	cr_assert_arr_eq(all, "0123456789abcdefghij\nok\n", 24);
	return 0;
}

Test(stream, read_until_beyond_the_stream_limit_loses_nothing)
{
	struct small_limit c = {0};
	pair_open(&c.p, 16);
	static const char text[] = "0123456789abcdefghij\nok\n";
	cr_assert_eq(send(c.p.peer, text, 24, 0), 24);
	struct ur_loop *l = t_loop();
	ASSERT_RES(ur_run(l, read_past_stream_limit, &c, NULL), 0);
	ASSERT_RES((int)c.r[0], UR_ELIMIT);
	cr_assert_eq(c.r[1], 16); /* everything buffered is still there */
	cr_assert_eq(c.r[2], 24);
	ur_stream_close(&c.p.s);
	close(c.p.peer);
	t_loop_done(&l);
}
