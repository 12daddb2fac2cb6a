/* SPDX-License-Identifier: MIT */
/*
 * tests/proto/http1_cases.h - the HTTP/1.1 framing table and the driver that runs one message
 * through urio's parser with bytes arriving at chosen cut points. Shared by the Criterion suite,
 * the fuzz replay and the llhttp differential check, so all three see the same cases.
 */
#ifndef UR_TEST_HTTP1_CASES_H
#define UR_TEST_HTTP1_CASES_H

#include <stdbool.h>
#include <string.h>

#include <urio.h>

#define H1_BODY_MAX 4096

/* What a message came to, comparable field by field (h1_same). */
struct h1_out {
	int err;     /* 0, an error, or UR_EHTTP_INCOMPLETE (header or body not finished) */
	int hdr_len; /* header section length when it completed */
	int status;  /* responses */
	int minor;
	size_t num_headers;
	struct ur_http1_framing f;
	size_t body_len;
	char body[H1_BODY_MAX]; /* the body, decoded when chunked; truncated at H1_BODY_MAX */
	size_t rest;            /* bytes after the message (a pipelined next one) */
};

struct h1_case {
	const char *name;
	bool request;       /* else a response */
	const char *method; /* the request's method, for responses */
	const char *in;
	int err;
	enum ur_http1_body body;
	uint64_t length;
	bool keep_alive;
	const char *want_body; /* NULL: not checked */
	size_t rest;
};

#define RESP(n, m, i, e, b, l, k, wb, r)                                                           \
	{                                                                                          \
		n, false, m, i, e, b, l, k, wb, r                                                  \
	}
#define REQ(n, i, e, b, l, k, wb, r)                                                               \
	{                                                                                          \
		n, true, NULL, i, e, b, l, k, wb, r                                                \
	}
#define B_NONE  UR_HTTP1_BODY_NONE
#define B_LEN   UR_HTTP1_BODY_LENGTH
#define B_CHUNK UR_HTTP1_BODY_CHUNKED
#define B_CLOSE UR_HTTP1_BODY_CLOSE

