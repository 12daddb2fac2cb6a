/* SPDX-License-Identifier: MIT */
/*
 * proto/server.c - the stream server: per-loop accept, a task per connection, graceful stop.
 *
 * Each loop the server runs on has a struct srv_loop, touched only on that loop's thread (the
 * start and stop requests reach it through ur_loop_post()); the struct ur_server shared by all
 * of them holds only what is set before the loops start, atomics, and the lock that counts
 * finished loops. A loop holds a reference (ur_loop_ref) while the server is on it, so
 * UR_RUN_DEFAULT returns exactly when the server is done there.
 *
 * Accepting is one multishot accept per loop, or, with a connection limit, one single-shot
 * accept re-armed while below the limit (a paused multishot would have to be cancelled, and
 * connections the kernel hands over in that race would be lost). An accept that fails
 * (EMFILE, ENFILE, ENOBUFS...) ends the multishot; it is re-armed after a back-off that doubles
 * from 1 ms to 256 ms, so a process out of descriptors keeps serving the connections it has
 * instead of spinning on the error.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <urio.h>
#include <urio/net.h>
#include <urio/server.h>

#define BACKOFF_MIN (1 * UR_MSEC)
#define BACKOFF_MAX (256 * UR_MSEC)

/* A bit of ur_stream.flags_ that proto/stream.c leaves alone (see its enum): set on the streams
 * this server hands to connection tasks, so that ur_server_of() can tell them from any other. */
#define STREAM_SERVER_CONN (1u << 31)

struct conn {
	struct ur_stream s;
	struct srv_loop *sl;
	struct ur_task *task;
	struct conn *prev, *next;
	int fd;
	bool started;
	bool idle; /* ur_server_conn_idle(): a stop cancels the task at once */
};

struct srv_loop {
	struct ur_server *sv;
	struct ur_loop *loop;
	pthread_t th;
	bool own_thread, thread_made, has_thread_id;
	int lfd;
	bool own_lfd;

	struct ur_future acc, backoff, grace;
	uint64_t backoff_ns;
	bool acc_armed, paused, ref_held;
	bool live; /* a loop the stop must reach (set before start returns) */
	bool started, stopping, hard_stop, finished;
	int start_err;

	struct conn *conns;
	unsigned nconns;
	struct ur_stream_rxring *rx; /* NULL: plain recvs */

	struct ur_post start_post, stop_post;
};

struct ur_server {
	ur_conn_fn *on_conn;
	void *arg;
	unsigned max_conns, rx_buffers;
	size_t stack_size, limit, rx_buffer_size;
	uint32_t flags;
	uint16_t port;
	bool tcp;
	char *unix_path; /* a socket file this server made: removed when it is freed */

	unsigned n;
	struct srv_loop *sl;

	atomic_bool stopping;
	uint64_t grace_deadline; /* written before the stop posts, read on the loops after */
	atomic_uint_fast64_t accepted, active, accept_errors, accept_backoffs, limit_pauses,
	    cancelled, idle_ended;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned nready, nfinished;
};

static void arm_accept(struct srv_loop *sl);
static void maybe_finish(struct srv_loop *sl);
static void backoff(struct srv_loop *sl);

/* --- connections ------------------------------------------------------------------------------ */

static void conn_unlink(struct srv_loop *sl, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		sl->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	sl->nconns--;
	atomic_fetch_sub_explicit(&sl->sv->active, 1, memory_order_relaxed);
}

