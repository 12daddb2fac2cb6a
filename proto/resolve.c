/* SPDX-License-Identifier: MIT */
/*
 * proto/resolve.c - getaddrinfo on the worker pool, numeric hosts in place, and the TTL cache.
 *
 * A lookup that leaves the thread is a heap job run by ur_to_thread_ptr(): a task cancelled
 * mid-lookup returns at once, and core hands the job to job_release() once the worker is done
 * with it. So nothing the worker touches lives on the task's stack, and no reference count is
 * kept here.
 *
 * The cache is process-wide behind one mutex: a server's loops share what one of them looked up,
 * and the lock is held only to copy at most UR_RESOLVE_MAX addresses.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include <urio.h>
#include <urio/resolve.h>

#define HOST_MAX 253 /* longest DNS name in text form */

/* --- numeric addresses and formatting --------------------------------------------------------- */

static void set_port(struct ur_addr *a, uint16_t port)
{
	if (a->ss.ss_family == AF_INET)
		((struct sockaddr_in *)&a->ss)->sin_port = htons(port);
	else if (a->ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&a->ss)->sin6_port = htons(port);
}

uint16_t ur_addr_port(const struct ur_addr *a)
{
	if (a->ss.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
	if (a->ss.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
	return 0;
}

int ur_addr_numeric(const char *host, uint16_t port, struct ur_addr *out)
{
	char tmp[INET6_ADDRSTRLEN + IF_NAMESIZE + 4];
	size_t n;

	if (!host || (n = strlen(host)) == 0 || n >= sizeof(tmp))
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	struct sockaddr_in *in = (struct sockaddr_in *)&out->ss;
	if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		out->len = sizeof(*in);
		return 0;
	}
	/* IPv6, optionally in brackets, optionally with a %scope (interface name or number) */
	if (host[0] == '[') {
		if (host[n - 1] != ']')
			return -EINVAL;
		host++;
		n -= 2;
	}
	memcpy(tmp, host, n);
	tmp[n] = '\0';
	char *scope = strchr(tmp, '%');
	if (scope)
		*scope++ = '\0';
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&out->ss;
	if (inet_pton(AF_INET6, tmp, &in6->sin6_addr) != 1)
		return -EINVAL;
	if (scope) {
		char *end;
		unsigned long id = strtoul(scope, &end, 10);
		if (*scope == '\0')
			return -EINVAL;
		if (*end != '\0')
			id = if_nametoindex(scope);
		if (id == 0 || id > UINT32_MAX)
			return -EINVAL;
		in6->sin6_scope_id = (uint32_t)id;
	}
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(port);
	out->len = sizeof(*in6);
	return 0;
}

char *ur_addr_format(const struct ur_addr *a, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (len == 0)
		return buf;
	switch (a->ss.ss_family) {
	case AF_INET:
		inet_ntop(AF_INET, &((const struct sockaddr_in *)&a->ss)->sin_addr, host,
		          sizeof(host));
		snprintf(buf, len, "%s:%u", host, ur_addr_port(a));
		break;
	case AF_INET6:
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&a->ss)->sin6_addr, host,
		          sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ur_addr_port(a));
		break;
	case AF_UNIX: {
		const struct sockaddr_un *un = (const struct sockaddr_un *)&a->ss;
		size_t off = offsetof(struct sockaddr_un, sun_path);
		size_t plen = a->len > off ? a->len - off : 0;
		if (plen > 0 && un->sun_path[0] == '\0') /* abstract: not NUL-terminated */
			snprintf(buf, len, "unix:@%.*s", (int)(plen - 1), un->sun_path + 1);
		else
			snprintf(buf, len, "unix:%.*s", (int)strnlen(un->sun_path, plen),
			         un->sun_path);
		break;
	}
	default:
		snprintf(buf, len, "family %d", a->ss.ss_family);
	}
	return buf;
}

struct job {
	int family;
	bool use_cache;
	ur_resolve_fn *fn;
	void *fn_arg;
	int n;
	struct ur_addr addrs[UR_RESOLVE_MAX];
	char host[];
};

/* --- the cache -------------------------------------------------------------------------------- */

struct entry {
	char *host;
	int family;
	ur_resolve_fn *fn; /* answers of a lookup function are kept apart from getaddrinfo's */
	void *fn_arg;
	unsigned n;
	uint64_t expires, used; /* CLOCK_MONOTONIC ns */
	struct ur_addr addrs[UR_RESOLVE_MAX];
};

static struct {
	pthread_mutex_t lock;
	struct entry **e;
	size_t n, max;
	uint64_t ttl;
	struct ur_resolve_stats st;
} cache = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 256, 60 * UR_SEC, {0}};

static void entry_free(struct entry *e)
{
	free(e->host);
	free(e);
}