static const struct h1_case h1_cases[] = {
    /* responses that frame */
    RESP("cl", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 0, B_LEN, 5, true,
         "hello", 0),
    RESP("cl-0", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0, B_LEN, 0, true, "", 0),
    RESP("cl-pipelined", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1", 0, B_LEN,
         2, true, "hi", 8),
    RESP("cl-ows", "GET", "HTTP/1.1 200 OK\r\ncontent-length: \t 3 \t\r\n\r\nabc", 0, B_LEN, 3,
         true, "abc", 0),
    RESP("cl-repeated-same", "GET",
         "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 0, B_LEN, 3, true,
         "abc", 0),
    RESP("cl-list-same", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc", 0, B_LEN, 3,
         true, "abc", 0),
    RESP("chunked", "GET",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n "
         "world\r\n0\r\n\r\n",
         0, B_CHUNK, 0, true, "hello world", 0),
    RESP("chunked-trailers", "GET",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 1\r\n"
         "X-Other:two\r\n\r\n",
         0, B_CHUNK, 0, true, "abc", 0),
    RESP("chunked-hex-case", "GET",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: CHUNKED\r\n\r\n00A\r\n0123456789\r\n0\r\n\r\n", 0,
         B_CHUNK, 0, true, "0123456789", 0),
    RESP("chunked-bws-ext", "GET",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2 \t;a=\"b c\";d\r\nok\r\n0\r\n\r\n",
         0, B_CHUNK, 0, true, "ok", 0),
    RESP("chunked-pipelined", "GET",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\nHTTP", 0, B_CHUNK,
         0, true, "x", 4),
    RESP(
        "te-and-cl", "GET",
        "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n"
        "\r\n",
        0, B_CHUNK, 0, false, "x", 0),
    RESP(
        "te-gzip-chunked", "GET",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        0, B_CHUNK, 0, true, "", 0),
    RESP("te-not-chunked", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzzz", 0,
         B_CLOSE, 0, false, "zzz", 0),
    RESP("te-chunked-not-last", "GET",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nzzz", 0, B_CLOSE, 0, false,
         "zzz", 0),
    RESP("te-http10", "GET",
         "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n0\r\n\r\n",
         0, B_CHUNK, 0, false, "", 0),
    RESP("head", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 0, B_NONE, 0, true, "", 0),
    RESP("head-chunked", "HEAD", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0, B_NONE,
         0, true, "", 0),
    RESP("204", "GET", "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n", 0, B_NONE, 0, true,
         "", 0),
    RESP("304", "GET", "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", 0, B_NONE, 0,
         true, "", 0),
    RESP("100", "GET", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n", 0, B_NONE, 0, true, "",
         17),
    RESP("101", "GET", "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n\r\n", 0, B_NONE,
         0, false, "", 0),
    RESP("connect-200", "CONNECT", "HTTP/1.1 200 Connection established\r\n\r\n", 0, B_NONE, 0,
         false, "", 0),
    RESP("close-delimited", "GET", "HTTP/1.1 200 OK\r\n\r\nuntil close", 0, B_CLOSE, 0, false,
         "until close", 0),
    RESP("http10-close", "GET", "HTTP/1.0 200 OK\r\n\r\nabc", 0, B_CLOSE, 0, false, "abc", 0),
    RESP("http10-keepalive", "GET",
         "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\n!", 0, B_LEN, 1,
         true, "!", 0),
    RESP("http11-close", "GET",
         "HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 1\r\n\r\n!", 0, B_LEN,
         1, false, "!", 0),
    RESP("http12", "GET", "HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n", 0, B_LEN, 0, true, "", 0),
    RESP("no-reason", "GET", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", 0, B_LEN, 0, true, "", 0),
    RESP("empty-reason", "GET", "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", 0, B_LEN, 0, true, "",
         0),
    RESP("obs-text", "GET",
         "HTTP/1.1 200 \xc3\xa9t\xc3\xa9\r\nX: \xff\r\nContent-Length: 0\r\n\r\n", 0, B_LEN, 0,
         true, "", 0),
    RESP("empty-value", "GET", "HTTP/1.1 200 OK\r\nX-Empty:\r\nContent-Length: 0\r\n\r\n", 0, B_LEN,
         0, true, "", 0),
    RESP("status-999", "GET", "HTTP/1.1 999 Odd\r\nContent-Length: 0\r\n\r\n", 0, B_LEN, 0, true,
         "", 0),
    RESP("cl-max", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n",
         UR_EHTTP_INCOMPLETE, B_LEN, UINT64_MAX, true, NULL, 0),
    RESP("chunked-unfinished", "GET",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", UR_EHTTP_INCOMPLETE,
         B_CHUNK, 0, true, NULL, 0),

    /* responses that fail */
    RESP("cl-conflict", "GET",
         "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", UR_EHTTP_CLEN, 0,
         0, false, NULL, 0),
    RESP("cl-list-conflict", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\nabcd",
         UR_EHTTP_CLEN, 0, 0, false, NULL, 0),
    RESP("cl-negative", "GET", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", UR_EHTTP_CLEN, 0, 0,
         false, NULL, 0),
    RESP("cl-plus", "GET", "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx", UR_EHTTP_CLEN, 0, 0,
         false, NULL, 0),
    RESP("cl-hex", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n", UR_EHTTP_CLEN, 0, 0,
         false, NULL, 0),
    RESP("cl-space-inside", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n", UR_EHTTP_CLEN,
         0, 0, false, NULL, 0),
    RESP("cl-empty", "GET", "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", UR_EHTTP_CLEN, 0, 0,
         false, NULL, 0),
    RESP("cl-overflow", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n",
         UR_EHTTP_CLEN, 0, 0, false, NULL, 0),
    RESP("te-unknown", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: foo, chunked\r\n\r\n",
         UR_EHTTP_TE, 0, 0, false, NULL, 0),
    RESP("te-chunked-param", "GET",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked;\r\n\r\n3\r\nabc\r\n0\r\n\r\n", UR_EHTTP_TE,
         0, 0, false, NULL, 0),
    RESP("te-chunked-twice", "GET",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", UR_EHTTP_TE, 0,
         0, false, NULL, 0),
    RESP("te-empty", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: ,\r\n\r\n", UR_EHTTP_TE, 0, 0,
         false, NULL, 0),
    RESP("obs-fold", "GET", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n",
         UR_EHTTP_OBSFOLD, 0, 0, false, NULL, 0),
    RESP("bare-lf", "GET", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", UR_EHTTP_NEWLINE, 0, 0, false,
         NULL, 0),
    RESP("bare-lf-end", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n", UR_EHTTP_NEWLINE, 0, 0,
         false, NULL, 0),
    RESP("bare-cr", "GET", "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", UR_EHTTP_NEWLINE, 0, 0, false,
         NULL, 0),
    RESP("nul-in-value", "GET", "HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n", UR_EHTTP_HVALUE, 0, 0, false,
         NULL, 0),
    RESP("space-before-colon", "GET", "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello",
         UR_EHTTP_HNAME, 0, 0, false, NULL, 0),
    RESP("empty-name", "GET", "HTTP/1.1 200 OK\r\n: x\r\n\r\n", UR_EHTTP_HNAME, 0, 0, false, NULL,
         0),
    RESP("no-colon", "GET", "HTTP/1.1 200 OK\r\nX-No-Colon\r\n\r\n", UR_EHTTP_SYNTAX, 0, 0, false,
         NULL, 0),
    RESP("http2", "GET", "HTTP/2.0 200 OK\r\n\r\n", UR_EHTTP_VERSION, 0, 0, false, NULL, 0),
    RESP("http-lower", "GET", "http/1.1 200 OK\r\n\r\n", UR_EHTTP_SYNTAX, 0, 0, false, NULL, 0),
    RESP("status-2-digits", "GET", "HTTP/1.1 20 OK\r\n\r\n", UR_EHTTP_STATUS, 0, 0, false, NULL, 0),
    RESP("status-099", "GET", "HTTP/1.1 099 Low\r\n\r\n", UR_EHTTP_STATUS, 0, 0, false, NULL, 0),
    RESP("status-4-digits", "GET", "HTTP/1.1 2000 OK\r\n\r\n", UR_EHTTP_STATUS, 0, 0, false, NULL,
         0),
    RESP("status-two-spaces", "GET", "HTTP/1.1  200 OK\r\n\r\n", UR_EHTTP_STATUS, 0, 0, false, NULL,
         0),
    RESP("leading-crlf", "GET", "\r\nHTTP/1.1 200 OK\r\n\r\n", UR_EHTTP_SYNTAX, 0, 0, false, NULL,
         0),
    RESP("ctl-in-reason", "GET", "HTTP/1.1 200 O\x01K\r\n\r\n", UR_EHTTP_SYNTAX, 0, 0, false, NULL,
         0),
    RESP("chunk-bad-hex", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
         UR_EHTTP_CHUNK, 0, 0, false, NULL, 0),
    RESP("chunk-empty-size", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
         UR_EHTTP_CHUNK, 0, 0, false, NULL, 0),
    RESP("chunk-negative", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n",
         UR_EHTTP_CHUNK, 0, 0, false, NULL, 0),
    RESP("chunk-0x", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello",
         UR_EHTTP_CHUNK, 0, 0, false, NULL, 0),
    RESP("chunk-overflow", "GET",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n",
         UR_EHTTP_CHUNK_OVERFLOW, 0, 0, false, NULL, 0),
    RESP("chunk-no-crlf", "GET",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",
         UR_EHTTP_CHUNK, 0, 0, false, NULL, 0),
    RESP("chunk-lf-only", "GET",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", UR_EHTTP_CHUNK,
         0, 0, false, NULL, 0),
    RESP("chunk-space-then-crlf", "GET",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n",
         UR_EHTTP_CHUNK, 0, 0, false, NULL, 0),
    RESP("chunk-ctl-in-ext", "GET",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;a\x01\r\nabc\r\n0\r\n\r\n",
         UR_EHTTP_CHUNK, 0, 0, false, NULL, 0),
    RESP("trailer-fold", "GET",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b\r\n\r\n",
         UR_EHTTP_TRAILER, 0, 0, false, NULL, 0),
    RESP("trailer-no-colon", "GET",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX\r\n\r\n", UR_EHTTP_TRAILER, 0,
         0, false, NULL, 0),

    /* requests */
    REQ("get", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0, B_NONE, 0, true, "", 0),
    REQ("get-pipelined", "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\n\r\n", 0, B_NONE, 0,
        true, "", 19),
    REQ("get-http10", "GET /x?y=1 HTTP/1.0\r\n\r\n", 0, B_NONE, 0, false, "", 0),
    REQ("post-cl", "POST /p HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody", 0, B_LEN, 4, true, "body",
        0),
    REQ("post-chunked",
        "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n", 0, B_CHUNK,
        0, true, "body", 0),
    REQ("leading-crlf", "\r\n\r\nGET / HTTP/1.1\r\n\r\n", 0, B_NONE, 0, true, "", 0),
    REQ("options-star", "OPTIONS * HTTP/1.1\r\nConnection: close\r\n\r\n", 0, B_NONE, 0, false, "",
        0),
    REQ("absolute-form", "GET http://a/b HTTP/1.1\r\n\r\n", 0, B_NONE, 0, true, "", 0),
    REQ("te-cl", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n",
        UR_EHTTP_TE_CLEN, 0, 0, false, NULL, 0),
    REQ("te-not-chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", UR_EHTTP_TE, 0, 0,
        false, NULL, 0),
    REQ("te-http10", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", UR_EHTTP_TE,
        0, 0, false, NULL, 0),
    REQ("cl-conflict", "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        UR_EHTTP_CLEN, 0, 0, false, NULL, 0),
    REQ("method-bad", "G@T / HTTP/1.1\r\n\r\n", UR_EHTTP_METHOD, 0, 0, false, NULL, 0),
    REQ("method-empty", " / HTTP/1.1\r\n\r\n", UR_EHTTP_METHOD, 0, 0, false, NULL, 0),
    REQ("target-empty", "GET  HTTP/1.1\r\n\r\n", UR_EHTTP_TARGET, 0, 0, false, NULL, 0),
    REQ("target-del", "GET /\x7f HTTP/1.1\r\n\r\n", UR_EHTTP_TARGET, 0, 0, false, NULL, 0),
    REQ("target-utf8", "GET /\xc3\xa9 HTTP/1.1\r\n\r\n", UR_EHTTP_TARGET, 0, 0, false, NULL, 0),
    REQ("version-bad", "GET / HTTP/1.1x\r\n\r\n", UR_EHTTP_SYNTAX, 0, 0, false, NULL, 0),
    REQ("version-2", "GET / HTTP/2.0\r\n\r\n", UR_EHTTP_VERSION, 0, 0, false, NULL, 0),
    REQ("no-version", "GET /\r\n\r\n", UR_EHTTP_TARGET, 0, 0, false, NULL, 0),
    REQ("bare-lf", "GET / HTTP/1.1\nHost: a\n\n", UR_EHTTP_NEWLINE, 0, 0, false, NULL, 0),
    REQ("obs-fold", "GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", UR_EHTTP_OBSFOLD, 0, 0, false, NULL,
        0),
    REQ("injected-header", "GET / HTTP/1.1\r\nX: a\rInjected: b\r\n\r\n", UR_EHTTP_NEWLINE, 0, 0,
        false, NULL, 0),
};

#define H1_NCASES (sizeof(h1_cases) / sizeof(h1_cases[0]))

static inline size_t h1_len(const struct h1_case *c)
{
	/* Cases may hold NUL bytes: their length is the literal's, found by the sentinel below. */
	return strlen(c->in) + (strstr(c->name, "nul") ? 1 + strlen(c->in + strlen(c->in) + 1) : 0);
}

/*
 * Runs @buf[0..@n) as a response to @method (or a request) with bytes arriving at the ascending
 * cut points @cuts[0..@ncuts) (each in 1..n-1), then the rest. Fills @o.
 */
static inline void h1_run(bool request, const char *method, const char *buf, size_t n,
                          const size_t *cuts, size_t ncuts, struct h1_out *o)
{
	memset(o, 0, sizeof(*o));
	struct ur_http1_parser p;
	ur_http1_parser_init(&p, NULL);
	struct ur_http_header h[UR_HTTP1_MAX_FIELDS];
	struct ur_http1_response rs = {.headers = h, .max_headers = UR_HTTP1_MAX_FIELDS};
	struct ur_http1_request rq = {.headers = h, .max_headers = UR_HTTP1_MAX_FIELDS};
	size_t ci = 0;
	int ret = UR_EHTTP_INCOMPLETE;
	size_t avail = 0;
	while (ret == UR_EHTTP_INCOMPLETE) {
		avail = ci < ncuts ? cuts[ci++] : n;
		ret = request ? ur_http1_parse_request(&p, buf, avail, &rq)
		              : ur_http1_parse_response(&p, buf, avail, &rs);
		if (avail == n)
			break;
	}
	if (ret < 0) {
		o->err = ret;
		return;
	}
	o->hdr_len = ret;
	if (request) {
		o->minor = rq.minor_version;
		o->num_headers = rq.num_headers;
		ret = ur_http1_request_framing(&rq, &o->f);
	} else {
		o->minor = rs.minor_version;
		o->status = rs.status;
		o->num_headers = rs.num_headers;
		ret = ur_http1_response_framing(&rs, method, &o->f);
	}
	if (ret < 0) {
		o->err = ret;
		return;
	}
	size_t off = (size_t)o->hdr_len;
	switch (o->f.body) {
	case UR_HTTP1_BODY_NONE:
		break;
	case UR_HTTP1_BODY_LENGTH: {
		if (n - off < o->f.length) {
			o->err = UR_EHTTP_INCOMPLETE;
			return;
		}
		size_t l = (size_t)o->f.length;
		o->body_len = l;
		memcpy(o->body, buf + off, l < H1_BODY_MAX ? l : H1_BODY_MAX);
		off += l;
		break;
	}
	case UR_HTTP1_BODY_CLOSE: {
		size_t l = n - off;
		o->body_len = l;
		memcpy(o->body, buf + off, l < H1_BODY_MAX ? l : H1_BODY_MAX);
		off = n;
		break;
	}
	case UR_HTTP1_BODY_CHUNKED: {
		struct ur_http1_chunked d;
		ur_http1_chunked_init(&d, NULL);
		while (!ur_http1_chunked_done(&d)) {
			while (ci < ncuts && cuts[ci] <= off)
				ci++;
			size_t lim = ci < ncuts ? cuts[ci] : n;
			if (off == n) {
				o->err = UR_EHTTP_INCOMPLETE;
				return;
			}
			const char *data;
			size_t dl;
			ssize_t k = ur_http1_chunked_decode(&d, buf + off, lim - off, &data, &dl);
			if (k < 0) {
				o->err = (int)k;
				return;
			}
			if (dl) {
				if (o->body_len + dl <= H1_BODY_MAX)
					memcpy(o->body + o->body_len, data, dl);
				o->body_len += dl;
			}
			off += (size_t)k;
		}
		break;
	}
	}
	o->rest = n - off;
}

/* Field-by-field equality of two outcomes; writes the first difference into @why. */
static inline bool h1_same(const struct h1_out *a, const struct h1_out *b, const char **why)
{
	if (a->err != b->err)
		return *why = "err", false;
	if (a->err && a->err != UR_EHTTP_INCOMPLETE)
		return true;
	if (a->hdr_len != b->hdr_len || a->status != b->status || a->minor != b->minor ||
	    a->num_headers != b->num_headers)
		return *why = "header", false;
	if (a->f.body != b->f.body || a->f.length != b->f.length ||
	    a->f.keep_alive != b->f.keep_alive || a->f.codings != b->f.codings)
		return *why = "framing", false;
	if (a->err)
		return true;
	if (a->body_len != b->body_len || a->rest != b->rest)
		return *why = "body length", false;
	size_t l = a->body_len < H1_BODY_MAX ? a->body_len : H1_BODY_MAX;
	if (memcmp(a->body, b->body, l))
		return *why = "body bytes", false;
	return true;
}

#endif