static int conn_main(void *arg)
{
	struct conn *c = arg;
	struct srv_loop *sl = c->sl;
	struct ur_server *sv = sl->sv;

	c->started = true;
	if (!sl->hard_stop && (sl->rx ? ur_stream_init_rxring(&c->s, c->fd, sv->limit, sl->rx)
	                              : ur_stream_init(&c->s, c->fd, sv->limit)) == 0) {
		c->fd = -1; /* the stream's now */
		c->s.flags_ |= STREAM_SERVER_CONN;
		sv->on_conn(&c->s, sv->arg);
		if (c->s.fd >= 0)
			ur_stream_close(&c->s);
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	return 0; /* conn_done, the task's continuation, lets go of the connection */
}

/*
 * The connection's task has ended, whether or not conn_main ran: a task refused its stack
 * (ENOMEM) or cancelled before its first turn ends without running its function, and the
 * connection must still go, or a stop would wait for it forever.
 */
static void conn_done(struct ur_future *f, void *arg)
{
	(void)f;
	struct conn *c = arg;
	struct srv_loop *sl = c->sl;
	struct ur_server *sv = sl->sv;

	if (c->fd >= 0)
		close(c->fd); /* conn_main never ran: the accepted socket is still ours */
	conn_unlink(sl, c);
	ur_task_detach(c->task); /* done: freed now */
	free(c);
	if (sl->paused && !sl->stopping && sl->nconns < sv->max_conns) {
		sl->paused = false;
		arm_accept(sl);
	}
	maybe_finish(sl);
}

static void conn_spawn(struct srv_loop *sl, int fd)
{
	struct ur_server *sv = sl->sv;
	struct conn *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	if (sv->tcp && !(sv->flags & UR_SERVER_NO_NODELAY)) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	c->sl = sl;
	c->fd = fd;
	struct ur_task_opts to = {.stack_size = sv->stack_size};
	if (ur_spawn(sl->loop, &c->task, conn_main, c, &to) < 0) {
		close(fd);
		free(c);
		return;
	}
	ur_future_set_callback(ur_task_future(c->task), conn_done, c);
	c->next = sl->conns;
	if (sl->conns)
		sl->conns->prev = c;
	sl->conns = c;
	sl->nconns++;
	atomic_fetch_add_explicit(&sv->accepted, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&sv->active, 1, memory_order_relaxed);
}

/* --- accepting -------------------------------------------------------------------------------- */

static void close_listener(struct srv_loop *sl)
{
	if (sl->lfd >= 0 && sl->own_lfd)
		close(sl->lfd);
	sl->lfd = -1;
}

static void on_backoff(struct ur_future *f, void *arg)
{
	(void)f;
	struct srv_loop *sl = arg;
	if (sl->stopping)
		close_listener(sl);
	else
		arm_accept(sl);
	maybe_finish(sl);
}

static void on_accept(struct ur_future *f, void *arg)
{
	struct srv_loop *sl = arg;
	struct ur_server *sv = sl->sv;
	bool final = !ur_future_more(f);

	if (final)
		sl->acc_armed = false;
	if (f->res >= 0) {
		if (sl->stopping)
			close(f->res);
		else
			conn_spawn(sl, f->res);
		sl->backoff_ns = 0;
	}
	if (!final)
		return;
	if (sl->stopping) {
		close_listener(sl);
		maybe_finish(sl);
		return;
	}
	if (f->res >= 0 || f->res == -ECANCELED) {
		/* a single-shot accept, or a multishot the kernel ended (CQ overflow) */
		if (sv->max_conns && sl->nconns >= sv->max_conns) {
			sl->paused = true;
			atomic_fetch_add_explicit(&sv->limit_pauses, 1, memory_order_relaxed);
		} else {
			arm_accept(sl);
		}
		return;
	}
	/* EMFILE, ENFILE, ENOBUFS, ENOMEM, ECONNABORTED...: wait a little, then accept again */
	atomic_fetch_add_explicit(&sv->accept_errors, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&sv->accept_backoffs, 1, memory_order_relaxed);
	backoff(sl);
}

/* Accepts again after a pause that doubles up to BACKOFF_MAX: no busy loop on EMFILE or ENOMEM. */
static void backoff(struct srv_loop *sl)
{
	sl->backoff_ns = sl->backoff_ns ? sl->backoff_ns * 2 : BACKOFF_MIN;
	if (sl->backoff_ns > BACKOFF_MAX)
		sl->backoff_ns = BACKOFF_MAX;
	ur_future_init(&sl->backoff, on_backoff, sl);
	if (ur_timeout_start(sl->loop, &sl->backoff, sl->backoff_ns, 0) < 0) {
		/* ENOMEM, or the loop is closing: nothing is left armed. The server stops accepting
		 * on this loop (a stop still finishes it); a later completion does not revive it.
		 */
		atomic_fetch_add_explicit(&sl->sv->accept_errors, 1, memory_order_relaxed);
	}
}

static void arm_accept(struct srv_loop *sl)
{
	int r;
	ur_future_init(&sl->acc, on_accept, sl);
	if (sl->sv->max_conns)
		r = ur_accept_start(sl->loop, &sl->acc, sl->lfd, NULL, NULL, 0);
	else
		r = ur_accept_multishot_start(sl->loop, &sl->acc, sl->lfd, 0);
	sl->acc_armed = r == 0;
	/* A refused start (ENOMEM) would leave nothing armed and the listener deaf: retry later. */
	if (r < 0 && sl->started && !sl->stopping) {
		atomic_fetch_add_explicit(&sl->sv->accept_errors, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&sl->sv->accept_backoffs, 1, memory_order_relaxed);
		backoff(sl);
	}
}

/* --- start, stop, finish ---------------------------------------------------------------------- */

static void signal_server(struct ur_server *sv, unsigned *counter)
{
	pthread_mutex_lock(&sv->lock);
	(*counter)++;
	pthread_cond_broadcast(&sv->cond);
	pthread_mutex_unlock(&sv->lock);
}

/* On the loop's thread: done when stopping and nothing of the server is left on this loop. */
static void maybe_finish(struct srv_loop *sl)
{
	if (!sl->started || !sl->stopping || sl->finished || sl->acc_armed || sl->nconns > 0)
		return;
	if (ur_future_state(&sl->backoff) == UR_FUTURE_PENDING) {
		ur_cancel(&sl->backoff); /* on_backoff comes back here */
		return;
	}
	if (ur_future_state(&sl->grace) == UR_FUTURE_PENDING) {
		ur_cancel(&sl->grace);
		return;
	}
	close_listener(sl);
	/* freed once the receives of closed connections have ended (their final completions) */
	ur_stream_rxring_free(&sl->rx);
	sl->finished = true;
	if (sl->ref_held)
		ur_loop_unref(sl->loop);
	sl->ref_held = false;
	/* the last touch of sl or sv from this loop for a caller's loop: join may free them now */
	signal_server(sl->sv, &sl->sv->nfinished);
}

static void on_grace(struct ur_future *f, void *arg)
{
	struct srv_loop *sl = arg;
	if (f->res == 0 || f->res == -ETIME) {
		sl->hard_stop = true;
		for (struct conn *c = sl->conns; c; c = c->next)
			if (c->started && ur_task_cancel(c->task) == 0)
				atomic_fetch_add_explicit(&sl->sv->cancelled, 1,
				                          memory_order_relaxed);
	}
	maybe_finish(sl);
}

static void stop_on_loop(void *arg)
{
	struct srv_loop *sl = arg;
	struct ur_server *sv = sl->sv;

	if (sl->stopping || sl->finished)
		return;
	sl->stopping = true;
	if (!sl->started)
		return; /* start_on_loop() has yet to run: it finishes at once */
	/* idle connections (waiting for a request that has not begun) end now, not at the grace */
	for (struct conn *c = sl->conns, *next; c; c = next) {
		next = c->next;
		if (c->idle && c->started) {
			c->idle = false;
			if (ur_task_cancel(c->task) == 0)
				atomic_fetch_add_explicit(&sv->idle_ended, 1, memory_order_relaxed);
		}
	}
	if (sl->acc_armed)
		ur_cancel(&sl->acc); /* the listener closes once its final completion is in */
	else if (ur_future_state(&sl->backoff) != UR_FUTURE_PENDING)
		close_listener(sl);
	if (sl->nconns > 0) {
		ur_future_init(&sl->grace, on_grace, sl);
		if (ur_timeout_start(sl->loop, &sl->grace, sv->grace_deadline, UR_TIMEOUT_ABS) < 0)
			on_grace(&sl->grace, sl);
	}
	maybe_finish(sl);
}

static void start_on_loop(void *arg)
{
	struct srv_loop *sl = arg;
	if (!sl->own_thread) {
		sl->th = pthread_self();
		sl->has_thread_id = true;
	}
	ur_future_init(&sl->acc, on_accept, sl);
	ur_future_init(&sl->backoff, on_backoff, sl);
	ur_future_init(&sl->grace, on_grace, sl);
	sl->started = true;
	if (sl->stopping) {
		maybe_finish(sl);
		return;
	}
	ur_loop_ref(sl->loop);
	sl->ref_held = true;
	if ((sl->sv->flags & UR_SERVER_RXRING) &&
	    ur_stream_rxring_new(sl->loop, &sl->rx, sl->sv->rx_buffers, sl->sv->rx_buffer_size) < 0)
		sl->rx = NULL; /* no buffer rings (before 5.19), or no memory: plain recvs */
	arm_accept(sl);
	if (!sl->acc_armed)
		sl->start_err = -ENOMEM;
}

static void *thread_main(void *arg)
{
	struct srv_loop *sl = arg;
	struct ur_server *sv = sl->sv;

	if (sv->flags & UR_SERVER_PIN_CPUS) {
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET((int)((unsigned long)(sl - sv->sl) % (unsigned long)(ncpu > 0 ? ncpu : 1)),
		        &set);
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
	struct ur_loop *loop = NULL;
	sl->start_err = ur_loop_new(&loop, NULL);
	if (sl->start_err < 0) {
		sl->finished = true;
		signal_server(sv, &sv->nfinished);
		signal_server(sv, &sv->nready);
		return NULL;
	}
	sl->loop = loop;
	sl->live = true;
	start_on_loop(sl); /* a failure there is stopped by ur_server_start() */
	signal_server(sv, &sv->nready);
	/* held (ur_loop_ref) until the server is finished on this loop */
	ur_loop_run(loop, UR_RUN_DEFAULT);
	ur_loop_free(&loop);
	return NULL;
}

/* The listening sockets: one per loop with SO_REUSEPORT for TCP, one shared otherwise. */
static int make_listeners(struct ur_server *sv, const struct ur_server_opts *o)
{
	struct ur_listen_opts lo = {.backlog = o->backlog};
	bool shared = o->listen_fd > 0 || o->unix_path;

	if (!shared && sv->n > 1)
		lo.flags |= UR_LISTEN_REUSEPORT;
	for (unsigned i = 0; i < sv->n; i++) {
		struct srv_loop *sl = &sv->sl[i];
		int fd;
		if (o->listen_fd > 0)
			fd = o->listen_fd;
		else if (i > 0 && shared)
			fd = sv->sl[0].lfd;
		else if (o->unix_path)
			fd = ur_unix_listen(o->unix_path, &lo);
		else
			fd = ur_tcp_listen(o->host, i == 0 ? o->port : sv->port, &lo);
		if (fd < 0)
			return fd;
		sl->lfd = fd;
		sl->own_lfd = o->listen_fd <= 0 && (i == 0 || !shared);
		if (i == 0) {
			struct ur_addr a;
			if (ur_local_addr(fd, &a) == 0) {
				sv->port = ur_addr_port(&a);
				sv->tcp = a.ss.ss_family != AF_UNIX;
			}
			if (o->unix_path && o->unix_path[0] != '@' && sl->own_lfd &&
			    !(sv->unix_path = strdup(o->unix_path)))
				return -ENOMEM;
		}
	}
	return 0;
}

static void server_release(struct ur_server *sv)
{
	for (unsigned i = 0; i < sv->n; i++)
		close_listener(&sv->sl[i]);
	if (sv->unix_path)
		unlink(sv->unix_path);
	free(sv->unix_path);
	pthread_mutex_destroy(&sv->lock);
	pthread_cond_destroy(&sv->cond);
	free(sv->sl);
	free(sv);
}

int ur_server_start(struct ur_server **out, const struct ur_server_opts *o)
{
	if (!o || !o->on_conn || (o->nloops && !o->loops) || o->limit > UR_STREAM_LIMIT_MAX ||
	    o->threads > 1024 || o->rx_buffers > 32768 || (o->rx_buffers & (o->rx_buffers - 1)))
		return -EINVAL;
	struct ur_server *sv = calloc(1, sizeof(*sv));
	if (!sv)
		return -ENOMEM;
	sv->on_conn = o->on_conn;
	sv->arg = o->arg;
	sv->max_conns = o->max_conns;
	sv->stack_size = o->stack_size;
	sv->limit = o->limit;
	sv->flags = o->flags;
	sv->rx_buffers = o->rx_buffers ? o->rx_buffers : UR_SERVER_RX_BUFFERS;
	sv->rx_buffer_size = o->rx_buffer_size ? o->rx_buffer_size : UR_SERVER_RX_BUFFER_SIZE;
	pthread_mutex_init(&sv->lock, NULL);
	pthread_cond_init(&sv->cond, NULL);
	if (o->nloops) {
		sv->n = o->nloops;
	} else {
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		sv->n = o->threads ? o->threads : (ncpu > 0 ? (unsigned)ncpu : 1);
	}
	sv->sl = calloc(sv->n, sizeof(*sv->sl));
	if (!sv->sl) {
		free(sv);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < sv->n; i++)
		sv->sl[i] = (struct srv_loop){.sv = sv, .lfd = -1, .own_thread = !o->nloops};
	int r = make_listeners(sv, o);
	if (r < 0) {
		server_release(sv);
		return r;
	}

	if (o->nloops) {
		for (unsigned i = 0; i < sv->n; i++) {
			struct srv_loop *sl = &sv->sl[i];
			sl->loop = o->loops[i];
			sl->start_post = (struct ur_post){.fn = start_on_loop, .arg = sl};
			r = ur_loop_post(sl->loop, &sl->start_post);
			sl->live = r == 0;
			if (r < 0) { /* the ones posted already start; stop them again */
				for (unsigned k = i; k < sv->n; k++) {
					sv->sl[k].finished = true;
					sv->nfinished++;
				}
				ur_server_stop(sv, 0);
				ur_server_join(sv);
				server_release(sv);
				return r;
			}
		}
		*out = sv;
		return 0;
	}

	unsigned made = 0;
	for (; made < sv->n; made++) {
		struct srv_loop *sl = &sv->sl[made];
		r = -pthread_create(&sl->th, NULL, thread_main, sl);
		if (r < 0)
			break;
		sl->thread_made = sl->has_thread_id = true;
	}
	for (unsigned k = made; k < sv->n; k++) {
		sv->sl[k].finished = true;
		sv->nfinished++;
		sv->nready++;
	}
	pthread_mutex_lock(&sv->lock);
	while (sv->nready < sv->n)
		pthread_cond_wait(&sv->cond, &sv->lock);
	pthread_mutex_unlock(&sv->lock);
	for (unsigned i = 0; i < made && r == 0; i++)
		r = sv->sl[i].start_err;
	if (r < 0) {
		ur_server_stop(sv, 0);
		ur_server_join(sv);
		server_release(sv);
		return r;
	}
	*out = sv;
	return 0;
}

int ur_server_stop(struct ur_server *sv, uint64_t grace_ns)
{
	bool was = false;
	if (!atomic_compare_exchange_strong(&sv->stopping, &was, true))
		return -EALREADY;
	uint64_t now = ur_now_ns();
	sv->grace_deadline = grace_ns > UINT64_MAX - now ? UINT64_MAX : now + grace_ns;
	for (unsigned i = 0; i < sv->n; i++) {
		struct srv_loop *sl = &sv->sl[i];
		if (!sl->live)
			continue; /* never started there: counted as finished already */
		sl->stop_post = (struct ur_post){.fn = stop_on_loop, .arg = sl};
		if (ur_loop_post(sl->loop, &sl->stop_post) < 0)
			signal_server(sv, &sv->nfinished); /* a caller's loop torn down under us */
	}
	return 0;
}

int ur_server_join(struct ur_server *sv)
{
	pthread_t self = pthread_self();
	for (unsigned i = 0; i < sv->n && !ur_server_done(sv); i++)
		if (sv->sl[i].has_thread_id && pthread_equal(sv->sl[i].th, self))
			return -EDEADLK;
	pthread_mutex_lock(&sv->lock);
	while (sv->nfinished < sv->n)
		pthread_cond_wait(&sv->cond, &sv->lock);
	pthread_mutex_unlock(&sv->lock);
	for (unsigned i = 0; i < sv->n; i++)
		if (sv->sl[i].thread_made) {
			pthread_join(sv->sl[i].th, NULL);
			sv->sl[i].thread_made = false;
		}
	return 0;
}

bool ur_server_done(const struct ur_server *sv)
{
	struct ur_server *m = (struct ur_server *)sv;
	pthread_mutex_lock(&m->lock);
	bool done = m->nfinished == m->n;
	pthread_mutex_unlock(&m->lock);
	return done;
}

int ur_server_free(struct ur_server **psv)
{
	struct ur_server *sv = *psv;
	if (!sv)
		return 0;
	if (!ur_server_done(sv))
		return -EBUSY;
	for (unsigned i = 0; i < sv->n; i++)
		if (sv->sl[i].thread_made) {
			pthread_join(sv->sl[i].th, NULL);
			sv->sl[i].thread_made = false;
		}
	server_release(sv);
	*psv = NULL;
	return 0;
}

uint16_t ur_server_port(const struct ur_server *sv)
{
	return sv->port;
}

bool ur_server_stopping(const struct ur_server *sv)
{
	return atomic_load_explicit(&((struct ur_server *)sv)->stopping, memory_order_relaxed);
}

static struct conn *conn_of(const struct ur_stream *s)
{
	if (!s || !(s->flags_ & STREAM_SERVER_CONN))
		return NULL;
	return (struct conn *)(void *)s; /* the stream is the conn's first member */
}

struct ur_server *ur_server_of(const struct ur_stream *s)
{
	struct conn *c = conn_of(s);
	return c ? c->sl->sv : NULL;
}

int ur_server_conn_idle(struct ur_stream *s, bool idle)
{
	struct conn *c = conn_of(s);
	if (!c)
		return -EINVAL;
	if (idle && (c->sl->stopping || ur_server_stopping(c->sl->sv))) {
		c->idle = false;
		return -ECANCELED;
	}
	c->idle = idle;
	return 0;
}

void ur_server_stats(const struct ur_server *csv, struct ur_server_stats *out)
{
	struct ur_server *sv = (struct ur_server *)csv;
	*out = (struct ur_server_stats){
	    .accepted = atomic_load_explicit(&sv->accepted, memory_order_relaxed),
	    .active = atomic_load_explicit(&sv->active, memory_order_relaxed),
	    .accept_errors = atomic_load_explicit(&sv->accept_errors, memory_order_relaxed),
	    .accept_backoffs = atomic_load_explicit(&sv->accept_backoffs, memory_order_relaxed),
	    .limit_pauses = atomic_load_explicit(&sv->limit_pauses, memory_order_relaxed),
	    .cancelled = atomic_load_explicit(&sv->cancelled, memory_order_relaxed),
	    .idle_ended = atomic_load_explicit(&sv->idle_ended, memory_order_relaxed),
	};
}
