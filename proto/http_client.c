/* SPDX-License-Identifier: MIT */
/*
 * proto/http_client.c - the HTTP/1.1 client: one request, its redirects and its retry.
 *
 * A request runs in the caller's task (ur_http_request) or in a task of its own that completes
 * the caller's future (ur_http_request_start). Each exchange takes a connection from the pool
 * (proto/http_pool.c), writes the head and body, parses the response head with urio/http1.h,
 * lets ur_http1_response_framing() decide how the body ends, and returns the connection to the
 * pool only if the response ended exactly there. docs/http.md has the decisions.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "http_priv.h"

#define HEAD_MIN       1024
#define BODY_CHUNK     (64 * 1024)
#define MAX_1XX        8           /* interim responses skipped before giving up */
#define REDIRECT_DRAIN (64 * 1024) /* a redirect body up to this is read to keep the conn */

/*
 * One request's state, on the heap. Only the fields before `url` are zeroed: the URL (8.5 KiB)
 * is written by the parser, and clearing it for every request showed in profiles.
 */
struct xreq {
	struct ur_http_client *c;
	const struct ur_http_request *rq;
	struct ur_http_response *r;
	const char *method; /* current: a 303 turns POST into GET */
	bool send_body;     /* current: dropped with the method change */
	bool cross_origin;  /* a redirect left the first origin: credentials are dropped */
	bool head_only;     /* HEAD */
	bool got_byte;      /* the current exchange received a response byte */
	uint32_t flags;
	uint64_t deadline; /* the whole request, ur_now_ns clock; UINT64_MAX for none */
	uint64_t started;
	struct http_conn *conn;
	struct http_decoder *dec;
	uint64_t sink_max; /* cap of what reaches the sink */
	bool discard;      /* a redirect's body: dropped */
	char *head;
	size_t head_len, head_cap;
	struct ur_http_header *hbuf; /* parser's field array */
	size_t hmax;
	struct xreq *spare; /* in the client's list of spares */
	struct ur_url url;  /* must stay last: see above */
};

/*
 * Finished requests' state is kept (up to SPARE_MAX per client) with its head and field
 * buffers, so a request on a warm client allocates none of its three blocks (about 12 KiB).
 */
#define SPARE_MAX 64

static struct xreq *xreq_get(struct ur_http_client *c)
{
	struct xreq *x = c->spare_;
	if (!x) {
		x = malloc(sizeof(*x));
		if (x)
			memset(x, 0, offsetof(struct xreq, url));
		return x;
	}
	c->spare_ = x->spare;
	c->nspare_--;
	char *head = x->head;
	size_t head_cap = x->head_cap;
	struct ur_http_header *hbuf = x->hbuf;
	size_t hmax = x->hmax;
	memset(x, 0, offsetof(struct xreq, url));
	x->head = head;
	x->head_cap = head_cap;
	x->hbuf = hbuf;
	x->hmax = hmax;
	return x;
}

static void xreq_free(struct xreq *x)
{
	free(x->hbuf);
	free(x->head);
	free(x);
}

static void xreq_put(struct ur_http_client *c, struct xreq *x)
{
	if (c->nspare_ >= SPARE_MAX || c->closing_) {
		xreq_free(x);
		return;
	}
	x->spare = c->spare_;
	c->spare_ = x;
	c->nspare_++;
}

/* --- small helpers ------------------------------------------------------------------------- */

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* Bounds the connection's next wait by the read (idle) timeout and the request's deadline. */
static void arm(struct xreq *x)
{
	uint64_t t = x->c->o_.read_timeout_ns;
	uint64_t now = ur_loop_time_ns(); /* the turn's time: arming needs no clock read */
	uint64_t d = t == UR_HTTP_NO_TIMEOUT || t >= UINT64_MAX - now ? UINT64_MAX : now + t;
	d = min_u64(d, x->deadline);
	ur_stream_set_deadline(&x->conn->s, d == UINT64_MAX ? UR_NO_DEADLINE : d);
}

static bool is_token_char(unsigned char ch)
{
	return ch > 0x20 && ch < 0x7f && !strchr("\"(),/:;<=>?@[\\]{}", ch);
}

static bool method_ok(const char *m)
{
	if (!*m)
		return false;
	for (; *m; m++)
		if (!is_token_char((unsigned char)*m))
			return false;
	return true;
}

static bool name_is(const struct ur_http_header *h, const char *name)
{
	return h->name_len == strlen(name) && strncasecmp(h->name, name, h->name_len) == 0;
}

static bool user_has(const struct ur_http_request *rq, const char *name)
{
	for (size_t i = 0; i < rq->num_headers; i++)
		if (name_is(&rq->headers[i], name))
			return true;
	return false;
}

/* Credentials that must not follow a redirect to another origin. */
static bool is_credential(const struct ur_http_header *h)
{
	return name_is(h, "authorization") || name_is(h, "cookie") ||
	       name_is(h, "proxy-authorization");
}

static bool idempotent(const char *m)
{
	return !strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "PUT") ||
	       !strcmp(m, "DELETE") || !strcmp(m, "OPTIONS") || !strcmp(m, "TRACE");
}

