/* SPDX-License-Identifier: MIT */
/*
 * tests/proto/test_http_client.c - the HTTP/1.1 client against a scripted fault server: each
 * misbehaviour gives the documented result or a clear error, connections are reused exactly when
 * they may be, and nothing leaks (descriptors counted, loop empty at the end).
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <zlib.h>

#define T_FAULT_UNSAFE_FILE "enomem,reset"
#define T_FAULT_UNSAFE_WHY                                                                         \
	"each test asserts the exact result of its requests; a refused start or a reset "          \
	"connection ends one with ENOMEM or ECONNRESET instead"
#include "fault_server.h"

TestSuite(http_client, .timeout = 60);

#define MAXREQ 32

/* A run: requests made one after another by one task, with one client. */
struct run {
	struct ur_http_client_opts o;
	struct ur_http_request rq[MAXREQ];
	struct ur_http_response r[MAXREQ];
	int ret[MAXREQ];
	int n;
	struct ur_http_client_stats st;
	char urls[MAXREQ][128];
	struct ur_http_client c;
};

static int run_main(void *arg)
{
	struct run *u = arg;
	for (int i = 0; i < u->n; i++)
		u->ret[i] = ur_http_request(&u->c, &u->rq[i], &u->r[i]);
	ur_http_client_stats(&u->c, &u->st);
	ASSERT_RES(ur_http_client_close(&u->c), 0);
	return 0;
}

static void run_init(struct run *u, const struct fault_server *s, int n, const char *path)
{
	memset(u, 0, sizeof(*u));
	u->n = n;
	for (int i = 0; i < n; i++) {
		u->rq[i].url = fs_url(s, path, u->urls[i], sizeof(u->urls[i]));
		ur_http_response_init(&u->r[i]);
	}
}

static void run_go(struct run *u)
{
	struct ur_loop *l = t_loop();
	ASSERT_RES(ur_http_client_init(&u->c, l, &u->o), 0);
	int res;
	ASSERT_RES(ur_run(l, run_main, u, &res), 0);
	t_loop_done(&l);
}

static void run_free(struct run *u)
{
	for (int i = 0; i < u->n; i++)
		ur_http_response_free(&u->r[i]);
}

/* One GET against one script served on every connection; returns the result. */
#define SCRIPT(...) ((const struct fs_step[]){__VA_ARGS__, {FS_END}})

static int get_once(const struct fs_step *script, struct run *u)
{
	struct fault_server s;
	const struct fs_step *scripts[] = {script};
	fs_start(&s, scripts, 1);
	u->n = 1;
	u->rq[0].url = fs_url(&s, "/", u->urls[0], sizeof(u->urls[0]));
	ur_http_response_init(&u->r[0]);
	run_go(u);
	fs_stop(&s);
	return u->ret[0];
}

#define OK_HELLO "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\n\r\nhello"

Test(http_client, get_with_content_length)
{
	int fds = t_count_fds();
	struct run u = {0};
	ASSERT_RES(get_once(SCRIPT({FS_REQ}, {FS_SEND, OK_HELLO}), &u), 0);
	struct ur_http_response *r = &u.r[0];
	cr_assert_eq(r->status, 200);
	cr_assert_str_eq(r->reason, "OK");
	cr_assert_eq(r->minor_version, 1);
	cr_assert_eq(r->body_len, 5);
	cr_assert_str_eq(r->body, "hello");
	cr_assert_str_eq(ur_http_response_header(r, "content-length"), "5");
	/* all values of a repeated field, names compared case-insensitively */
	ssize_t i = ur_http_response_find(r, "X-A", 0);
	cr_assert_eq(i, 1);
	cr_assert_str_eq(r->headers[i].value, "1");
	i = ur_http_response_find(r, "x-a", (size_t)i + 1);
	cr_assert_eq(i, 2);
	cr_assert_str_eq(r->headers[i].value, "2");
	cr_assert_eq(ur_http_response_find(r, "x-a", (size_t)i + 1), -1);
	cr_assert_null(ur_http_response_header(r, "missing"));
	cr_assert_not(r->stats.reused);
	cr_assert_eq(r->stats.connections, 1);
	cr_assert_gt(r->stats.bytes_sent, 0);
	cr_assert_eq(r->stats.bytes_received, strlen(OK_HELLO));
	cr_assert_str_eq(r->url, u.urls[0]);
	cr_assert_eq(u.st.connections, 1);
	run_free(&u);
	cr_assert_eq(t_count_fds(), fds);
}

Test(http_client, request_head_is_what_the_client_promises)
{
	struct fault_server s;
	const struct fs_step *sc[] = {SCRIPT({FS_REQ}, {FS_SEND, OK_HELLO})};
	fs_start(&s, sc, 1);
	struct run u;
	run_init(&u, &s, 1, "/a/../b?q=1#frag");
	struct ur_http_header h[] = {{"X-Custom", 8, "v 1", 3}, {"user-agent", 10, "mine", 4}};
	u.rq[0].headers = h;
	u.rq[0].num_headers = 2;
	run_go(&u);
	fs_stop(&s);
	ASSERT_RES(u.ret[0], 0);
	char want[256];
	snprintf(want, sizeof(want),
	         "GET /b?q=1 HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nAccept: */*\r\n"
	         "X-Custom: v 1\r\nuser-agent: mine\r\n\r\n",
	         s.port);
	cr_assert_str_eq(s.last_head, want);
	run_free(&u);
}

Test(http_client, keep_alive_reuses_one_connection)
{
	int fds = t_count_fds();
	struct fault_server s;
	const struct fs_step *sc[] = {SCRIPT({FS_REQ}, {FS_SEND, OK_HELLO}, {FS_LOOP})};
	fs_start(&s, sc, 1);
	struct run u;
	run_init(&u, &s, 20, "/");
	run_go(&u);
	fs_stop(&s);
	for (int i = 0; i < 20; i++) {
		ASSERT_RES(u.ret[i], 0);
		cr_assert_str_eq(u.r[i].body, "hello");
		cr_assert_eq(u.r[i].stats.reused, i > 0);
	}
	cr_assert_eq(atomic_load(&s.conns), 1, "one connection for 20 requests");
	cr_assert_eq(atomic_load(&s.requests), 20);
	cr_assert_eq(u.st.connections, 1);
	cr_assert_eq(u.st.reused, 19);
	run_free(&u);
	cr_assert_eq(t_count_fds(), fds);
}

