/* SPDX-License-Identifier: MIT */
/*
 * urio/http.h - an HTTP/1.1 client (aiohttp's ClientSession in one caller-owned struct).
 *
 * A client holds a keep-alive pool of connections per origin (scheme, host, port), with a
 * per-host and a total connection limit and an idle timeout (a timer closes idle connections); it
 *follows redirects, bounds every wait with deadlines, and decodes gzip/deflate bodies when asked.
 *Requests are made from tasks:
 *
 *	struct ur_http_client c;
 *	ur_http_client_init(&c, loop, NULL);                 // defaults: docs/http.md
 *	struct ur_http_response r;
 *	ur_http_response_init(&r);                          // body to memory
 *	int ret = ur_http_get(&c, "http://example.com/", &r);  // suspends this task only
 *	if (ret == 0) printf("%d %.*s\n", r.status, (int)r.body_len, r.body);
 *	ur_http_response_free(&r);
 *	ur_http_client_close(&c);
 *
 * or as futures, so a program can ur_gather() a thousand of them (docs/examples/fetch_gather.c):
 *
 *	ur_http_request_start(&c, &rq[i], &r[i], &f[i]);    // for each i
 *	ur_gather(fp, n, 0);
 *
 * A client belongs to one loop and is used from that loop's tasks only. Every request parses and
 * frames the response with urio/http1.h (RFC 9112 to the letter; a connection is reused only
 * when its response ended exactly), connects with urio/net.h and speaks TLS with urio/tls.h.
 * docs/http.md records the decisions: pooling, retries, redirects, limits, truncation, decoding.
 *
 * Results: 0 when a response was received (whatever its status: a 404 is a response, not an
 * error), else -errno (-ETIMEDOUT, -ECONNREFUSED, -ECONNRESET, -ECANCELED...), a URL error
 * (UR_EURL_*), a parser or framing error (UR_EHTTP_* from -30400), a TLS error, or one of the
 * client's own errors below (-30440..). ur_strerror() names each.
 */
#ifndef URIO_HTTP_H
#define URIO_HTTP_H

#include <stdbool.h>
#include <sys/types.h>
#include "common.h"
#include "http1.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ur_tls_ctx;

/* Defaults of struct ur_http_client_opts (a field left 0 takes its default). */
#define UR_HTTP_MAX_PER_HOST_DEFAULT    8u
#define UR_HTTP_MAX_TOTAL_DEFAULT       100u
#define UR_HTTP_IDLE_TIMEOUT_DEFAULT    (15 * UR_SEC)
#define UR_HTTP_CONNECT_TIMEOUT_DEFAULT (30 * UR_SEC)
#define UR_HTTP_READ_TIMEOUT_DEFAULT    (60 * UR_SEC)
#define UR_HTTP_MAX_REDIRECTS_DEFAULT   10u
#define UR_HTTP_MAX_BODY_DEFAULT        ((uint64_t)1 << 30) /* 1 GiB to memory */
#define UR_HTTP_USER_AGENT_DEFAULT                                                                 \
	"urio/"                                                                                    \
	"0.1"

/* A duration meaning "no limit" for the *_timeout_ns options and ur_http_request.timeout_ns. */
#define UR_HTTP_NO_TIMEOUT UINT64_MAX

/* Flags of struct ur_http_client_opts and struct ur_http_request. */
enum ur_http_flags {
	/* Do not follow redirects: a 3xx is returned as the response. */
	UR_HTTP_NO_REDIRECTS = 1u << 0,
	/* Send "Accept-Encoding: gzip, deflate" and decode such bodies (curl's --compressed). */
	UR_HTTP_COMPRESSED = 1u << 1,
	/* Never reuse or pool this request's connection (sends "Connection: close"). */
	UR_HTTP_NO_KEEPALIVE = 1u << 2,
};

