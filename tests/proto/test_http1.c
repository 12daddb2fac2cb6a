/* SPDX-License-Identifier: MIT */
/*
 * tests/proto/test_http1.c - the HTTP/1.1 parsers: the framing table whole, split at every point,
 * byte by byte, truncated at every length and placed against a guard page; limits at their edges;
 * header lookup and the injection check.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "http1_cases.h"

TestSuite(http1, .timeout = 120);

static void check_expected(const struct h1_case *c, const struct h1_out *o)
{
	cr_assert_eq(o->err, c->err, "%s: err %d (%s), want %d (%s)", c->name, o->err,
	             ur_strerror_name(o->err), c->err, ur_strerror_name(c->err));
	if (c->err && c->err != UR_EHTTP_INCOMPLETE)
		return;
	cr_assert_eq(o->f.body, c->body, "%s: body kind %d, want %d", c->name, o->f.body, c->body);
	cr_assert_eq(o->f.length, c->length, "%s: length", c->name);
	cr_assert_eq(o->f.keep_alive, c->keep_alive, "%s: keep_alive %d", c->name, o->f.keep_alive);
	if (c->err)
		return;
	if (c->want_body) {
		cr_assert_eq(o->body_len, strlen(c->want_body), "%s: body length %zu", c->name,
		             o->body_len);
		cr_assert_arr_eq(o->body, c->want_body, o->body_len, "%s: body bytes", c->name);
	}
	cr_assert_eq(o->rest, c->rest, "%s: rest %zu, want %zu", c->name, o->rest, c->rest);
}

Test(http1, table_whole)
{
	for (size_t i = 0; i < H1_NCASES; i++) {
		const struct h1_case *c = &h1_cases[i];
		struct h1_out o;
		h1_run(c->request, c->method, c->in, h1_len(c), NULL, 0, &o);
		check_expected(c, &o);
	}
}

Test(http1, table_every_split_point_same_result)
{
	for (size_t i = 0; i < H1_NCASES; i++) {
		const struct h1_case *c = &h1_cases[i];
		size_t n = h1_len(c);
		static struct h1_out whole, split;
		h1_run(c->request, c->method, c->in, n, NULL, 0, &whole);
		for (size_t s = 1; s < n; s++) {
			const char *why = "";
			h1_run(c->request, c->method, c->in, n, &s, 1, &split);
			cr_assert(h1_same(&whole, &split, &why), "%s split at %zu: %s differs",
			          c->name, s, why);
		}
		/* Two cuts: every pair would be O(n^2) runs per case; every pair 7 bytes apart. */
		for (size_t s = 1; s + 7 < n; s++) {
			size_t cuts[2] = {s, s + 7};
			const char *why = "";
			h1_run(c->request, c->method, c->in, n, cuts, 2, &split);
			cr_assert(h1_same(&whole, &split, &why), "%s cut at %zu,%zu: %s", c->name,
			          s, s + 7, why);
		}
	}
}

Test(http1, table_byte_by_byte)
{
	static size_t cuts[4096];
	for (size_t i = 0; i < H1_NCASES; i++) {
		const struct h1_case *c = &h1_cases[i];
		size_t n = h1_len(c);
		cr_assert_lt(n, 4096);
		for (size_t k = 1; k < n; k++)
			cuts[k - 1] = k;
		static struct h1_out whole, drip;
		const char *why = "";
		h1_run(c->request, c->method, c->in, n, NULL, 0, &whole);
		h1_run(c->request, c->method, c->in, n, cuts, n ? n - 1 : 0, &drip);
		cr_assert(h1_same(&whole, &drip, &why), "%s byte by byte: %s differs", c->name,
		          why);
	}
}

/*
 * A truncated message is never mistaken for a whole one: every prefix of a message that frames
 * itself gives "need more"; a prefix of a failing one gives "need more" or the same error.
 */
static void check_prefix(const struct h1_case *c, const struct h1_out *whole, size_t k,
                         const struct h1_out *o)
{
	size_t n = h1_len(c);
	if (whole->err && whole->err != UR_EHTTP_INCOMPLETE) {
		cr_assert(o->err == UR_EHTTP_INCOMPLETE || o->err == whole->err,
		          "%s prefix %zu: %s, whole gives %s", c->name, k, ur_strerror_name(o->err),
		          ur_strerror_name(whole->err));
		return;
	}
	bool header_only = whole->f.body == UR_HTTP1_BODY_CLOSE;
	size_t end = header_only ? (size_t)whole->hdr_len : n - whole->rest;
	if (k < end)
		cr_assert_eq(o->err, UR_EHTTP_INCOMPLETE, "%s prefix %zu/%zu: %s, want need-more",
		             c->name, k, n, ur_strerror_name(o->err));
}