Test(http_client, chunked_with_extensions_and_trailers)
{
	struct run u = {0};
	ASSERT_RES(
	    get_once(SCRIPT({FS_REQ}, {FS_SEND, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
	                                        "\r\n5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld"
	                                        "\r\n0\r\nX-Trailer: t\r\n\r\n"}),
	             &u),
	    0);
	cr_assert_str_eq(u.r[0].body, "hello world");
	cr_assert_eq(u.r[0].body_len, 11);
	cr_assert_eq(u.r[0].num_trailers, 1);
	cr_assert_str_eq(u.r[0].trailers[0].name, "X-Trailer");
	cr_assert_str_eq(u.r[0].trailers[0].value, "t");
	cr_assert_eq(u.r[0].trailers[0].value_len, 1);
	cr_assert_null(ur_http_response_header(&u.r[0], "x-trailer"), "trailers are not headers");
	run_free(&u);

	/* no trailer fields: none reported */
	memset(&u, 0, sizeof(u));
	ASSERT_RES(get_once(SCRIPT({FS_REQ}, {FS_SEND, "HTTP/1.1 200 OK\r\nTransfer-Encoding: "
	                                               "chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"}),
	                    &u),
	           0);
	cr_assert_str_eq(u.r[0].body, "hi");
	cr_assert_eq(u.r[0].num_trailers, 0);
	cr_assert_null(u.r[0].trailers);
	run_free(&u);

	/* two fields with optional whitespace, arriving a byte at a time */
	memset(&u, 0, sizeof(u));
	ASSERT_RES(
	    get_once(SCRIPT({FS_REQ},
	                    {FS_SEND, "HTTP/1.1 200 OK\r\nTransfer-Encoding: "
	                              "chunked\r\n\r\n2\r\nhi\r\n"},
	                    {FS_DRIP, "0\r\nDigest:  sha-256=abc \r\nx-n:\t7\r\n\r\n", 0, 1}),
	             &u),
	    0);
	cr_assert_eq(u.r[0].num_trailers, 2);
	cr_assert_str_eq(u.r[0].trailers[0].name, "Digest");
	cr_assert_str_eq(u.r[0].trailers[0].value, "sha-256=abc");
	cr_assert_str_eq(u.r[0].trailers[1].name, "x-n");
	cr_assert_str_eq(u.r[0].trailers[1].value, "7");
	cr_assert_eq(ur_http_header_find(u.r[0].trailers, u.r[0].num_trailers, "X-N", 0), 1);
	run_free(&u);
}

Test(http_client, truncated_body_is_an_error)
{
	int fds = t_count_fds();
	struct run u = {0};
	ASSERT_RES(get_once(SCRIPT({FS_REQ},
	                           {FS_SEND, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
	                                     "only part"},
	                           {FS_CLOSE}),
	                    &u),
	           UR_EHTTP_TRUNCATED);
	/* the head arrived: the response says what it was */
	cr_assert_eq(u.r[0].status, 200);
	cr_assert_eq(u.r[0].body_len, 9);
	run_free(&u);
	cr_assert_eq(t_count_fds(), fds);
}

Test(http_client, truncated_chunked_body_is_an_error)
{
	struct run u = {0};
	ASSERT_RES(get_once(SCRIPT({FS_REQ},
	                           {FS_SEND, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	                                     "5\r\nhel"},
	                           {FS_CLOSE}),
	                    &u),
	           UR_EHTTP_TRUNCATED);
	run_free(&u);
}

Test(http_client, reset_mid_body)
{
	struct run u = {0};
	ASSERT_RES(get_once(SCRIPT({FS_REQ},
	                           {FS_SEND, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
	                                     "part"},
	                           {FS_RESET}),
	                    &u),
	           -ECONNRESET);
	run_free(&u);
}

Test(http_client, bad_chunk_hex)
{
	struct run u = {0};
	ASSERT_RES(get_once(SCRIPT({FS_REQ},
	                           {FS_SEND, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	                                     "5z\r\nhello\r\n0\r\n\r\n"}),
	                    &u),
	           UR_EHTTP_CHUNK);
	run_free(&u);
}

Test(http_client, chunk_size_overflow)
{
	struct run u = {0};
	ASSERT_RES(get_once(SCRIPT({FS_REQ},
	                           {FS_SEND, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	                                     "10000000000000000\r\nx"}),
	                    &u),
	           UR_EHTTP_CHUNK_OVERFLOW);
	run_free(&u);
}

/* A head with one line of @n bytes of 'a' at @what: "status" (the reason), "field" or many. */
static char *long_head(const char *what, size_t n)
{
	char *b = malloc(n + 4096);
	size_t k = 0;
	if (!strcmp(what, "status")) {
		k += (size_t)sprintf(b, "HTTP/1.1 200 ");
		memset(b + k, 'a', n);
		k += n;
		k += (size_t)sprintf(b + k, "\r\nContent-Length: 0\r\n\r\n");
	} else if (!strcmp(what, "field")) {
		k += (size_t)sprintf(b, "HTTP/1.1 200 OK\r\nX-Long: ");
		memset(b + k, 'a', n);
		k += n;
		k += (size_t)sprintf(b + k, "\r\nContent-Length: 0\r\n\r\n");
	} else { /* n fields */
		k += (size_t)sprintf(b, "HTTP/1.1 200 OK\r\n");
		for (size_t i = 0; i < n; i++)
			k += (size_t)sprintf(b + k, "X-%zu: v\r\n", i);
		k += (size_t)sprintf(b + k, "Content-Length: 0\r\n\r\n");
	}
	b[k] = 0;
	return b;
}

Test(http_client, headers_over_each_limit)
{
	struct ur_http1_limits lim = {
	    .max_line = 100, .max_field = 100, .max_fields = 10, .max_header_bytes = 1000};
	struct {
		const char *what;
		size_t n;
		int want;
	} cases[] = {
	    {"status", 200, UR_EHTTP_LINE_TOO_LONG},
	    {"field", 200, UR_EHTTP_FIELD_TOO_LONG},
	    {"many", 20, UR_EHTTP_TOO_MANY_FIELDS},
	    {"status", 80, 0}, /* within every limit */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *head = long_head(cases[i].what, cases[i].n);
		struct run u = {.o = {.limits = &lim}};
		ASSERT_RES(get_once(SCRIPT({FS_REQ}, {FS_SEND, head}), &u), cases[i].want);
		run_free(&u);
		free(head);
	}
	/* the total: 12 fields of 95 bytes pass each per-field limit but not 1000 bytes in all */
	lim.max_fields = 0;
	char *b = malloc(4096);
	size_t k = (size_t)sprintf(b, "HTTP/1.1 200 OK\r\n");
	for (int i = 0; i < 12; i++) {
		k += (size_t)sprintf(b + k, "X-%d: ", i);
		memset(b + k, 'v', 90);
		k += 90;
		k += (size_t)sprintf(b + k, "\r\n");
	}
	sprintf(b + k, "\r\n");
	struct run u = {.o = {.limits = &lim}};
	ASSERT_RES(get_once(SCRIPT({FS_REQ}, {FS_SEND, b}), &u), UR_EHTTP_HEADER_TOO_BIG);
	run_free(&u);
	free(b);
}