struct ur_http_client_opts {
	uint32_t max_per_host; /* connections per origin, in use and idle; default 8 */
	uint32_t max_total;    /* connections in all, in use and idle; default 100 */
	/* A request that finds its origin (or the client) at the limit waits for a connection. */
	/* A pooled connection idle this long is closed, by a timer (docs/http.md); default 15 s;
	   UR_HTTP_NO_TIMEOUT: kept until the client closes. */
	uint64_t idle_timeout_ns;
	uint64_t connect_timeout_ns; /* resolving + connecting + the TLS handshake; 30 s */
	uint64_t total_timeout_ns;   /* a whole request, redirects included; default none */
	uint64_t read_timeout_ns;    /* longest wait for any response byte ("idle read"); 60 s */
	uint32_t max_redirects;      /* redirects followed; 0 = default 10 (UR_HTTP_NO_REDIRECTS
	                                for none) */
	uint32_t flags;              /* enum ur_http_flags, the default of every request */
	uint64_t
	    max_body; /* largest body kept in memory, and largest decoded body anywhere; 1 GiB */
	/* TLS context of https requests; NULL: a verifying client context (system trust store,
	   hostname check) made on first use and freed by ur_http_client_close(). Borrowed. */
	struct ur_tls_ctx *tls;
	const char *user_agent; /* NULL: UR_HTTP_USER_AGENT_DEFAULT; "" sends none. Borrowed. */
	/* Response parser limits (urio/http1.h); NULL: the parser's defaults. Copied. */
	const struct ur_http1_limits *limits;
	uint32_t reserved[4]; /* must be zero */
};

/* Counters of a client, for tools and tests. */
struct ur_http_client_stats {
	uint64_t requests;    /* exchanges sent (each redirect and retry counts) */
	uint64_t connections; /* connections opened */
	uint64_t reused;      /* exchanges sent on a pooled connection */
	uint64_t retries;     /* requests retried after a pooled connection failed */
	uint32_t open;        /* connections open now, in use and idle */
	uint32_t idle;        /* of which idle in the pool */
};

/*
 * A client. Caller-owned; every field private. Initialise with ur_http_client_init(), close
 * with ur_http_client_close() once no request is in flight.
 */
struct ur_http_client {
	struct ur_loop *loop_;
	struct ur_http_client_opts o_;
	struct ur_http1_limits lim_;
	struct ur_tls_ctx *tls_own_;
	void *hosts_;   /* per-origin pools */
	void *waiters_; /* requests waiting for the total limit */
	struct ur_http_client_stats st_;
	uint32_t active_; /* requests in flight */
	uint32_t closing_;
	void *spare_; /* finished requests' state, kept for the next ones */
	uint32_t nspare_;
};

/*
 * Prepares @c for requests made by tasks of @loop, with @opts (NULL: every default; copied, but
 * the strings and TLS context it points at are borrowed until ur_http_client_close()).
 * Allocates nothing; connections and the default TLS context come on first use.
 * Returns 0, or -EINVAL (a NULL argument, reserved fields not zero), or UR_EHTTP_HVALUE (a
 * user_agent with a CR, LF or other control byte).
 */
UR_EXPORT int ur_http_client_init(struct ur_http_client *c, struct ur_loop *loop,
                                  const struct ur_http_client_opts *opts);

/*
 * Closes every pooled connection of @c and frees what it holds (the default TLS context
 * included). Callable from a task (closes through the ring) or outside any task. The pool's
 * idle timer (a task of the loop, alive while connections are idle) is stopped and waited for:
 * from a task by awaiting it, outside any task by turning the loop without blocking, so nothing
 * of @c's is pending afterwards (from inside a loop callback it ends on the loop's next turn,
 * without touching @c).
 * Returns 0, or -EBUSY if requests are still in flight (nothing is done then: cancel and await
 * them first).
 */
UR_EXPORT int ur_http_client_close(struct ur_http_client *c);

/* Fills *@out with @c's counters. */
UR_EXPORT void ur_http_client_stats(const struct ur_http_client *c,
                                    struct ur_http_client_stats *out);

/* Where a request's body comes from. */
enum ur_http_body_source {
	UR_HTTP_BODY_NONE = 0, /* no body */
	UR_HTTP_BODY_MEMORY,   /* body[0..body_len) */
	UR_HTTP_BODY_FILE,     /* body_len bytes of body_fd from body_off, read with ur_read */
	UR_HTTP_BODY_CALLBACK, /* read_body() until it returns 0 */
};

/* body_len of a callback body whose length is unknown: it is sent chunked. */
#define UR_HTTP_LEN_UNKNOWN UINT64_MAX

/*
 * A request. Caller-owned; zero it, then set url (and whatever else). Everything it points at is
 * borrowed until the request's call returns or its future completes.
 */
