/* SPDX-License-Identifier: MIT */
/*
 * status_server.c - a small JSON service and a client for it, on one loop (aiohttp:
 * `web.Application` with two routes, `web.run_app` stopping on Ctrl-C, and a ClientSession
 * gathering 100 requests under `asyncio.timeout(10)`).
 *
 * Written from the headers and the docs alone, as a first service:
 *   GET  /status  {"requests": N, "echoed_bytes": N}
 *   POST /echo    the request body back, as application/json
 * SIGINT or SIGTERM stop the server gracefully through the loop: a task reads a signalfd (the
 * signals are blocked, so they queue there instead of interrupting anything) and calls
 * ur_server_stop(). Idle keep-alive connections end at once, busy ones finish their response.
 *
 *   example_status_server          serve on 127.0.0.1 (port from the kernel), fetch 100 pages
 *                                  from it, check them, then stop itself with SIGINT
 *   example_status_server PORT     only serve, on 127.0.0.1:PORT, until Ctrl-C
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <urio.h>

#define NFETCH 100

/* --- the service ------------------------------------------------------------------------------ */

struct service {
	uint64_t requests, echoed; /* one loop: no locks */
	struct ur_server *sv;
};

static bool is(const struct ur_http_server_req *rq, const char *method, const char *path)
{
	return rq->method_len == strlen(method) &&
	       memcmp(rq->method, method, rq->method_len) == 0 && rq->path_len == strlen(path) &&
	       memcmp(rq->path, path, rq->path_len) == 0;
}

static int handle(const struct ur_http_server_req *rq, struct ur_http_server_resp *rs, void *arg)
{
	struct service *svc = arg;
	svc->requests++;
	if (is(rq, "GET", "/status")) {
		/* the response must outlive the handler: built in malloc()ed memory, taken */
		char *json = malloc(96);
		if (!json)
			return -ENOMEM;
		int n =
		    snprintf(json, 96, "{\"requests\": %llu, \"echoed_bytes\": %llu}\n",
		             (unsigned long long)svc->requests, (unsigned long long)svc->echoed);
		int r = ur_http_resp_take(rs, 200, "application/json", json, (size_t)n);
		if (r < 0)
			free(json);
		return r;
	}
	if (is(rq, "POST", "/echo")) {
		/* rq->body dies when we return: take it (no copy) and answer with it */
		char *body = ur_http_req_take_body(rq);
		if (!body)
			return -ENOMEM;
		svc->echoed += rq->body_len;
		int r = ur_http_resp_take(rs, 200, "application/json", body, rq->body_len);
		if (r < 0)
			free(body);
		return r;
	}
	static const char nf[] = "{\"error\": \"not found\"}\n";
	return ur_http_resp_mem(rs, 404, "application/json", nf, sizeof(nf) - 1);
}

static int on_conn(struct ur_stream *s, void *arg)
{
	/* ur_http_serve_conn() follows the server's stop by itself: no hook to write */
	struct ur_http_server_opts o = {.handler = handle, .arg = arg};
	ur_http_serve_conn(s, &o);
	return 0;
}

/* Waits for SIGINT or SIGTERM through the ring, then stops the server (5 s for busy ones). */
static int stop_on_signal(void *arg)
{
	struct service *svc = arg;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	int fd = signalfd(-1, &set, SFD_CLOEXEC); /* blocked in main(), before any thread */
	if (fd < 0)
		return -errno;
	struct signalfd_siginfo si;
	ssize_t n = ur_read(fd, &si, sizeof(si), UR_OFF_CURRENT);
	close(fd);
	if (n == (ssize_t)sizeof(si))
		fprintf(stderr, "status_server: signal %u, stopping\n", si.ssi_signo);
	ur_server_stop(svc->sv, 5 * UR_SEC);
	return n < 0 ? (int)n : 0;
}

/* --- the client: 100 requests gathered under one timeout scope ---------------------------------
 */

struct fetch {
	struct ur_http_request rq;
	struct ur_http_response resp;
	struct ur_future f;
	char url[64], body[32];
};

