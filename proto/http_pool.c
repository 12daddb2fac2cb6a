/* SPDX-License-Identifier: MIT */
/*
 * proto/http_pool.c - the HTTP client's keep-alive pool: connections per origin (scheme, host,
 * port) under a per-origin and a total limit, an idle timeout, and a queue of requests waiting
 * for a connection to spare.
 *
 * Idle connections are kept most-recent-first, per origin and client-wide: a request takes the
 * warmest one of its origin, and the total limit evicts the coldest one of another origin. An
 * idle connection past its timeout is closed by the reaper, a task that runs only while some
 * connection is idle and sleeps until the coldest one expires (one heap timer, no SQE), and
 * whenever the pool looks at it anyway (a take, a return). A connection taken from the pool is
 * first checked for end-of-stream or unsolicited bytes with a non-blocking peek (one system call,
 * urllib3's check), so a server's idle close is seen before a request is written into it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <urio/net.h>

#include "http_priv.h"

static struct http_pool *pool_of(struct ur_http_client *c)
{
	if (!c->hosts_)
		c->hosts_ = calloc(1, sizeof(struct http_pool));
	return c->hosts_;
}

static uint32_t host_hash(enum ur_url_scheme scheme, const char *name, uint16_t port)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const char *p = name; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	h = (h ^ (uint32_t)scheme) * 16777619u;
	return (h ^ port) * 16777619u;
}

static struct http_host *host_get(struct http_pool *p, const struct ur_url *u)
{
	uint32_t h = host_hash(u->scheme, u->host, u->port);
	struct http_host **b = &p->buckets[h % HTTP_POOL_BUCKETS];
	for (struct http_host *x = *b; x; x = x->next)
		if (x->hash == h && x->scheme == u->scheme && x->port == u->port &&
		    strcmp(x->name, u->host) == 0)
			return x;
	struct http_host *x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	x->hash = h;
	x->scheme = u->scheme;
	x->port = u->port;
	memcpy(x->name, u->host, sizeof(x->name));
	x->next = *b;
	*b = x;
	return x;
}

/* --- idle lists --------------------------------------------------------------------------- */

static void idle_push(struct http_pool *p, struct http_conn *k)
{
	struct http_host *h = k->host;
	k->idle = true;
	k->hprev = NULL;
	k->hnext = h->idle;
	if (h->idle)
		h->idle->hprev = k;
	h->idle = k;
	h->nidle++;
	k->lprev = NULL;
	k->lnext = p->lru_head;
	if (p->lru_head)
		p->lru_head->lprev = k;
	else
		p->lru_tail = k;
	p->lru_head = k;
	p->idle++;
}

static void idle_unlink(struct http_pool *p, struct http_conn *k)
{
	struct http_host *h = k->host;
	if (k->hprev)
		k->hprev->hnext = k->hnext;
	else
		h->idle = k->hnext;
	if (k->hnext)
		k->hnext->hprev = k->hprev;
	h->nidle--;
	if (k->lprev)
		k->lprev->lnext = k->lnext;
	else
		p->lru_head = k->lnext;
	if (k->lnext)
		k->lnext->lprev = k->lprev;
	else
		p->lru_tail = k->lprev;
	p->idle--;
	k->idle = false;
}

/* --- waiting for a connection ---------------------------------------------------------------- */

static void wait_unlink(struct http_pool *p, struct http_waiter *w)
{
	struct http_host *h = w->host;
	if (!w->queued)
		return;
	if (w->prev)
		w->prev->next = w->next;
	else
		h->wait_head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		h->wait_tail = w->prev;
	w->queued = false;
	p->waiting--;
}

static void wake(struct http_pool *p, struct http_waiter *w)
{
	wait_unlink(p, w);
	ur_future_resolve(&w->f, 0);
}

/*
 * A connection of @h was returned or closed: wake the first request waiting for @h, or, when a
 * slot of the total limit came free (@freed), the first waiting for any origin.
 */