Test(http_client, endless_body_past_the_maximum)
{
	int fds = t_count_fds();
	struct run u = {.o = {.max_body = 1 << 20}};
	ASSERT_RES(get_once(SCRIPT({FS_REQ}, {FS_SEND, "HTTP/1.1 200 OK\r\n\r\n"}, {FS_FLOOD}), &u),
	           UR_EHTTP_BODY_TOO_BIG);
	cr_assert_leq(u.r[0].body_len, 1 << 20);
	run_free(&u);
	/* a Content-Length over the maximum fails before reading the body */
	struct run v = {.o = {.max_body = 1000}};
	ASSERT_RES(
	    get_once(SCRIPT({FS_REQ}, {FS_SEND, "HTTP/1.1 200 OK\r\nContent-Length: 1001\r\n\r\n"},
	                    {FS_FLOOD, NULL, 1001}),
	             &v),
	    UR_EHTTP_BODY_TOO_BIG);
	cr_assert_eq(v.r[0].body_len, 0);
	run_free(&v);
	cr_assert_eq(t_count_fds(), fds);
}

Test(http_client, drip_past_the_idle_read_deadline)
{
	struct run u = {.o = {.read_timeout_ns = 100 * UR_MSEC}};
	uint64_t t0 = ur_now_ns();
	ASSERT_RES(
	    get_once(SCRIPT({FS_REQ}, {FS_DRIP, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
	                               0, 1000}),
	             &u),
	    -ETIMEDOUT);
	/* one byte came at once, the next one a second later: the 100 ms idle deadline fired */
	cr_assert_lt(ur_now_ns() - t0, 30 * UR_SEC);
	run_free(&u);
}

Test(http_client, total_deadline)
{
	struct run u = {
	    .o = {.total_timeout_ns = 150 * UR_MSEC, .read_timeout_ns = UR_HTTP_NO_TIMEOUT}};
	ASSERT_RES(
	    get_once(SCRIPT({FS_REQ},
	                    {FS_DRIP, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 0, 50}),
	             &u),
	    -ETIMEDOUT);
	run_free(&u);
}

Test(http_client, redirect_loop)
{
	struct fault_server s;
	const struct fs_step *sc[] = {
	    SCRIPT({FS_REQ},
	           {FS_SEND, "HTTP/1.1 302 Found\r\nLocation: /a\r\nContent-Length: 3\r\n\r\nabc"},
	           {FS_LOOP})};
	fs_start(&s, sc, 1);
	struct run u;
	run_init(&u, &s, 1, "/a");
	u.o.max_redirects = 4;
	run_go(&u);
	fs_stop(&s);
	ASSERT_RES(u.ret[0], UR_EHTTP_TOO_MANY_REDIRECTS);
	cr_assert_eq(atomic_load(&s.requests), 5, "the first request and 4 redirects");
	cr_assert_eq(atomic_load(&s.conns), 1, "a drained redirect keeps its connection");
	cr_assert_eq(u.r[0].status, 302);
	run_free(&u);
}

Test(http_client, redirect_followed_and_not)
{
	struct fault_server s;
	const struct fs_step *sc[] = {SCRIPT(
	    {FS_REQ},
	    {FS_SEND, "HTTP/1.1 301 Moved\r\nLocation: /there?x\r\nContent-Length: 0\r\n\r\n"},
	    {FS_REQ}, {FS_SEND, OK_HELLO})};
	fs_start(&s, sc, 1);
	struct run u;
	run_init(&u, &s, 1, "/here");
	run_go(&u);
	ASSERT_RES(u.ret[0], 0);
	cr_assert_eq(u.r[0].status, 200);
	cr_assert_str_eq(u.r[0].body, "hello");
	cr_assert_eq(u.r[0].stats.redirects, 1);
	char want[128];
	cr_assert_str_eq(u.r[0].url, fs_url(&s, "/there?x", want, sizeof(want)));
	cr_assert(strstr(s.last_head, "GET /there?x HTTP/1.1\r\n") == s.last_head);
	fs_stop(&s);
	run_free(&u);

	/* with redirects off the 3xx is the response */
	fs_start(&s, sc, 1);
	run_init(&u, &s, 1, "/here");
	u.rq[0].flags = UR_HTTP_NO_REDIRECTS;
	run_go(&u);
	fs_stop(&s);
	ASSERT_RES(u.ret[0], 0);
	cr_assert_eq(u.r[0].status, 301);
	cr_assert_str_eq(ur_http_response_header(&u.r[0], "location"), "/there?x");
	run_free(&u);
}

Test(http_client, redirect_without_location_is_the_response)
{
	struct run u = {0};
	ASSERT_RES(get_once(SCRIPT({FS_REQ},
	                           {FS_SEND, "HTTP/1.1 302 Found\r\nContent-Length: 2\r\n\r\nno"}),
	                    &u),
	           0);
	cr_assert_eq(u.r[0].status, 302);
	cr_assert_str_eq(u.r[0].body, "no");
	cr_assert_eq(u.r[0].stats.redirects, 0);
	run_free(&u);
	struct run v = {0};
	ASSERT_RES(
	    get_once(SCRIPT({FS_REQ}, {FS_SEND, "HTTP/1.1 302 Found\r\nLocation: ftp://x/\r\n"
	                                        "Content-Length: 0\r\n\r\n"}),
	             &v),
	    UR_EHTTP_REDIRECT_LOCATION);
	run_free(&v);
}

Test(http_client, redirect_303_post_becomes_get_and_credentials_stay_home)
{
	struct fault_server b;
	const struct fs_step *sb[] = {SCRIPT({FS_REQ}, {FS_SEND, OK_HELLO})};
	fs_start(&b, sb, 1);
	char loc[256];
	snprintf(loc, sizeof(loc),
	         "HTTP/1.1 303 See Other\r\nLocation: http://127.0.0.1:%u/b\r\nContent-Length: "
	         "0\r\n\r\n",
	         b.port);
	struct fault_server a;
	const struct fs_step sa_steps[] = {{FS_REQ}, {FS_SEND, loc}, {FS_END}};
	const struct fs_step *sa[] = {sa_steps};
	fs_start(&a, sa, 1);
	struct run u;
	run_init(&u, &a, 1, "/a");
	struct ur_http_header h[] = {
	    {"Authorization", 13, "Bearer x", 8}, {"Cookie", 6, "c=1", 3}, {"X-Keep", 6, "k", 1}};
	u.rq[0].method = "POST";
	u.rq[0].headers = h;
	u.rq[0].num_headers = 3;
	u.rq[0].body_source = UR_HTTP_BODY_MEMORY;
	u.rq[0].body = "data";
	u.rq[0].body_len = 4;
	run_go(&u);
	fs_stop(&a);
	fs_stop(&b);
	ASSERT_RES(u.ret[0], 0);
	cr_assert_str_eq(u.r[0].body, "hello");
	cr_assert(strstr(a.last_head, "POST /a HTTP/1.1\r\n") == a.last_head);
	cr_assert(strstr(a.last_head, "Authorization: Bearer x\r\n"));
	cr_assert_eq(a.last_body_len, 4);
	cr_assert(strstr(b.last_head, "GET /b HTTP/1.1\r\n") == b.last_head, "%s", b.last_head);
	cr_assert_null(strstr(b.last_head, "Authorization"));
	cr_assert_null(strstr(b.last_head, "Cookie"));
	cr_assert_null(strstr(b.last_head, "Content-Length"));
	cr_assert(strstr(b.last_head, "X-Keep: k\r\n"));
	cr_assert_eq(b.last_body_len, 0);
	run_free(&u);
}