static bool body_replayable(const struct ur_http_request *rq)
{
	return rq->body_source != UR_HTTP_BODY_CALLBACK;
}

/* --- the request head -------------------------------------------------------------------- */

static int head_add(struct xreq *x, const char *s, size_t n)
{
	if (x->head_len + n + 1 > x->head_cap) {
		size_t cap = x->head_cap ? x->head_cap : HEAD_MIN;
		while (cap < x->head_len + n + 1)
			cap *= 2;
		char *b = realloc(x->head, cap);
		if (!b)
			return -ENOMEM;
		x->head = b;
		x->head_cap = cap;
	}
	memcpy(x->head + x->head_len, s, n);
	x->head_len += n;
	return 0;
}

static int head_str(struct xreq *x, const char *s)
{
	return head_add(x, s, strlen(s));
}

static int head_field(struct xreq *x, const char *name, const char *value, size_t vlen)
{
	int r = head_str(x, name);
	if (!r)
		r = head_add(x, ": ", 2);
	if (!r)
		r = head_add(x, value, vlen);
	if (!r)
		r = head_add(x, "\r\n", 2);
	return r;
}

/* Basic credentials from the URL's userinfo (percent-decoded), as curl and aiohttp send them. */
static int head_userinfo(struct xreq *x)
{
	const struct ur_url *u = &x->url;
	char plain[512], enc[700];
	size_t n = 0;
	const char *parts[2] = {ur_url_part(u, u->user), ur_url_part(u, u->password)};
	size_t lens[2] = {u->user.len, u->password.len};
	for (int i = 0; i < 2; i++) {
		if (i == 1)
			plain[n++] = ':';
		for (size_t j = 0; j < lens[i]; j++) {
			if (n >= sizeof(plain) - 1)
				return UR_EURL_TOOLONG;
			char ch = parts[i][j];
			if (ch == '%' && j + 2 < lens[i]) {
				char hex[3] = {parts[i][j + 1], parts[i][j + 2], 0};
				ch = (char)strtol(hex, NULL, 16);
				j += 2;
			}
			plain[n++] = ch;
		}
	}
	int m = EVP_EncodeBlock((unsigned char *)enc + 6, (const unsigned char *)plain, (int)n);
	memcpy(enc, "Basic ", 6);
	return head_field(x, "Authorization", enc, (size_t)m + 6);
}

static int build_head(struct xreq *x, uint64_t body_len, bool chunked)
{
	const struct ur_http_request *rq = x->rq;
	const struct ur_http_client *c = x->c;
	const struct ur_url *u = &x->url;
	char num[32];
	int r = 0;

	x->head_len = 0;
	r |= head_str(x, x->method);
	r |= head_add(x, " ", 1);
	r |= head_add(x, ur_url_part(u, u->target), u->target.len);
	r |= head_str(x, " HTTP/1.1\r\n");
	if (!user_has(rq, "host"))
		r |= head_field(x, "Host", ur_url_part(u, u->authority), u->authority.len);
	const char *ua = c->o_.user_agent ? c->o_.user_agent : UR_HTTP_USER_AGENT_DEFAULT;
	if (*ua && !user_has(rq, "user-agent"))
		r |= head_field(x, "User-Agent", ua, strlen(ua));
	if (!user_has(rq, "accept"))
		r |= head_str(x, "Accept: */*\r\n");
	if ((x->flags & UR_HTTP_COMPRESSED) && !user_has(rq, "accept-encoding"))
		r |= head_str(x, "Accept-Encoding: gzip, deflate\r\n");
	if ((x->flags & UR_HTTP_NO_KEEPALIVE) && !user_has(rq, "connection"))
		r |= head_str(x, "Connection: close\r\n");
	if ((u->flags & UR_URL_USERINFO) && !user_has(rq, "authorization") && r == 0)
		r |= head_userinfo(x);
	for (size_t i = 0; i < rq->num_headers; i++) {
		const struct ur_http_header *h = &rq->headers[i];
		if (x->cross_origin && is_credential(h))
			continue;
		r |= head_add(x, h->name, h->name_len);
		r |= head_add(x, ": ", 2);
		r |= head_add(x, h->value, h->value_len);
		r |= head_add(x, "\r\n", 2);
	}
	if (chunked) {
		r |= head_str(x, "Transfer-Encoding: chunked\r\n");
	} else if (x->send_body || !strcmp(x->method, "POST") || !strcmp(x->method, "PUT") ||
	           !strcmp(x->method, "PATCH")) {
		/* methods that define a body say its length even when empty (nginx wants it: 411)
		 */
		snprintf(num, sizeof(num), "%llu",
		         (unsigned long long)(x->send_body ? body_len : 0));
		r |= head_field(x, "Content-Length", num, strlen(num));
	}
	r |= head_add(x, "\r\n", 2);
	return r ? -ENOMEM : 0;
}

/* --- sending ------------------------------------------------------------------------------- */