Test(http1, table_every_truncated_prefix_needs_more)
{
	for (size_t i = 0; i < H1_NCASES; i++) {
		const struct h1_case *c = &h1_cases[i];
		size_t n = h1_len(c);
		static struct h1_out whole, o;
		h1_run(c->request, c->method, c->in, n, NULL, 0, &whole);
		for (size_t k = 0; k < n; k++) {
			h1_run(c->request, c->method, c->in, k, NULL, 0, &o);
			check_prefix(c, &whole, k, &o);
		}
	}
}

/* Maps two pages per 4 KiB of input plus one PROT_NONE page, returning where @n bytes end at it. */
struct guard {
	char *map;
	size_t len, usable;
};

static void guard_init(struct guard *g, size_t max)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	g->usable = (max + pg - 1) / pg * pg;
	g->len = g->usable + pg;
	g->map = mmap(NULL, g->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(g->map, MAP_FAILED);
	cr_assert_eq(mprotect(g->map + g->usable, pg, PROT_NONE), 0);
}

static const char *guard_put(struct guard *g, const char *s, size_t n)
{
	char *p = g->map + g->usable - n;
	memcpy(p, s, n);
	return p;
}

Test(http1, table_against_guard_page)
{
	struct guard g;
	guard_init(&g, 8192);
	for (size_t i = 0; i < H1_NCASES; i++) {
		const struct h1_case *c = &h1_cases[i];
		size_t n = h1_len(c);
		static struct h1_out whole, o;
		h1_run(c->request, c->method, c->in, n, NULL, 0, &whole);
		const char *b = guard_put(&g, c->in, n);
		h1_run(c->request, c->method, b, n, NULL, 0, &o);
		const char *why = "";
		cr_assert(h1_same(&whole, &o, &why), "%s at guard: %s", c->name, why);
		for (size_t k = 0; k < n; k++) {
			b = guard_put(&g, c->in, k);
			h1_run(c->request, c->method, b, k, NULL, 0, &o);
			check_prefix(c, &whole, k, &o);
		}
	}
	munmap(g.map, g.len);
}

Test(http1, response_fields_point_into_buffer)
{
	const char *m = "HTTP/1.1 404 Not Found\r\nServer: t\r\nSet-Cookie: a=1\r\n"
	                "set-cookie:b=2 \r\nContent-Length: 0\r\n\r\n";
	struct ur_http1_parser p;
	ur_http1_parser_init(&p, NULL);
	struct ur_http_header h[8];
	struct ur_http1_response r = {.headers = h, .max_headers = 8};
	int n = ur_http1_parse_response(&p, m, strlen(m), &r);
	cr_assert_eq(n, (int)strlen(m));
	cr_assert_eq(r.status, 404);
	cr_assert_eq(r.minor_version, 1);
	cr_assert_eq(r.reason, m + 13);
	cr_assert_eq(r.reason_len, 9);
	cr_assert_eq(r.num_headers, 4);
	cr_assert_eq(h[0].name, m + 24);
	cr_assert_eq(h[0].name_len, 6);
	cr_assert_eq(h[0].value_len, 1);
	cr_assert_eq(h[0].value[0], 't');
	ssize_t i = ur_http_header_find(h, 4, "SET-COOKIE", 0);
	cr_assert_eq(i, 1);
	cr_assert_arr_eq(h[i].value, "a=1", 3);
	i = ur_http_header_find(h, 4, "set-cookie", (size_t)i + 1);
	cr_assert_eq(i, 2);
	cr_assert_eq(h[i].value_len, 3, "trailing OWS trimmed");
	cr_assert_arr_eq(h[i].value, "b=2", 3);
	cr_assert_eq(ur_http_header_find(h, 4, "set-cookie", 3), -1);
	cr_assert_eq(ur_http_header_find(h, 4, "set-cooki", 0), -1);
	cr_assert(!ur_http_header_has_token(h, 4, "connection", "close"));
}