Test(http_client, interim_responses_before_200)
{
	struct run u = {0};
	ASSERT_RES(
	    get_once(SCRIPT({FS_REQ},
	                    {FS_SEND, "HTTP/1.1 100 Continue\r\n\r\n"
	                              "HTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\n" OK_HELLO}),
	             &u),
	    0);
	cr_assert_eq(u.r[0].status, 200);
	cr_assert_str_eq(u.r[0].body, "hello");
	cr_assert_null(ur_http_response_header(&u.r[0], "link"));
	run_free(&u);
	char many[1024] = "";
	for (int i = 0; i < 20; i++)
		strcat(many, "HTTP/1.1 100 Continue\r\n\r\n");
	struct run v = {0};
	ASSERT_RES(get_once(SCRIPT({FS_REQ}, {FS_SEND, many}), &v), UR_EHTTP_TOO_MANY_1XX);
	run_free(&v);
}

Test(http_client, head_with_content_length_has_no_body)
{
	struct fault_server s;
	const struct fs_step *sc[] = {
	    SCRIPT({FS_REQ}, {FS_SEND, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"}, {FS_REQ},
	           {FS_SEND, OK_HELLO})};
	fs_start(&s, sc, 1);
	struct run u;
	run_init(&u, &s, 2, "/");
	u.rq[0].method = "HEAD";
	run_go(&u);
	fs_stop(&s);
	ASSERT_RES(u.ret[0], 0);
	cr_assert_eq(u.r[0].body_len, 0);
	cr_assert_str_eq(u.r[0].body, "", "an empty body is \"\", not NULL");
	cr_assert_str_eq(ur_http_response_header(&u.r[0], "content-length"), "1000");
	ASSERT_RES(u.ret[1], 0);
	cr_assert_str_eq(u.r[1].body, "hello");
	cr_assert(u.r[1].stats.reused, "HEAD's response ended with its head");
	cr_assert_eq(atomic_load(&s.conns), 1);
	run_free(&u);
}

Test(http_client, conflicting_content_lengths)
{
	struct run u = {0};
	ASSERT_RES(get_once(SCRIPT({FS_REQ}, {FS_SEND, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
	                                               "Content-Length: 6\r\n\r\nhello!"}),
	                    &u),
	           UR_EHTTP_CLEN);
	run_free(&u);
}

/* Two GETs against @script on every connection; returns the connections the server saw. */
static int two_gets(const struct fs_step *script, struct run *u)
{
	struct fault_server s;
	const struct fs_step *sc[] = {script};
	fs_start(&s, sc, 1);
	run_init(u, &s, 2, "/");
	run_go(u);
	fs_stop(&s);
	return atomic_load(&s.conns);
}

Test(http_client, te_with_cl_is_chunked_and_not_reused)
{
	struct run u;
	int conns =
	    two_gets(SCRIPT({FS_REQ},
	                    {FS_SEND, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
	                              "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	                    {FS_LOOP}),
	             &u);
	ASSERT_RES(u.ret[0], 0);
	cr_assert_str_eq(u.r[0].body, "hello");
	ASSERT_RES(u.ret[1], 0);
	cr_assert_eq(conns, 2);
	run_free(&u);
}

Test(http_client, connection_close_is_not_reused)
{
	struct run u;
	int conns = two_gets(SCRIPT({FS_REQ},
	                            {FS_SEND, "HTTP/1.1 200 OK\r\nConnection: close\r\n"
	                                      "Content-Length: 5\r\n\r\nhello"},
	                            {FS_LOOP}),
	                     &u);
	ASSERT_RES(u.ret[0], 0);
	ASSERT_RES(u.ret[1], 0);
	cr_assert_str_eq(u.r[1].body, "hello");
	cr_assert_eq(conns, 2);
	run_free(&u);
}

Test(http_client, http10_responses)
{
	struct run u;
	int conns = two_gets(SCRIPT({FS_REQ},
	                            {FS_SEND, "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello"},
	                            {FS_LOOP}),
	                     &u);
	ASSERT_RES(u.ret[0], 0);
	cr_assert_eq(u.r[0].minor_version, 0);
	cr_assert_eq(conns, 2, "HTTP/1.0 without keep-alive is not reused");
	run_free(&u);
	conns = two_gets(SCRIPT({FS_REQ},
	                        {FS_SEND, "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
	                                  "Content-Length: 5\r\n\r\nhello"},
	                        {FS_LOOP}),
	                 &u);
	ASSERT_RES(u.ret[1], 0);
	cr_assert_eq(conns, 1, "HTTP/1.0 with keep-alive is");
	run_free(&u);
	conns = two_gets(
	    SCRIPT({FS_REQ}, {FS_SEND, "HTTP/1.0 200 OK\r\n\r\nuntil close"}, {FS_CLOSE}), &u);
	ASSERT_RES(u.ret[0], 0);
	cr_assert_str_eq(u.r[0].body, "until close");
	cr_assert_eq(conns, 2);
	run_free(&u);
}

Test(http_client, body_ending_at_close)
{
	struct run u = {0};
	ASSERT_RES(
	    get_once(SCRIPT({FS_REQ}, {FS_SEND, "HTTP/1.1 200 OK\r\n\r\nto the end"}, {FS_CLOSE}),
	             &u),
	    0);
	cr_assert_str_eq(u.r[0].body, "to the end");
	run_free(&u);
}

/* gzip (or zlib / raw deflate) of @in into a fresh buffer; *@outlen receives its size. */
static char *compress_buf(const void *in, size_t len, int wbits, size_t *outlen)
{
	z_stream z = {0};
	cr_assert_eq(deflateInit2(&z, 9, Z_DEFLATED, wbits, 9, Z_DEFAULT_STRATEGY), Z_OK);
	size_t cap = deflateBound(&z, len);
	char *out = malloc(cap);
	z.next_in = (unsigned char *)in;
	z.avail_in = (uInt)len;
	z.next_out = (unsigned char *)out;
	z.avail_out = (uInt)cap;
	cr_assert_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
	*outlen = z.total_out;
	deflateEnd(&z);
	return out;
}

static char *encoded_response(const char *coding, const char *body, size_t len, int wbits,
                              size_t *total)
{
	size_t zl;
	char *z = compress_buf(body, len, wbits, &zl);
	char *b = malloc(zl + 256);
	int h = sprintf(b, "HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nContent-Length: %zu\r\n\r\n",
	                coding, zl);
	memcpy(b + h, z, zl);
	free(z);
	*total = (size_t)h + zl;
	return b;
}

Test(http_client, gzip_and_deflate_decoded_when_asked)
{
	static const char text[] = "a body worth compressing, a body worth compressing";
	struct {
		const char *coding;
		int wbits;
	} cases[] = {{"gzip", 15 + 16}, {"deflate", 15}, {"deflate", -15}};
	for (size_t i = 0; i < 3; i++) {
		size_t n;
		char *resp =
		    encoded_response(cases[i].coding, text, sizeof(text) - 1, cases[i].wbits, &n);
		struct run u = {.o = {.flags = UR_HTTP_COMPRESSED}};
		ASSERT_RES(get_once(SCRIPT({FS_REQ}, {FS_SEND, resp, n}), &u), 0);
		cr_assert(u.r[0].decoded);
		cr_assert_str_eq(u.r[0].body, text);
		run_free(&u);
		/* not asked: the bytes as sent */
		struct run v = {0};
		ASSERT_RES(get_once(SCRIPT({FS_REQ}, {FS_SEND, resp, n}), &v), 0);
		cr_assert_not(v.r[0].decoded);
		cr_assert_neq(v.r[0].body_len, sizeof(text) - 1);
		run_free(&v);
		free(resp);
	}
}

Test(http_client, gzip_bomb_is_capped)
{
	size_t big = 16u << 20; /* 16 MiB of zeros: about 16 KiB of gzip */
	char *zeros = calloc(1, big);
	size_t n;
	char *resp = encoded_response("gzip", zeros, big, 15 + 16, &n);
	free(zeros);
	cr_assert_lt(n, 1u << 20);
	struct run u = {.o = {.flags = UR_HTTP_COMPRESSED, .max_body = 1 << 20}};
	ASSERT_RES(get_once(SCRIPT({FS_REQ}, {FS_SEND, resp, n}), &u), UR_EHTTP_BODY_TOO_BIG);
	cr_assert_leq(u.r[0].body_len, 1 << 20);
	run_free(&u);
	/* a corrupt stream is an error too */
	free(resp);
	/* a corrupt stream (its CRC) is an error too, and so is one cut short */
	static const char text[] = "some text to gzip, some text to gzip";
	resp = encoded_response("gzip", text, sizeof(text) - 1, 15 + 16, &n);
	resp[n - 8] ^= 0x55;
	struct run v = {.o = {.flags = UR_HTTP_COMPRESSED}};
	ASSERT_RES(get_once(SCRIPT({FS_REQ}, {FS_SEND, resp, n}), &v), UR_EHTTP_DECODE);
	run_free(&v);
	free(resp);
}

Test(http_client, header_injection_and_reserved_fields_refused)
{
	int fds = t_count_fds();
	struct fault_server s;
	const struct fs_step *sc[] = {SCRIPT({FS_REQ}, {FS_SEND, OK_HELLO})};
	fs_start(&s, sc, 1);
	struct run u;
	run_init(&u, &s, 4, "/");
	struct ur_http_header inj[] = {{"X-A", 3, "a\r\nEvil: b", 10}};
	struct ur_http_header badname[] = {{"X A", 3, "a", 1}};
	struct ur_http_header cl[] = {{"content-length", 14, "5", 1}};
	u.rq[0].headers = inj;
	u.rq[0].num_headers = 1;
	u.rq[1].headers = badname;
	u.rq[1].num_headers = 1;
	u.rq[2].headers = cl;
	u.rq[2].num_headers = 1;
	u.rq[3].method = "GE T";
	run_go(&u);
	fs_stop(&s);
	ASSERT_RES(u.ret[0], UR_EHTTP_HVALUE);
	ASSERT_RES(u.ret[1], UR_EHTTP_HNAME);
	ASSERT_RES(u.ret[2], UR_EHTTP_RESERVED);
	ASSERT_RES(u.ret[3], UR_EHTTP_METHOD);
	cr_assert_eq(atomic_load(&s.conns), 0, "nothing was sent");
	cr_assert_str_neq(ur_strerror(UR_EHTTP_RESERVED), "unknown error");
	run_free(&u);
	cr_assert_eq(t_count_fds(), fds);
}

Test(http_client, pooled_connection_closed_by_server_is_retried_once)
{
	struct fault_server s;
	/* connection 1: answers once, takes the second request and closes without answering */
	const struct fs_step *sc[] = {SCRIPT({FS_REQ}, {FS_SEND, OK_HELLO}, {FS_REQ}, {FS_CLOSE}),
	                              SCRIPT({FS_REQ}, {FS_SEND, OK_HELLO})};
	fs_start(&s, sc, 2);
	struct run u;
	run_init(&u, &s, 2, "/");
	run_go(&u);
	fs_stop(&s);
	ASSERT_RES(u.ret[0], 0);
	ASSERT_RES(u.ret[1], 0);
	cr_assert_eq(u.r[1].stats.retries, 1);
	cr_assert_not(u.r[1].stats.reused);
	cr_assert_eq(atomic_load(&s.conns), 2);
	run_free(&u);

	/* a POST is not retried: the server may have acted on it */
	fs_start(&s, sc, 2);
	run_init(&u, &s, 2, "/");
	u.rq[1].method = "POST";
	run_go(&u);
	fs_stop(&s);
	ASSERT_RES(u.ret[1], UR_EHTTP_NO_RESPONSE);
	cr_assert_eq(u.r[1].stats.retries, 0);
	run_free(&u);
}

Test(http_client, idle_pooled_connection_closed_by_server_is_not_used)
{
	struct fault_server s;
	const struct fs_step *sc[] = {SCRIPT({FS_REQ}, {FS_SEND, OK_HELLO}, {FS_CLOSE}),
	                              SCRIPT({FS_REQ}, {FS_SEND, OK_HELLO})};
	fs_start(&s, sc, 2);
	char url[128];
	struct run u;
	run_init(&u, &s, 0, "/");
	fs_url(&s, "/", url, sizeof(url));
	/* wait for the server's close to arrive between the two requests */
	struct ur_loop *l = t_loop();
	ASSERT_RES(ur_http_client_init(&u.c, l, NULL), 0);
	u.n = 1;
	u.rq[0].url = url;
	ur_http_response_init(&u.r[0]);
	ASSERT_RES(ur_run(l, run_main, &u, NULL), 0);
	ASSERT_RES(u.ret[0], 0);
	t_loop_done(&l);
	fs_stop(&s);
	run_free(&u);
}

/* Waits (in a task) until @n of the server's FS_CLOSE steps are done; bounded. */
static void wait_shutdowns(struct fault_server *s, int n)
{
	for (int i = 0; i < 5000 && atomic_load(&s->shutdowns) < n; i++)
		ur_sleep(UR_MSEC);
	cr_assert_eq(atomic_load(&s->shutdowns), n);
}

struct trust_run {
	struct fault_server *s;
	struct ur_http_client c;
	char url[128];
	struct ur_http_response r[3];
	int ret[3];
};

static int trust_main(void *arg)
{
	struct trust_run *k = arg;
	struct ur_http_request get = {.url = k->url};
	struct ur_http_request post = {.url = k->url, .method = "POST"};
	k->ret[0] = ur_http_request(&k->c, &get, &k->r[0]);
	wait_shutdowns(k->s, 1);
	/* just used and retryable: taken without a peek, found dead on use, retried */
	k->ret[1] = ur_http_request(&k->c, &get, &k->r[1]);
	wait_shutdowns(k->s, 2);
	/* a POST is not retried: the peek sees the server's close and a fresh connection is used */
	k->ret[2] = ur_http_request(&k->c, &post, &k->r[2]);
	ASSERT_RES(ur_http_client_close(&k->c), 0);
	return 0;
}

Test(http_client, liveness_peek_skipped_only_when_a_retry_covers_it)
{
	int fds = t_count_fds();
	struct fault_server s;
	const struct fs_step *sc[] = {SCRIPT({FS_REQ}, {FS_SEND, OK_HELLO}, {FS_CLOSE})};
	fs_start(&s, sc, 1);
	struct trust_run k = {.s = &s};
	fs_url(&s, "/", k.url, sizeof(k.url));
	for (int i = 0; i < 3; i++)
		ur_http_response_init(&k.r[i]);
	struct ur_loop *l = t_loop();
	ASSERT_RES(ur_http_client_init(&k.c, l, NULL), 0);
	ASSERT_RES(ur_run(l, trust_main, &k, NULL), 0);
	t_loop_done(&l);
	fs_stop(&s);
	for (int i = 0; i < 3; i++) {
		ASSERT_RES(k.ret[i], 0);
		cr_assert_str_eq(k.r[i].body, "hello");
	}
	cr_assert_eq(k.r[1].stats.retries, 1,
	             "the GET was sent on the dead connection, then retried");
	cr_assert_eq(k.r[2].stats.retries, 0, "the POST's peek found the close before sending");
	cr_assert_not(k.r[2].stats.reused);
	cr_assert_eq(atomic_load(&s.conns), 3);
	cr_assert_eq(atomic_load(&s.requests), 3); /* the dead connection's server read none */
	for (int i = 0; i < 3; i++)
		ur_http_response_free(&k.r[i]);
	cr_assert_eq(t_count_fds(), fds);
}

struct idle_run {
	struct ur_http_client c;
	char url[128];
	struct ur_http_response r;
	int ret;
	struct ur_http_client_stats before, after;
};

static int idle_main(void *arg)
{
	struct idle_run *k = arg;
	k->ret = ur_http_get(&k->c, k->url, &k->r);
	ur_http_client_stats(&k->c, &k->before);
	/* nothing touches the pool from now on: only the reaper can close the connection */
	for (int i = 0; i < 5000; i++) {
		ur_http_client_stats(&k->c, &k->after);
		if (k->after.open == 0)
			break;
		ur_sleep(UR_MSEC);
	}
	ASSERT_RES(ur_http_client_close(&k->c), 0);
	return 0;
}

Test(http_client, idle_pooled_connection_closed_by_the_timer)
{
	int fds = t_count_fds();
	struct fault_server s;
	/* answers, then reads until the client closes */
	const struct fs_step *sc[] = {SCRIPT({FS_REQ}, {FS_SEND, OK_HELLO}, {FS_HOLD})};
	fs_start(&s, sc, 1);
	struct idle_run k = {0};
	fs_url(&s, "/", k.url, sizeof(k.url));
	ur_http_response_init(&k.r);
	struct ur_loop *l = t_loop();
	struct ur_http_client_opts o = {.idle_timeout_ns = 20 * UR_MSEC};
	ASSERT_RES(ur_http_client_init(&k.c, l, &o), 0);
	ASSERT_RES(ur_run(l, idle_main, &k, NULL), 0);
	t_loop_done(&l);
	ASSERT_RES(k.ret, 0);
	cr_assert_eq(k.before.open, 1);
	cr_assert_eq(k.before.idle, 1);
	cr_assert_eq(k.after.open, 0);
	cr_assert_eq(k.after.idle, 0);
	fs_stop(&s);
	ur_http_response_free(&k.r);
	cr_assert_eq(t_count_fds(), fds);
}

static ssize_t body_cb(void *arg, void *buf, size_t len)
{
	int *left = arg;
	if (*left == 0)
		return 0;
	(*left)--;
	size_t n = len < 3 ? len : 3;
	memcpy(buf, "abc", n);
	return (ssize_t)n;
}

static int collect(void *arg, const void *data, size_t len)
{
	char *dst = arg;
	strncat(dst, data, len);
	return 0;
}

Test(http_client, bodies_from_file_and_callback_to_file_and_callback)
{
	int fds = t_count_fds();
	char path[] = "/tmp/urio-http-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	unlink(path);
	cr_assert_eq(write(fd, "0123456789", 10), 10);

	struct fault_server s;
	const struct fs_step *sc[] = {SCRIPT({FS_REQ}, {FS_SEND, OK_HELLO}, {FS_LOOP})};
	fs_start(&s, sc, 1);
	struct run u;
	run_init(&u, &s, 2, "/up");
	u.rq[0].method = "PUT";
	u.rq[0].body_source = UR_HTTP_BODY_FILE;
	u.rq[0].body_fd = fd;
	u.rq[0].body_off = 2;
	u.rq[0].body_len = 6;
	u.r[0].sink = UR_HTTP_SINK_FILE;
	u.r[0].body_fd = fd;
	u.r[0].body_off = 20;
	int left = 3;
	char got[64] = "";
	u.rq[1].method = "POST";
	u.rq[1].body_source = UR_HTTP_BODY_CALLBACK;
	u.rq[1].body_len = UR_HTTP_LEN_UNKNOWN;
	u.rq[1].read_body = body_cb;
	u.rq[1].body_arg = &left;
	u.r[1].sink = UR_HTTP_SINK_CALLBACK;
	u.r[1].on_body = collect;
	u.r[1].body_arg = got;
	run_go(&u);
	fs_stop(&s);
	ASSERT_RES(u.ret[0], 0);
	ASSERT_RES(u.ret[1], 0);
	char fbuf[32] = {0};
	cr_assert_eq(pread(fd, fbuf, 5, 20), 5);
	cr_assert_str_eq(fbuf, "hello");
	cr_assert_eq(u.r[0].body_len, 5);
	cr_assert_null(u.r[0].body);
	cr_assert_str_eq(got, "hello");
	/* the chunked body the callback made, as the server read it */
	cr_assert(strstr(s.heads[1], "Transfer-Encoding: chunked\r\n"));
	cr_assert_eq(s.last_body_len, strlen("3\r\nabc\r\n3\r\nabc\r\n3\r\nabc\r\n0\r\n\r\n"));
	cr_assert_arr_eq(s.last_body, "3\r\nabc\r\n3\r\nabc\r\n3\r\nabc\r\n0\r\n\r\n",
	                 s.last_body_len);
	cr_assert(strstr(s.heads[0], "PUT /up HTTP/1.1\r\n"));
	cr_assert(strstr(s.heads[0], "Content-Length: 6\r\n"));
	close(fd);
	run_free(&u);
	cr_assert_eq(t_count_fds(), fds);
}

/* --- futures and gather -------------------------------------------------------------------- */

#define NGATHER 200

struct gather_run {
	struct ur_http_client c;
	struct ur_http_request rq[NGATHER];
	struct ur_http_response r[NGATHER];
	struct ur_future f[NGATHER];
	char url[128];
	int ret;
};

static int gather_main(void *arg)
{
	struct gather_run *g = arg;
	struct ur_future *fp[NGATHER];
	for (int i = 0; i < NGATHER; i++) {
		g->rq[i].url = g->url;
		ur_http_response_init(&g->r[i]);
		ur_future_init(&g->f[i], NULL, NULL);
		ASSERT_RES(ur_http_request_start(&g->c, &g->rq[i], &g->r[i], &g->f[i]), 0);
		fp[i] = &g->f[i];
	}
	g->ret = ur_gather(fp, NGATHER, 0);
	return 0;
}

Test(http_client, gather_many_under_the_per_host_limit)
{
	int fds = t_count_fds();
	struct fault_server s;
	const struct fs_step *sc[] = {SCRIPT({FS_REQ}, {FS_SEND, OK_HELLO}, {FS_LOOP})};
	fs_start(&s, sc, 1);
	struct gather_run *g = calloc(1, sizeof(*g));
	fs_url(&s, "/", g->url, sizeof(g->url));
	struct ur_loop *l = t_loop();
	struct ur_http_client_opts o = {.max_per_host = 4};
	ASSERT_RES(ur_http_client_init(&g->c, l, &o), 0);
	ASSERT_RES(ur_run(l, gather_main, g, NULL), 0);
	ASSERT_RES(g->ret, 0);
	for (int i = 0; i < NGATHER; i++) {
		ASSERT_RES(g->f[i].res, 0);
		cr_assert_str_eq(g->r[i].body, "hello");
		ur_http_response_free(&g->r[i]);
	}
	struct ur_http_client_stats st;
	ur_http_client_stats(&g->c, &st);
	cr_assert_leq(st.connections, 4);
	cr_assert_eq(st.requests, NGATHER);
	ASSERT_RES(ur_http_client_close(&g->c), 0);
	t_loop_done(&l);
	fs_stop(&s);
	cr_assert_leq(atomic_load(&s.conns), 4);
	cr_assert_eq(atomic_load(&s.requests), NGATHER);
	free(g);
	cr_assert_eq(t_count_fds(), fds);
}

struct cancel_run {
	struct ur_http_client c;
	struct ur_http_request rq;
	struct ur_http_response r;
	struct ur_future f;
	char url[128];
	int wait_ret;
};

static int cancel_main(void *arg)
{
	struct cancel_run *k = arg;
	k->rq.url = k->url;
	ur_http_response_init(&k->r);
	ur_future_init(&k->f, NULL, NULL);
	ASSERT_RES(ur_http_request_start(&k->c, &k->rq, &k->r, &k->f), 0);
	k->wait_ret = ur_wait_for(&k->f, 50 * UR_MSEC);
	/* the future completed: the request no longer touches rq or r */
	cr_assert(ur_future_done(&k->f));
	ur_http_response_free(&k->r);
	ASSERT_RES(ur_http_client_close(&k->c), 0);
	return 0;
}

Test(http_client, cancelling_the_future_stops_the_request)
{
	int fds = t_count_fds();
	struct fault_server s;
	const struct fs_step *sc[] = {SCRIPT({FS_REQ}, {FS_HOLD})};
	fs_start(&s, sc, 1);
	struct cancel_run *k = calloc(1, sizeof(*k));
	fs_url(&s, "/", k->url, sizeof(k->url));
	struct ur_loop *l = t_loop();
	ASSERT_RES(ur_http_client_init(&k->c, l, NULL), 0);
	ASSERT_RES(ur_run(l, cancel_main, k, NULL), 0);
	ASSERT_RES(k->wait_ret, -ETIMEDOUT);
	t_loop_done(&l);
	fs_stop(&s);
	free(k);
	cr_assert_eq(t_count_fds(), fds);
}

static int cancel_early_main(void *arg)
{
	struct cancel_run *k = arg;
	k->rq.url = k->url;
	ur_http_response_init(&k->r);
	ur_future_init(&k->f, NULL, NULL);
	ASSERT_RES(ur_http_request_start(&k->c, &k->rq, &k->r, &k->f), 0);
	ASSERT_RES(ur_cancel(&k->f), 0); /* before its task has even started */
	k->wait_ret = ur_await(&k->f);
	ur_http_response_free(&k->r);
	ASSERT_RES(ur_http_client_close(&k->c), 0);
	return 0;
}

Test(http_client, cancelling_before_the_request_starts)
{
	struct cancel_run *k = calloc(1, sizeof(*k));
	snprintf(k->url, sizeof(k->url), "http://127.0.0.1:1/");
	struct ur_loop *l = t_loop();
	ASSERT_RES(ur_http_client_init(&k->c, l, NULL), 0);
	ASSERT_RES(ur_run(l, cancel_early_main, k, NULL), 0);
	ASSERT_RES(k->wait_ret, -ECANCELED);
	t_loop_done(&l);
	free(k);
}

static int outside_main(void *arg)
{
	(void)arg;
	return 0;
}

Test(http_client, calls_outside_a_task_and_bad_urls)
{
	struct ur_loop *l = t_loop();
	struct ur_http_client c;
	struct ur_http_response r;
	ASSERT_RES(ur_http_client_init(&c, l, NULL), 0);
	ur_http_response_init(&r);
	ASSERT_RES(ur_http_get(&c, "http://127.0.0.1/", &r), UR_ENOTASK);
	struct ur_http_client_opts bad = {.reserved = {1}};
	ASSERT_RES(ur_http_client_init(&c, l, &bad), -EINVAL);
	ASSERT_RES(ur_run(l, outside_main, NULL, NULL), 0);
	ASSERT_RES(ur_http_client_close(&c), 0);
	t_loop_done(&l);
}

/* --- over TLS: a urio TLS server task on the same loop ---------------------------------------- */

enum tls_end {
	TLS_KEEP,         /* keep-alive: answer every request */
	TLS_CLOSE_NOTIFY, /* answer once, then close_notify and close */
	TLS_BARE_CLOSE,   /* answer once, then a TCP close without close_notify */
};

struct tls_case {
	struct ur_tls_cert cert;
	struct ur_tls_ctx *server_ctx, *client_ctx;
	int lfd;
	uint16_t port;
	const char *response;
	enum tls_end end;
	int conns;
	char url[128];
	const char *paths[4];
	int n;
	int ret[4];
	struct ur_http_response r[4];
};

static int tls_conn(void *arg)
{
	struct tls_case *k = arg;
	struct ur_stream s;
	int fd;
	do /* EINTR moved nothing: accept again */
		fd = ur_accept(k->lfd, NULL, NULL, 0);
	while (fd == -EINTR);
	if (fd < 0)
		return fd;
	k->conns++;
	struct ur_task *next;
	ASSERT_RES(ur_spawn(ur_current_loop(), &next, tls_conn, k, NULL), 0);
	ur_task_detach(next);
	ASSERT_RES(ur_stream_init(&s, fd, 0), 0);
	if (ur_tls_server(&s, k->server_ctx) == 0) {
		char req[4096];
		while (ur_stream_read_until(&s, "\r\n\r\n", 4, req, sizeof(req)) > 0) {
			if (ur_stream_write_all(&s, k->response, strlen(k->response)) < 0)
				break;
			if (k->end == TLS_CLOSE_NOTIFY) {
				ur_stream_shutdown(&s);
				break;
			}
			if (k->end == TLS_BARE_CLOSE) {
				shutdown(
				    s.fd,
				    SHUT_RDWR); /* the close_notify of the close cannot leave */
				break;
			}
		}
	}
	ur_stream_close(&s);
	return 0;
}

static int tls_main(void *arg)
{
	struct tls_case *k = arg;
	struct ur_task *srv;
	ASSERT_RES(ur_spawn(ur_current_loop(), &srv, tls_conn, k, NULL), 0);
	ur_task_detach(srv);
	struct ur_http_client c;
	struct ur_http_client_opts o = {.tls = k->client_ctx};
	ASSERT_RES(ur_http_client_init(&c, ur_current_loop(), &o), 0);
	for (int i = 0; i < k->n; i++) {
		snprintf(k->url, sizeof(k->url), "https://127.0.0.1:%u%s", k->port, k->paths[i]);
		ur_http_response_init(&k->r[i]);
		k->ret[i] = ur_http_get(&c, k->url, &k->r[i]);
	}
	ASSERT_RES(ur_http_client_close(&c), 0);
	return 0;
}

static void tls_run(struct tls_case *k)
{
	ASSERT_RES(ur_tls_cert_generate(&k->cert, NULL), 0);
	struct ur_tls_opts so = {.cert_pem = k->cert.cert_pem, .key_pem = k->cert.key_pem};
	struct ur_tls_opts co = {.ca_pem = k->cert.ca_pem};
	ASSERT_RES(ur_tls_ctx_new(&k->server_ctx, UR_TLS_SERVER, &so), 0);
	ASSERT_RES(ur_tls_ctx_new(&k->client_ctx, UR_TLS_CLIENT, &co), 0);
	k->lfd = t_listen_tcp(&k->port);
	struct ur_loop *l = t_loop();
	ASSERT_RES(ur_run(l, tls_main, k, NULL), 0);
	/* the server's tasks still waiting in accept/read are cancelled by the loop's teardown */
	ur_loop_free(&l);
	close(k->lfd);
	ur_tls_ctx_free(k->server_ctx);
	ur_tls_ctx_free(k->client_ctx);
	ur_tls_cert_free(&k->cert);
}

Test(http_client, https_keep_alive)
{
	int fds = t_count_fds();
	struct tls_case k = {
	    .response = OK_HELLO, .end = TLS_KEEP, .n = 3, .paths = {"/", "/2", "/3"}};
	tls_run(&k);
	for (int i = 0; i < 3; i++) {
		ASSERT_RES(k.ret[i], 0);
		cr_assert_str_eq(k.r[i].body, "hello");
		cr_assert_eq(k.r[i].stats.reused, i > 0);
		ur_http_response_free(&k.r[i]);
	}
	cr_assert_eq(k.conns, 1);
	cr_assert_eq(t_count_fds(), fds);
}

Test(http_client, https_body_until_close_needs_close_notify)
{
	struct tls_case k = {.response = "HTTP/1.1 200 OK\r\n\r\nuntil close",
	                     .end = TLS_CLOSE_NOTIFY,
	                     .n = 1,
	                     .paths = {"/"}};
	tls_run(&k);
	ASSERT_RES(k.ret[0], 0);
	cr_assert_str_eq(k.r[0].body, "until close");
	ur_http_response_free(&k.r[0]);

	/* a bare TCP close cannot be told from a truncation attack (RFC 9112 §8): an error */
	struct tls_case b = {.response = "HTTP/1.1 200 OK\r\n\r\nuntil close",
	                     .end = TLS_BARE_CLOSE,
	                     .n = 1,
	                     .paths = {"/"}};
	tls_run(&b);
	ASSERT_RES(b.ret[0], UR_EHTTP_TRUNCATED);
	ur_http_response_free(&b.r[0]);

	/* with a Content-Length the body is complete before the close: fine either way */
	struct tls_case c = {.response = OK_HELLO, .end = TLS_BARE_CLOSE, .n = 1, .paths = {"/"}};
	tls_run(&c);
	ASSERT_RES(c.ret[0], 0);
	ur_http_response_free(&c.r[0]);
}

Test(http_client, https_to_http_redirect_refused)
{
	struct tls_case k = {.response = "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/\r\n"
	                                 "Content-Length: 0\r\n\r\n",
	                     .end = TLS_KEEP,
	                     .n = 1,
	                     .paths = {"/"}};
	tls_run(&k);
	ASSERT_RES(k.ret[0], UR_EHTTP_INSECURE_REDIRECT);
	cr_assert_eq(k.r[0].status, 302);
	ur_http_response_free(&k.r[0]);
}

Test(http_client, https_untrusted_certificate_fails_verification)
{
	struct tls_case k = {.response = OK_HELLO, .end = TLS_KEEP, .n = 1, .paths = {"/"}};
	/* the client trusts a CA of its own that did not sign the server's certificate */
	struct ur_tls_cert other;
	ASSERT_RES(ur_tls_cert_generate(&other, NULL), 0);
	ASSERT_RES(ur_tls_cert_generate(&k.cert, NULL), 0);
	struct ur_tls_opts so = {.cert_pem = k.cert.cert_pem, .key_pem = k.cert.key_pem};
	struct ur_tls_opts co = {.ca_pem = other.ca_pem};
	ASSERT_RES(ur_tls_ctx_new(&k.server_ctx, UR_TLS_SERVER, &so), 0);
	ASSERT_RES(ur_tls_ctx_new(&k.client_ctx, UR_TLS_CLIENT, &co), 0);
	k.lfd = t_listen_tcp(&k.port);
	struct ur_loop *l = t_loop();
	ASSERT_RES(ur_run(l, tls_main, &k, NULL), 0);
	ur_loop_free(&l);
	close(k.lfd);
	ASSERT_RES(k.ret[0], UR_ETLSVERIFY);
	ur_http_response_free(&k.r[0]);
	ur_tls_ctx_free(k.server_ctx);
	ur_tls_ctx_free(k.client_ctx);
	ur_tls_cert_free(&k.cert);
	ur_tls_cert_free(&other);
}
