/* SPDX-License-Identifier: MIT */
/*
 * urio/http_server.h - a minimal HTTP/1.1 server side: a handler called once per request, in the
 * connection's task, with keep-alive, pipelining, size limits and static bodies from memory or
 * from files read through the ring.
 *
 * It is what `urfetch --demo` and the tests serve from, and a model for services. The parsing is
 * urio/http1.h's (strict, zero-copy); the connections come from any stream: ur_http_serve_conn()
 * serves one connected stream until it closes, so it runs over the server helper of urio/server.h
 * (a loop per core, a task per connection) or over a stream of the caller's own.
 *
 *	static int hello(const struct ur_http_server_req *rq, struct ur_http_server_resp *rs,
 *	                 void *arg)
 *	{
 *		return ur_http_resp_mem(rs, 200, "text/plain", "hello\n", 6);
 *	}
 *	static int on_conn(struct ur_stream *s, void *arg)   // urio/server.h's connection task
 *	{
 *		struct ur_http_server_opts o = {.handler = hello};
 *		ur_http_serve_conn(s, &o);
 *		return 0;
 *	}
 *	...
 *	struct ur_server_opts so = {.port = 8080, .threads = 1, .on_conn = on_conn};
 *	ur_server_start(&sv, &so);
 *	...
 *	ur_server_stop(sv, 5 * UR_SEC);   // idle keep-alive connections end now, busy ones
 *	ur_server_join(sv);               // finish their response (Connection: close)
 *
 * Lifetimes: everything the handler is given (@rq: method, target, headers, body) lives until
 * the handler returns, no longer: the server reads the next request into the same memory. Copy
 * what you keep, or take the body with ur_http_req_take_body(). A response body given by
 * reference (ur_http_resp_mem) must outlive the handler; ur_http_resp_take() hands the server a
 * malloc()ed one instead.
 *
 * Graceful stop: on a stream of the server helper (urio/server.h), ur_http_serve_conn() follows
 * the server's stop by itself: a connection waiting for its next request's first byte ends at
 * once (ur_server_conn_idle), one in the middle of a request finishes that response, sent with
 * Connection: close, then ends. Over a stream of the caller's own, the @stopping hook of the
 * options says when to stop (checked before and after each request; it cannot wake a
 * connection that waits idle: that one ends at its idle timeout or when its task is cancelled).
 *
 * What the server answers by itself, closing the connection after it (Connection: close):
 *   400 a malformed request line or header section, a bad Content-Length or Transfer-Encoding
 *       (both at once included: the request-smuggling defence), a bad chunk, an HTTP/1.1 request
 *       without exactly one Host;
 *   413 a body longer than max_body (said before reading it, as soon as the length is known);
 *   414 a request line longer than the limit; 431 a header field or section over its limits;
 *   417 an Expect other than 100-continue; 505 an HTTP version other than 1.0 and 1.1;
 *   500 when the handler returns an error before its response is sent.
 * "Expect: 100-continue" is answered with 100 Continue before the body is read. HEAD gets the
 * headers a GET would (Content-Length included) and no body.
 */
#ifndef URIO_HTTP_SERVER_H
#define URIO_HTTP_SERVER_H

#include <stdbool.h>
#include <sys/types.h>
#include "common.h"
#include "http1.h"
#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A request as the handler sees it. Every pointer is valid until the handler returns (not
 * after: the next request reuses the memory). */
struct ur_http_server_req {
	const char *method; /* a token, not NUL-terminated */
	size_t method_len;
	const char *target; /* the request-target as sent: "/path?query" */
	size_t target_len;
	const char *path; /* the target up to '?' (same memory as target) */
	size_t path_len;
	const struct ur_http_header *headers; /* see ur_http_header_find() in urio/http1.h */
	size_t num_headers;
	int minor_version; /* HTTP/1.0 or HTTP/1.1 */
	/* the whole body, dechunked and NUL-terminated (body[body_len] == '\0', for text; the body
	   may hold NULs itself); "" (length 0) when there is none. Valid until the handler
	   returns: ur_http_req_take_body() keeps it. */
	const char *body;
	size_t body_len;
	struct ur_stream *stream; /* the connection (for its fd and peer address; do not read) */
	uint64_t seq;             /* 0 for the connection's first request, then 1, 2... */
	void *conn_;              /* private */
};

/* Most extra header fields a response may carry (beyond Content-Length, Date, Connection). */
#define UR_HTTP_RESP_MAX_HEADERS 16

/*
 * The response the handler fills in; the server sends it after the handler returns. Zeroed by
 * the server before each request (status 0 means "not set": 500 is sent, as for a 1xx or a status
 * above 999). The body is either memory (body/body_len, which must stay valid until the handler's
 * next request or the connection's end: a static, or memory owned by @arg), or a file descriptor
 * the server reads through the ring and then closes (file_fd >= 0, file_off, file_len).
 */
