/* SPDX-License-Identifier: MIT */
/*
 * tools/urfetch/serve.h - urfetch's own HTTP(S) server on loopback (serve.c): a loop per thread,
 * SO_REUSEPORT listeners on one port, a task per connection.
 */
#ifndef URFETCH_SERVE_H
#define URFETCH_SERVE_H

#include <pthread.h>
#include <stdint.h>

#include <urio/http_server.h>

struct srv_thread;
struct ur_tls_ctx;

struct uf_server {
	/* in */
	unsigned nthreads;               /* 0: one per CPU */
	struct ur_tls_ctx *tls;          /* a server context for HTTPS, or NULL */
	struct ur_http_server_opts http; /* the handler and limits */
	/* out */
	uint16_t port;
	/* private */
	struct srv_thread *th;
};

/* Listens on @host:@port (0: any) and starts the threads. 0 or an error (nothing left running). */
int uf_server_start(struct uf_server *srv, const char *host, uint16_t port);
/* Stops accepting, ends every connection, joins the threads. 0 or the first thread's error. */
int uf_server_stop(struct uf_server *srv);

#endif