Test(http1, has_token_splits_lists)
{
	struct ur_http_header h[] = {
	    {"Connection", 10, "Upgrade,  Keep-Alive ,", 22},
	    {"connection", 10, "x-close", 7},
	};
	cr_assert(ur_http_header_has_token(h, 2, "Connection", "keep-alive"));
	cr_assert(ur_http_header_has_token(h, 2, "Connection", "upgrade"));
	cr_assert(!ur_http_header_has_token(h, 2, "Connection", "close"));
	cr_assert(ur_http_header_has_token(h, 2, "Connection", "X-CLOSE"));
}

Test(http1, buffer_may_move_between_calls)
{
	const char *m = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n";
	size_t n = strlen(m);
	char *b1 = malloc(n), *b2 = malloc(n);
	memcpy(b1, m, n);
	memcpy(b2, m, n);
	struct ur_http1_parser p;
	ur_http1_parser_init(&p, NULL);
	struct ur_http_header h[4];
	struct ur_http1_response r = {.headers = h, .max_headers = 4};
	cr_assert_eq(ur_http1_parse_response(&p, b1, 25, &r), UR_EHTTP_INCOMPLETE);
	memset(b1, 'x', n); /* the old buffer is gone */
	cr_assert_eq(ur_http1_parse_response(&p, b2, n, &r), (int)n);
	cr_assert_eq(h[0].name, b2 + 17);
	cr_assert_eq(h[1].value, b2 + 26);
	free(b1);
	free(b2);
}

/* A response with one field line "X: vvv" of exactly @field bytes and @count such fields. */
static char *make_resp(size_t status_len, size_t field, size_t count, size_t *n)
{
	size_t cap = status_len + 2 + count * (field + 2) + 2;
	char *s = malloc(cap + 1);
	size_t o = 0;
	memcpy(s, "HTTP/1.1 200 ", 13);
	memset(s + 13, 'r', status_len - 13);
	o = status_len;
	memcpy(s + o, "\r\n", 2);
	o += 2;
	for (size_t i = 0; i < count; i++) {
		memcpy(s + o, "X: ", 3);
		for (size_t k = 3; k < field; k++) /* not memset: gcc 12 -fsanitize=undefined -O2
		                                    * warns of bounds it cannot reach */
			s[o + k] = 'v';
		o += field;
		memcpy(s + o, "\r\n", 2);
		o += 2;
	}
	memcpy(s + o, "\r\n", 2);
	o += 2;
	*n = o;
	return s;
}

static int parse_with(const struct ur_http1_limits *lim, const char *s, size_t n, size_t arr)
{
	struct ur_http1_parser p;
	ur_http1_parser_init(&p, lim);
	struct ur_http_header *h = calloc(arr ? arr : 1, sizeof(*h));
	struct ur_http1_response r = {.headers = h, .max_headers = arr};
	int ret = ur_http1_parse_response(&p, s, n, &r);
	/* Bytes dripping in give the same verdict. */
	struct ur_http1_parser q;
	ur_http1_parser_init(&q, lim);
	int inc = UR_EHTTP_INCOMPLETE;
	for (size_t k = 1; k <= n && inc == UR_EHTTP_INCOMPLETE; k += 97)
		inc = ur_http1_parse_response(&q, s, k, &r);
	if (inc == UR_EHTTP_INCOMPLETE)
		inc = ur_http1_parse_response(&q, s, n, &r);
	cr_assert_eq(inc, ret, "incremental %s vs whole %s", ur_strerror_name(inc),
	             ur_strerror_name(ret));
	free(h);
	return ret;
}

Test(http1, limits_default_line_and_field)
{
	size_t n;
	char *s = make_resp(UR_HTTP1_MAX_LINE, 10, 1, &n);
	cr_assert_eq(parse_with(NULL, s, n, 8), (int)n);
	free(s);
	s = make_resp(UR_HTTP1_MAX_LINE + 1, 10, 1, &n);
	cr_assert_eq(parse_with(NULL, s, n, 8), UR_EHTTP_LINE_TOO_LONG);
	free(s);
	s = make_resp(20, UR_HTTP1_MAX_FIELD, 1, &n);
	cr_assert_eq(parse_with(NULL, s, n, 8), (int)n);
	free(s);
	s = make_resp(20, UR_HTTP1_MAX_FIELD + 1, 1, &n);
	cr_assert_eq(parse_with(NULL, s, n, 8), UR_EHTTP_FIELD_TOO_LONG);
	free(s);
}

