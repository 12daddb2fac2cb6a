/* SPDX-License-Identifier: MIT */
/*
 * tools/urfetch/serve.c - urfetch's server: the server helper (urio/server.h) with a connection
 * task that does the TLS handshake when there is a context, then serves HTTP/1.1 with the
 * caller's handler until the connection ends or the server stops.
 */
#include <errno.h>

#include <urio.h>
#include <urio/server.h>
#include <urio/tls.h>

#include "serve.h"

#define HANDSHAKE_NS (10 * UR_SEC)
/*
 * How long busy connections get to finish after a stop (idle keep-alive connections end at once:
 * ur_http_serve_conn() follows the server's stop). By the time urfetch stops its server, the
 * clients are done (the demo) or gone (--serve's parent closed stdin), so a short grace is enough.
 */
#define STOP_GRACE_NS (100 * UR_MSEC)

static int on_conn(struct ur_stream *s, void *arg)
{
	struct uf_server *srv = arg;
	struct ur_http_server_opts o = srv->http;

	if (srv->tls) {
		ur_stream_set_timeout(s, HANDSHAKE_NS);
		if (ur_tls_server(s, srv->tls) < 0)
			return 0;
	}
	ur_http_serve_conn(s, &o); /* follows the server's stop by itself */
	return 0;
}

int uf_server_start(struct uf_server *srv, const char *host, uint16_t port)
{
	struct ur_server_opts so = {
	    .host = host,
	    .port = port,
	    .backlog = 4096,
	    .threads = srv->nthreads,
	    .on_conn = on_conn,
	    .arg = srv,
	};
	struct ur_server *sv;

	atomic_init(&srv->sv, NULL);
	int r = ur_server_start(&sv, &so);
	if (r < 0)
		return r;
	srv->port = ur_server_port(sv);
	atomic_store_explicit(&srv->sv, sv, memory_order_release);
	return 0;
}

int uf_server_stop(struct uf_server *srv)
{
	struct ur_server *sv = atomic_load(&srv->sv);
	if (!sv)
		return -EINVAL;
	int r = ur_server_stop(sv, STOP_GRACE_NS);
	if (r == -EALREADY)
		r = 0;
	int j = ur_server_join(sv); /* after it, no connection task reads srv->sv */
	if (r == 0)
		r = j;
	atomic_store(&srv->sv, NULL);
	int f = ur_server_free(&sv);
	return r < 0 ? r : f;
}
