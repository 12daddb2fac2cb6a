/* SPDX-License-Identifier: MIT */
/*
 * urio/net.h - connecting and listening: TCP with Happy Eyeballs, Unix sockets.
 *
 * ur_tcp_connect() is asyncio's open_connection() and Go's net.Dial("tcp", ...): it resolves the
 * host (urio/resolve.h), tries every address the way RFC 8305 (Happy Eyeballs v2) says, and
 * hands back a connected stream (urio/stream.h). docs/net.md has the reasoning.
 *
 * The listen helpers are plain system calls that never wait (bind and listen do not block), so
 * they need no task; accepting is urio/io.h's ur_accept*() or the server helper (urio/server.h).
 */
#ifndef URIO_NET_H
#define URIO_NET_H

#include <stdbool.h>
#include "common.h"
#include "resolve.h"
#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

enum ur_connect_flags {
	UR_CONNECT_NO_NODELAY = 1u
	                        << 0, /* leave Nagle's algorithm on (TCP_NODELAY is the default) */
};

/* Most addresses one connect tries. */
#define UR_CONNECT_MAX_ADDRS 32

/* Happy Eyeballs' "Connection Attempt Delay" (RFC 8305 section 5): 250 ms. */
#define UR_CONNECT_ATTEMPT_DELAY (250 * UR_MSEC)

struct ur_connect_opts {
	/* Whole call, resolution included: past it, -ETIMEDOUT. 0: no limit. */
	uint64_t timeout_ns;
	/* Each connection attempt: an attempt not connected by then fails with -ETIMEDOUT and the
	 * next address is tried at once. 0: no limit of its own. */
	uint64_t attempt_timeout_ns;
	/* Delay before the next attempt starts while earlier ones are still pending. 0: 250 ms. */
	uint64_t attempt_delay_ns;
	/* Read buffer limit of the stream (ur_stream_init()). 0: UR_STREAM_LIMIT_DEFAULT. */
	size_t limit;
	/* Pre-resolved addresses (at most UR_CONNECT_MAX_ADDRS), tried with Happy Eyeballs'
	 * interleaving; their ports are used as given and the resolver is skipped (@host may then
	 * be NULL). NULL: resolve @host. Also how tests feed addresses. */
	const struct ur_addr *addrs;
	size_t naddrs;
	/* Options for the lookup (family, a lookup function); may be NULL. */
	const struct ur_resolve_opts *resolve;
	/* Out, may be NULL: the address that connected. */
	struct ur_addr *peer;
	uint32_t flags;       /* enum ur_connect_flags */
	uint32_t reserved[5]; /* must be zero */
};

/*
 * Connects to @host:@port and makes *@s a plain stream over the connection (ur_stream_init()).
 * @host is a name or a numeric address (IPv6 with or without brackets); @o may be NULL.
 *
 * Every address is tried: IPv6 and IPv4 interleaved, IPv6 first; an attempt starts when the
 * previous one fails or after the attempt delay, whichever comes first; the first to connect
 * wins and every other attempt is cancelled and its socket closed. TCP_NODELAY is set unless
 * UR_CONNECT_NO_NODELAY. Task-style: suspends the calling task.
 *
 * Returns 0 with *@s open (the caller owns it: ur_stream_close()), or the error of the last
 * attempt to fail (-ECONNREFUSED, -ETIMEDOUT for an attempt deadline, -ENETUNREACH...),
 * -ETIMEDOUT when the overall deadline passed, a resolver code (UR_ENONAME...), -ECANCELED
 * (task cancelled: every attempt stopped and closed before the return), UR_ENOTASK, -EINVAL.
 * On failure *@s is untouched and nothing is left open.
 */
UR_EXPORT int ur_tcp_connect(struct ur_stream *s, const char *host, uint16_t port,
                             const struct ur_connect_opts *o);

/*
 * ur_tcp_connect() as a future (urio/stream.h, "Future-returning forms"): @f completes with 0
 * (and *@s open) or the error. @host and @o (and what it points to) must stay valid until then.
 */
UR_EXPORT int ur_tcp_connect_start(struct ur_loop *loop, struct ur_future *f,
                                   struct ur_stream_op *op, struct ur_stream *s, const char *host,
                                   uint16_t port, const struct ur_connect_opts *o);

/*
 * Connects a Unix stream socket to @path ("@name" for the abstract namespace) and makes *@s a
 * stream over it. Of @o, only timeout_ns (or attempt_timeout_ns), limit and peer apply; @o may
 * be NULL. Task-style. Returns 0, or -ENOENT / -ECONNREFUSED / -ETIMEDOUT..., -ENAMETOOLONG
 * (path longer than sun_path), -EINVAL, -ECANCELED, UR_ENOTASK. On failure nothing is left open.
 */
UR_EXPORT int ur_unix_connect(struct ur_stream *s, const char *path,
                              const struct ur_connect_opts *o);

enum ur_listen_flags {
	UR_LISTEN_REUSEPORT =
	    1u << 0,                /* SO_REUSEPORT: several sockets (one per loop) share a port */
	UR_LISTEN_V6ONLY = 1u << 1, /* an IPv6 socket does not also take IPv4 connections */
	UR_LISTEN_NO_REUSEADDR = 1u << 2, /* SO_REUSEADDR is set unless this is given */
};

struct ur_listen_opts {
	int backlog;    /* listen(2) backlog; 0: SOMAXCONN */
	uint32_t flags; /* enum ur_listen_flags */
	uint32_t reserved[4];
};

/*
 * A listening TCP socket on @host:@port. @host must be numeric ("127.0.0.1", "::1") or NULL /
 * "" / "*" for every address (dual-stack "::" where the machine has IPv6, else 0.0.0.0); port 0
 * lets the kernel choose (read it back with ur_local_addr()). @o may be NULL.
 * Returns the descriptor (SOCK_CLOEXEC; the caller closes it), or -EINVAL (not numeric), or the
 * error of socket/setsockopt/bind/listen (-EADDRINUSE...).
 */
UR_EXPORT int ur_tcp_listen(const char *host, uint16_t port, const struct ur_listen_opts *o);

/* The same on a given address. */
UR_EXPORT int ur_listen_addr(const struct ur_addr *a, const struct ur_listen_opts *o);

/*
 * A listening Unix stream socket at @path ("@name": abstract namespace). A file already at
 * @path is not removed (-EADDRINUSE): that is the caller's decision. Returns the descriptor or
 * -errno (-ENAMETOOLONG for a path longer than sun_path).
 */
UR_EXPORT int ur_unix_listen(const char *path, const struct ur_listen_opts *o);

/* getsockname(2) / getpeername(2) of @fd into *@out. Returns 0 or -errno. */
UR_EXPORT int ur_local_addr(int fd, struct ur_addr *out);
UR_EXPORT int ur_peer_addr(int fd, struct ur_addr *out);

/* Fills *@out with a Unix socket address for @path ("@name": abstract). 0 or -ENAMETOOLONG. */
UR_EXPORT int ur_addr_unix(const char *path, struct ur_addr *out);

#ifdef __cplusplus
}
#endif

#endif