Test(http1, limits_field_count)
{
	size_t n;
	char *s = make_resp(20, 5, UR_HTTP1_MAX_FIELDS, &n);
	cr_assert_eq(parse_with(NULL, s, n, UR_HTTP1_MAX_FIELDS), (int)n);
	cr_assert_eq(parse_with(NULL, s, n, UR_HTTP1_MAX_FIELDS - 1), UR_EHTTP_TOO_MANY_FIELDS,
	             "the caller's array bounds the count too");
	free(s);
	s = make_resp(20, 5, UR_HTTP1_MAX_FIELDS + 1, &n);
	cr_assert_eq(parse_with(NULL, s, n, 1000), UR_EHTTP_TOO_MANY_FIELDS);
	free(s);
	struct ur_http1_limits one = {.max_fields = 1};
	s = make_resp(20, 5, 1, &n);
	cr_assert_eq(parse_with(&one, s, n, 4), (int)n);
	cr_assert_eq(parse_with(&one, s, n, 0), UR_EHTTP_TOO_MANY_FIELDS);
	free(s);
	s = make_resp(20, 5, 2, &n);
	cr_assert_eq(parse_with(&one, s, n, 4), UR_EHTTP_TOO_MANY_FIELDS);
	free(s);
}

Test(http1, limits_total_header_bytes)
{
	size_t n;
	/* 300 KiB default: 100 fields of 3000 bytes pass the count but not the total. */
	char *s = make_resp(20, 4000, 100, &n);
	cr_assert_gt(n, UR_HTTP1_MAX_HEADER_BYTES);
	cr_assert_eq(parse_with(NULL, s, n, 128), UR_EHTTP_HEADER_TOO_BIG);
	free(s);
	s = make_resp(20, 10, 3, &n); /* 22 + 3 * 12 + 2 = 60 bytes */
	cr_assert_eq(n, 60);
	struct ur_http1_limits exact = {.max_header_bytes = 60}, less = {.max_header_bytes = 59};
	cr_assert_eq(parse_with(&exact, s, n, 8), 60);
	cr_assert_eq(parse_with(&less, s, n, 8), UR_EHTTP_HEADER_TOO_BIG);
	struct ur_http1_limits line1 = {.max_line = 1}, total1 = {.max_header_bytes = 1};
	cr_assert_eq(parse_with(&line1, s, n, 8), UR_EHTTP_LINE_TOO_LONG);
	cr_assert_eq(parse_with(&total1, s, n, 8), UR_EHTTP_HEADER_TOO_BIG);
	free(s);
}

/*
 * The rule the parser's line scan must keep, written the slow way: byte by byte, in this order
 * at each position, past the section's limit, a bare LF, CR (then its LF), past the line's limit.
 * Only the delimiting is modelled; the inputs below have valid content.
 */
static int ref_parse(const struct ur_http1_limits *l, const char *s, size_t len)
{
	size_t i = 0;
	bool start = true;
	for (;;) {
		size_t limit = start ? l->max_line : l->max_field;
		int limit_err = start ? UR_EHTTP_LINE_TOO_LONG : UR_EHTTP_FIELD_TOO_LONG;
		size_t j = i;
		for (;; j++) {
			if (j == len)
				return UR_EHTTP_INCOMPLETE;
			if (j >= l->max_header_bytes)
				return UR_EHTTP_HEADER_TOO_BIG;
			if (s[j] == '\n')
				return UR_EHTTP_NEWLINE;
			if (s[j] == '\r') {
				if (j + 1 == len)
					return UR_EHTTP_INCOMPLETE;
				if (j + 1 >= l->max_header_bytes)
					return UR_EHTTP_HEADER_TOO_BIG;
				if (s[j + 1] != '\n')
					return UR_EHTTP_NEWLINE;
				break;
			}
			if (j - i >= limit)
				return limit_err;
		}
		if (!start && j == i)
			return (int)(j + 2);
		start = false;
		i = j + 2;
	}
}