struct ur_http_request {
	const char *method; /* "GET" when NULL; any token (RFC 9110), sent as given */
	const char *url;    /* absolute http:// or https:// URL, NUL-terminated (urio/url.h) */
	/* Extra header fields, each checked with ur_http_header_check() (no CR, LF, NUL: injection
	   is refused with UR_EHTTP_HNAME / UR_EHTTP_HVALUE). A field named like a default one
	   (Host, User-Agent, Accept, Accept-Encoding, Connection) replaces it; Content-Length and
	   Transfer-Encoding are the client's (UR_EHTTP_RESERVED). */
	const struct ur_http_header *headers;
	size_t num_headers;

	enum ur_http_body_source body_source;
	uint64_t body_len; /* MEMORY, FILE: bytes; CALLBACK: bytes or UR_HTTP_LEN_UNKNOWN */
	const void *body;  /* MEMORY */
	int body_fd;       /* FILE: read from body_off, not closed */
	uint64_t body_off;
	/* CALLBACK: called in the request's task (it may await); writes up to @len bytes to @buf
	   and returns their count, 0 at the end, or < 0 to fail the request with that error. A
	   callback body cannot be sent twice: no retry, and a 307/308 is returned, not followed. */
	ssize_t (*read_body)(void *arg, void *buf, size_t len);
	void *body_arg;

	uint32_t flags;         /* enum ur_http_flags, OR-ed with the client's */
	uint32_t max_redirects; /* 0: the client's */
	uint64_t timeout_ns;    /* whole request, redirects included; 0: the client's */
};

/* Where a response's body goes. */
enum ur_http_sink {
	UR_HTTP_SINK_MEMORY = 0, /* resp->body, up to max_body bytes (UR_EHTTP_BODY_TOO_BIG past) */
	UR_HTTP_SINK_FILE,       /* written to body_fd at body_off with ur_write, not closed */
	UR_HTTP_SINK_CALLBACK,   /* handed to on_body() as it arrives */
	UR_HTTP_SINK_DISCARD,    /* read and dropped (counted in body_len) */
};

/* Per-request figures (of the final exchange where noted). */
struct ur_http_stats {
	bool reused;             /* final exchange on a pooled connection */
	uint32_t redirects;      /* redirects followed */
	uint32_t retries;        /* retries after a pooled connection failed */
	uint32_t connections;    /* connections this request opened */
	uint64_t bytes_sent;     /* request heads and bodies written (plaintext) */
	uint64_t bytes_received; /* response heads and bodies read (plaintext, framing included) */
	uint64_t connect_ns;     /* time spent connecting (0 on a reused connection) */
	uint64_t ttfb_ns;        /* start of the final exchange to its first response byte */
	uint64_t total_ns;       /* the whole request */
};

/*
 * A response. Caller-owned; ur_http_response_init() it, choose a sink, make the request, read the
 * fields, ur_http_response_free() it. It can be reused after free + init.
 */
struct ur_http_response {
	/* in: the sink (default: memory, the client's max_body) */
	enum ur_http_sink sink;
	uint64_t max_body; /* SINK_MEMORY: largest body kept; every sink: largest decoded body;
	                      0: the client's */
	int body_fd;       /* SINK_FILE */
	uint64_t body_off;
	/* SINK_CALLBACK: called in the request's task (it may await) with each run of body bytes,
	   decoded when decoding is on; returns >= 0, or < 0 to fail the request with that error.
	   Bytes of a redirect's body or of a failed attempt that is retried never reach it. */
	int (*on_body)(void *arg, const void *data, size_t len);
	void *body_arg;

	/* out, valid after the request returned 0 (status and headers also after a body error) */
	int status;         /* 100..999 (the final response, never a 1xx) */
	int minor_version;  /* 0 or 1 */
	const char *reason; /* NUL-terminated; owned by the response */
	/* Header fields as received, names and values NUL-terminated; owned by the response. */
	struct ur_http_header *headers;
	size_t num_headers;
	/* Trailer fields of a chunked body (RFC 9112 §7.1.2), as received, NUL-terminated; owned
	   by the response. Kept apart from the headers: a trailer may not be trusted like a header
	   field (RFC 9110 §6.5.1); look one up with ur_http_header_find(). NULL / 0 when none. */
	struct ur_http_header *trailers;
	size_t num_trailers;
	char *body; /* SINK_MEMORY: the body, NUL-terminated (not counted), "" if empty; owned */
	uint64_t body_len; /* body bytes delivered to the sink (decoded when decoding is on) */
	bool decoded;      /* the body was gzip/deflate-decoded (Content-Encoding still says so) */
	const char *url;   /* the final URL after redirects, normalised; owned */
	struct ur_http_stats stats;