static int send_request(struct xreq *x)
{
	const struct ur_http_request *rq = x->rq;
	struct ur_stream *s = &x->conn->s;
	bool body = x->send_body && rq->body_source != UR_HTTP_BODY_NONE;
	bool chunked =
	    body && rq->body_source == UR_HTTP_BODY_CALLBACK && rq->body_len == UR_HTTP_LEN_UNKNOWN;
	int r = build_head(x, body ? rq->body_len : 0, chunked);
	if (r < 0)
		return r;
	arm(x);
	if (!body || rq->body_source == UR_HTTP_BODY_MEMORY) {
		struct iovec v[2] = {{x->head, x->head_len},
		                     {(void *)rq->body, body ? rq->body_len : 0}};
		ssize_t n = ur_stream_writev_all(s, v, body ? 2 : 1);
		if (n < 0)
			return (int)n;
		x->r->stats.bytes_sent += (uint64_t)n;
		return 0;
	}
	ssize_t n = ur_stream_write_all(s, x->head, x->head_len);
	if (n < 0)
		return (int)n;
	x->r->stats.bytes_sent += (uint64_t)n;

	char *buf = malloc(BODY_CHUNK + 32);
	if (!buf)
		return -ENOMEM;
	uint64_t left = rq->body_len, off = rq->body_off;
	r = 0;
	while (chunked || left > 0) {
		size_t want = chunked || left > BODY_CHUNK ? BODY_CHUNK : (size_t)left;
		char *dst = buf + 16; /* room for a chunk-size line in front */
		ssize_t got;
		if (rq->body_source == UR_HTTP_BODY_FILE)
			got = ur_read(rq->body_fd, dst, want, off);
		else
			got = rq->read_body(rq->body_arg, dst, want);
		if (got < 0) {
			r = (int)got;
			break;
		}
		if (got == 0) {
			if (!chunked)
				r = UR_EHTTP_BODY_SOURCE;
			break;
		}
		if ((size_t)got > want) {
			r = -EINVAL;
			break;
		}
		off += (uint64_t)got;
		if (!chunked)
			left -= (uint64_t)got;
		arm(x);
		struct iovec v[3];
		unsigned nv = 0;
		char line[24];
		if (chunked) {
			int ln = snprintf(line, sizeof(line), "%zx\r\n", (size_t)got);
			v[nv++] = (struct iovec){line, (size_t)ln};
		}
		v[nv++] = (struct iovec){dst, (size_t)got};
		if (chunked)
			v[nv++] = (struct iovec){"\r\n", 2};
		n = ur_stream_writev_all(s, v, nv);
		if (n < 0) {
			r = (int)n;
			break;
		}
		x->r->stats.bytes_sent += (uint64_t)n;
	}
	free(buf);
	if (r == 0 && chunked) {
		arm(x);
		n = ur_stream_write_all(s, "0\r\n\r\n", 5);
		if (n < 0)
			return (int)n;
		x->r->stats.bytes_sent += (uint64_t)n;
	}
	return r;
}

/* --- the response head ------------------------------------------------------------------- */

/* Copies the head's status, reason and fields into memory the response owns. */
static int keep_head(struct xreq *x, const struct ur_http1_response *pr)
{
	struct ur_http_response *r = x->r;
	size_t strings = pr->reason_len + 1;
	for (size_t i = 0; i < pr->num_headers; i++)
		strings += pr->headers[i].name_len + pr->headers[i].value_len + 2;
	size_t arr = pr->num_headers * sizeof(struct ur_http_header);
	size_t url_len = strlen(x->url.href);
	/* the URL this head came from rides in the same block: it is the final URL when this is
	   the final response (one allocation per response, not two) */
	char *m = malloc(arr + strings + url_len + 1);
	if (!m)
		return -ENOMEM;
	struct ur_http_header *h = (struct ur_http_header *)(void *)m;
	char *p = m + arr;
	for (size_t i = 0; i < pr->num_headers; i++) {
		const struct ur_http_header *s = &pr->headers[i];
		h[i].name = p;
		h[i].name_len = s->name_len;
		memcpy(p, s->name, s->name_len);
		p += s->name_len;
		*p++ = 0;
		h[i].value = p;
		h[i].value_len = s->value_len;
		memcpy(p, s->value, s->value_len);
		p += s->value_len;
		*p++ = 0;
	}
	memcpy(p, pr->reason, pr->reason_len);
	p[pr->reason_len] = 0;
	memcpy(p + pr->reason_len + 1, x->url.href, url_len + 1);
	free(r->mem_);
	r->mem_ = m;
	r->headers = h;
	r->num_headers = pr->num_headers;
	r->reason = p;
	r->url = p + pr->reason_len + 1;
	r->status = pr->status;
	r->minor_version = pr->minor_version;
	return 0;
}

/* The conditions under which a failed exchange may be retried on a fresh connection. */
static bool retryable_error(int e)
{
	return e == UR_EHTTP_NO_RESPONSE || e == -ECONNRESET || e == -EPIPE || e == -ECONNABORTED ||
	       e == UR_ETLSTRUNCATED || e == UR_ETLS;
}

/*
 * Reads and parses the response head, skipping interim responses. Returns the framing's
 * verdict in *@fr, with the head consumed from the stream and kept in the response.
 */
