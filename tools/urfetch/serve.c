/* SPDX-License-Identifier: MIT */
/*
 * tools/urfetch/serve.c - urfetch's own server: N threads, each with a loop, a SO_REUSEPORT
 * listener on the same loopback port, and a task per connection serving HTTP/1.1 (and TLS when
 * given a context) with the pages of pages.c. Used by --demo, --serve and the benchmarks.
 */
#include <errno.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <urio.h>
#include <urio/net.h>
#include <urio/tls.h>

#include "serve.h"

#define HANDSHAKE_NS (10 * UR_SEC)

struct conn {
	struct conn *prev, *next;
	struct srv_thread *t;
	struct ur_task *task;
	int fd;
};

struct srv_thread {
	struct uf_server *srv;
	pthread_t th;
	struct ur_loop *loop;
	int lfd;
	struct conn *conns; /* a list, so a stop can cancel each */
	unsigned nconns;
	bool stopping;
	struct ur_future stop;    /* resolved by the stop post */
	struct ur_future drained; /* resolved by the last connection to end after the stop */
	struct ur_post post;
	sem_t ready; /* posted once the loop exists (or failed: err) */
	int err;
};

static bool stopping(void *arg)
{
	return ((struct srv_thread *)arg)->stopping;
}

static int conn_task(void *arg)
{
	struct conn *c = arg;
	struct srv_thread *t = c->t;
	struct ur_stream s;
	struct ur_http_server_opts o = t->srv->http;

	o.stopping = stopping;
	o.stop_arg = t;
	if (ur_stream_init(&s, c->fd, 0) == 0) {
		int r = 0;
		if (t->srv->tls) {
			ur_stream_set_timeout(&s, HANDSHAKE_NS);
			r = ur_tls_server(&s, t->srv->tls);
		}
		if (r == 0)
			ur_http_serve_conn(&s, &o);
		ur_stream_close(&s);
	} else {
		ur_close(c->fd);
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		t->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c);
	if (--t->nconns == 0 && t->stopping)
		ur_future_resolve(&t->drained, 0);
	return 0;
}

static int accept_task(void *arg)
{
	struct srv_thread *t = arg;
	for (;;) {
		int fd = ur_accept(t->lfd, NULL, NULL, 0);
		if (fd < 0) {
			if (fd == -ECANCELED || t->stopping)
				return 0;
			if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
				ur_sleep(10 *
				         UR_MSEC); /* out of descriptors: let connections end */
				continue;
			}
			if (fd == -ECONNABORTED || fd == -EINTR)
				continue;
			return fd;
		}
		struct conn *c = calloc(1, sizeof(*c));
		if (!c || ur_spawn(t->loop, &c->task, conn_task, c, NULL) < 0) {
			free(c);
			ur_close(fd);
			continue;
		}
		c->t = t;
		c->fd = fd;
		c->next = t->conns;
		if (t->conns)
			t->conns->prev = c;
		t->conns = c;
		t->nconns++;
		ur_task_detach(c->task);
	}
}

static void on_stop(void *arg)
{
	struct srv_thread *t = arg;
	ur_future_resolve(&t->stop, 0);
}

static int thread_task(void *arg)
{
	struct srv_thread *t = arg;
	struct ur_task *acc;
	int r = ur_spawn(t->loop, &acc, accept_task, t, NULL);
	if (r < 0)
		return r;
	ur_await(&t->stop);
	t->stopping = true;
	ur_task_cancel(acc);
	r = ur_join(acc);
	/* idle keep-alive connections would wait for their timeout: end them now */
	if (t->nconns > 0) {
		ur_future_init(&t->drained, NULL, NULL);
		ur_future_begin(t->loop, &t->drained);
		for (struct conn *c = t->conns; c; c = c->next)
			ur_task_cancel(c->task);
		ur_await(&t->drained);
	}
	return r;
}

static void *thread_main(void *arg)
{
	struct srv_thread *t = arg;
	int res = 0;
	/* the loop is made on its own thread: SINGLE_ISSUER ties the ring to its creator */
	int r = ur_loop_new(&t->loop, NULL);
	if (r < 0) {
		t->err = r;
		sem_post(&t->ready);
		return NULL;
	}
	/* held by a program-completed future until the stop post resolves it */
	ur_future_init(&t->stop, NULL, NULL);
	ur_future_begin(t->loop, &t->stop);
	t->post = (struct ur_post){.fn = on_stop, .arg = t};
	sem_post(&t->ready);
	r = ur_run(t->loop, thread_task, t, &res);
	t->err = r < 0 ? r : res;
	ur_loop_free(&t->loop);
	return NULL;
}

int uf_server_start(struct uf_server *srv, const char *host, uint16_t port)
{
	unsigned n = srv->nthreads ? srv->nthreads : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	srv->th = calloc(n, sizeof(*srv->th));
	if (!srv->th)
		return -ENOMEM;
	srv->nthreads = 0;
	struct ur_listen_opts lo = {.backlog = 4096, .flags = UR_LISTEN_REUSEPORT};
	int r = 0;
	for (unsigned i = 0; i < n; i++) {
		struct srv_thread *t = &srv->th[i];
		t->srv = srv;
		t->lfd = ur_tcp_listen(host, port, &lo);
		if (t->lfd < 0) {
			r = t->lfd;
			break;
		}
		if (port == 0) { /* the kernel chose it: the other listeners share it */
			struct ur_addr a;
			r = ur_local_addr(t->lfd, &a);
			if (r < 0) {
				close(t->lfd);
				break;
			}
			port = ur_addr_port(&a);
		}
		sem_init(&t->ready, 0, 0);
		if (pthread_create(&t->th, NULL, thread_main, t) != 0) {
			r = -EAGAIN;
			close(t->lfd);
			break;
		}
		while (sem_wait(&t->ready) < 0)
			;
		if (t->err < 0) {
			r = t->err;
			pthread_join(t->th, NULL);
			close(t->lfd);
			break;
		}
		srv->nthreads++;
	}
	srv->port = port;
	if (r < 0 && srv->nthreads > 0) {
		uf_server_stop(srv);
		return r;
	}
	return r;
}

int uf_server_stop(struct uf_server *srv)
{
	int r = 0;
	for (unsigned i = 0; i < srv->nthreads; i++)
		ur_loop_post(srv->th[i].loop, &srv->th[i].post);
	for (unsigned i = 0; i < srv->nthreads; i++) {
		pthread_join(srv->th[i].th, NULL);
		close(srv->th[i].lfd);
		if (srv->th[i].err < 0 && r == 0)
			r = srv->th[i].err;
	}
	free(srv->th);
	srv->th = NULL;
	srv->nthreads = 0;
	return r;
}
