/* SPDX-License-Identifier: MIT */
/*
 * urio/resolve.h - name resolution: getaddrinfo(3) on urio's worker pool, with a small cache.
 *
 * A lookup of a numeric host ("127.0.0.1", "::1", "fe80::1%eth0") is answered on the calling
 * thread and never leaves it. Any other name goes to the ur_to_thread pool, because getaddrinfo
 * blocks (files, DNS, NSS modules); the calling task suspends meanwhile. Answers are kept in a
 * process-wide cache (one lock; lookups are rare next to the I/O they precede) for a TTL, since
 * getaddrinfo does not report the records' own TTLs; failures are not cached. Names under
 * ".invalid" fail at once without a query (RFC 6761 section 6.4).
 *
 * Results are plain sockaddrs in caller-owned arrays: nothing to free.
 */
#ifndef URIO_RESOLVE_H
#define URIO_RESOLVE_H

#include <stdbool.h>
#include <sys/socket.h>
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One socket address of any family urio connects to (IPv4, IPv6, Unix). */
struct ur_addr {
	struct sockaddr_storage ss; /* the address; ss.ss_family tells which */
	socklen_t len;              /* its length, as connect(2) and bind(2) take it */
};

/* Most addresses one lookup returns; the rest are dropped (RFC 6724 order is kept). */
#define UR_RESOLVE_MAX 16

/*
 * A lookup function on a worker thread, in place of getaddrinfo (tests, custom name services).
 * Fills @out[0..max) with addresses for @host in @family (AF_UNSPEC, AF_INET, AF_INET6), port 0,
 * and returns how many (>= 1), or a UR_E* resolver code / -errno. Runs on a pool thread: it
 * must not touch a loop.
 */
typedef int ur_resolve_fn(const char *host, int family, struct ur_addr *out, size_t max, void *arg);

enum ur_resolve_flags {
	UR_RESOLVE_NO_CACHE = 1u << 0, /* neither read nor fill the cache */
};

struct ur_resolve_opts {
	int family;        /* AF_UNSPEC (default, 0), AF_INET or AF_INET6 */
	uint32_t flags;    /* enum ur_resolve_flags */
	ur_resolve_fn *fn; /* NULL: getaddrinfo. Answers of @fn are cached apart, under @fn_arg */
	void *fn_arg;
	uint32_t reserved[4]; /* must be zero */
};

/*
 * Resolves @host to at most @max addresses with port @port (host order), stored in @out in the
 * resolver's order (getaddrinfo's RFC 6724 sort; duplicates removed; TCP addresses only).
 * Task-style: suspends the calling task while a worker thread looks the name up; honours the
 * task's next-operation deadline (ur_deadline), which it uses up even when it answers without
 * waiting (a numeric host, a cache hit). @opts may be NULL.
 *
 * Returns the number of addresses (1..@max), or:
 *   UR_ENONAME      the name does not exist (or has no address of the family asked for)
 *   UR_ENAMETEMP    temporary failure (no answer from the name server, no network)
 *   UR_ENAMEFAIL    non-recoverable failure of the name service
 *   UR_EFAMILY      the family asked for is not supported
 *   UR_ERESOLVE     any other getaddrinfo failure
 *   -EINVAL         @host NULL or empty, or longer than 253 bytes; @max == 0
 *   -ENOMEM, -ECANCELED (task cancelled), -ETIMEDOUT (deadline), UR_ENOTASK (outside a task,
 *                   for a name that is not numeric)
 * Cancelled or timed out, the call returns at once; the worker finishes the lookup on its own
 * (the answer still fills the cache) and frees what it used.
 */
UR_EXPORT int ur_resolve(const char *host, uint16_t port, const struct ur_resolve_opts *opts,
                         struct ur_addr *out, size_t max);

/*
 * Parses a numeric host (IPv4 dotted quad, IPv6 with an optional %scope) into *@out with @port.
 * Never blocks, needs no task. Returns 0, or -EINVAL if @host is not a numeric address.
 */
UR_EXPORT int ur_addr_numeric(const char *host, uint16_t port, struct ur_addr *out);

/*
 * Writes @a as text into @buf (@len bytes, NUL-terminated, truncated if short):
 * "127.0.0.1:80", "[::1]:443", "unix:/path" (abstract: "unix:@name"). Returns @buf.
 */
UR_EXPORT char *ur_addr_format(const struct ur_addr *a, char *buf, size_t len);

/* Port of an IPv4/IPv6 address (host order), 0 for other families. */
UR_EXPORT uint16_t ur_addr_port(const struct ur_addr *a);

/*
 * The cache: at most @max_entries names (0 turns caching off), each answer kept @ttl_ns.
 * Defaults: 256 names, 60 s. Applies from the next lookup; entries over the new size are dropped.
 * Thread-safe. Returns 0, or -EINVAL (@max_entries > 65536).
 */
UR_EXPORT int ur_resolve_cache_config(size_t max_entries, uint64_t ttl_ns);

/* Empties the cache (the counters are kept). Thread-safe. */
UR_EXPORT void ur_resolve_cache_clear(void);

struct ur_resolve_stats {
	uint64_t lookups;   /* ur_resolve calls that were not numeric */
	uint64_t hits;      /* answered from the cache */
	uint64_t misses;    /* sent to a worker thread */
	uint64_t failures;  /* lookups that ended in an error */
	uint64_t evictions; /* entries dropped for room */
	uint32_t entries;   /* names in the cache now */
	uint32_t reserved_;
};

/* Copies the process-wide resolver counters into *@out. Thread-safe. */
UR_EXPORT void ur_resolve_stats(struct ur_resolve_stats *out);

#ifdef __cplusplus
}
#endif

#endif