static void wake_next(struct http_pool *p, struct http_host *h, bool freed)
{
	if (h && h->wait_head) {
		wake(p, h->wait_head);
		return;
	}
	if (!freed || p->waiting == 0)
		return;
	for (size_t i = 0; i < HTTP_POOL_BUCKETS; i++)
		for (struct http_host *x = p->buckets[i]; x; x = x->next)
			if (x->wait_head) {
				wake(p, x->wait_head);
				return;
			}
}

/* --- opening and closing -------------------------------------------------------------------- */

/*
 * Closes @k. The pool's books are settled before the stream is closed, as closing may suspend
 * the calling task and the pool (or the client) may be gone when it resumes.
 */
static void conn_close(struct ur_http_client *c, struct http_conn *k)
{
	struct http_pool *p = c->hosts_;
	struct http_host *h = k->host;
	if (k->idle)
		idle_unlink(p, k);
	h->open--;
	p->open--;
	c->st_.open = p->open;
	c->st_.idle = p->idle;
	wake_next(p, h, true);
	if (k->s.fd >= 0)
		ur_stream_close(&k->s);
	free(k);
}

/* Closes idle connections past the idle timeout, oldest first. */
static void sweep(struct ur_http_client *c, uint64_t now)
{
	struct http_pool *p = c->hosts_;
	while (p->lru_tail && now - p->lru_tail->idle_since >= c->o_.idle_timeout_ns)
		conn_close(c, p->lru_tail);
}

/* --- the idle reaper -------------------------------------------------------------------------- */

static int reaper_main(void *arg)
{
	struct http_reaper *r = arg;
	r->started = true;
	while (r->c) {
		struct ur_http_client *c = r->c;
		struct http_pool *p = c->hosts_;
		if (!p->lru_tail)
			break; /* nothing idle: a later return spawns a new reaper */
		uint64_t now = ur_now_ns(), since = p->lru_tail->idle_since;
		uint64_t t = c->o_.idle_timeout_ns;
		uint64_t at = t >= UINT64_MAX - since ? UINT64_MAX : since + t;
		if (at > now && ur_sleep(at - now) < 0)
			break; /* cancelled: the client is closing */
		if (!r->c)
			break;
		/* one at a time: closing suspends, and the client may close meanwhile */
		if (p->lru_tail && ur_now_ns() - p->lru_tail->idle_since >= c->o_.idle_timeout_ns)
			conn_close(c, p->lru_tail);
	}
	if (r->c)
		((struct http_pool *)r->c->hosts_)->reaper = NULL;
	if (r->done)
		ur_future_resolve(r->done, 0);
	if (r->ended)
		*r->ended = true;
	free(r);
	return 0;
}

/* A connection went idle: make sure a reaper watches the pool. Failing to start one is
   harmless (the pool still sweeps when it looks), so errors are dropped. */
static void reaper_ensure(struct ur_http_client *c, struct http_pool *p)
{
	if (p->reaper || c->closing_ || c->o_.idle_timeout_ns == UR_HTTP_NO_TIMEOUT)
		return;
	struct http_reaper *r = calloc(1, sizeof(*r));
	if (!r)
		return;
	r->c = c;
	if (ur_spawn(c->loop_, &r->task, reaper_main, r, NULL) < 0) {
		free(r);
		return;
	}
	ur_task_detach(r->task);
	p->reaper = r;
}

/*
 * The client closes: stop the reaper and wait until it has ended, so that the loop has nothing
 * of the client's pending after ur_http_client_close(). From a task: await it. Outside any task:
 * turn the loop without waiting until it ended (refused inside a loop callback: it then ends on
 * the loop's next turn, touching nothing of the client's).
 */