	/* private */
	void *mem_;
	size_t body_cap_;
	void *tmem_;
};

/* Sets @r up with the defaults above (memory sink). Never fails. */
UR_EXPORT void ur_http_response_init(struct ur_http_response *r);

/* Frees what the response owns (headers, trailers, reason, body, url); the sink settings are
   kept. */
UR_EXPORT void ur_http_response_free(struct ur_http_response *r);

/*
 * The value of the first header field named @name (ASCII case-insensitive) of @r, NUL-terminated,
 * or NULL. All values of a repeated field:
 *	for (ssize_t i = ur_http_response_find(r, "set-cookie", 0); i >= 0;
 *	     i = ur_http_response_find(r, "set-cookie", i + 1))
 *		use(r->headers[i].value);
 */
UR_EXPORT const char *ur_http_response_header(const struct ur_http_response *r, const char *name);
/* The index of the first field named @name at index @from or later, or -1. */
UR_EXPORT ssize_t ur_http_response_find(const struct ur_http_response *r, const char *name,
                                        size_t from);

/*
 * Makes request @rq with @c and waits for its response in @r (task-style: suspends the calling
 * task). Redirects are followed (see docs/http.md) and @r describes the final response.
 * Returns 0 with @r filled in; or an error, after which @r holds whatever was received (status
 * and headers if the head arrived; the body bytes delivered so far) and must still be freed.
 * Besides -errno, URL, parser and TLS errors:
 *   UR_ENOTASK                outside a task; UR_EWRONGLOOP: a task of another loop
 *   UR_EHTTP_HNAME/HVALUE     a custom header failed ur_http_header_check()
 *   UR_EHTTP_METHOD           the method is not a token
 *   UR_EHTTP_RESERVED         Content-Length / Transfer-Encoding among the custom headers
 *   UR_EHTTP_TOO_MANY_REDIRECTS, UR_EHTTP_REDIRECT_LOCATION, UR_EHTTP_INSECURE_REDIRECT
 *   UR_EHTTP_TRUNCATED        the connection ended before the body did
 *   UR_EHTTP_BODY_TOO_BIG     body (or decoded body) above max_body
 *   UR_EHTTP_DECODE           corrupt gzip/deflate data; UR_EHTTP_CODING: an unsupported coding
 *   UR_EHTTP_TOO_MANY_1XX     more interim (1xx) responses than allowed
 *   UR_EHTTP_BODY_SOURCE      the request body's file or callback ended before body_len
 *   -ETIMEDOUT                connect, read or total deadline passed
 *   -ECANCELED                the calling task was cancelled
 */
UR_EXPORT int ur_http_request(struct ur_http_client *c, const struct ur_http_request *rq,
                              struct ur_http_response *r);

/* ur_http_request() of a GET of @url. */
UR_EXPORT int ur_http_get(struct ur_http_client *c, const char *url, struct ur_http_response *r);

/*
 * Starts request @rq in a task of its own on @c's loop and makes @f (caller-owned, idle or done)
 * pending; @f completes with what ur_http_request() would return. Callable from a task or from
 * outside one (then run the loop, or ur_await(@f) / ur_gather()). @c, @rq, what @rq points at
 * and @r stay the caller's and must stay valid and untouched until @f has completed.
 * Cancelling @f (ur_cancel, ur_wait_for's expiry, a gather cancelling on error) cancels the
 * request: @f then completes, with -ECANCELED, only once the request has stopped touching
 * @rq and @r, which are then safe to free.
 * Returns 0; -ENOMEM, -EBUSY (@f pending), UR_ELOOPCLOSED; @f is then never completed.
 */
UR_EXPORT int ur_http_request_start(struct ur_http_client *c, const struct ur_http_request *rq,
                                    struct ur_http_response *r, struct ur_future *f);

#ifdef __cplusplus
}
#endif

#endif