/* Drops entry @i (lock held). */
static void cache_drop(size_t i)
{
	entry_free(cache.e[i]);
	cache.e[i] = cache.e[--cache.n];
}

/* Copies a live entry for (@host, @family) into @out; returns the count or 0 (lock held). */
static bool same_key(const struct entry *e, const struct job *j)
{
	return e->family == j->family && e->fn == j->fn && e->fn_arg == j->fn_arg &&
	       strcasecmp(e->host, j->host) == 0;
}

static int cache_get(const struct job *j, struct ur_addr *out, size_t max)
{
	uint64_t now = ur_now_ns();
	for (size_t i = 0; i < cache.n; i++) {
		struct entry *e = cache.e[i];
		if (!same_key(e, j))
			continue;
		if (e->expires <= now) {
			cache_drop(i);
			return 0;
		}
		e->used = now;
		size_t n = e->n < max ? e->n : max;
		memcpy(out, e->addrs, n * sizeof(*out));
		return (int)n;
	}
	return 0;
}

static void cache_put(const struct job *j, unsigned n)
{
	struct entry *e = calloc(1, sizeof(*e));
	if (!e || !(e->host = strdup(j->host))) {
		free(e);
		return; /* caching is best effort */
	}
	e->family = j->family;
	e->fn = j->fn;
	e->fn_arg = j->fn_arg;
	e->n = n;
	memcpy(e->addrs, j->addrs, n * sizeof(*e->addrs));

	pthread_mutex_lock(&cache.lock);
	uint64_t now = ur_now_ns();
	e->used = now;
	e->expires = now + cache.ttl;
	/* replace an older answer for the same name, then make room: expired first, else LRU */
	for (size_t i = 0; i < cache.n; i++)
		if (same_key(cache.e[i], j)) {
			cache_drop(i);
			break;
		}
	if (cache.max == 0) {
		entry_free(e);
		goto out;
	}
	if (cache.n >= cache.max) {
		size_t victim = 0;
		for (size_t i = 0; i < cache.n; i++) {
			if (cache.e[i]->expires <= now) {
				victim = i;
				break;
			}
			if (cache.e[i]->used < cache.e[victim]->used)
				victim = i;
		}
		cache_drop(victim);
		cache.st.evictions++;
	}
	if (!cache.e) {
		cache.e = calloc(cache.max, sizeof(*cache.e));
		if (!cache.e) {
			entry_free(e);
			goto out;
		}
	}
	cache.e[cache.n++] = e;
out:
	pthread_mutex_unlock(&cache.lock);
}

int ur_resolve_cache_config(size_t max_entries, uint64_t ttl_ns)
{
	if (max_entries > 65536)
		return -EINVAL;
	pthread_mutex_lock(&cache.lock);
	while (cache.n > max_entries)
		cache_drop(cache.n - 1);
	struct entry **e = NULL;
	if (max_entries > 0 && (e = calloc(max_entries, sizeof(*e))) == NULL) {
		pthread_mutex_unlock(&cache.lock);
		return -ENOMEM;
	}
	if (cache.n)
		memcpy(e, cache.e, cache.n * sizeof(*e));
	free(cache.e);
	cache.e = e;
	cache.max = max_entries;
	cache.ttl = ttl_ns;
	pthread_mutex_unlock(&cache.lock);
	return 0;
}

void ur_resolve_cache_clear(void)
{
	pthread_mutex_lock(&cache.lock);
	while (cache.n > 0)
		cache_drop(cache.n - 1);
	pthread_mutex_unlock(&cache.lock);
}

void ur_resolve_stats(struct ur_resolve_stats *out)
{
	pthread_mutex_lock(&cache.lock);
	*out = cache.st;
	out->entries = (uint32_t)cache.n;
	pthread_mutex_unlock(&cache.lock);
}

static void count(uint64_t *counter)
{
	pthread_mutex_lock(&cache.lock);
	(*counter)++;
	pthread_mutex_unlock(&cache.lock);
}

/* --- the lookup on a worker thread ------------------------------------------------------------ */

static int map_gai(int e)
{
	switch (e) {
	case EAI_NONAME:
#ifdef EAI_NODATA
	case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
	case EAI_ADDRFAMILY:
#endif
		return UR_ENONAME;
	case EAI_AGAIN:
		return UR_ENAMETEMP;
	case EAI_FAIL:
		return UR_ENAMEFAIL;
	case EAI_FAMILY:
		return UR_EFAMILY;
	case EAI_MEMORY:
		return -ENOMEM;
	case EAI_SYSTEM:
		return errno > 0 ? -errno : UR_ERESOLVE;
	default:
		return UR_ERESOLVE;
	}
}

