/* SPDX-License-Identifier: MIT */
/*
 * proto/net.c - TCP connect with Happy Eyeballs (RFC 8305), Unix connect, and listen helpers.
 *
 * Connecting is one task waiting on a small set of futures: the connect attempts in flight and
 * one absolute-time timer. The timer fires at the earlier of "start the next attempt" and the
 * overall deadline; it is never cancelled to be moved, because the next start time only moves
 * later: when it fires early the loop finds nothing due and arms it again. docs/net.md has the
 * reasoning behind the order and the timings.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <urio.h>
#include <urio/net.h>
#include <urio/resolve.h>

struct attempt {
	struct ur_future f;
	const struct ur_addr *addr;
	int fd;
	bool pending;
};

struct eyeballs {
	const struct ur_connect_opts *o;
	struct ur_loop *loop;
	uint64_t deadline; /* absolute, 0 for none */
	struct attempt att[UR_CONNECT_MAX_ADDRS];
	size_t n, next, npending;
	struct ur_future timer;
	bool timer_pending;
	int winner; /* index into att, -1 until one connects */
};

/*
 * RFC 8305 section 4: interleave the families, IPv6 first ("First Address Family Count" of 1),
 * each family keeping the resolver's (RFC 6724) order.
 */
static size_t interleave(const struct ur_addr *in, size_t n, const struct ur_addr **out)
{
	const struct ur_addr *v6[UR_CONNECT_MAX_ADDRS], *other[UR_CONNECT_MAX_ADDRS];
	size_t n6 = 0, no = 0, k = 0;

	if (n > UR_CONNECT_MAX_ADDRS)
		n = UR_CONNECT_MAX_ADDRS;
	for (size_t i = 0; i < n; i++) {
		if (in[i].ss.ss_family == AF_INET6)
			v6[n6++] = &in[i];
		else
			other[no++] = &in[i];
	}
	for (size_t i = 0; i < n6 || i < no; i++) {
		if (i < n6)
			out[k++] = v6[i];
		if (i < no)
			out[k++] = other[i];
	}
	return k;
}

