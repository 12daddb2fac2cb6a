/* SPDX-License-Identifier: MIT */
/*
 * tests/proto/test_http_server.c - the HTTP/1.1 server side (urio/http_server.h) spoken to over
 * raw sockets: keep-alive, pipelining, limits (431, 413, 414), chunked request bodies, malformed
 * requests (400), HEAD, file bodies, Expect: 100-continue, HTTP/1.0.
 *
 * Each test runs one loop: a server task accepts exactly the connections the test makes and
 * serves each in a task of its own; a client task speaks raw HTTP over plain sockets and reads
 * responses with the response parser. Everything ends by itself.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#define T_FAULT_UNSAFE_FILE "enomem,reset"
#define T_FAULT_UNSAFE_WHY                                                                         \
	"each test asserts the exact response of its exchange; a refused start or a reset "        \
	"connection ends it with ENOMEM or ECONNRESET instead"
#include "helpers.h"
#include <urio/http1.h>
#include <urio/http_server.h>
#include <urio/server.h>
#include <stdatomic.h>

#define MAX_CONNS 8

struct srv {
	int lfd;
	uint16_t port;
	int nconns; /* connections to accept before the server task ends */
	struct ur_http_server_opts o;
	ssize_t ret[MAX_CONNS]; /* what ur_http_serve_conn() returned for each */
	int calls;              /* handler calls */
	const char *file;       /* /file is served from this path */
	int fds;                /* descriptors open before the test */
};

struct conn_arg {
	struct srv *srv;
	int fd;
	int idx;
};

/* The test handler: /echo returns the body, /file a file, /big 100 KiB, else "hello <path>". */
static int handler(const struct ur_http_server_req *rq, struct ur_http_server_resp *rs, void *arg)
{
	struct srv *srv = arg;
	srv->calls++;
	if (rq->path_len == 5 && memcmp(rq->path, "/echo", 5) == 0) {
		char *b = malloc(rq->body_len + 1);
		memcpy(b, rq->body, rq->body_len);
		return ur_http_resp_take(rs, 200, "application/octet-stream", b, rq->body_len);
	}
	if (rq->path_len == 5 && memcmp(rq->path, "/file", 5) == 0)
		return ur_http_resp_file(rs, AT_FDCWD, srv->file, "text/plain");
	if (rq->path_len == 5 && memcmp(rq->path, "/fail", 5) == 0)
		return -EIO;
	char *b = malloc(300);
	int n = snprintf(b, 300, "hello %.*s", (int)rq->path_len, rq->path);
	return ur_http_resp_take(rs, 200, "text/plain", b, (size_t)n);
}

static int conn_task(void *arg)
{
	struct conn_arg *ca = arg;
	struct ur_stream s;
	cr_assert_eq(ur_stream_init(&s, ca->fd, 0), 0);
	ca->srv->ret[ca->idx] = ur_http_serve_conn(&s, &ca->srv->o);
	ur_stream_close(&s);
	return 0;
}

static int server_task(void *arg)
{
	struct srv *srv = arg;
	struct ur_task *t[MAX_CONNS];
	struct conn_arg ca[MAX_CONNS];
	for (int i = 0; i < srv->nconns; i++) {
		int fd;
		do /* EINTR moved nothing: accept again */
			fd = ur_accept(srv->lfd, NULL, NULL, 0);
		while (fd == -EINTR);
		cr_assert_geq(fd, 0, "accept: %s", ur_strerror(fd));
		ca[i] = (struct conn_arg){srv, fd, i};
		cr_assert_eq(ur_spawn(ur_current_loop(), &t[i], conn_task, &ca[i], NULL), 0);
	}
	for (int i = 0; i < srv->nconns; i++)
		ur_join(t[i]);
	return 0;
}

static void srv_init(struct srv *srv, int nconns)
{
	memset(srv, 0, sizeof(*srv));
	srv->fds = t_count_fds();
	srv->lfd = t_listen_tcp(&srv->port);
	srv->nconns = nconns;
	srv->o.handler = handler;
	srv->o.arg = srv;
}