static int client(struct service *svc, uint16_t port)
{
	struct ur_http_client c;
	int r = ur_http_client_init(&c, ur_current_loop(), NULL);
	if (r < 0)
		return r;
	struct fetch *fs = calloc(NFETCH, sizeof(*fs));
	struct ur_future *futs[NFETCH];
	int started = 0, bad = 0;
	if (!fs)
		return -ENOMEM;

	struct ur_timeout scope;
	ur_timeout_begin(&scope, 10 * UR_SEC); /* async with asyncio.timeout(10): */
	for (int i = 0; i < NFETCH; i++) {
		struct fetch *f = &fs[i];
		bool post = i % 2;
		snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%u/%s", port,
		         post ? "echo" : "status");
		int len = snprintf(f->body, sizeof(f->body), "{\"n\": %d}", i);
		f->rq = (struct ur_http_request){.url = f->url};
		if (post) {
			f->rq.method = "POST";
			f->rq.body_source = UR_HTTP_BODY_MEMORY;
			f->rq.body = f->body;
			f->rq.body_len = (size_t)len;
		}
		ur_http_response_init(&f->resp);
		ur_future_init(&f->f, NULL, NULL);
		r = ur_http_request_start(&c, &f->rq, &f->resp, &f->f);
		if (r < 0)
			break;
		futs[started++] = &f->f;
	}
	int gr = ur_gather(futs, (size_t)started, 0); /* results = await asyncio.gather(...) */
	int sr = ur_timeout_end(&scope);

	for (int i = 0; i < started; i++) {
		struct fetch *f = &fs[i];
		bool ok = f->f.res == 0 && f->resp.status == 200;
		if (ok && i % 2) /* the echo is the body we sent */
			ok = strcmp(f->resp.body, f->body) == 0;
		else if (ok)
			ok = strncmp(f->resp.body, "{\"requests\": ", 13) == 0;
		if (!ok) {
			printf("%s: %s, status %d\n", f->url, ur_strerror(f->f.res),
			       f->resp.status);
			bad++;
		}
		ur_http_response_free(&f->resp);
	}
	printf("%d requests, %d bad (gather: %s, scope: %s); the server counted %llu, echoed %llu "
	       "bytes\n",
	       started, bad, ur_strerror(gr), ur_strerror(sr), (unsigned long long)svc->requests,
	       (unsigned long long)svc->echoed);
	free(fs);
	/* the pool's idle connections stay open: the server's stop ends them (they are idle) */
	ur_http_client_close(&c);
	return started == NFETCH && bad == 0 && sr == 0 ? 0 : -EIO;
}

struct main_args {
	struct service *svc;
	bool self_test;
	int result;
};

static int main_task(void *arg)
{
	struct main_args *m = arg;
	struct ur_task *sig;
	int r = ur_spawn(ur_current_loop(), &sig, stop_on_signal, m->svc, NULL);
	if (r < 0)
		return r;
	if (m->self_test) {
		m->result = client(m->svc, ur_server_port(m->svc->sv));
		kill(getpid(), SIGINT); /* as a user's Ctrl-C would */
	}
	return ur_join(sig); /* returns once the server is stopping */
}

int main(int argc, char **argv)
{
	/* signals go to the signalfd: blocked before any thread exists, so every thread has them
	   blocked (a thread that had not would take the signal and die of it) */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	struct ur_loop *loop;
	int r = ur_loop_new(&loop, NULL);
	if (r < 0)
		return 1;
	struct service svc = {0};
	struct ur_server_opts so = {
	    .host = "127.0.0.1",
	    .port = argc > 1 ? (uint16_t)atoi(argv[1]) : 0,
	    .loops = &loop, /* the server runs on our loop, next to our tasks */
	    .nloops = 1,
	    .on_conn = on_conn,
	    .arg = &svc,
	};
	r = ur_server_start(&svc.sv, &so);
	if (r < 0) {
		fprintf(stderr, "server: %s\n", ur_strerror(r));
		return 1;
	}
	if (argc > 1)
		printf("serving on http://127.0.0.1:%u/ (Ctrl-C stops)\n", ur_server_port(svc.sv));
	struct main_args m = {.svc = &svc, .self_test = argc <= 1};
	int res = 0;
	r = ur_run(loop, main_task, &m, &res);
	/* the server finishes its connections on this loop: run it until it is done there */
	if (r >= 0)
		r = ur_loop_run(loop, UR_RUN_DEFAULT);
	ur_server_free(&svc.sv);
	ur_loop_free(&loop);
	if (r < 0 || res < 0 || m.result < 0) {
		fprintf(stderr, "status_server: %s %s %s\n", ur_strerror(r), ur_strerror(res),
		        ur_strerror(m.result));
		return 1;
	}
	return 0;
}
