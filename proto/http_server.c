/* SPDX-License-Identifier: MIT */
/*
 * proto/http_server.c - the HTTP/1.1 server side: one connection served by one task.
 *
 * A request without a body is handled in place: the handler's pointers point into the stream's
 * read buffer, which nothing reads into until the handler has returned. A request with a body
 * has its header section copied into the connection's own buffer first (one small memcpy), so
 * the stream may move and grow its buffer while the body is read into a second buffer.
 * Pipelined requests simply stay buffered in the stream until their turn.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <urio.h>
#include <urio/http1.h>
#include <urio/http_server.h>
#include <urio/server.h>

/* One read of a file body through the ring, and the most memory a body read-ahead holds. */
#define FILE_CHUNK ((size_t)64 * 1024)
#define HEAD_MAX   1024 /* our own header section: status line and the fixed fields */
/* After an error response, how much of the peer's unread request we drain before closing, and
 * for how long: closing with unread bytes makes the kernel send a reset, which can destroy the
 * response before the client reads it (nginx's lingering close). */
#define LINGER_BYTES ((size_t)256 * 1024)
#define LINGER_NS    (500 * UR_MSEC)

struct conn {
	struct ur_stream *s;
	struct ur_server *sv; /* the server helper's connection (urio/server.h), or NULL */
	const struct ur_http_server_opts *o;
	struct ur_http1_limits lim;
	char *head; /* a copy of the header section of a request with a body */
	size_t head_cap;
	char *body;
	size_t body_cap;
	uint64_t served;
};

const char *ur_http_reason(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 101:
		return "Switching Protocols";
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 206:
		return "Partial Content";
	case 301:
		return "Moved Permanently";
	case 302:
		return "Found";
	case 303:
		return "See Other";
	case 304:
		return "Not Modified";
	case 307:
		return "Temporary Redirect";
	case 308:
		return "Permanent Redirect";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 410:
		return "Gone";
	case 411:
		return "Length Required";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 415:
		return "Unsupported Media Type";
	case 417:
		return "Expectation Failed";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Unknown";
	}
}

int ur_http_resp_header(struct ur_http_server_resp *rs, const char *name, const char *value)
{
	int r = ur_http_header_check(name, strlen(name), value, strlen(value));
	if (r < 0)
		return r;
	if (rs->nheaders_ >= UR_HTTP_RESP_MAX_HEADERS)
		return -ENOSPC;
	rs->hname_[rs->nheaders_] = name;
	rs->hvalue_[rs->nheaders_] = value;
	rs->nheaders_++;
	return 0;
}

int ur_http_resp_mem(struct ur_http_server_resp *rs, int status, const char *type, const void *body,
                     size_t len)
{
	if (type) {
		int r = ur_http_resp_header(rs, "Content-Type", type);
		if (r < 0)
			return r;
	}
	rs->status = status;
	rs->body = len ? body : "";
	rs->body_len = len;
	return 0;
}

int ur_http_resp_take(struct ur_http_server_resp *rs, int status, const char *type, void *body,
                      size_t len)
{
	int r = ur_http_resp_mem(rs, status, type, body, len);
	if (r < 0)
		return r;
	free(rs->owned_);
	rs->owned_ = body;
	return 0;
}

char *ur_http_req_take_body(const struct ur_http_server_req *rq)
{
	struct conn *c = rq->conn_;
	char *b;
	if (c && c->body && rq->body == c->body) {
		b = c->body; /* the connection's buffer, handed over: the next body gets a new one
		              */
		c->body = NULL;
		c->body_cap = 0;
		return b;
	}
	if (!(b = malloc(rq->body_len + 1)))
		return NULL;
	memcpy(b, rq->body, rq->body_len);
	b[rq->body_len] = '\0';
	return b;
}