/* Every line, field and section limit from 1 to past the input, whole and byte by byte. */
Test(http1, limits_every_edge_match_the_byte_rule)
{
	static const char *const in[] = {
	    "HTTP/1.1 200 OK\r\nA: b\r\nContent-Length: 0\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nA: bc\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nA: b\nC: d\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nA: b\rC: d\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nAb: c\r\n\r",
	    /* a bare LF wins over what else is wrong with its line */
	    "HTTP/1.1 200 OK\r\nA\x01b\nC: d\r\n\r\n",
	    "HTTP/1.1 2\n0 OK\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nA: \x01\nb\r\n\r\n",
	};
	struct ur_http_header h[8];
	for (size_t k = 0; k < sizeof(in) / sizeof(in[0]); k++) {
		size_t n = strlen(in[k]);
		for (uint32_t line = 1; line <= 18; line++)
			for (uint32_t field = 1; field <= 20; field++)
				for (uint32_t total = 1; total <= n + 2; total++) {
					struct ur_http1_limits l = {.max_line = line,
					                            .max_field = field,
					                            .max_header_bytes = total};
					int want = ref_parse(&l, in[k], n);
					struct ur_http1_parser p;
					struct ur_http1_response r = {.headers = h,
					                              .max_headers = 8};
					ur_http1_parser_init(&p, &l);
					int whole = ur_http1_parse_response(&p, in[k], n, &r);
					cr_assert_eq(whole, want,
					             "input %zu, limits %u/%u/%u: %s, want %s", k,
					             line, field, total, ur_strerror_name(whole),
					             ur_strerror_name(want));
					ur_http1_parser_init(&p, &l);
					int drip = UR_EHTTP_INCOMPLETE;
					for (size_t m = 1; m <= n && drip == UR_EHTTP_INCOMPLETE;
					     m++)
						drip = ur_http1_parse_response(&p, in[k], m, &r);
					cr_assert_eq(drip, want,
					             "input %zu byte by byte, limits %u/%u/%u", k,
					             line, field, total);
				}
	}
}