static void reaper_stop(struct ur_http_client *c, struct http_pool *p)
{
	struct http_reaper *r = p->reaper;
	if (!r)
		return;
	p->reaper = NULL;
	r->c = NULL;
	bool ended = false;
	struct ur_future done;
	bool in_task = ur_current_loop() != NULL;
	if (in_task) {
		ur_future_init(&done, NULL, NULL);
		if (ur_future_begin(c->loop_, &done) == 0)
			r->done = &done;
	} else {
		r->ended = &ended;
	}
	/* a reaper that has not run yet sees c == NULL and ends; cancelling it would drop it
	   unrun, and nothing would resolve @done */
	if (r->started)
		ur_task_cancel(r->task);
	if (r->done) {
		ur_await(&done); /* r is freed by now */
		return;
	}
	for (int i = 0; i < 64 && !ended; i++)
		if (ur_loop_run(c->loop_, UR_RUN_NOWAIT) < 0)
			break;
	if (!ended && !in_task) /* r outlives this frame: it must not write to it */
		r->ended = NULL;
}

/*
 * True if idle connection @k looks usable: nothing to read (no end of stream, no unsolicited
 * bytes, no pending error), checked with a non-blocking peek. A TLS close_notify counts as bytes.
 * The peek is a syscall outside the ring on every reuse; when the request may be retried (on a
 * fresh connection, if this one turns out dead before any response byte) and the connection
 * went idle less than ALIVE_TRUST_NS ago, it is skipped, as the retry covers what it would catch.
 */
#define ALIVE_TRUST_NS (1 * UR_SEC)