int ur_http_resp_file(struct ur_http_server_resp *rs, int dfd, const char *path, const char *type)
{
	struct statx st;
	int fd = ur_openat(dfd, path, O_RDONLY, 0);
	if (fd < 0)
		return fd;
	int r = ur_statx(fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_SIZE, &st);
	if (r == 0 && !S_ISREG(st.stx_mode))
		r = S_ISDIR(st.stx_mode) ? -EISDIR : -EACCES;
	if (r == 0 && type)
		r = ur_http_resp_header(rs, "Content-Type", type);
	if (r < 0) {
		ur_close(fd);
		return r;
	}
	if (rs->file_fd >= 0)
		ur_close(rs->file_fd);
	rs->status = 200;
	rs->file_fd = fd;
	rs->file_off = 0;
	rs->file_len = st.stx_size;
	return 0;
}

/* "Date: Sun, 06 Nov 1994 08:49:37 GMT" is formatted once per second per thread. */
static const char *http_date(void)
{
	static _Thread_local time_t cached;
	static _Thread_local char buf[40];
	time_t now = time(NULL);
	if (now != cached) {
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		cached = now;
	}
	return buf;
}

static bool no_body_status(int status)
{
	return (status >= 100 && status < 200) || status == 204 || status == 304;
}

/* RFC 9112 §4: reason-phrase = *( HTAB / SP / VCHAR / obs-text ); a CR or LF would split it. */
static bool reason_ok(const char *r)
{
	for (; r && *r; r++)
		if (((unsigned char)*r < 0x20 && *r != '\t') || *r == 0x7f)
			return false;
	return true;
}

/* Writes the head of @rs (and its memory body unless @head_only); then its file body. */
static int send_response(struct conn *c, struct ur_http_server_resp *rs, bool head_only, bool close)
{
	char head[HEAD_MAX];
	uint64_t len = rs->file_fd >= 0 ? rs->file_len : rs->body_len;
	int n =
	    snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\nServer: urio\r\nDate: %s\r\n",
	             rs->status, rs->reason ? rs->reason : ur_http_reason(rs->status), http_date());
	if (!no_body_status(rs->status))
		n += snprintf(head + n, sizeof(head) - (size_t)n, "Content-Length: %" PRIu64 "\r\n",
		              len);
	else
		len = 0;
	if (close)
		n += snprintf(head + n, sizeof(head) - (size_t)n, "Connection: close\r\n");
	if (n < 0 || (size_t)n >= sizeof(head) - 2)
		return -EOVERFLOW;
	head[n++] = '\r'; /* the user's fields go between the fixed ones and this CRLF */
	head[n++] = '\n';

	struct iovec iov[2 + 4 * UR_HTTP_RESP_MAX_HEADERS + 1];
	unsigned k = 0;
	iov[k++] = (struct iovec){head, (size_t)n - 2};
	for (unsigned i = 0; i < rs->nheaders_; i++) {
		iov[k++] = (struct iovec){(void *)rs->hname_[i], strlen(rs->hname_[i])};
		iov[k++] = (struct iovec){(void *)": ", 2};
		iov[k++] = (struct iovec){(void *)rs->hvalue_[i], strlen(rs->hvalue_[i])};
		iov[k++] = (struct iovec){(void *)"\r\n", 2};
	}
	iov[k++] = (struct iovec){head + n - 2, 2};
	if (!head_only && len > 0 && rs->file_fd < 0)
		iov[k++] = (struct iovec){(void *)rs->body, rs->body_len};
	ssize_t w = ur_stream_writev_all(c->s, iov, k);
	if (w < 0 || head_only || len == 0 || rs->file_fd < 0)
		return w < 0 ? (int)w : 0;

	/* A file body: read through the ring in chunks, each written before the next is read. */
	char *buf = malloc(len < FILE_CHUNK ? (size_t)len : FILE_CHUNK);
	if (!buf)
		return -ENOMEM;
	uint64_t off = rs->file_off, left = len;
	int r = 0;
	while (left > 0) {
		size_t want = left < FILE_CHUNK ? (size_t)left : FILE_CHUNK;
		ssize_t got = ur_read(rs->file_fd, buf, want, off);
		if (got <= 0) {
			r = got < 0 ? (int)got
			            : UR_EINCOMPLETE; /* the file shrank: cut the connection */
			break;
		}
		w = ur_stream_write_all(c->s, buf, (size_t)got);
		if (w < 0) {
			r = (int)w;
			break;
		}
		off += (uint64_t)got;
		left -= (uint64_t)got;
	}
	free(buf);
	return r;
}