static int gai_lookup(const char *host, int family, struct ur_addr *out, size_t max)
{
	struct addrinfo hints = {.ai_family = family, .ai_socktype = SOCK_STREAM}, *res, *ai;
	int e = getaddrinfo(host, NULL, &hints, &res);
	if (e != 0)
		return map_gai(e);
	size_t n = 0;
	for (ai = res; ai && n < max; ai = ai->ai_next) {
		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    ai->ai_addrlen > sizeof(out->ss))
			continue;
		bool dup = false;
		for (size_t i = 0; i < n && !dup; i++)
			dup = out[i].len == ai->ai_addrlen &&
			      memcmp(&out[i].ss, ai->ai_addr, ai->ai_addrlen) == 0;
		if (dup)
			continue;
		memset(&out[n], 0, sizeof(out[n]));
		memcpy(&out[n].ss, ai->ai_addr, ai->ai_addrlen);
		out[n].len = ai->ai_addrlen;
		set_port(&out[n], 0);
		n++;
	}
	freeaddrinfo(res);
	return n > 0 ? (int)n : UR_ENONAME;
}

/* The worker's half; its result is the job itself (j->n holds the answer). */
static void *job_run(void *arg)
{
	struct job *j = arg;
	int n = j->fn ? j->fn(j->host, j->family, j->addrs, UR_RESOLVE_MAX, j->fn_arg)
	              : gai_lookup(j->host, j->family, j->addrs, UR_RESOLVE_MAX);
	if (n > UR_RESOLVE_MAX)
		n = UR_RESOLVE_MAX;
	if (n == 0)
		n = UR_ENONAME;
	if (n > 0 && j->use_cache)
		cache_put(j, (unsigned)n);
	j->n = n;
	return j;
}

/* The caller left mid-lookup (cancelled, timed out): core hands the finished job back here. */
static void job_release(void *arg, void *result)
{
	(void)result;
	free(arg);
}

/* RFC 6761 6.4: "invalid" names get an immediate negative answer, without any query. */
static bool is_invalid_tld(const char *host, size_t len)
{
	while (len > 0 && host[len - 1] == '.')
		len--; /* a fully qualified "x.invalid." */
	return (len == 7 && strncasecmp(host, "invalid", 7) == 0) ||
	       (len > 7 && strncasecmp(host + len - 8, ".invalid", 8) == 0);
}

int ur_resolve(const char *host, uint16_t port, const struct ur_resolve_opts *opts,
               struct ur_addr *out, size_t max)
{
	static const struct ur_resolve_opts none = {0};
	size_t len;

	if (!opts)
		opts = &none;
	if (!host || (len = strlen(host)) == 0 || len > HOST_MAX || max == 0)
		return -EINVAL;
	if (opts->family != AF_UNSPEC && opts->family != AF_INET && opts->family != AF_INET6)
		return UR_EFAMILY;
	if (ur_addr_numeric(host, port, &out[0]) == 0) {
		int fam = out[0].ss.ss_family;
		ur_deadline(
		    UR_NO_DEADLINE); /* answered without waiting: ur_deadline()'s is spent */
		return opts->family == AF_UNSPEC || opts->family == fam ? 1 : UR_ENONAME;
	}
	if (!ur_task_current())
		return UR_ENOTASK;
	if (ur_cancelled())
		return -ECANCELED;

	struct job *j = malloc(sizeof(*j) + len + 1);
	if (!j)
		return -ENOMEM;
	j->family = opts->family;
	j->use_cache = !(opts->flags & UR_RESOLVE_NO_CACHE);
	j->fn = opts->fn;
	j->fn_arg = opts->fn_arg;
	j->n = 0;
	memcpy(j->host, host, len + 1);

	int n = 0;
	pthread_mutex_lock(&cache.lock);
	cache.st.lookups++;
	if (j->use_cache && (n = cache_get(j, out, max)) > 0)
		cache.st.hits++;
	pthread_mutex_unlock(&cache.lock);

	if (n > 0) {
		free(j);
		ur_deadline(UR_NO_DEADLINE);
	} else if (!opts->fn && is_invalid_tld(host, len)) {
		free(j);
		ur_deadline(UR_NO_DEADLINE);
		n = UR_ENONAME;
	} else {
		count(&cache.st.misses);
		int r = ur_to_thread_ptr(job_run, j, job_release, NULL);
		if (r == -ECANCELED || r == -ETIMEDOUT) {
			n = r; /* the caller left: job_release() has or will have the job */
		} else {
			n = r == 0 ? j->n : r; /* the worker's answer is never 0 */
			if (n > 0) {
				n = n < (int)max ? n : (int)max;
				memcpy(out, j->addrs, (size_t)n * sizeof(*out));
			}
			free(j);
		}
	}
	if (n < 0) {
		count(&cache.st.failures);
		return n;
	}
	for (int i = 0; i < n; i++)
		set_port(&out[i], port);
	return n;
}
