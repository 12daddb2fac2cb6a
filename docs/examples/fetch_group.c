/* SPDX-License-Identifier: MIT */
/*
 * fetch_group.c - fetch three URLs concurrently with a task group, the whole batch bounded by a
 * timeout scope (asyncio: `async with asyncio.timeout(1): async with TaskGroup() as tg: ...`).
 *
 * Written from include/urio/http.h and the docs alone, as a first program. The pages come from
 * urio's HTTP server on 127.0.0.1 (port from the kernel), so it runs offline: /a and /b answer
 * at once, /slow takes 10 s; the scope ends the batch after 1 s, cancelling /slow.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <urio.h>

/* --- the server: a page per path, /slow after 10 s -------------------------------------------- */

static int page(const struct ur_http_server_req *rq, struct ur_http_server_resp *rs, void *arg)
{
	(void)arg;
	if (rq->path_len == 5 && memcmp(rq->path, "/slow", 5) == 0) {
		int r = ur_sleep(10 * UR_SEC);
		if (r < 0)
			return r; /* cancelled: the server is stopping */
	}
	static const char a[] = "page a\n", b[] = "page b\n", slow[] = "finally\n";
	const char *body = rq->path_len == 2 && rq->path[1] == 'a'   ? a
	                   : rq->path_len == 2 && rq->path[1] == 'b' ? b
	                                                             : slow;
	return ur_http_resp_mem(rs, 200, "text/plain", body, strlen(body));
}

static int on_conn(struct ur_stream *s, void *arg)
{
	/* follows ur_server_stop() by itself: idle connections end at once */
	struct ur_http_server_opts o = {.handler = page};
	(void)arg;
	ur_http_serve_conn(s, &o);
	return 0;
}

/* --- the client ------------------------------------------------------------------------------- */

struct fetch {
	struct ur_http_client *client;
	char url[64];
	struct ur_http_response resp;
	int ret;
};

static int fetch_one(void *arg)
{
	struct fetch *f = arg;
	f->ret = ur_http_get(f->client, f->url, &f->resp);
	return 0; /* errors are reported per URL: one failure does not cancel the others */
}

struct main_args {
	uint16_t port;
	int failures;
};

static int run(void *arg)
{
	struct main_args *m = arg;
	const char *paths[] = {"/a", "/b", "/slow"};
	struct fetch f[3];
	struct ur_http_client client;
	int r = ur_http_client_init(&client, ur_current_loop(), NULL);
	if (r < 0)
		return r;

	struct ur_timeout scope;
	struct ur_task_group g;
	ur_timeout_begin(&scope, 1 * UR_SEC);
	ur_group_init(&g, ur_current_loop());
	for (int i = 0; i < 3; i++) {
		f[i].client = &client;
		snprintf(f[i].url, sizeof(f[i].url), "http://127.0.0.1:%u%s", m->port, paths[i]);
		ur_http_response_init(&f[i].resp);
		f[i].ret = -EINPROGRESS;
		if (ur_group_spawn(&g, fetch_one, &f[i], NULL) < 0)
			f[i].ret = -ENOMEM;
	}
	int gr = ur_group_wait(&g);      /* -ETIMEDOUT: the scope expired, members were cancelled */
	int sr = ur_timeout_end(&scope); /* -ETIMEDOUT: this scope is the one that expired */
	printf("group: %s, scope: %s\n", ur_strerror(gr), ur_strerror(sr));

	for (int i = 0; i < 3; i++) {
		if (f[i].ret == 0)
			printf("%-36s %d, %llu bytes: %s", f[i].url, f[i].resp.status,
			       (unsigned long long)f[i].resp.body_len, f[i].resp.body);
		else
			printf("%-36s failed: %s\n", f[i].url, ur_strerror(f[i].ret));
		ur_http_response_free(&f[i].resp);
	}
	ur_http_client_close(&client);

	/* what this program expects: a and b fetched, slow cut off by the scope */
	m->failures = (f[0].ret != 0) + (f[1].ret != 0) + (f[2].ret != -ECANCELED) +
	              (gr != -ETIMEDOUT) + (sr != -ETIMEDOUT);
	return 0;
}

int main(void)
{
	struct ur_server *sv;
	struct ur_server_opts so = {.host = "127.0.0.1", .threads = 1, .on_conn = on_conn};
	int r = ur_server_start(&sv, &so);
	if (r < 0) {
		fprintf(stderr, "server: %s\n", ur_strerror(r));
		return 1;
	}
	struct main_args m = {.port = ur_server_port(sv)};
	r = ur_run(NULL, run, &m, NULL);
	ur_server_stop(sv, 0); /* /slow's handler is still sleeping: cancel it at once */
	ur_server_join(sv);
	ur_server_free(&sv);
	if (r < 0 || m.failures) {
		fprintf(stderr, "fetch_group: %s, %d unexpected results\n", ur_strerror(r),
		        m.failures);
		return 1;
	}
	return 0;
}