/* Answers an error the server found itself, then half-closes and drains briefly before the close.
 */
static void send_error(struct conn *c, int status)
{
	struct ur_http_server_resp rs = {.file_fd = -1};
	char text[64];
	int n = snprintf(text, sizeof(text), "%d %s\n", status, ur_http_reason(status));
	ur_http_resp_mem(&rs, status, "text/plain", text, (size_t)n);
	ur_stream_set_timeout(c->s, LINGER_NS);
	if (send_response(c, &rs, false, true) < 0 || ur_stream_shutdown(c->s) < 0)
		return;
	size_t drained = 0, len;
	ur_stream_buffered(c->s, &len);
	ur_stream_consume(c->s, len);
	char sink[4096];
	while (drained < LINGER_BYTES) {
		ssize_t got = ur_stream_read(c->s, sink, sizeof(sink));
		if (got <= 0)
			break;
		drained += (size_t)got;
	}
}

/* Maps a parser error to the status the server answers with. */
static int parse_error_status(int err)
{
	switch (err) {
	case UR_EHTTP_LINE_TOO_LONG:
		return 414;
	case UR_EHTTP_FIELD_TOO_LONG:
	case UR_EHTTP_TOO_MANY_FIELDS:
	case UR_EHTTP_HEADER_TOO_BIG:
		return 431;
	case UR_EHTTP_VERSION:
		return 505;
	default:
		return 400;
	}
}

static int grow(char **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 4096;
	while (n < need)
		n *= 2;
	char *b = realloc(*buf, n);
	if (!b)
		return -ENOMEM;
	*buf = b;
	*cap = n;
	return 0;
}

/* Reads a chunked body into c->body; returns its length, or a status to answer (> 0 as -status). */
static ssize_t read_chunked(struct conn *c, size_t max)
{
	struct ur_http1_chunked d;
	size_t have = 0;
	ur_http1_chunked_init(&d, &c->lim);
	while (!ur_http1_chunked_done(&d)) {
		size_t len;
		const char *buf = ur_stream_buffered(c->s, &len);
		if (len == 0) {
			ssize_t got = ur_stream_fill(c->s);
			if (got == 0)
				return -400; /* the body ended early */
			if (got < 0)
				return got;
			continue;
		}
		const char *data;
		size_t dlen;
		ssize_t used = ur_http1_chunked_decode(&d, buf, len, &data, &dlen);
		if (used < 0)
			return -400;
		if (dlen > 0) {
			if (dlen > max - have)
				return -413;
			if (grow(&c->body, &c->body_cap, have + dlen + 1) < 0)
				return -ENOMEM;
			memcpy(c->body + have, data, dlen);
			have += dlen;
		}
		ur_stream_consume(c->s, (size_t)used);
	}
	return (ssize_t)have;
}

/* A graceful stop was asked for: the server helper's, or the caller's hook. */
static bool stop_requested(const struct conn *c)
{
	return (c->sv && ur_server_stopping(c->sv)) ||
	       (c->o->stopping && c->o->stopping(c->o->stop_arg));
}

/*
 * Serves one request. Returns 1 to go on with the next, 0 when the connection is to end
 * normally, or an error.
 */