static bool conn_alive(struct http_conn *k, uint64_t now, bool may_retry)
{
	size_t buffered;
	char b;
	ur_stream_buffered(&k->s, &buffered);
	if (buffered)
		return false;
	if (may_retry && now - k->idle_since < ALIVE_TRUST_NS)
		return true;
	int saved = errno; /* the library leaves errno as it found it */
	ssize_t n = recv(k->s.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	bool alive = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
	errno = saved;
	return alive;
}

static int conn_open(struct ur_http_client *c, struct http_host *h, const struct ur_url *u,
                     uint64_t deadline, struct http_conn **out)
{
	uint64_t now = ur_now_ns();
	if (now >= deadline)
		return -ETIMEDOUT;
	struct http_conn *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->s.fd = -1;
	k->host = h;

	size_t limit = c->lim_.max_header_bytes + 4096;
	if (limit < UR_STREAM_LIMIT_DEFAULT)
		limit = UR_STREAM_LIMIT_DEFAULT;
	uint64_t ct = c->o_.connect_timeout_ns;
	if (ct != UR_HTTP_NO_TIMEOUT && ct < deadline - now)
		deadline = now + ct; /* the connect deadline: the request's, or sooner */
	uint64_t left = deadline - now;
	struct ur_connect_opts co = {.timeout_ns = left == UINT64_MAX - now ? 0 : left,
	                             .limit = limit};
	int r = ur_tcp_connect(&k->s, u->host, u->port, &co);
	if (r < 0) {
		k->s.fd = -1;
		goto fail;
	}
	if (u->scheme == UR_URL_HTTPS) {
		if (!c->o_.tls && !c->tls_own_) {
			/* pooled connections are busy ones: their buffers are kept (docs/http.md)
			 */
			struct ur_tls_opts to = {.flags = UR_TLS_KEEP_BUFFERS};
			r = ur_tls_ctx_new(&c->tls_own_, UR_TLS_CLIENT, &to);
			if (r < 0)
				goto fail;
		}
		ur_stream_set_deadline(&k->s, deadline == UINT64_MAX ? UR_NO_DEADLINE : deadline);
		r = ur_tls_client(&k->s, c->o_.tls ? c->o_.tls : c->tls_own_, u->host);
		if (r < 0)
			goto fail;
	}
	c->st_.connections++;
	*out = k;
	return 0;
fail:
	if (k->s.fd >= 0)
		ur_stream_close(&k->s);
	free(k);
	return r;
}

/* Waits until woken by a returned or closed connection, or until @deadline. */
static int wait_turn(struct http_pool *p, struct http_host *h, uint64_t deadline, bool front)
{
	struct http_waiter w = {.host = h, .queued = true};
	ur_future_init(&w.f, NULL, NULL);
	int r = ur_future_begin(ur_current_loop(), &w.f);
	if (r < 0)
		return r;
	if (front) {
		w.next = h->wait_head;
		if (h->wait_head)
			h->wait_head->prev = &w;
		else
			h->wait_tail = &w;
		h->wait_head = &w;
	} else {
		w.prev = h->wait_tail;
		if (h->wait_tail)
			h->wait_tail->next = &w;
		else
			h->wait_head = &w;
		h->wait_tail = &w;
	}
	p->waiting++;
	uint64_t now = ur_now_ns();
	if (deadline == UINT64_MAX)
		r = ur_await(&w.f);
	else
		r = ur_wait_for(&w.f, deadline > now ? deadline - now : 0);
	wait_unlink(p, &w);
	return r;
}

int ur__http_pool_get(struct ur_http_client *c, const struct ur_url *u, bool fresh, bool may_retry,
                      uint64_t deadline, struct http_conn **out, bool *reused, uint64_t *connect_ns)
{
	struct http_pool *p = pool_of(c);
	if (!p)
		return -ENOMEM;
	struct http_host *h = host_get(p, u);
	if (!h)
		return -ENOMEM;
	bool waited = false;

	for (;;) {
		if (c->closing_)
			return UR_EHTTP_CLIENT_CLOSED;
		uint64_t now = ur_loop_time_ns();
		sweep(c, now);
		while (!fresh && h->idle) {
			struct http_conn *k = h->idle;
			idle_unlink(p, k);
			c->st_.idle = p->idle;
			if (!conn_alive(k, now, may_retry)) {
				conn_close(c, k);
				continue;
			}
			*out = k;
			*reused = true;
			*connect_ns = 0;
			return 0;
		}
		if (h->open < c->o_.max_per_host && p->open >= c->o_.max_total && p->lru_tail) {
			conn_close(c,
			           p->lru_tail); /* make room: the coldest idle connection goes */
			continue;
		}
		if (h->open < c->o_.max_per_host && p->open < c->o_.max_total) {
			h->open++; /* counted while connecting, so concurrent requests see it */
			p->open++;
			c->st_.open = p->open;
			struct http_conn *k = NULL;
			int r = conn_open(c, h, u, deadline, &k);
			*connect_ns = ur_now_ns() - now;
			if (r < 0) {
				h->open--;
				p->open--;
				c->st_.open = p->open;
				wake_next(p, h, true);
				return r;
			}
			*out = k;
			*reused = false;
			return 0;
		}
		int r = wait_turn(p, h, deadline, waited);
		if (r < 0)
			return r;
		waited = true;
	}
}

void ur__http_pool_put(struct ur_http_client *c, struct http_conn *k, bool reusable)
{
	struct http_pool *p = c->hosts_;
	if (!reusable || c->closing_ || c->o_.idle_timeout_ns == 0) {
		conn_close(c, k);
		return;
	}
	k->idle_since = ur_loop_time_ns();
	ur_stream_set_deadline(&k->s, UR_NO_DEADLINE);
	idle_push(p, k);
	c->st_.idle = p->idle;
	wake_next(p, k->host, true); /* another origin's request may evict it */
	sweep(c, k->idle_since);
	reaper_ensure(c, p);
}

void ur__http_pool_free(struct ur_http_client *c)
{
	struct http_pool *p = c->hosts_;
	if (!p)
		return;
	reaper_stop(c, p);
	while (p->lru_head)
		conn_close(c, p->lru_head);
	for (size_t i = 0; i < HTTP_POOL_BUCKETS; i++) {
		struct http_host *x = p->buckets[i];
		while (x) {
			struct http_host *next = x->next;
			free(x);
			x = next;
		}
	}
	free(p);
	c->hosts_ = NULL;
}
