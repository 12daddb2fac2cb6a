/* SPDX-License-Identifier: MIT */
/*
 * proto/http_priv.h - what the HTTP client's files share: the connection pool and the body
 * decoder. Not installed.
 */
#ifndef UR_PROTO_HTTP_PRIV_H
#define UR_PROTO_HTTP_PRIV_H

#include <stdbool.h>
#include <urio.h>
#include <urio/http.h>
#include <urio/url.h>

#include <urio/tls.h>

struct http_host;

/* One connection: a stream to an origin, in use by one request or idle in the pool. */
struct http_conn {
	struct ur_stream s;
	struct http_host *host;
	struct http_conn *hnext, *hprev; /* the host's idle list, most recent first */
	struct http_conn *lnext, *lprev; /* the client's idle list, most recent first */
	uint64_t idle_since;             /* ur_now_ns() when it went idle */
	uint32_t uses;                   /* exchanges sent on it */
	bool idle;
};

/* A request waiting for its origin (or the client) to have a connection to spare. */
struct http_waiter {
	struct ur_future f;
	struct http_waiter *next, *prev;
	struct http_host *host;
	bool queued;
};

/* Per origin (scheme, host, port). */
struct http_host {
	struct http_host *next; /* hash chain */
	uint32_t hash;
	enum ur_url_scheme scheme;
	uint16_t port;
	uint32_t open; /* connections in use, idle, or being opened */
	uint32_t nidle;
	struct http_conn *idle; /* most recent first */
	struct http_waiter *wait_head, *wait_tail;
	char name[UR_URL_HOST_MAX];
};

#define HTTP_POOL_BUCKETS 256

/*
 * The idle reaper: a task of the client's loop that sleeps until the coldest idle connection's
 * timeout, closes what expired, and ends when no connection is idle. Heap-owned by the task;
 * the client detaches it (c = NULL) when it closes, and the task then ends without touching it.
 */
struct http_reaper {
	struct ur_http_client *c; /* NULL once the client let go */
	struct ur_task *task;     /* valid while the reaper runs: it is detached */
	struct ur_future *done;   /* resolved as the task ends, if a closing task waits for it */
	bool *ended;              /* set as the task ends, if a close outside a task drives it */
	bool started;
};

/* c->hosts_ */
struct http_pool {
	struct http_host *buckets[HTTP_POOL_BUCKETS];
	struct http_conn *lru_head, *lru_tail; /* every idle connection, most recent first */
	uint32_t open, idle;
	uint32_t waiting;           /* requests waiting, all hosts */
	struct http_reaper *reaper; /* running while connections are idle */
};

/*
 * Takes a connection to @u's origin for one exchange: a pooled one (unless @fresh), else a new
 * one, connected (and TLS-handshaken for https) by @deadline (ur_now_ns clock). Waits while the
 * origin or the client is at its connection limit. *@reused tells which; *@connect_ns the time
 * spent connecting. @may_retry: the caller would retry the request on a fresh connection if
 * a pooled one failed before any response byte (then a recently used connection is trusted
 * without a liveness peek). Returns 0, or the connect/TLS error, -ETIMEDOUT, -ECANCELED,
 * UR_EHTTP_CLIENT_CLOSED, -ENOMEM.
 */
int ur__http_pool_get(struct ur_http_client *c, const struct ur_url *u, bool fresh, bool may_retry,
                      uint64_t deadline, struct http_conn **out, bool *reused,
                      uint64_t *connect_ns);

/* Returns @conn after an exchange: to the pool when @reusable, else closed. */
void ur__http_pool_put(struct ur_http_client *c, struct http_conn *conn, bool reusable);

/* Closes every idle connection and frees the pool (no connection may be in use). */
void ur__http_pool_free(struct ur_http_client *c);

/* --- body decoding (proto/http_decode.c) ------------------------------------------------------ */

enum http_coding {
	HTTP_CODING_GZIP = 1,
	HTTP_CODING_DEFLATE,
};

struct http_decoder;

/* Output of the decoder, called with each run of decoded bytes; < 0 stops with that error. */
typedef int http_decode_sink(void *arg, const void *data, size_t len);

/* A decoder for @coding whose decoded output may not pass @max bytes. NULL: -ENOMEM. */
int ur__http_decoder_new(struct http_decoder **d, enum http_coding coding, uint64_t max);
/* Feeds @len encoded bytes; returns 0, UR_EHTTP_DECODE, UR_EHTTP_BODY_TOO_BIG, or sink's error. */
int ur__http_decoder_feed(struct http_decoder *d, const void *data, size_t len,
                          http_decode_sink *sink, void *arg);
/* The body ended: returns 0 if the compressed stream ended exactly, else UR_EHTTP_DECODE. */
int ur__http_decoder_finish(struct http_decoder *d);
void ur__http_decoder_free(struct http_decoder *d);

#endif