/* --- the raw client -------------------------------------------------------------------------- */

static int cl_connect(uint16_t port)
{
	int fd = ur_socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(fd, 0);
	struct sockaddr_in a = t_loopback(port);
	ASSERT_RES(ur_connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static void cl_send(int fd, const char *s, size_t len)
{
	cr_assert_eq(ur_write_all(fd, s, len, UR_OFF_CURRENT), (ssize_t)len);
}
#define CL_SEND(fd, lit) cl_send(fd, lit, sizeof(lit) - 1)

/* A connection's receive side: bytes read and not yet used. */
struct rd {
	int fd;
	char buf[256 * 1024];
	size_t len;
};

struct resp {
	int status;
	char body[128 * 1024];
	size_t body_len;
	bool close; /* Connection: close */
	bool has_clen;
};

/* Reads one response (framed by Content-Length; HEAD: none). Returns 0, or -1 at end of stream. */
/* ur_recv, again after EINTR (nothing moved; fault builds inject it) */
static ssize_t cl_recv(int fd, void *buf, size_t len)
{
	ssize_t got;
	do
		got = ur_recv(fd, buf, len, 0);
	while (got == -EINTR);
	return got;
}

static int cl_read(struct rd *rd, struct resp *out, bool head)
{
	struct ur_http_header h[32];
	for (;;) {
		struct ur_http1_parser p;
		struct ur_http1_response r = {.headers = h, .max_headers = 32};
		ur_http1_parser_init(&p, NULL);
		int n = rd->len ? ur_http1_parse_response(&p, rd->buf, rd->len, &r)
		                : UR_EHTTP_INCOMPLETE;
		if (n > 0) {
			memset(out, 0, sizeof(*out));
			out->status = r.status;
			out->close =
			    ur_http_header_has_token(h, r.num_headers, "connection", "close");
			ssize_t ci = ur_http_header_find(h, r.num_headers, "content-length", 0);
			size_t clen = 0;
			out->has_clen = ci >= 0;
			if (ci >= 0)
				clen = strtoul(h[ci].value, NULL, 10);
			size_t blen = head || r.status == 100 ? 0 : clen;
			while (rd->len < (size_t)n + blen) {
				ssize_t got =
				    cl_recv(rd->fd, rd->buf + rd->len, sizeof(rd->buf) - rd->len);
				cr_assert_gt(got, 0, "body cut short: %s", ur_strerror((int)got));
				rd->len += (size_t)got;
			}
			cr_assert_leq(blen, sizeof(out->body));
			memcpy(out->body, rd->buf + n, blen);
			out->body_len = blen;
			memmove(rd->buf, rd->buf + n + blen, rd->len - (size_t)n - blen);
			rd->len -= (size_t)n + blen;
			return 0;
		}
		cr_assert_eq(n, UR_EHTTP_INCOMPLETE, "bad response: %s", ur_strerror(n));
		ssize_t got = cl_recv(rd->fd, rd->buf + rd->len, sizeof(rd->buf) - rd->len);
		if (got == 0 && rd->len == 0)
			return -1;
		cr_assert_gt(got, 0, "recv: %s", ur_strerror((int)got));
		rd->len += (size_t)got;
	}
}

/* After a response with Connection: close, the server closes: the next read sees the end. */
static void cl_expect_eof(struct rd *rd)
{
	cr_assert_eq(rd->len, 0);
	char b[64];
	ssize_t got;
	while ((got = cl_recv(rd->fd, b, sizeof(b))) > 0)
		;
	cr_assert(got == 0 || got == -ECONNRESET, "got %zd", got);
}

struct client {
	struct srv *srv;
	int (*fn)(struct client *c);
	struct rd *rd;
	struct resp *resp;
};

static int client_task(void *arg)
{
	struct client *c = arg;
	c->rd = calloc(1, sizeof(*c->rd));
	c->resp = calloc(1, sizeof(*c->resp));
	int r = c->fn(c);
	free(c->rd);
	free(c->resp);
	return r;
}

static int main_task(void *arg)
{
	struct client *c = arg;
	struct ur_task *st, *ct;
	cr_assert_eq(ur_spawn(ur_current_loop(), &st, server_task, c->srv, NULL), 0);
	cr_assert_eq(ur_spawn(ur_current_loop(), &ct, client_task, c, NULL), 0);
	ASSERT_RES(ur_join(ct), 0);
	ASSERT_RES(ur_join(st), 0);
	return 0;
}

/* Runs @fn as the client against a server of @nconns connections, on a loop of its own. */
static void run_case(struct srv *srv, int (*fn)(struct client *c))
{
	struct ur_loop *l = t_loop();
	struct client c = {.srv = srv, .fn = fn};
	int res = -1;
	ASSERT_RES(ur_run(l, main_task, &c, &res), 0);
	ASSERT_RES(res, 0);
	t_loop_done(&l);
	close(srv->lfd);
	cr_assert_eq(t_count_fds(), srv->fds, "descriptors leaked");
}

TestSuite(http_server, .timeout = 30);

/* --- keep-alive and pipelining ---------------------------------------------------------------- */

static int two_on_one(struct client *c)
{
	struct rd *rd = c->rd;
	rd->fd = cl_connect(c->srv->port);
	CL_SEND(rd->fd, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
	cr_assert_eq(cl_read(rd, c->resp, false), 0);
	cr_assert_eq(c->resp->status, 200);
	cr_assert_eq(c->resp->body_len, 8);
	cr_assert_arr_eq(c->resp->body, "hello /a", 8);
	cr_assert_not(c->resp->close);
	CL_SEND(rd->fd, "GET /bb?q=1 HTTP/1.1\r\nHost: x\r\n\r\n");
	cr_assert_eq(cl_read(rd, c->resp, false), 0);
	cr_assert_eq(c->resp->status, 200);
	cr_assert_arr_eq(c->resp->body, "hello /bb", 9);
	ur_close(rd->fd);
	return 0;
}

Test(http_server, keep_alive_serves_two_requests_on_one_connection)
{
	struct srv srv;
	srv_init(&srv, 1);
	run_case(&srv, two_on_one);
	cr_assert_eq(srv.ret[0], 2, "ur_http_serve_conn: %zd", srv.ret[0]);
	cr_assert_eq(srv.calls, 2);
}

static int pipelined(struct client *c)
{
	struct rd *rd = c->rd;
	rd->fd = cl_connect(c->srv->port);
	CL_SEND(rd->fd, "GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
	                "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde"
	                "GET /three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	cr_assert_eq(cl_read(rd, c->resp, false), 0);
	cr_assert_arr_eq(c->resp->body, "hello /one", 10);
	cr_assert_eq(cl_read(rd, c->resp, false), 0);
	cr_assert_eq(c->resp->body_len, 5);
	cr_assert_arr_eq(c->resp->body, "abcde", 5);
	cr_assert_eq(cl_read(rd, c->resp, false), 0);
	cr_assert_arr_eq(c->resp->body, "hello /three", 12);
	cr_assert(c->resp->close);
	cl_expect_eof(rd);
	ur_close(rd->fd);
	return 0;
}

Test(http_server, pipelined_requests_are_answered_in_order)
{
	struct srv srv;
	srv_init(&srv, 1);
	run_case(&srv, pipelined);
	cr_assert_eq(srv.ret[0], 3);
}

static int http10(struct client *c)
{
	struct rd *rd = c->rd;
	rd->fd = cl_connect(c->srv->port);
	CL_SEND(rd->fd, "GET /old HTTP/1.0\r\n\r\n");
	cr_assert_eq(cl_read(rd, c->resp, false), 0);
	cr_assert_eq(c->resp->status, 200);
	cr_assert(c->resp->close);
	cl_expect_eof(rd);
	ur_close(rd->fd);
	return 0;
}

Test(http_server, http10_without_keep_alive_closes_after_the_response)
{
	struct srv srv;
	srv_init(&srv, 1);
	run_case(&srv, http10);
	cr_assert_eq(srv.ret[0], 1);
}

/* --- limits and malformed requests ------------------------------------------------------------ */

static int header_too_big(struct client *c)
{
	struct rd *rd = c->rd;
	rd->fd = cl_connect(c->srv->port);
	char req[4096];
	int n =
	    snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: x\r\nX-Big: %01500d\r\n\r\n", 0);
	cl_send(rd->fd, req, (size_t)n);
	cr_assert_eq(cl_read(rd, c->resp, false), 0);
	cr_assert_eq(c->resp->status, 431);
	cr_assert(c->resp->close);
	cl_expect_eof(rd);
	ur_close(rd->fd);
	return 0;
}

Test(http_server, a_header_section_over_the_limit_gets_431_and_close)
{
	struct srv srv;
	srv_init(&srv, 1);
	srv.o.max_header = 1024;
	run_case(&srv, header_too_big);
	cr_assert_eq(srv.calls, 0);
}

static int body_too_big(struct client *c)
{
	struct rd *rd = c->rd;
	rd->fd = cl_connect(c->srv->port);
	CL_SEND(rd->fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n");
	char junk[2000];
	memset(junk, 'z', sizeof(junk));
	cl_send(rd->fd, junk, sizeof(junk)); /* the server drains it before closing */
	cr_assert_eq(cl_read(rd, c->resp, false), 0);
	cr_assert_eq(c->resp->status, 413);
	cr_assert(c->resp->close);
	cl_expect_eof(rd);
	ur_close(rd->fd);
	return 0;
}

Test(http_server, a_body_over_the_limit_gets_413_and_close)
{
	struct srv srv;
	srv_init(&srv, 1);
	srv.o.max_body = 1000;
	run_case(&srv, body_too_big);
	cr_assert_eq(srv.calls, 0);
}

static int chunked_too_big(struct client *c)
{
	struct rd *rd = c->rd;
	rd->fd = cl_connect(c->srv->port);
	CL_SEND(rd->fd, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	                "10\r\n0123456789abcdef\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n");
	cr_assert_eq(cl_read(rd, c->resp, false), 0);
	cr_assert_eq(c->resp->status, 413);
	cl_expect_eof(rd);
	ur_close(rd->fd);
	return 0;
}

Test(http_server, a_chunked_body_over_the_limit_gets_413)
{
	struct srv srv;
	srv_init(&srv, 1);
	srv.o.max_body = 20;
	run_case(&srv, chunked_too_big);
	cr_assert_eq(srv.calls, 0);
}

static int long_line(struct client *c)
{
	struct rd *rd = c->rd;
	rd->fd = cl_connect(c->srv->port);
	char req[2048];
	int n = snprintf(req, sizeof(req), "GET /%01200d HTTP/1.1\r\nHost: x\r\n\r\n", 0);
	cl_send(rd->fd, req, (size_t)n);
	cr_assert_eq(cl_read(rd, c->resp, false), 0);
	cr_assert_eq(c->resp->status, 414);
	cl_expect_eof(rd);
	ur_close(rd->fd);
	return 0;
}

Test(http_server, a_request_line_over_the_limit_gets_414)
{
	struct srv srv;
	srv_init(&srv, 1);
	srv.o.max_line = 1000;
	run_case(&srv, long_line);
}

static const char *bad_requests[] = {
    "GET / HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n", /* space in name */
    "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", /* two */
    "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
    "GET / HTTP/1.1\r\n\r\n",                                                     /* no Host */
    "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",                               /* two Hosts */
    "GET / HTTP/1.1\nHost: x\n\n",                                                /* bare LF */
    "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", /* bad hex */
    "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",                               /* obs-fold */
};
static int bad_idx;

static int malformed(struct client *c)
{
	struct rd *rd = c->rd;
	rd->fd = cl_connect(c->srv->port);
	cl_send(rd->fd, bad_requests[bad_idx], strlen(bad_requests[bad_idx]));
	cr_assert_eq(cl_read(rd, c->resp, false), 0);
	cr_assert_eq(c->resp->status, 400, "case %d: status %d", bad_idx, c->resp->status);
	cr_assert(c->resp->close);
	cl_expect_eof(rd);
	ur_close(rd->fd);
	return 0;
}

Test(http_server, malformed_requests_get_400_and_close)
{
	for (bad_idx = 0; bad_idx < (int)(sizeof(bad_requests) / sizeof(bad_requests[0]));
	     bad_idx++) {
		struct srv srv;
		srv_init(&srv, 1);
		run_case(&srv, malformed);
		cr_assert_eq(srv.calls, 0, "case %d reached the handler", bad_idx);
		cr_assert_eq(srv.ret[0], 0, "case %d: %zd", bad_idx, srv.ret[0]);
	}
}

static int bad_version(struct client *c)
{
	struct rd *rd = c->rd;
	rd->fd = cl_connect(c->srv->port);
	CL_SEND(rd->fd, "GET / HTTP/2.0\r\nHost: x\r\n\r\n");
	cr_assert_eq(cl_read(rd, c->resp, false), 0);
	cr_assert(c->resp->status == 505 || c->resp->status == 400, "%d", c->resp->status);
	cl_expect_eof(rd);
	ur_close(rd->fd);
	return 0;
}

Test(http_server, another_http_version_is_refused)
{
	struct srv srv;
	srv_init(&srv, 1);
	run_case(&srv, bad_version);
}

static int handler_error(struct client *c)
{
	struct rd *rd = c->rd;
	rd->fd = cl_connect(c->srv->port);
	CL_SEND(rd->fd, "GET /fail HTTP/1.1\r\nHost: x\r\n\r\n");
	cr_assert_eq(cl_read(rd, c->resp, false), 0);
	cr_assert_eq(c->resp->status, 500);
	cl_expect_eof(rd);
	ur_close(rd->fd);
	return 0;
}

Test(http_server, a_failing_handler_gets_500)
{
	struct srv srv;
	srv_init(&srv, 1);
	run_case(&srv, handler_error);
}

/* --- bodies -------------------------------------------------------------------------------- */

static int chunked_body(struct client *c)
{
	struct rd *rd = c->rd;
	rd->fd = cl_connect(c->srv->port);
	/* sent in pieces so the decoder meets every boundary across reads */
	CL_SEND(rd->fd,
	        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhe");
	ur_yield();
	CL_SEND(rd->fd, "llo\r\n7;ext=1\r\n, world\r\n");
	ur_yield();
	CL_SEND(rd->fd, "0\r\nTrailer: t\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n");
	cr_assert_eq(cl_read(rd, c->resp, false), 0);
	cr_assert_eq(c->resp->status, 200);
	cr_assert_eq(c->resp->body_len, 12);
	cr_assert_arr_eq(c->resp->body, "hello, world", 12);
	cr_assert_eq(cl_read(rd, c->resp, false), 0);
	cr_assert_arr_eq(c->resp->body, "hello /after", 12);
	ur_close(rd->fd);
	return 0;
}

Test(http_server, a_chunked_request_body_is_decoded)
{
	struct srv srv;
	srv_init(&srv, 1);
	run_case(&srv, chunked_body);
	cr_assert_eq(srv.ret[0], 2);
}

static int expect_continue(struct client *c)
{
	struct rd *rd = c->rd;
	rd->fd = cl_connect(c->srv->port);
	CL_SEND(rd->fd, "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
	                "Content-Length: 3\r\n\r\n");
	cr_assert_eq(cl_read(rd, c->resp, false), 0);
	cr_assert_eq(c->resp->status, 100);
	CL_SEND(rd->fd, "xyz");
	cr_assert_eq(cl_read(rd, c->resp, false), 0);
	cr_assert_eq(c->resp->status, 200);
	cr_assert_arr_eq(c->resp->body, "xyz", 3);
	ur_close(rd->fd);
	return 0;
}

Test(http_server, expect_100_continue_is_answered_before_the_body)
{
	struct srv srv;
	srv_init(&srv, 1);
	run_case(&srv, expect_continue);
}

static int head_and_file(struct client *c)
{
	struct rd *rd = c->rd;
	rd->fd = cl_connect(c->srv->port);
	CL_SEND(rd->fd, "HEAD /file HTTP/1.1\r\nHost: x\r\n\r\n");
	cr_assert_eq(cl_read(rd, c->resp, true), 0);
	cr_assert_eq(c->resp->status, 200);
	cr_assert(c->resp->has_clen);
	CL_SEND(rd->fd, "GET /file HTTP/1.1\r\nHost: x\r\n\r\n");
	cr_assert_eq(cl_read(rd, c->resp, false), 0);
	cr_assert_eq(c->resp->status, 200);
	cr_assert_eq(c->resp->body_len, 100000);
	for (size_t i = 0; i < 100000; i++)
		cr_assert_eq(c->resp->body[i], (char)('a' + i % 23), "byte %zu", i);
	ur_close(rd->fd);
	return 0;
}

Test(http_server, head_and_a_file_body_read_through_the_ring)
{
	char path[] = "/tmp/urio-http-server-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	char *data = malloc(100000);
	for (size_t i = 0; i < 100000; i++)
		data[i] = (char)('a' + i % 23);
	cr_assert_eq(write(fd, data, 100000), 100000);
	close(fd);
	free(data);

	struct srv srv;
	srv_init(&srv, 1);
	srv.file = path;
	run_case(&srv, head_and_file);
	unlink(path);
	cr_assert_eq(srv.ret[0], 2);
}

static int many_requests(struct client *c)
{
	struct rd *rd = c->rd;
	rd->fd = cl_connect(c->srv->port);
	for (int i = 0; i < 3; i++) {
		CL_SEND(rd->fd, "GET /n HTTP/1.1\r\nHost: x\r\n\r\n");
		cr_assert_eq(cl_read(rd, c->resp, false), 0);
		cr_assert_eq(c->resp->close, i == 2, "request %d", i);
	}
	cl_expect_eof(rd);
	ur_close(rd->fd);
	return 0;
}

Test(http_server, max_requests_ends_keep_alive_with_connection_close)
{
	struct srv srv;
	srv_init(&srv, 1);
	srv.o.max_requests = 3;
	run_case(&srv, many_requests);
	cr_assert_eq(srv.ret[0], 3);
}

Test(http_server, serve_conn_outside_a_task_is_refused)
{
	struct ur_http_server_opts o = {.handler = handler};
	struct ur_stream s;
	int a, b;
	t_tcp_pair(&a, &b);
	cr_assert_eq(ur_stream_init(&s, a, 0), 0);
	ASSERT_RES((int)ur_http_serve_conn(&s, &o), UR_ENOTASK);
	ur_stream_close(&s);
	close(b);
}

/* --- over the server helper: graceful stop, ur_server_of, the request body kept -------------- */

static atomic_int slow_in_handler, slow_may_answer;
#define SLOW_LEN ((size_t)100 * 1024)

/* /slow: says it is in, waits until the test has stopped the server, then answers 100 KiB. */
static int stop_handler(const struct ur_http_server_req *rq, struct ur_http_server_resp *rs,
                        void *arg)
{
	(void)arg;
	cr_assert_not_null(ur_server_of(rq->stream));
	if (rq->path_len == 5 && memcmp(rq->path, "/slow", 5) == 0) {
		atomic_store(&slow_in_handler, 1);
		while (!atomic_load(&slow_may_answer)) {
			int r = ur_sleep(1 * UR_MSEC);
			if (r < 0)
				return r;
		}
		char *b = malloc(SLOW_LEN);
		for (size_t i = 0; i < SLOW_LEN; i++)
			b[i] = (char)('a' + i % 26);
		return ur_http_resp_take(rs, 200, NULL, b, SLOW_LEN);
	}
	if (rq->path_len == 5 && memcmp(rq->path, "/take", 5) == 0) {
		/* NUL-terminated, and kept past the handler: answered with itself */
		cr_assert_eq(rq->body[rq->body_len], '\0');
		char *b = ur_http_req_take_body(rq);
		cr_assert_not_null(b);
		cr_assert_eq(strlen(b), rq->body_len);
		return ur_http_resp_take(rs, 200, NULL, b, rq->body_len);
	}
	return ur_http_resp_mem(rs, 200, NULL, "ok", 2);
}

static int stop_conn(struct ur_stream *s, void *arg)
{
	(void)arg;
	cr_assert_not_null(ur_server_of(s));
	/* an idle timeout far beyond the test's: only the stop can end an idle connection */
	struct ur_http_server_opts o = {.handler = stop_handler, .idle_timeout_ns = 600 * UR_SEC};
	ur_http_serve_conn(s, &o);
	return 0;
}

/* Blocking libc client: the server runs on its own thread. */
static int raw_connect(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	struct sockaddr_in a = t_loopback(port);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static void raw_send(int fd, const char *s)
{
	size_t len = strlen(s);
	cr_assert_eq(send(fd, s, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Reads until end of stream (or a reset); returns the bytes read. */
static size_t raw_read_to_eof(int fd, char *buf, size_t cap)
{
	size_t have = 0;
	for (;;) {
		ssize_t got = recv(fd, buf + have, cap - have, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return have;
		have += (size_t)got;
		cr_assert_lt(have, cap);
	}
}

/* Reads exactly one response with a Content-Length body; returns the body's length. */
static size_t raw_read_one(int fd, char *buf, size_t cap, bool *close)
{
	size_t have = 0;
	for (;;) {
		struct ur_http_header h[32];
		struct ur_http1_parser p;
		struct ur_http1_response r = {.headers = h, .max_headers = 32};
		ur_http1_parser_init(&p, NULL);
		int n = have ? ur_http1_parse_response(&p, buf, have, &r) : UR_EHTTP_INCOMPLETE;
		if (n > 0) {
			ssize_t ci = ur_http_header_find(h, r.num_headers, "content-length", 0);
			cr_assert_geq(ci, 0);
			size_t clen = strtoul(h[ci].value, NULL, 10);
			*close = ur_http_header_has_token(h, r.num_headers, "connection", "close");
			cr_assert_eq(r.status, 200);
			while (have < (size_t)n + clen) {
				ssize_t got = recv(fd, buf + have, cap - have, 0);
				cr_assert_gt(got, 0, "body cut short");
				have += (size_t)got;
			}
			cr_assert_eq(have, (size_t)n + clen, "bytes beyond the response");
			memmove(buf, buf + n, clen);
			return clen;
		}
		cr_assert_eq(n, UR_EHTTP_INCOMPLETE);
		ssize_t got = recv(fd, buf + have, cap - have, 0);
		cr_assert_gt(got, 0, "recv");
		have += (size_t)got;
	}
}

Test(http_server, a_stop_ends_idle_keep_alive_connections_at_once_and_lets_busy_ones_finish)
{
	t_skip_under_valgrind();
	int fds = t_count_fds();
	atomic_store(&slow_in_handler, 0);
	atomic_store(&slow_may_answer, 0);
	struct ur_server *sv;
	struct ur_server_opts so = {.host = "127.0.0.1", .threads = 1, .on_conn = stop_conn};
	ASSERT_RES(ur_server_start(&sv, &so), 0);
	uint16_t port = ur_server_port(sv);
	size_t cap = SLOW_LEN + 4096;
	char *buf = malloc(cap);
	bool close_after;

	/* A: one request answered, then idle on keep-alive */
	int a = raw_connect(port);
	raw_send(a, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
	cr_assert_eq(raw_read_one(a, buf, cap, &close_after), 2);
	cr_assert(!close_after);
	/* B: a request in the handler when the stop comes */
	int b = raw_connect(port);
	raw_send(b, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
	while (!atomic_load(&slow_in_handler))
		usleep(1000);

	/* a grace far longer than the test's timeout: a connection that waits for it fails it */
	ASSERT_RES(ur_server_stop(sv, 3600 * UR_SEC), 0);
	/* the idle one ends now, long before its idle timeout */
	char c;
	cr_assert_eq(raw_read_to_eof(a, &c, 1), 0);
	/* the busy one finishes its response, whole, with Connection: close, then ends */
	atomic_store(&slow_may_answer, 1);
	cr_assert_eq(raw_read_one(b, buf, cap, &close_after), SLOW_LEN);
	cr_assert(close_after);
	for (size_t i = 0; i < SLOW_LEN; i++)
		cr_assert_eq(buf[i], (char)('a' + i % 26), "byte %zu", i);
	cr_assert_eq(raw_read_to_eof(b, buf, cap), 0);

	ASSERT_RES(ur_server_join(sv), 0);
	struct ur_server_stats ss;
	ur_server_stats(sv, &ss);
	cr_assert_eq(ss.accepted, 2);
	cr_assert_eq(ss.idle_ended, 1);
	cr_assert_eq(ss.cancelled, 0, "the grace period ran out");
	ASSERT_RES(ur_server_free(&sv), 0);
	close(a);
	close(b);
	free(buf);
	cr_assert_eq(t_count_fds(), fds, "descriptors leaked");
}

Test(http_server, the_request_body_is_nul_terminated_and_can_be_kept)
{
	int fds = t_count_fds();
	struct ur_server *sv;
	struct ur_server_opts so = {.host = "127.0.0.1", .threads = 1, .on_conn = stop_conn};
	ASSERT_RES(ur_server_start(&sv, &so), 0);
	char buf[4096];
	bool close_after;
	int a = raw_connect(ur_server_port(sv));
	/* twice on one connection (the second body needs a new buffer), then chunked, then none */
	for (int i = 0; i < 2; i++) {
		raw_send(a, "POST /take HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
		cr_assert_eq(raw_read_one(a, buf, sizeof(buf), &close_after), 5);
		cr_assert_eq(memcmp(buf, "hello", 5), 0);
	}
	raw_send(a, "POST /take HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	            "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
	cr_assert_eq(raw_read_one(a, buf, sizeof(buf), &close_after), 5);
	cr_assert_eq(memcmp(buf, "abcde", 5), 0);
	raw_send(a,
	         "POST /take HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
	cr_assert_eq(raw_read_one(a, buf, sizeof(buf), &close_after), 0);
	raw_send(a, "GET /take HTTP/1.1\r\nHost: x\r\n\r\n");
	cr_assert_eq(raw_read_one(a, buf, sizeof(buf), &close_after), 0);
	ASSERT_RES(ur_server_stop(sv, 3600 * UR_SEC), 0);
	ASSERT_RES(ur_server_join(sv), 0);
	ASSERT_RES(ur_server_free(&sv), 0);
	close(a);
	cr_assert_eq(t_count_fds(), fds, "descriptors leaked");
}

Test(http_server, a_stream_of_ones_own_is_no_server_connection)
{
	struct ur_stream s;
	int a, b;
	t_tcp_pair(&a, &b);
	cr_assert_eq(ur_stream_init(&s, a, 0), 0);
	cr_assert_null(ur_server_of(&s));
	ASSERT_RES(ur_server_conn_idle(&s, true), -EINVAL);
	ur_stream_close(&s);
	close(b);
}
