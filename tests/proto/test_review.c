/* SPDX-License-Identifier: MIT */
/*
 * tests/proto/test_review.c - edge defects of proto/ found in review, one regression test each:
 * calls from loop callbacks and outside tasks, user strings that reach the wire, limits.
 */
#include <pthread.h>

#include <urio/http_server.h>
#include <urio/tls.h>

#define T_FAULT_UNSAFE_FILE "enomem,reset"
#define T_FAULT_UNSAFE_WHY                                                                         \
	"each test asserts the exact outcome of its exchange; a refused start or a reset "         \
	"connection ends it with ENOMEM or ECONNRESET instead"
#include "../helpers.h"

/* --- a stream called outside a task is refused, not poisoned ---------------------------------- */

struct pair {
	struct ur_stream s;
	int peer;
	ssize_t res;
	char buf[16];
};

static int read_one(void *arg)
{
	struct pair *p = arg;
	p->res = ur_stream_read(&p->s, p->buf, sizeof(p->buf));
	return 0;
}

Test(review, stream_read_outside_a_task_leaves_the_stream_usable)
{
	struct pair p = {0};
	int fd, fds = t_count_fds();
	t_tcp_pair(&fd, &p.peer);
	ASSERT_RES(ur_stream_init(&p.s, fd, 0), 0);
	char x[4];
	ASSERT_RES(ur_stream_read(&p.s, x, sizeof(x)), UR_ENOTASK);
	ASSERT_RES(ur_stream_read_until(&p.s, "\n", 1, x, sizeof(x)), UR_ENOTASK);
	ASSERT_RES(send(p.peer, "hi", 2, 0), 2);
	struct ur_loop *l = t_loop();
	ASSERT_RES(ur_run(l, read_one, &p, NULL), 0);
	ASSERT_RES(p.res, 2);
	cr_assert_arr_eq(p.buf, "hi", 2);
	ASSERT_RES(ur_stream_close(&p.s), 0);
	close(p.peer);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

/* --- closing a stream from a loop callback wakes its reader --------------------------------- */

static void close_cb(struct ur_future *f, void *arg)
{
	(void)f;
	struct pair *p = arg;
	ASSERT_RES(ur_stream_close(&p->s), 0);
}

static int close_from_callback_main(void *arg)
{
	struct pair *p = arg;
	struct ur_task *t;
	struct ur_future tf;
	ASSERT_RES(ur_spawn(ur_current_loop(), &t, read_one, p, NULL), 0);
	ur_future_init(&tf, close_cb, p);
	ASSERT_RES(ur_timeout_start(ur_current_loop(), &tf, 10 * UR_MSEC, 0), 0);
	ASSERT_RES(ur_join(t), 0); /* hangs if the reader's recv outlives the close */
	ASSERT_RES(p->res, -EBADF);
	return 0;
}

Test(review, stream_close_from_a_callback_wakes_the_reader, .timeout = 20)
{
	struct pair p = {0};
	int fd, fds = t_count_fds();
	t_tcp_pair(&fd, &p.peer);
	ASSERT_RES(ur_stream_init(&p.s, fd, 0), 0);
	struct ur_loop *l = t_loop();
	ASSERT_RES(ur_run(l, close_from_callback_main, &p, NULL), 0);
	/* the peer sees the end of the connection */
	char x;
	ASSERT_RES(recv(p.peer, &x, 1, 0), 0);
	close(p.peer);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

static int write_lots(void *arg)
{
	struct pair *p = arg;
	size_t len = (size_t)64 << 20;
	char *big = calloc(1, len);
	p->res = ur_stream_write_all(&p->s, big, len); /* the peer never reads */
	free(big);
	return 0;
}

static int close_writer_from_callback_main(void *arg)
{
	struct pair *p = arg;
	struct ur_task *t;
	struct ur_future tf;
	ASSERT_RES(ur_spawn(ur_current_loop(), &t, write_lots, p, NULL), 0);
	ur_future_init(&tf, close_cb, p);
	ASSERT_RES(ur_timeout_start(ur_current_loop(), &tf, 10 * UR_MSEC, 0), 0);
	ASSERT_RES(ur_join(t), 0);
	ASSERT_RES(p->res, -EBADF);
	return 0;
}

Test(review, stream_close_from_a_callback_wakes_the_writer, .timeout = 20)
{
	struct pair p = {0};
	int fd, fds = t_count_fds();
	t_tcp_pair(&fd, &p.peer);
	ASSERT_RES(ur_stream_init(&p.s, fd, 0), 0);
	struct ur_loop *l = t_loop();
	ASSERT_RES(ur_run(l, close_writer_from_callback_main, &p, NULL), 0);
	close(p.peer);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

/* --- HTTP server: the handler's reason phrase cannot inject fields ---------------------------- */

static int bad_reason(const struct ur_http_server_req *rq, struct ur_http_server_resp *rs,
                      void *arg)
{
	(void)rq;
	(void)arg;
	ur_http_resp_mem(rs, 200, NULL, "ok", 2);
	rs->reason = "OK\r\nSet-Cookie: injected=1";
	return 0;
}

static int serve_main(void *arg)
{
	struct pair *p = arg;
	struct ur_http_server_opts o = {.handler = bad_reason};
	p->res = ur_http_serve_conn(&p->s, &o);
	ur_stream_close(&p->s);
	return 0;
}

Test(review, http_server_reason_phrase_cannot_inject_fields, .timeout = 20)
{
	struct pair p = {0};
	int fd, fds = t_count_fds();
	t_tcp_pair(&fd, &p.peer);
	ASSERT_RES(ur_stream_init(&p.s, fd, 0), 0);
	static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	ASSERT_RES(send(p.peer, req, sizeof(req) - 1, 0), (ssize_t)sizeof(req) - 1);
	struct ur_loop *l = t_loop();
	ASSERT_RES(ur_run(l, serve_main, &p, NULL), 0);
	char got[2048];
	size_t n = 0;
	ssize_t r;
	while ((r = recv(p.peer, got + n, sizeof(got) - 1 - n, 0)) > 0)
		n += (size_t)r;
	got[n] = '\0';
	cr_assert_null(strstr(got, "injected"), "%s", got);
	cr_assert(strncmp(got, "HTTP/1.1 500 ", 13) == 0, "%s", got);
	close(p.peer);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

/* --- a connect deadline does not linger to the caller's next operation ----------------------- */

#include <urio/net.h>

struct lingerer {
	int lfd, peer;
	struct ur_stream s;
	ssize_t res;
};

static int send_late(void *arg)
{
	struct lingerer *g = arg;
	ASSERT_RES(ur_sleep(200 * UR_MSEC), 0);
	ASSERT_RES(send(g->peer, "x", 1, 0), 1);
	return 0;
}

static int connect_then_read_main(void *arg)
{
	struct lingerer *g = arg;
	uint16_t port;
	g->lfd = t_listen_tcp(&port);
	/* numeric host: the resolver answers in place, without waiting */
	struct ur_connect_opts o = {.timeout_ns = 20 * UR_MSEC};
	ASSERT_RES(ur_tcp_connect(&g->s, "127.0.0.1", port, &o), 0);
	g->peer = accept4(g->lfd, NULL, NULL, SOCK_CLOEXEC);
	cr_assert_geq(g->peer, 0);
	/* the stream has no deadline: this read waits for the byte sent well after 20 ms */
	struct ur_task *late;
	ASSERT_RES(ur_spawn(ur_current_loop(), &late, send_late, g, NULL), 0);
	char x;
	g->res = ur_stream_read(&g->s, &x, 1);
	ASSERT_RES(ur_join(late), 0);
	return 0;
}

Test(review, connect_deadline_does_not_linger_to_the_next_read, .timeout = 20)
{
	struct lingerer g = {0};
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	ASSERT_RES(ur_run(l, connect_then_read_main, &g, NULL), 0);
	ASSERT_RES(g.res, 1);
	ur_stream_close(&g.s);
	close(g.peer);
	close(g.lfd);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

/* --- HTTP client: the User-Agent option cannot inject fields -------------------------------- */

#include <urio/http.h>

Test(review, http_client_user_agent_is_checked)
{
	struct ur_loop *l = t_loop();
	struct ur_http_client c;
	struct ur_http_client_opts o = {.user_agent = "urio\r\nX-Injected: 1"};
	ASSERT_RES(ur_http_client_init(&c, l, &o), UR_EHTTP_HVALUE);
	o.user_agent = "urio/1 (review)";
	ASSERT_RES(ur_http_client_init(&c, l, &o), 0);
	ASSERT_RES(ur_http_client_close(&c), 0);
	o.user_agent = "";
	ASSERT_RES(ur_http_client_init(&c, l, &o), 0);
	ASSERT_RES(ur_http_client_close(&c), 0);
	t_loop_done(&l);
}

/* One end of a TLS connection, for the TLS tests below. */

struct td_side {
	struct ur_stream s;
	struct ur_tls_ctx *ctx;
	bool server;
	int hs;
};

/* --- HTTP server: a handler's 1xx is not a final response ---------------------------------- */

static int informational(const struct ur_http_server_req *rq, struct ur_http_server_resp *rs,
                         void *arg)
{
	(void)rq;
	(void)arg;
	return ur_http_resp_mem(rs, 102, NULL, NULL, 0);
}

static int serve_1xx_main(void *arg)
{
	struct pair *p = arg;
	struct ur_http_server_opts o = {.handler = informational};
	p->res = ur_http_serve_conn(&p->s, &o);
	ur_stream_close(&p->s);
	return 0;
}

Test(review, http_server_handler_1xx_gets_500, .timeout = 20)
{
	struct pair p = {0};
	int fd, fds = t_count_fds();
	t_tcp_pair(&fd, &p.peer);
	ASSERT_RES(ur_stream_init(&p.s, fd, 0), 0);
	/* keep-alive: a 1xx answer would leave both sides waiting for the other */
	static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	ASSERT_RES(send(p.peer, req, sizeof(req) - 1, 0), (ssize_t)sizeof(req) - 1);
	ASSERT_RES(shutdown(p.peer, SHUT_WR), 0);
	struct ur_loop *l = t_loop();
	ASSERT_RES(ur_run(l, serve_1xx_main, &p, NULL), 0);
	char got[2048];
	size_t n = 0;
	ssize_t r;
	while ((r = recv(p.peer, got + n, sizeof(got) - 1 - n, 0)) > 0)
		n += (size_t)r;
	got[n] = '\0';
	cr_assert(strncmp(got, "HTTP/1.1 500 ", 13) == 0, "%s", got);
	close(p.peer);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

/* --- TLS: SNI carries a DNS name, never an IP literal --------------------------------------- */

#include <openssl/ssl.h>

struct sni_case {
	struct td_side c, s;
	char seen[64];
};

static int sni_server(void *arg)
{
	struct sni_case *k = arg;
	k->s.hs = ur_tls_server(&k->s.s, k->s.ctx);
	const char *n = k->s.hs == 0
	                    ? SSL_get_servername(ur_tls_ssl(&k->s.s), TLSEXT_NAMETYPE_host_name)
	                    : "(failed)";
	snprintf(k->seen, sizeof(k->seen), "%s", n ? n : "(none)");
	return 0;
}

static int sni_main(void *arg)
{
	static const char *hosts[] = {"localhost", "127.0.0.1", "[::1]", "::1"};
	static const char *want[] = {"localhost", "(none)", "(none)", "(none)"};
	struct sni_case *k = arg;
	for (int i = 0; i < 4; i++) {
		int a, b;
		t_tcp_pair(&a, &b);
		ASSERT_RES(ur_stream_init(&k->c.s, a, 0), 0);
		ASSERT_RES(ur_stream_init(&k->s.s, b, 0), 0);
		struct ur_task *t;
		ASSERT_RES(ur_spawn(ur_current_loop(), &t, sni_server, k, NULL), 0);
		ASSERT_RES(ur_tls_client(&k->c.s, k->c.ctx, hosts[i]), 0);
		ASSERT_RES(ur_join(t), 0);
		ASSERT_RES(k->s.hs, 0);
		cr_assert_str_eq(k->seen, want[i], "host %s", hosts[i]);
		ur_stream_close(&k->c.s);
		ur_stream_close(&k->s.s);
	}
	return 0;
}

Test(review, tls_sni_only_for_dns_names, .timeout = 30)
{
	int fds = t_count_fds();
	struct ur_tls_cert pem;
	ASSERT_RES(ur_tls_cert_generate(&pem, NULL), 0);
	struct ur_tls_opts co = {.ca_pem = pem.ca_pem, .flags = UR_TLS_NO_RESUME};
	struct ur_tls_opts so = {.cert_pem = pem.cert_pem, .key_pem = pem.key_pem};
	struct sni_case k = {0};
	ASSERT_RES(ur_tls_ctx_new(&k.c.ctx, UR_TLS_CLIENT, &co), 0);
	ASSERT_RES(ur_tls_ctx_new(&k.s.ctx, UR_TLS_SERVER, &so), 0);
	struct ur_loop *l = t_loop();
	ASSERT_RES(ur_run(l, sni_main, &k, NULL), 0);
	t_loop_done(&l);
	ur_tls_ctx_free(k.c.ctx);
	ur_tls_ctx_free(k.s.ctx);
	ur_tls_cert_free(&pem);
	cr_assert_eq(t_count_fds(), fds);
}