static int read_head(struct xreq *x, struct ur_http1_framing *fr)
{
	struct ur_stream *s = &x->conn->s;
	struct ur_http1_parser p;
	struct ur_http1_response pr = {.headers = x->hbuf, .max_headers = x->hmax};
	uint64_t t0 = ur_loop_time_ns();
	int interim = 0;

	ur_http1_parser_init(&p, &x->c->lim_);
	for (;;) {
		size_t len;
		const char *buf = ur_stream_buffered(s, &len);
		int n = len ? ur_http1_parse_response(&p, buf, len, &pr) : UR_EHTTP_INCOMPLETE;
		if (n == UR_EHTTP_INCOMPLETE) {
			arm(x);
			ssize_t got = ur_stream_fill(s);
			if (got == 0 || got == UR_ETLSTRUNCATED)
				return x->got_byte ? UR_EHTTP_TRUNCATED : UR_EHTTP_NO_RESPONSE;
			if (got == UR_ELIMIT)
				return UR_EHTTP_HEADER_TOO_BIG;
			if (got < 0)
				return (int)got;
			if (!x->got_byte) {
				x->got_byte = true;
				x->r->stats.ttfb_ns = ur_loop_time_ns() - t0;
			}
			continue;
		}
		if (n < 0)
			return n;
		x->r->stats.bytes_received += (uint64_t)n;
		if (pr.status >= 100 && pr.status < 200 && pr.status != 101) {
			if (++interim > MAX_1XX)
				return UR_EHTTP_TOO_MANY_1XX;
			ur_stream_consume(s, (size_t)n);
			ur_http1_parser_init(&p, &x->c->lim_);
			continue;
		}
		int r = ur_http1_response_framing(&pr, x->method, fr);
		if (r == 0)
			r = keep_head(x, &pr);
		ur_stream_consume(s, (size_t)n);
		return r;
	}
}

/* --- the response body ------------------------------------------------------------------- */

static int sink_raw(void *arg, const void *data, size_t len)
{
	struct xreq *x = arg;
	struct ur_http_response *r = x->r;
	if (x->discard || len == 0)
		return 0;
	if (len > x->sink_max - r->body_len)
		return UR_EHTTP_BODY_TOO_BIG;
	switch (r->sink) {
	case UR_HTTP_SINK_MEMORY:
		if (r->body_len + len + 1 > r->body_cap_) {
			size_t cap = r->body_cap_ ? r->body_cap_ : 16384;
			while (cap < r->body_len + len + 1)
				cap *= 2;
			char *b = realloc(r->body, cap);
			if (!b)
				return -ENOMEM;
			r->body = b;
			r->body_cap_ = cap;
		}
		memcpy(r->body + r->body_len, data, len);
		r->body[r->body_len + len] = 0;
		break;
	case UR_HTTP_SINK_FILE: {
		uint64_t off =
		    r->body_off == UR_OFF_CURRENT ? UR_OFF_CURRENT : r->body_off + r->body_len;
		ssize_t n = ur_write_all(r->body_fd, data, len, off);
		if (n < 0)
			return (int)n;
		break;
	}
	case UR_HTTP_SINK_CALLBACK: {
		int n = r->on_body(r->body_arg, data, len);
		if (n < 0)
			return n;
		break;
	}
	case UR_HTTP_SINK_DISCARD:
		break;
	}
	r->body_len += len;
	return 0;
}

static int deliver(struct xreq *x, const char *data, size_t len)
{
	if (x->dec)
		return ur__http_decoder_feed(x->dec, data, len, sink_raw, x);
	return sink_raw(x, data, len);
}

/* One more read for the body; 0 at end of stream. */
static ssize_t body_fill(struct xreq *x)
{
	arm(x);
	return ur_stream_fill(&x->conn->s);
}

/* Drops @n bytes the body has taken from the stream, counting them. */
static void eat(struct xreq *x, size_t n)
{
	ur_stream_consume(&x->conn->s, n);
	x->r->stats.bytes_received += n;
}

/*
 * Turns the raw trailer section @t[0..@len) (field lines checked by the chunked decoder, then
 * the final CRLF) into the response's trailer fields, in one block the response owns.
 */
static int keep_trailers(struct ur_http_response *r, const char *t, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i + 1 < len; i++)
		if (t[i] == '\r' && t[i + 1] == '\n')
			n++;
	if (n <= 1)
		return 0; /* only the final CRLF */
	n--;
	char *m = malloc(n * sizeof(struct ur_http_header) + len);
	if (!m)
		return -ENOMEM;
	struct ur_http_header *h = (struct ur_http_header *)(void *)m;
	char *p = m + n * sizeof(*h);
	size_t k = 0, i = 0;
	while (k < n) {
		const char *line = t + i, *cr = memchr(line, '\r', len - i);
		const char *colon = memchr(line, ':', (size_t)(cr - line));
		const char *v = colon + 1, *ve = cr;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		h[k].name = p;
		h[k].name_len = (size_t)(colon - line);
		memcpy(p, line, h[k].name_len);
		p += h[k].name_len;
		*p++ = 0;
		h[k].value = p;
		h[k].value_len = (size_t)(ve - v);
		memcpy(p, v, h[k].value_len);
		p += h[k].value_len;
		*p++ = 0;
		k++;
		i = (size_t)(cr - t) + 2;
	}
	free(r->tmem_);
	r->tmem_ = m;
	r->trailers = h;
	r->num_trailers = n;
	return 0;
}

