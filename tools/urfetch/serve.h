/* SPDX-License-Identifier: MIT */
/*
 * tools/urfetch/serve.h - urfetch's loopback HTTP(S) server (serve.c): the server helper of
 * urio/server.h (a loop per thread, a task per connection) serving urio/http_server.h's
 * HTTP/1.1, over TLS when given a context. Used by --demo, --serve and the benchmarks.
 */
#ifndef URFETCH_SERVE_H
#define URFETCH_SERVE_H

#include <stdatomic.h>
#include <stdint.h>

#include <urio/http_server.h>

struct ur_server;
struct ur_tls_ctx;

struct uf_server {
	/* in */
	unsigned nthreads;               /* 0: one per CPU */
	struct ur_tls_ctx *tls;          /* a server context for HTTPS, or NULL */
	struct ur_http_server_opts http; /* the handler and limits */
	/* out */
	uint16_t port;
	/* private */
	struct ur_server *_Atomic sv; /* read by connection tasks: set once the server runs */
};

/* Listens on @host:@port (0: any) and starts the threads. 0 or an error (nothing left running). */
int uf_server_start(struct uf_server *srv, const char *host, uint16_t port);
/* Stops accepting, ends every connection, joins the threads. 0 or an error. */
int uf_server_stop(struct uf_server *srv);

#endif
