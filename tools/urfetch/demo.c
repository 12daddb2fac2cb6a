/* SPDX-License-Identifier: MIT */
/*
 * tools/urfetch/demo.c - `urfetch --demo`: the main job on a machine with no network. It makes
 * a CA and a certificate for 127.0.0.1 in memory, starts urio's server (serve.c) on loopback over
 * HTTP and HTTPS, fetches 10,000 pages from each (the client trusting that CA explicitly), checks
 * every body against its path, and prints the summaries. `urfetch --serve PORT`: the same server,
 * HTTP only, until stdin ends (for the tests and benchmarks).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <urio.h>
#include <urio/tls.h>

#include "pages.h"
#include "serve.h"
#include "urfetch.h"

#define DEMO_PAGES 10000

/* The path of an absolute URL: what follows the authority. */
static const char *url_path(const char *url, size_t *len)
{
	const char *p = strstr(url, "://");
	p = p ? strchr(p + 3, '/') : NULL;
	if (!p)
		p = "/";
	*len = strlen(p);
	return p;
}

static bool check_page(const char *url, const char *body, size_t len)
{
	size_t pl;
	const char *path = url_path(url, &pl);
	return uf_page_check(path, pl, body, len);
}

/* Fetches DEMO_PAGES pages from @base with @o's settings; returns the number that failed. */
static size_t demo_run(struct uf_opts *o, const char *label, const char *base)
{
	char **urls = calloc(DEMO_PAGES, sizeof(*urls));
	struct uf_run run = {.o = o, .njobs = DEMO_PAGES, .check_body = check_page};
	run.jobs = calloc(DEMO_PAGES, sizeof(*run.jobs));
	if (!urls || !run.jobs) {
		free(urls);
		free(run.jobs);
		fprintf(stderr, "urfetch: out of memory\n");
		return DEMO_PAGES;
	}
	for (size_t i = 0; i < DEMO_PAGES; i++) {
		if (asprintf(&urls[i], "%s/page/%zu", base, i) < 0)
			urls[i] = NULL;
		run.jobs[i].url = urls[i] ? urls[i] : "";
	}
	o->label = label;
	uf_out_init(&run.out, -1);
	pthread_mutex_init(&run.err_mu, NULL);
	int r = uf_fetch_all(&run);
	size_t failed = r < 0 ? DEMO_PAGES : atomic_load(&run.st.failed);
	if (r < 0)
		fprintf(stderr, "urfetch: %s: %s\n", label, ur_strerror(r));
	for (size_t i = 0; i < DEMO_PAGES; i++) {
		free(run.jobs[i].body);
		free(run.jobs[i].reason);
		free(urls[i]);
	}
	free(run.jobs);
	free(urls);
	return failed;
}

int uf_demo(struct uf_opts *o)
{
	struct ur_tls_cert cert;
	struct ur_tls_ctx *sctx = NULL;
	struct uf_server http = {.nthreads = 1}, https = {.nthreads = 1};
	char err[256] = "";
	int r;

	/* one server thread each: the client gets the other CPU(s) */
	r = ur_tls_cert_generate(&cert, NULL);
	if (r < 0) {
		fprintf(stderr, "urfetch: --demo: cannot make a certificate: %s\n", ur_strerror(r));
		return 1;
	}
	struct ur_tls_opts so = {.cert_pem = cert.cert_pem,
	                         .key_pem = cert.key_pem,
	                         .errbuf = err,
	                         .errlen = sizeof(err)};
	r = ur_tls_ctx_new(&sctx, UR_TLS_SERVER, &so);
	if (r < 0) {
		fprintf(stderr, "urfetch: --demo: TLS server context: %s %s\n", ur_strerror(r),
		        err);
		ur_tls_cert_free(&cert);
		return 1;
	}
	struct uf_pages pages = {.dirfd = -1};
	http.http = (struct ur_http_server_opts){.handler = uf_pages_handler, .arg = &pages};
	https.http = http.http;
	https.tls = sctx;
	r = uf_server_start(&http, "127.0.0.1", 0);
	if (r == 0) {
		r = uf_server_start(&https, "127.0.0.1", 0);
		if (r < 0)
			uf_server_stop(&http);
	}
	if (r < 0) {
		fprintf(stderr, "urfetch: --demo: cannot listen on 127.0.0.1: %s\n",
		        ur_strerror(r));
		ur_tls_ctx_free(sctx);
		ur_tls_cert_free(&cert);
		return 1;
	}

	char base[64];
	size_t failed = 0;
	o->check = o->discard = true;
	o->cacert_pem = cert.ca_pem;
	fprintf(stderr,
	        "urfetch --demo: urio's HTTP/1.1 server on 127.0.0.1:%u (HTTP) and :%u (HTTPS, a "
	        "certificate made in memory);\nfetching %d pages from each, %u in flight, checking "
	        "every body against its path\n",
	        http.port, https.port, DEMO_PAGES, o->jobs);
	snprintf(base, sizeof(base), "http://127.0.0.1:%u", http.port);
	failed += demo_run(o, "http ", base);
	snprintf(base, sizeof(base), "https://127.0.0.1:%u", https.port);
	failed += demo_run(o, "https", base);

	uf_server_stop(&http);
	uf_server_stop(&https);
	ur_tls_ctx_free(sctx);
	ur_tls_cert_free(&cert);
	if (failed) {
		fprintf(stderr, "urfetch --demo: %zu of %d bodies failed their check\n", failed,
		        2 * DEMO_PAGES);
		return 1;
	}
	fprintf(stderr, "urfetch --demo: all %d bodies checked, every byte as expected\n",
	        2 * DEMO_PAGES);
	return 0;
}

int uf_serve(const char *port_arg, const char *dir, unsigned threads)
{
	char *end;
	unsigned long port = strtoul(port_arg, &end, 10);
	if (*port_arg == 0 || *end || port > 65535) {
		fprintf(stderr, "urfetch: --serve wants a port (0: any), not '%s'\n", port_arg);
		return 2;
	}
	struct uf_pages pages = {.dirfd = -1};
	if (dir) {
		pages.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (pages.dirfd < 0) {
			fprintf(stderr, "urfetch: --serve-dir %s: %s\n", dir, strerror(errno));
			return 2;
		}
	}
	struct uf_server srv = {.nthreads = threads};
	srv.http = (struct ur_http_server_opts){.handler = uf_pages_handler, .arg = &pages};
	int r = uf_server_start(&srv, "127.0.0.1", (uint16_t)port);
	if (r < 0) {
		fprintf(stderr, "urfetch: --serve: cannot listen on 127.0.0.1:%lu: %s\n", port,
		        ur_strerror(r));
		return 1;
	}
	printf("http://127.0.0.1:%u/\n", srv.port);
	fflush(stdout);
	/* serve until stdin ends: the parent's pipe closing (or its death) stops us */
	char buf[256];
	for (;;) {
		ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n == 0 || (n < 0 && errno != EINTR))
			break;
	}
	r = uf_server_stop(&srv);
	if (pages.dirfd >= 0)
		close(pages.dirfd);
	return r < 0 ? 1 : 0;
}