/* Chooses the decoder for the response's codings; none when decoding is off or not needed. */
static int pick_decoder(struct xreq *x, const struct ur_http1_framing *fr)
{
	struct ur_http_response *r = x->r;
	enum http_coding coding = 0;
	if (fr->codings) {
		/* a transfer coding besides chunked: it must come off whatever the options say */
		if (fr->codings == UR_HTTP1_TE_GZIP)
			coding = HTTP_CODING_GZIP;
		else if (fr->codings == UR_HTTP1_TE_DEFLATE)
			coding = HTTP_CODING_DEFLATE;
		else
			return UR_EHTTP_CODING;
	}
	const char *ce = ur_http_response_header(r, "content-encoding");
	if (ce && (x->flags & UR_HTTP_COMPRESSED) && !x->discard) {
		enum http_coding cc = 0;
		if (!strcasecmp(ce, "gzip") || !strcasecmp(ce, "x-gzip"))
			cc = HTTP_CODING_GZIP;
		else if (!strcasecmp(ce, "deflate"))
			cc = HTTP_CODING_DEFLATE;
		/* anything else (br, a list of codings) is passed on as it came, decoded false */
		if (cc && coding)
			return UR_EHTTP_CODING;
		if (cc) {
			coding = cc;
			r->decoded = true;
		}
	}
	if (!coding)
		return 0;
	return ur__http_decoder_new(&x->dec, coding, x->sink_max);
}

/*
 * Reads the body as @fr frames it, into the sink. Returns 0 and sets *@exact when the response
 * ended exactly where its framing says (so the connection may carry another).
 */
static int read_body(struct xreq *x, const struct ur_http1_framing *fr, bool *exact)
{
	struct ur_stream *s = &x->conn->s;
	int r = 0;
	*exact = false;

	if (fr->body == UR_HTTP1_BODY_NONE) {
		*exact = true;
		return 0;
	}
	if (fr->body == UR_HTTP1_BODY_LENGTH) {
		uint64_t left = fr->length;
		if (!x->dec && !x->discard && left > x->sink_max - x->r->body_len)
			return UR_EHTTP_BODY_TOO_BIG; /* known too big: fail before reading it */
		if (x->r->sink == UR_HTTP_SINK_MEMORY && !x->dec && !x->discard && left &&
		    !x->r->body) {
			x->r->body = malloc((size_t)left + 1);
			if (!x->r->body)
				return -ENOMEM;
			x->r->body_cap_ = (size_t)left + 1;
		}
		while (left > 0) {
			size_t len;
			const char *buf = ur_stream_buffered(s, &len);
			if (len == 0) {
				ssize_t n = body_fill(x);
				if (n == 0 || n == UR_ETLSTRUNCATED)
					return UR_EHTTP_TRUNCATED;
				if (n < 0)
					return (int)n;
				continue;
			}
			size_t take = len < left ? len : (size_t)left;
			r = deliver(x, buf, take);
			eat(x, take);
			if (r < 0)
				return r;
			left -= take;
		}
	} else if (fr->body == UR_HTTP1_BODY_CHUNKED) {
		struct ur_http1_chunked d;
		char *tr = NULL; /* the trailer section as it arrives (bounded by the decoder) */
		size_t trlen = 0;
		ur_http1_chunked_init(&d, &x->c->lim_);
		while (!ur_http1_chunked_done(&d)) {
			size_t len;
			const char *buf = ur_stream_buffered(s, &len);
			if (len == 0) {
				ssize_t n = body_fill(x);
				if (n == 0 || n == UR_ETLSTRUNCATED)
					return UR_EHTTP_TRUNCATED;
				if (n < 0)
					return (int)n;
				continue;
			}
			const char *data;
			size_t dlen;
			uint32_t t0 = ur_http1_chunked_trailer_len(&d);
			ssize_t used = ur_http1_chunked_decode(&d, buf, len, &data, &dlen);
			if (used < 0) {
				free(tr);
				return (int)used;
			}
			size_t tn = ur_http1_chunked_trailer_len(&d) - t0;
			if (tn && !x->discard) {
				char *b = realloc(tr, trlen + tn);
				if (!b) {
					free(tr);
					return -ENOMEM;
				}
				tr = b;
				memcpy(tr + trlen, buf + used - tn, tn);
				trlen += tn;
			}
			if (dlen)
				r = deliver(x, data, dlen);
			eat(x, (size_t)used);
			if (r < 0) {
				free(tr);
				return r;
			}
		}
		r = tr ? keep_trailers(x->r, tr, trlen) : 0;
		free(tr);
		if (r < 0)
			return r;
	} else { /* UR_HTTP1_BODY_CLOSE: until the server closes; over TLS only at close_notify */
		for (;;) {
			size_t len;
			const char *buf = ur_stream_buffered(s, &len);
			if (len) {
				r = deliver(x, buf, len);
				eat(x, len);
				if (r < 0)
					return r;
			}
			ssize_t n = body_fill(x);
			if (n == 0)
				break;
			if (n == UR_ETLSTRUNCATED)
				return UR_EHTTP_TRUNCATED;
			if (n < 0)
				return (int)n;
		}
		if (x->dec)
			return ur__http_decoder_finish(x->dec);
		return 0; /* never reusable */
	}
	if (x->dec) {
		r = ur__http_decoder_finish(x->dec);
		if (r < 0)
			return r;
	}
	size_t extra;
	ur_stream_buffered(s, &extra);
	*exact = extra == 0; /* bytes nobody asked for: the connection is not trusted again */
	return 0;
}