struct ur_http_server_resp {
	int status;
	const char *reason; /* NULL: the standard one; a CR, LF or other control byte: 500 */
	const char *body;
	size_t body_len;
	int file_fd; /* -1 when the body is in memory; the server closes it */
	uint64_t file_off;
	uint64_t file_len;
	bool close; /* ask the server to close the connection after this response */
	/* private: filled by ur_http_resp_header() and ur_http_resp_take() */
	void *owned_;
	unsigned nheaders_;
	const char *hname_[UR_HTTP_RESP_MAX_HEADERS];
	const char *hvalue_[UR_HTTP_RESP_MAX_HEADERS];
};

/*
 * The handler: called in the connection's task for each request, in order (pipelined requests
 * are answered one after the other). It may suspend (read files, call other services). Returns
 * 0 when @rs holds the response, or an error: then, if nothing was sent, 500 is answered and the
 * connection closed.
 */
typedef int ur_http_handler_fn(const struct ur_http_server_req *rq, struct ur_http_server_resp *rs,
                               void *arg);

/* Defaults of the limits below. */
#define UR_HTTP_SERVER_MAX_HEADER (16u * 1024u)
#define UR_HTTP_SERVER_MAX_BODY   ((size_t)1 << 20)
#define UR_HTTP_SERVER_IDLE_NS    (60 * UR_SEC)
#define UR_HTTP_SERVER_REQUEST_NS (30 * UR_SEC)

struct ur_http_server_opts {
	ur_http_handler_fn *handler;
	void *arg;
	/* 0 for each default */
	uint32_t max_line;           /* request line (8190 bytes): over it, 414 */
	uint32_t max_header;         /* header section (16 KiB): over it, 431 */
	uint32_t max_fields;         /* header fields (128): over it, 431 */
	size_t max_body;             /* request body (1 MiB): over it, 413 */
	uint64_t idle_timeout_ns;    /* wait for the first byte of a request (60 s) */
	uint64_t request_timeout_ns; /* read one whole request once it began (30 s) */
	uint64_t max_requests;       /* per connection, then Connection: close (0: unbounded) */
	/*
	 * Optional: checked before each request and after each handler; when it returns true the
	 * connection is ended gracefully (between requests at once, a busy one after its
	 * response, sent with Connection: close). Not needed for the server helper's stop, which
	 * a stream of urio/server.h brings along (see above); for another stop condition of your
	 * own. A connection idle in its wait for a request is not woken by it.
	 */
	bool (*stopping)(void *stop_arg);
	void *stop_arg;
	uint32_t reserved[4];
};

/*
 * Serves HTTP/1.1 on the connected stream @s until the peer closes, an error, a limit, a
 * timeout, or @o->stopping. Call it in the connection's task; it does not close @s (the caller
 * does, after). Returns the number of requests answered (>= 0) when the connection ended
 * normally (the peer closed between requests, keep-alive ended, a stop), or the error that
 * ended it (-ETIMEDOUT, -ECONNRESET, UR_ENOTASK, -ECANCELED...). An answered 4xx/5xx of the
 * list above counts as normal.
 */
UR_EXPORT ssize_t ur_http_serve_conn(struct ur_stream *s, const struct ur_http_server_opts *o);

/*
 * Keeps the request's body past the handler: returns it in memory from malloc() that the caller
 * now owns (free() it), rq->body_len bytes plus a terminating NUL. The buffer the body was read
 * into is handed over when it can be (no copy; the connection makes a new one for its next
 * body), else it is copied. May be passed on to ur_http_resp_take() to answer with it. NULL
 * when out of memory. Call it from the handler only.
 */
UR_EXPORT char *ur_http_req_take_body(const struct ur_http_server_req *rq);

/*
 * Helpers for handlers. ur_http_resp_mem() sets status, a Content-Type (NULL: none) and a
 * memory body (kept by reference, see above). ur_http_resp_header() adds a header field; @name
 * and @value are NUL-terminated, kept by reference until the response is sent, and checked
 * with ur_http_header_check(). Each returns 0, UR_EHTTP_HNAME / UR_EHTTP_HVALUE, or -ENOSPC
 * (more than UR_HTTP_RESP_MAX_HEADERS fields).
 */
UR_EXPORT int ur_http_resp_mem(struct ur_http_server_resp *rs, int status, const char *type,
                               const void *body, size_t len);
/*
 * As ur_http_resp_mem(), but the server takes @body (from malloc) and frees it once the
 * response is sent, or when the connection ends first. On an error return the caller keeps it.
 */
UR_EXPORT int ur_http_resp_take(struct ur_http_server_resp *rs, int status, const char *type,
                                void *body, size_t len);
UR_EXPORT int ur_http_resp_header(struct ur_http_server_resp *rs, const char *name,
                                  const char *value);

/*
 * Answers with the regular file @path (relative to the directory @dfd, or AT_FDCWD) opened and
 * measured through the ring, in a task: status 200 and the file as body, which the server
 * then reads through the ring. Returns 0; -ENOENT / -EACCES / -EISDIR... when the file cannot be
 * served (the response is left untouched: the handler chooses 404 or 403); UR_ENOTASK.
 */
UR_EXPORT int ur_http_resp_file(struct ur_http_server_resp *rs, int dfd, const char *path,
                                const char *type);

/* The standard reason phrase of @status ("OK", "Not Found"), or "Unknown" for others. */
UR_EXPORT const char *ur_http_reason(int status);

#ifdef __cplusplus
}
#endif

#endif