/* Every byte value inside a field name: only RFC 9110's tchar pass. */
Test(http1, field_name_every_byte)
{
	struct ur_http_header h[2];
	for (int b = 0; b < 256; b++) {
		if (b == '\r' || b == '\n' || b == ':')
			continue; /* they end the line or the name */
		char msg[64];
		int n = snprintf(msg, sizeof(msg), "HTTP/1.1 200 OK\r\nX%cY: v\r\n\r\n", b);
		struct ur_http1_parser p;
		struct ur_http1_response r = {.headers = h, .max_headers = 2};
		ur_http1_parser_init(&p, NULL);
		int ret = ur_http1_parse_response(&p, msg, (size_t)n, &r);
		bool tchar = (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') ||
		             (b >= '0' && b <= '9') || (b && strchr("!#$%&'*+-.^_`|~", b));
		cr_assert_eq(ret, tchar ? n : UR_EHTTP_HNAME, "byte 0x%02x: %s", b,
		             ur_strerror_name(ret));
	}
}

/* Every byte value at every place of values of 1 to 24 bytes (checked a word at a time). */
Test(http1, field_value_every_byte_every_place)
{
	struct ur_http_header h[2];
	char msg[64];
	for (size_t len = 1; len <= 24; len++)
		for (size_t at = 0; at < len; at++)
			for (int b = 0; b < 256; b++) {
				if (b == '\r' || b == '\n')
					continue; /* those end the line: the line tests' business */
				int n = snprintf(msg, sizeof(msg), "HTTP/1.1 200 OK\r\nX: ");
				memset(msg + n, 'v', len);
				msg[n + at] = (char)b;
				memcpy(msg + n + len, "\r\n\r\n", 4);
				size_t total = (size_t)n + len + 4;
				struct ur_http1_parser p;
				struct ur_http1_response r = {.headers = h, .max_headers = 2};
				ur_http1_parser_init(&p, NULL);
				int ret = ur_http1_parse_response(&p, msg, total, &r);
				bool bad = (b < 0x20 && b != '\t') || b == 0x7f;
				cr_assert_eq(ret, bad ? UR_EHTTP_HVALUE : (int)total,
				             "byte 0x%02x at %zu of %zu: %s", b, at, len,
				             ur_strerror_name(ret));
			}
}

/* A bare LF in a line that is also one field too many is still a bare LF. */
Test(http1, bare_lf_before_the_field_count)
{
	const char *msg = "HTTP/1.1 200 OK\r\nA: b\r\nC: d\ne\r\n\r\n";
	struct ur_http_header h[1];
	struct ur_http1_response r = {.headers = h, .max_headers = 1};
	struct ur_http1_parser p;
	ur_http1_parser_init(&p, NULL);
	cr_assert_eq(ur_http1_parse_response(&p, msg, strlen(msg), &r), UR_EHTTP_NEWLINE);
	ur_http1_parser_init(&p, NULL);
	cr_assert_eq(ur_http1_parse_response(&p, msg, 30, &r), UR_EHTTP_NEWLINE,
	             "reported as soon as the LF is there");
}

/* A section read whole and one read in pieces (its buffer moved between calls) fill the same. */
Test(http1, fields_point_into_the_last_buffer)
{
	const char *msg = "HTTP/1.1 204 No Content\r\nServer: x\r\nA-B: c d\r\n\r\n";
	size_t n = strlen(msg);
	struct ur_http_header h[4];
	struct ur_http1_response r = {.headers = h, .max_headers = 4};
	struct ur_http1_parser p;
	ur_http1_parser_init(&p, NULL);
	cr_assert_eq(ur_http1_parse_response(&p, msg, n, &r), (int)n);
	cr_assert_eq(r.num_headers, 2);
	cr_assert_eq(r.status, 204);
	cr_assert(h[1].name == msg + 36 && h[1].name_len == 3 && h[1].value == msg + 41 &&
	          h[1].value_len == 3);
	char *a = strdup(msg), *b = strdup(msg);
	a[30] = 0; /* the first call sees 30 bytes of a, the second all of b */
	ur_http1_parser_init(&p, NULL);
	memset(h, 0, sizeof(h));
	cr_assert_eq(ur_http1_parse_response(&p, a, 30, &r), UR_EHTTP_INCOMPLETE);
	free(a);
	cr_assert_eq(ur_http1_parse_response(&p, b, n, &r), (int)n);
	cr_assert_eq(r.num_headers, 2);
	cr_assert(r.reason == b + 13 && r.reason_len == 10);
	cr_assert(h[0].name == b + 25 && h[0].name_len == 6 && h[0].value == b + 33 &&
	          h[0].value_len == 1);
	cr_assert(h[1].name == b + 36 && h[1].value == b + 41 && h[1].value_len == 3);
	free(b);
}

static ssize_t decode_all(const struct ur_http1_limits *lim, const char *s, size_t *body)
{
	struct ur_http1_chunked d;
	ur_http1_chunked_init(&d, lim);
	size_t off = 0, n = strlen(s);
	*body = 0;
	while (off < n && !ur_http1_chunked_done(&d)) {
		const char *data;
		size_t dl;
		ssize_t k = ur_http1_chunked_decode(&d, s + off, n - off, &data, &dl);
		if (k < 0)
			return k;
		*body += dl;
		off += (size_t)k;
	}
	return ur_http1_chunked_done(&d) ? (ssize_t)off : UR_EHTTP_INCOMPLETE;
}

Test(http1, chunked_limits)
{
	size_t b;
	struct ur_http1_limits lim = {.max_chunk_line = 8, .max_trailer_bytes = 10};
	cr_assert_eq(decode_all(&lim, "1;abcdef\r\nx\r\n0\r\n\r\n", &b), 18, "8-byte line");
	cr_assert_eq(b, 1);
	cr_assert_eq(decode_all(&lim, "1;abcdefg\r\nx\r\n0\r\n\r\n", &b), UR_EHTTP_CHUNK_EXT);
	cr_assert_eq(decode_all(&lim, "000000001\r\nx\r\n0\r\n\r\n", &b), UR_EHTTP_CHUNK_EXT,
	             "leading zeros count against the line too");
	cr_assert_eq(decode_all(&lim, "0\r\nA: 12345\r\n\r\n", &b), UR_EHTTP_TRAILER);
	cr_assert_eq(decode_all(&lim, "0\r\nA: 1234\r\n\r\n", &b), UR_EHTTP_TRAILER);
	cr_assert_eq(decode_all(&lim, "0\r\nA: 12\r\n\r\n", &b), 12);
	cr_assert_eq(decode_all(NULL, "ffffffffffffffff\r\n", &b), UR_EHTTP_INCOMPLETE,
	             "2^64 - 1 is a size");
	cr_assert_eq(decode_all(NULL, "10000000000000000\r\n", &b), UR_EHTTP_CHUNK_OVERFLOW);
	cr_assert_eq(decode_all(NULL, "0\r\n\r\n", &b), 5);
	cr_assert_eq(decode_all(NULL, "0\r\n\n", &b), UR_EHTTP_TRAILER);
}

Test(http1, chunked_stops_at_each_data_run)
{
	const char *s = "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nNEXT";
	struct ur_http1_chunked d;
	ur_http1_chunked_init(&d, NULL);
	const char *data;
	size_t dl;
	ssize_t k = ur_http1_chunked_decode(&d, s, strlen(s), &data, &dl);
	cr_assert_eq(k, 6);
	cr_assert_eq(data, s + 3);
	cr_assert_eq(dl, 3);
	ssize_t k2 = ur_http1_chunked_decode(&d, s + k, strlen(s) - (size_t)k, &data, &dl);
	cr_assert_eq(k2, 7);
	cr_assert_eq(data, s + 11);
	cr_assert_eq(dl, 2);
	ssize_t k3 =
	    ur_http1_chunked_decode(&d, s + k + k2, strlen(s) - (size_t)(k + k2), &data, &dl);
	cr_assert_eq(k3, 7);
	cr_assert_eq(dl, 0);
	cr_assert(ur_http1_chunked_done(&d));
	cr_assert_eq(ur_http1_chunked_decode(&d, "NEXT", 4, &data, &dl), 0, "nothing past the end");
}

Test(http1, request_fields)
{
	const char *m = "\r\nPOST /a?b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi";
	struct ur_http1_parser p;
	ur_http1_parser_init(&p, NULL);
	struct ur_http_header h[4];
	struct ur_http1_request r = {.headers = h, .max_headers = 4};
	int n = ur_http1_parse_request(&p, m, strlen(m), &r);
	cr_assert_eq(n, (int)strlen(m) - 2);
	cr_assert_eq(r.method, m + 2);
	cr_assert_eq(r.method_len, 4);
	cr_assert_arr_eq(r.target, "/a?b", 4);
	cr_assert_eq(r.target_len, 4);
	cr_assert_eq(r.num_headers, 2);
	struct ur_http1_framing f;
	cr_assert_eq(ur_http1_request_framing(&r, &f), 0);
	cr_assert_eq(f.body, UR_HTTP1_BODY_LENGTH);
	cr_assert_eq(f.length, 2);
}

Test(http1, header_check_rejects_injection)
{
	cr_assert_eq(ur_http_header_check("X-Ok", 4, "a b\tc\xff", 6), 0);
	cr_assert_eq(ur_http_header_check("X-Empty", 7, "", 0), 0);
	cr_assert_eq(ur_http_header_check("X", 1, "a\r\nEvil: 1", 10), UR_EHTTP_HVALUE);
	cr_assert_eq(ur_http_header_check("X", 1, "a\nb", 3), UR_EHTTP_HVALUE);
	cr_assert_eq(ur_http_header_check("X", 1, "a\rb", 3), UR_EHTTP_HVALUE);
	cr_assert_eq(ur_http_header_check("X", 1, "a\0b", 3), UR_EHTTP_HVALUE);
	cr_assert_eq(ur_http_header_check("X", 1, "a\x7f", 2), UR_EHTTP_HVALUE);
	cr_assert_eq(ur_http_header_check("X", 1, " a", 2), UR_EHTTP_HVALUE);
	cr_assert_eq(ur_http_header_check("X", 1, "a\t", 2), UR_EHTTP_HVALUE);
	cr_assert_eq(ur_http_header_check("", 0, "a", 1), UR_EHTTP_HNAME);
	cr_assert_eq(ur_http_header_check("X Y", 3, "a", 1), UR_EHTTP_HNAME);
	cr_assert_eq(ur_http_header_check("X:", 2, "a", 1), UR_EHTTP_HNAME);
	cr_assert_eq(ur_http_header_check("X\r\nY", 4, "a", 1), UR_EHTTP_HNAME);
	cr_assert_eq(ur_http_header_check("X\0", 2, "a", 1), UR_EHTTP_HNAME);
}

Test(http1, errors_have_names)
{
	for (int c = UR_EHTTP_INCOMPLETE; c >= UR_EHTTP_TARGET; c--) {
		cr_assert_str_neq(ur_strerror_name(c), "UNKNOWN", "code %d", c);
		cr_assert_str_neq(ur_strerror(c), "unknown error", "code %d", c);
	}
}