static int serve_one(struct conn *c)
{
	const struct ur_http_server_opts *o = c->o;
	struct ur_http_header hdr[UR_HTTP1_MAX_FIELDS];
	struct ur_http1_parser p;
	struct ur_http1_request rq = {.headers = hdr, .max_headers = c->lim.max_fields};
	const char *buf;
	size_t len;
	int n;

	/* the head: idle deadline until its first byte, then the request deadline */
	ur_http1_parser_init(&p, &c->lim);
	buf = ur_stream_buffered(c->s, &len);
	ur_stream_set_timeout(c->s, len ? o->request_timeout_ns : o->idle_timeout_ns);
	/* a server helper's connection waits for the first byte marked idle: a stop ends it then */
	bool idle = len == 0 && c->sv;
	if (idle && ur_server_conn_idle(c->s, true) < 0)
		return 0; /* the server is stopping already */
	for (;;) {
		n = len ? ur_http1_parse_request(&p, buf, len, &rq) : UR_EHTTP_INCOMPLETE;
		if (n != UR_EHTTP_INCOMPLETE)
			break;
		ssize_t got = ur_stream_fill(c->s);
		if (idle) {
			idle = false;
			ur_server_conn_idle(c->s, false);
			/* cancelled by the stop while idle (bytes that came in the same turn
			   included): the normal end of keep-alive, not an error */
			if (ur_cancelled() && ur_server_stopping(c->sv))
				return 0;
		}
		if (got == 0 && len == 0)
			return 0; /* closed between requests: the normal end of keep-alive */
		if (got == 0) {
			send_error(c, 400);
			return 0;
		}
		if (got == UR_ELIMIT) {
			send_error(c, 431);
			return 0;
		}
		if (got < 0)
			return (int)got;
		if (len == 0)
			ur_stream_set_timeout(c->s, o->request_timeout_ns);
		buf = ur_stream_buffered(c->s, &len);
	}
	if (n < 0) {
		send_error(c, parse_error_status(n));
		return 0;
	}

	struct ur_http1_framing fr;
	if (rq.minor_version > 1) {
		send_error(c, 505);
		return 0;
	}
	/* RFC 9112 §3.2: an HTTP/1.1 request carries exactly one Host */
	ssize_t host = ur_http_header_find(hdr, rq.num_headers, "host", 0);
	bool bad_host =
	    rq.minor_version == 1 &&
	    (host < 0 || ur_http_header_find(hdr, rq.num_headers, "host", (size_t)host + 1) >= 0);
	if (bad_host || ur_http1_request_framing(&rq, &fr) < 0 || fr.codings) {
		send_error(c, 400);
		return 0;
	}
	ssize_t ei = ur_http_header_find(hdr, rq.num_headers, "expect", 0);
	bool cont = false;
	if (ei >= 0) {
		if (hdr[ei].value_len != 12 ||
		    strncasecmp(hdr[ei].value, "100-continue", 12) != 0) {
			send_error(c, 417);
			return 0;
		}
		cont = rq.minor_version == 1;
	}

	size_t body_len = 0;
	const char *body = "";
	if (fr.body == UR_HTTP1_BODY_LENGTH && fr.length > o->max_body) {
		send_error(c, 413);
		return 0;
	}
	if (fr.body == UR_HTTP1_BODY_CHUNKED || (fr.body == UR_HTTP1_BODY_LENGTH && fr.length)) {
		/* copy the head aside and re-parse it there, so the stream may move its buffer */
		if (grow(&c->head, &c->head_cap, (size_t)n) < 0)
			return -ENOMEM;
		memcpy(c->head, buf, (size_t)n);
		ur_stream_consume(c->s, (size_t)n);
		ur_http1_parser_init(&p, &c->lim);
		n = ur_http1_parse_request(&p, c->head, (size_t)n, &rq);
		if (n < 0)
			return n; /* cannot happen: the same bytes parsed a moment ago */
		n = 0;            /* nothing more to consume after the handler */
		if (cont) {
			static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";
			ssize_t w = ur_stream_write_all(c->s, msg, sizeof(msg) - 1);
			if (w < 0)
				return (int)w;
		}
		ssize_t got;
		if (fr.body == UR_HTTP1_BODY_LENGTH) {
			if (grow(&c->body, &c->body_cap, (size_t)fr.length + 1) < 0)
				return -ENOMEM;
			got = ur_stream_read_exactly(c->s, c->body, (size_t)fr.length);
			if (got == UR_EINCOMPLETE)
				return 0; /* the peer gave up mid-body; nobody to answer */
		} else {
			got = read_chunked(c, o->max_body);
			if (got == -400 || got == -413) {
				send_error(c, (int)-got);
				return 0;
			}
		}
		if (got < 0)
			return (int)got;
		if (got > 0) { /* a chunked body may be empty: then c->body may be NULL */
			body = c->body;
			body_len = (size_t)got;
			c->body[body_len] = '\0'; /* grown with room for it */
		}
	}

	struct ur_http_server_req req = {
	    .method = rq.method,
	    .method_len = rq.method_len,
	    .target = rq.target,
	    .target_len = rq.target_len,
	    .path = rq.target,
	    .headers = hdr,
	    .num_headers = rq.num_headers,
	    .minor_version = rq.minor_version,
	    .body = body,
	    .body_len = body_len,
	    .stream = c->s,
	    .seq = c->served,
	    .conn_ = c,
	};
	const char *q = memchr(rq.target, '?', rq.target_len);
	req.path_len = q ? (size_t)(q - rq.target) : rq.target_len;

	struct ur_http_server_resp rs = {.file_fd = -1};
	ur_stream_set_timeout(c->s, o->request_timeout_ns);
	int hr = o->handler(&req, &rs, o->arg);
	/* a 1xx is never final: sent as the answer, both sides would wait for the other */
	if (hr < 0 || rs.status < 200 || rs.status > 999 || !reason_ok(rs.reason)) {
		if (rs.file_fd >= 0)
			ur_close(rs.file_fd);
		free(rs.owned_);
		if (hr == -ECANCELED)
			return hr;
		send_error(c, 500);
		return 0;
	}
	bool head_only = rq.method_len == 4 && memcmp(rq.method, "HEAD", 4) == 0;
	bool close = rs.close || !fr.keep_alive ||
	             (o->max_requests && c->served + 1 >= o->max_requests) || stop_requested(c);
	int r = send_response(c, &rs, head_only, close);
	if (rs.file_fd >= 0)
		ur_close(rs.file_fd);
	free(rs.owned_);
	ur_stream_consume(c->s, (size_t)n);
	c->served++;
	if (r < 0)
		return r;
	return close ? 0 : 1;
}