/* --- one exchange, its retry, redirects ------------------------------------------------------ */

/* Resets what one exchange fills in, keeping the stats of the whole request. */
static void reset_response(struct xreq *x)
{
	struct ur_http_response *r = x->r;
	free(r->mem_);
	r->mem_ = NULL;
	r->headers = NULL;
	r->num_headers = 0;
	r->reason = NULL;
	r->url = NULL;
	free(r->tmem_);
	r->tmem_ = NULL;
	r->trailers = NULL;
	r->num_trailers = 0;
	r->status = 0;
	r->minor_version = 0;
	r->decoded = false;
	if (r->sink == UR_HTTP_SINK_MEMORY) {
		free(r->body);
		r->body = NULL;
		r->body_cap_ = 0;
	}
	r->body_len = 0;
	ur__http_decoder_free(x->dec);
	x->dec = NULL;
}

static bool is_redirect(int status)
{
	return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* Whether this response will be followed (and its body dropped). Decided before the body. */
static bool will_follow(struct xreq *x, uint32_t max_redirects)
{
	const struct ur_http_response *r = x->r;
	if ((x->flags & UR_HTTP_NO_REDIRECTS) || !is_redirect(r->status))
		return false;
	if (!ur_http_response_header(r, "location"))
		return false; /* returned as it is, like curl and aiohttp */
	if ((r->status == 307 || r->status == 308) && x->send_body && !body_replayable(x->rq))
		return false;
	(void)max_redirects;
	return true;
}

/*
 * One exchange on one connection. *@retry is set when it failed on a pooled connection before
 * any response byte and may be sent again on a fresh one.
 */
static int exchange(struct xreq *x, bool fresh, bool *retry, bool *follow, uint32_t max_redirects)
{
	struct ur_http_response *r = x->r;
	bool reused = false;
	uint64_t cns = 0;
	*retry = false;
	*follow = false;
	x->got_byte = false;

	bool may_retry = !fresh && r->stats.retries == 0 && idempotent(x->method) &&
	                 (!x->send_body || body_replayable(x->rq));
	int ret = ur__http_pool_get(x->c, &x->url, fresh, may_retry, x->deadline, &x->conn, &reused,
	                            &cns);
	r->stats.connect_ns += cns;
	if (ret < 0)
		return ret;
	if (!reused)
		r->stats.connections++;
	r->stats.reused = reused;
	x->c->st_.requests++;
	if (reused)
		x->c->st_.reused++;
	x->conn->uses++;

	reset_response(x);
	struct ur_http1_framing fr = {0};
	bool exact = false;
	ret = send_request(x);
	if (ret == 0)
		ret = read_head(x, &fr);
	if (ret < 0) {
		*retry = reused && !x->got_byte && retryable_error(ret);
		goto out;
	}
	*follow = will_follow(x, max_redirects);
	x->discard = *follow;
	x->sink_max = r->max_body ? r->max_body : x->c->o_.max_body;
	if (x->discard && fr.body != UR_HTTP1_BODY_NONE &&
	    (fr.body != UR_HTTP1_BODY_LENGTH || fr.length > REDIRECT_DRAIN)) {
		goto out; /* a redirect with a long or unframed body: drop the connection, not read
		           */
	}
	ret = pick_decoder(x, &fr);
	if (ret == 0)
		ret = read_body(x, &fr, &exact);
out:
	ur__http_pool_put(x->c, x->conn,
	                  ret == 0 && exact && fr.keep_alive && !(x->flags & UR_HTTP_NO_KEEPALIVE));
	x->conn = NULL;
	return ret;
}

/* Sets up the next URL, method and body for a redirect of the current response. */
static int redirect(struct xreq *x)
{
	const char *loc = ur_http_response_header(x->r, "location");
	struct ur_url *next = malloc(sizeof(*next)); /* redirects are rare: not kept per request */
	if (!next)
		return -ENOMEM;
	int r = ur_url_resolve(next, &x->url, loc, strlen(loc));
	if (r < 0)
		r = UR_EHTTP_REDIRECT_LOCATION;
	else if (x->url.scheme == UR_URL_HTTPS && next->scheme == UR_URL_HTTP)
		r = UR_EHTTP_INSECURE_REDIRECT;
	if (r < 0) {
		free(next);
		return r;
	}
	if (!ur_url_same_origin(&x->url, next))
		x->cross_origin = true;
	int st = x->r->status;
	/* RFC 9110 §15.4: 303 makes any method but HEAD a GET; 301/302 do so for POST, as every
	   browser and client does */
	if ((st == 303 && strcmp(x->method, "HEAD")) ||
	    ((st == 301 || st == 302) && !strcmp(x->method, "POST"))) {
		x->method = "GET";
		x->send_body = false;
	}
	memcpy(&x->url, next, sizeof(x->url));
	free(next);
	return 0;
}

static int check_request(const struct ur_http_request *rq)
{
	if (!rq->url)
		return -EINVAL;
	if (rq->method && !method_ok(rq->method))
		return UR_EHTTP_METHOD;
	for (size_t i = 0; i < rq->num_headers; i++) {
		const struct ur_http_header *h = &rq->headers[i];
		int r = ur_http_header_check(h->name, h->name_len, h->value, h->value_len);
		if (r < 0)
			return r;
		if (name_is(h, "content-length") || name_is(h, "transfer-encoding"))
			return UR_EHTTP_RESERVED;
	}
	switch (rq->body_source) {
	case UR_HTTP_BODY_NONE:
		return 0;
	case UR_HTTP_BODY_MEMORY:
		return rq->body || rq->body_len == 0 ? 0 : -EINVAL;
	case UR_HTTP_BODY_FILE:
		return rq->body_fd >= 0 && rq->body_len != UR_HTTP_LEN_UNKNOWN ? 0 : -EINVAL;
	case UR_HTTP_BODY_CALLBACK:
		return rq->read_body ? 0 : -EINVAL;
	}
	return -EINVAL;
}

static int run_request(struct xreq *x)
{
	struct ur_http_client *c = x->c;
	const struct ur_http_request *rq = x->rq;
	struct ur_http_response *r = x->r;
	uint32_t max_redirects = rq->max_redirects ? rq->max_redirects : c->o_.max_redirects;

	int ret = ur_url_parse(&x->url, rq->url, strlen(rq->url));
	if (ret < 0)
		return ret;
	if (!x->hbuf) { /* a spare keeps its array: the limit is the client's, fixed */
		x->hmax = c->lim_.max_fields;
		x->hbuf = malloc(x->hmax * sizeof(*x->hbuf));
		if (!x->hbuf)
			return -ENOMEM;
	}

	for (;;) {
		bool retry, follow;
		ret = exchange(x, false, &retry, &follow, max_redirects);
		if (ret < 0 && retry && r->stats.retries == 0 && idempotent(x->method) &&
		    (!x->send_body || body_replayable(rq))) {
			r->stats.retries++;
			c->st_.retries++;
			ret = exchange(x, true, &retry, &follow, max_redirects);
		}
		if (ret < 0 || !follow)
			break;
		if (r->stats.redirects >= max_redirects) {
			ret = UR_EHTTP_TOO_MANY_REDIRECTS;
			break;
		}
		ret = redirect(x);
		if (ret < 0)
			break;
		r->stats.redirects++;
	}
	return ret;
}

int ur_http_request(struct ur_http_client *c, const struct ur_http_request *rq,
                    struct ur_http_response *r)
{
	struct ur_loop *loop = ur_current_loop();
	if (!loop)
		return UR_ENOTASK;
	if (loop != c->loop_)
		return UR_EWRONGLOOP;
	int ret = check_request(rq);
	if (ret < 0)
		return ret;
	if (c->closing_)
		return UR_EHTTP_CLIENT_CLOSED;

	struct xreq *x = xreq_get(c);
	if (!x)
		return -ENOMEM;
	uint64_t now = ur_loop_time_ns(); /* stats and the deadline: the turn's time is enough */
	uint64_t total = rq->timeout_ns ? rq->timeout_ns : c->o_.total_timeout_ns;
	x->c = c;
	x->rq = rq;
	x->r = r;
	x->method = rq->method ? rq->method : "GET";
	x->send_body = rq->body_source != UR_HTTP_BODY_NONE;
	x->flags = c->o_.flags | rq->flags;
	x->started = now;
	x->deadline =
	    total == UR_HTTP_NO_TIMEOUT || total >= UINT64_MAX - now ? UINT64_MAX : now + total;
	memset(&r->stats, 0, sizeof(r->stats));
	c->active_++;

	ret = run_request(x);

	if (ret == 0 && r->sink == UR_HTTP_SINK_MEMORY && !r->body) {
		r->body = calloc(1, 1); /* an empty body is "", never NULL */
		if (!r->body)
			ret = -ENOMEM;
	}
	r->stats.total_ns = ur_loop_time_ns() - now;
	c->active_--;
	ur__http_decoder_free(x->dec);
	xreq_put(c, x);
	return ret;
}

int ur_http_get(struct ur_http_client *c, const char *url, struct ur_http_response *r)
{
	struct ur_http_request rq = {.url = url};
	return ur_http_request(c, &rq, r);
}

/* --- the future-returning start -------------------------------------------------------------- */

struct http_call {
	struct ur_http_client *c;
	const struct ur_http_request *rq;
	struct ur_http_response *r;
	struct ur_future *f;
	struct ur_task *task;
	struct ur_cancel_hook hook;
	bool started, cancelled;
};

static void call_cancel(struct ur_future *f, void *arg)
{
	struct http_call *k = arg;
	(void)f;
	k->cancelled = true;
	/* a task cancelled before it starts never runs, and would never resolve @f: that one
	   runs and resolves at once instead */
	if (k->started)
		ur_task_cancel(k->task);
}

static int call_main(void *arg)
{
	struct http_call *k = arg;
	k->started = true;
	int ret = k->cancelled ? -ECANCELED : ur_http_request(k->c, k->rq, k->r);
	/* the future completes only now that nothing of the caller's is touched any more */
	ur_future_resolve(k->f, ret);
	free(k);
	return 0;
}

int ur_http_request_start(struct ur_http_client *c, const struct ur_http_request *rq,
                          struct ur_http_response *r, struct ur_future *f)
{
	if (ur_future_state(f) == UR_FUTURE_PENDING)
		return -EBUSY;
	struct http_call *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	*k = (struct http_call){.c = c, .rq = rq, .r = r, .f = f};
	k->hook = (struct ur_cancel_hook){.fn = call_cancel, .arg = k};
	int ret = ur_spawn(c->loop_, &k->task, call_main, k, NULL);
	if (ret < 0) {
		free(k);
		return ret;
	}
	ret = ur_future_begin_hooked(c->loop_, f, &k->hook);
	if (ret < 0) {
		/* cannot happen after a successful spawn (same loop, @f checked); stay safe anyway
		 */
		ur_task_cancel(k->task);
		ur_task_detach(k->task);
		return ret;
	}
	ur_task_detach(k->task);
	return 0;
}

/* --- client and response ------------------------------------------------------------------- */

int ur_http_client_init(struct ur_http_client *c, struct ur_loop *loop,
                        const struct ur_http_client_opts *opts)
{
	struct ur_http_client_opts o = {0};
	if (!c || !loop)
		return -EINVAL;
	if (opts) {
		o = *opts;
		for (size_t i = 0; i < sizeof(o.reserved) / sizeof(o.reserved[0]); i++)
			if (o.reserved[i])
				return -EINVAL;
		/* it goes on the wire as is: a CR or LF in it would add fields */
		int r = o.user_agent ? ur_http_header_check("User-Agent", 10, o.user_agent,
		                                            strlen(o.user_agent))
		                     : 0;
		if (r < 0)
			return r;
	}
	if (!o.max_per_host)
		o.max_per_host = UR_HTTP_MAX_PER_HOST_DEFAULT;
	if (!o.max_total)
		o.max_total = UR_HTTP_MAX_TOTAL_DEFAULT;
	if (!o.idle_timeout_ns)
		o.idle_timeout_ns = UR_HTTP_IDLE_TIMEOUT_DEFAULT;
	if (!o.connect_timeout_ns)
		o.connect_timeout_ns = UR_HTTP_CONNECT_TIMEOUT_DEFAULT;
	if (!o.total_timeout_ns)
		o.total_timeout_ns = UR_HTTP_NO_TIMEOUT;
	if (!o.read_timeout_ns)
		o.read_timeout_ns = UR_HTTP_READ_TIMEOUT_DEFAULT;
	if (!o.max_redirects)
		o.max_redirects = UR_HTTP_MAX_REDIRECTS_DEFAULT;
	if (!o.max_body)
		o.max_body = UR_HTTP_MAX_BODY_DEFAULT;
	*c = (struct ur_http_client){.loop_ = loop, .o_ = o};
	struct ur_http1_parser p;
	ur_http1_parser_init(&p, o.limits);
	c->lim_ = p.lim;
	c->o_.limits = NULL;
	return 0;
}

int ur_http_client_close(struct ur_http_client *c)
{
	if (c->active_)
		return -EBUSY;
	c->closing_ = 1;
	while (c->spare_) {
		struct xreq *x = c->spare_;
		c->spare_ = x->spare;
		xreq_free(x);
	}
	c->nspare_ = 0;
	ur__http_pool_free(c);
	ur_tls_ctx_free(c->tls_own_);
	c->tls_own_ = NULL;
	return 0;
}

void ur_http_client_stats(const struct ur_http_client *c, struct ur_http_client_stats *out)
{
	*out = c->st_;
}

void ur_http_response_init(struct ur_http_response *r)
{
	*r = (struct ur_http_response){.sink = UR_HTTP_SINK_MEMORY, .body_fd = -1};
}

void ur_http_response_free(struct ur_http_response *r)
{
	free(r->mem_); /* headers, reason and url */
	free(r->tmem_);
	r->tmem_ = NULL;
	r->trailers = NULL;
	r->num_trailers = 0;
	if (r->sink == UR_HTTP_SINK_MEMORY)
		free(r->body);
	r->mem_ = NULL;
	r->headers = NULL;
	r->num_headers = 0;
	r->reason = NULL;
	r->body = NULL;
	r->body_cap_ = 0;
	r->body_len = 0;
	r->url = NULL;
	r->status = 0;
}

ssize_t ur_http_response_find(const struct ur_http_response *r, const char *name, size_t from)
{
	return ur_http_header_find(r->headers, r->num_headers, name, from);
}

const char *ur_http_response_header(const struct ur_http_response *r, const char *name)
{
	ssize_t i = ur_http_response_find(r, name, 0);
	return i < 0 ? NULL : r->headers[i].value;
}