/* Opens a socket for @a->addr and starts its connect. Returns 0 or -errno (nothing left open). */
static int attempt_start(struct eyeballs *he, struct attempt *a)
{
	const struct ur_connect_opts *o = he->o;
	int fd = socket(a->addr->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (!(o->flags & UR_CONNECT_NO_NODELAY)) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	ur_future_init(&a->f, NULL, NULL);
	if (o->attempt_timeout_ns)
		ur_future_set_deadline(&a->f, o->attempt_timeout_ns);
	int r = ur_connect_start(he->loop, &a->f, fd, (const struct sockaddr *)&a->addr->ss,
	                         a->addr->len);
	if (r < 0) {
		close(fd);
		return r;
	}
	a->fd = fd;
	a->pending = true;
	he->npending++;
	return 0;
}

/* Stops every attempt but the winner, waits for their final completions, closes their sockets. */
static void eyeballs_cleanup(struct eyeballs *he)
{
	for (size_t i = 0; i < he->next; i++)
		if (he->att[i].pending)
			ur_cancel(&he->att[i].f);
	if (he->timer_pending)
		ur_cancel(&he->timer);
	for (size_t i = 0; i < he->next; i++) {
		struct attempt *a = &he->att[i];
		if (a->pending)
			ur_await(
			    &a->f); /* even in a cancelled task: waits for the final completion */
		a->pending = false;
		if ((int)i != he->winner && a->fd >= 0) {
			close(a->fd); /* nothing is pending on it any more */
			a->fd = -1;
		}
	}
	if (he->timer_pending)
		ur_await(&he->timer);
	he->timer_pending = false;
}

static int eyeballs(struct eyeballs *he, const struct ur_addr *addrs, size_t naddrs)
{
	const struct ur_addr *order[UR_CONNECT_MAX_ADDRS];
	uint64_t delay =
	    he->o->attempt_delay_ns ? he->o->attempt_delay_ns : UR_CONNECT_ATTEMPT_DELAY;
	uint64_t next_at = 0;
	int last_err = -ECONNREFUSED, r = 0;

	he->n = interleave(addrs, naddrs, order);
	for (size_t i = 0; i < he->n; i++)
		he->att[i] = (struct attempt){.addr = order[i], .fd = -1};
	ur_future_init(&he->timer, NULL, NULL);

	for (;;) {
		uint64_t now = ur_now_ns();
		if (he->deadline && now >= he->deadline) {
			r = -ETIMEDOUT;
			break;
		}
		/* the next attempt: now if none is in flight, else once the delay has passed */
		while (he->next < he->n && (he->npending == 0 || now >= next_at)) {
			int e = attempt_start(he, &he->att[he->next++]);
			if (e < 0) {
				last_err = e;
				continue;
			}
			next_at = now + delay;
			break;
		}
		if (he->npending == 0) {
			r = last_err;
			break;
		}
		uint64_t wake = he->next < he->n ? next_at : UINT64_MAX;
		if (he->deadline && he->deadline < wake)
			wake = he->deadline;
		if (wake != UINT64_MAX && !he->timer_pending) {
			r = ur_timeout_start(he->loop, &he->timer, wake, UR_TIMEOUT_ABS);
			if (r < 0)
				break;
			he->timer_pending = true;
		}

		struct ur_future *fs[UR_CONNECT_MAX_ADDRS + 1];
		size_t k = 0;
		for (size_t i = 0; i < he->next; i++)
			if (he->att[i].pending)
				fs[k++] = &he->att[i].f;
		if (he->timer_pending)
			fs[k++] = &he->timer;
		r = ur_wait_any(fs, k);
		if (r < 0)
			break; /* cancelled */
		if (he->timer_pending && ur_future_done(&he->timer))
			he->timer_pending = false;
		for (size_t i = 0; i < he->next; i++) {
			struct attempt *a = &he->att[i];
			if (!a->pending || !ur_future_done(&a->f))
				continue;
			a->pending = false;
			he->npending--;
			if (a->f.res == 0 && he->winner < 0) {
				he->winner = (int)i;
				continue;
			}
			if (a->f.res < 0)
				last_err = a->f.res;
			close(a->fd);
			a->fd = -1;
			next_at = 0; /* a failure starts the next attempt at once */
		}
		if (he->winner >= 0) {
			r = 0;
			break;
		}
	}
	eyeballs_cleanup(he);
	return he->winner >= 0 ? he->winner : r;
}

static int make_stream(struct ur_stream *s, int fd, const struct ur_connect_opts *o)
{
	int r = ur_stream_init(s, fd, o->limit);
	if (r < 0)
		close(fd);
	return r;
}

int ur_tcp_connect(struct ur_stream *s, const char *host, uint16_t port,
                   const struct ur_connect_opts *o)
{
	static const struct ur_connect_opts none = {0};
	struct ur_addr addrs[UR_RESOLVE_MAX];
	const struct ur_addr *list = addrs;
	size_t n;

	if (!o)
		o = &none;
	if (o->limit > UR_STREAM_LIMIT_MAX || (!o->addrs && !host) || (o->addrs && !o->naddrs))
		return -EINVAL;
	struct ur_loop *loop = ur_current_loop();
	if (!loop)
		return UR_ENOTASK;
	if (ur_cancelled())
		return -ECANCELED;
	uint64_t deadline = o->timeout_ns ? ur_now_ns() + o->timeout_ns : 0;

	if (o->addrs) {
		list = o->addrs;
		n = o->naddrs;
	} else {
		if (deadline)
			ur_deadline(o->timeout_ns);
		int r = ur_resolve(host, port, o->resolve, addrs, UR_RESOLVE_MAX);
		if (r < 0)
			return r;
		n = (size_t)r;
	}

	struct eyeballs he = {.o = o, .loop = loop, .deadline = deadline, .winner = -1};
	int w = eyeballs(&he, list, n);
	if (w < 0)
		return w;
	if (o->peer)
		*o->peer = *he.att[w].addr;
	return make_stream(s, he.att[w].fd, o);
}

int ur__stream_op_start(struct ur_loop *loop, struct ur_future *f, struct ur_stream_op *op,
                        ssize_t (*run)(struct ur_stream_op *));

static ssize_t run_connect(struct ur_stream_op *op)
{
	return ur_tcp_connect(op->s_, op->ext_[0], op->port_, op->ext_[1]);
}

int ur_tcp_connect_start(struct ur_loop *loop, struct ur_future *f, struct ur_stream_op *op,
                         struct ur_stream *s, const char *host, uint16_t port,
                         const struct ur_connect_opts *o)
{
	if (ur_future_state(f) == UR_FUTURE_PENDING)
		return -EBUSY; /* before @op is touched: it may belong to that start */
	*op = (struct ur_stream_op){.s_ = s, .ext_ = {host, o}, .port_ = port};
	return ur__stream_op_start(loop, f, op, run_connect);
}

int ur_addr_unix(const char *path, struct ur_addr *out)
{
	struct sockaddr_un *un = (struct sockaddr_un *)&out->ss;
	size_t len = strlen(path);

	memset(out, 0, sizeof(*out));
	if (len == 0)
		return -EINVAL;
	if (len >= sizeof(un->sun_path))
		return -ENAMETOOLONG;
	un->sun_family = AF_UNIX;
	memcpy(un->sun_path, path, len);
	if (path[0] == '@') {
		un->sun_path[0] = '\0'; /* abstract: the length counts, no terminator */
		out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	} else {
		out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
	}
	return 0;
}

int ur_unix_connect(struct ur_stream *s, const char *path, const struct ur_connect_opts *o)
{
	static const struct ur_connect_opts none = {0};
	struct ur_addr a;

	if (!o)
		o = &none;
	if (!path || o->limit > UR_STREAM_LIMIT_MAX)
		return -EINVAL;
	int r = ur_addr_unix(path, &a);
	if (r < 0)
		return r;
	if (!ur_current_loop())
		return UR_ENOTASK;
	if (ur_cancelled())
		return -ECANCELED;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	uint64_t t = o->timeout_ns;
	if (o->attempt_timeout_ns && (!t || o->attempt_timeout_ns < t))
		t = o->attempt_timeout_ns;
	if (t)
		ur_deadline(t);
	r = ur_connect(fd, (const struct sockaddr *)&a.ss, a.len);
	if (r < 0) {
		close(fd);
		return r;
	}
	if (o->peer)
		*o->peer = a;
	return make_stream(s, fd, o);
}

/* --- listening -------------------------------------------------------------------------------- */

static int set_int(int fd, int level, int name, int v)
{
	return setsockopt(fd, level, name, &v, sizeof(v)) < 0 ? -errno : 0;
}

int ur_listen_addr(const struct ur_addr *a, const struct ur_listen_opts *o)
{
	static const struct ur_listen_opts none = {0};
	int fam = a->ss.ss_family, r = 0;

	if (!o)
		o = &none;
	int fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (fam != AF_UNIX && !(o->flags & UR_LISTEN_NO_REUSEADDR))
		r = set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
	if (!r && (o->flags & UR_LISTEN_REUSEPORT))
		r = set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
	if (!r && fam == AF_INET6)
		r = set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, (o->flags & UR_LISTEN_V6ONLY) != 0);
	if (!r && bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0)
		r = -errno;
	if (!r && listen(fd, o->backlog > 0 ? o->backlog : SOMAXCONN) < 0)
		r = -errno;
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

int ur_tcp_listen(const char *host, uint16_t port, const struct ur_listen_opts *o)
{
	struct ur_addr a;

	if (host && *host && strcmp(host, "*") != 0) {
		if (ur_addr_numeric(host, port, &a) < 0)
			return -EINVAL;
		return ur_listen_addr(&a, o);
	}
	/* every address: dual-stack IPv6 where the machine has it */
	ur_addr_numeric("::", port, &a);
	int fd = ur_listen_addr(&a, o);
	if (fd != -EAFNOSUPPORT && fd != -EADDRNOTAVAIL)
		return fd;
	ur_addr_numeric("0.0.0.0", port, &a);
	return ur_listen_addr(&a, o);
}

int ur_unix_listen(const char *path, const struct ur_listen_opts *o)
{
	struct ur_addr a;
	if (!path)
		return -EINVAL;
	int r = ur_addr_unix(path, &a);
	return r < 0 ? r : ur_listen_addr(&a, o);
}

int ur_local_addr(int fd, struct ur_addr *out)
{
	memset(out, 0, sizeof(*out));
	out->len = sizeof(out->ss);
	return getsockname(fd, (struct sockaddr *)&out->ss, &out->len) < 0 ? -errno : 0;
}

int ur_peer_addr(int fd, struct ur_addr *out)
{
	memset(out, 0, sizeof(*out));
	out->len = sizeof(out->ss);
	return getpeername(fd, (struct sockaddr *)&out->ss, &out->len) < 0 ? -errno : 0;
}