ssize_t ur_http_serve_conn(struct ur_stream *s, const struct ur_http_server_opts *opts)
{
	struct ur_http_server_opts o = *opts;
	struct conn c = {.s = s, .sv = ur_server_of(s), .o = &o};
	int r;

	if (!o.handler)
		return -EINVAL;
	if (!ur_task_current())
		return UR_ENOTASK;
	if (!o.max_body)
		o.max_body = UR_HTTP_SERVER_MAX_BODY;
	if (!o.idle_timeout_ns)
		o.idle_timeout_ns = UR_HTTP_SERVER_IDLE_NS;
	if (!o.request_timeout_ns)
		o.request_timeout_ns = UR_HTTP_SERVER_REQUEST_NS;
	c.lim = (struct ur_http1_limits){
	    .max_line = o.max_line,
	    .max_header_bytes = o.max_header ? o.max_header : UR_HTTP_SERVER_MAX_HEADER,
	    .max_fields = o.max_fields && o.max_fields < UR_HTTP1_MAX_FIELDS ? o.max_fields
	                                                                     : UR_HTTP1_MAX_FIELDS,
	};
	do {
		if (stop_requested(&c)) {
			size_t len;
			ur_stream_buffered(s, &len);
			if (len == 0)
				break; /* idle: end now; a request already arriving is still
				          answered */
		}
		r = serve_one(&c);
	} while (r == 1);
	free(c.head);
	free(c.body);
	ur_stream_set_deadline(s, UR_NO_DEADLINE);
	return r < 0 ? r : (ssize_t)c.served;
}
