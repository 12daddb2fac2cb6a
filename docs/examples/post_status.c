/* SPDX-License-Identifier: MIT */
/*
 * post_status.c - POST a body and read the status, a header and the answer (requests:
 * `r = session.post(url, data=...); r.status_code, r.headers["x-length"], r.text`).
 *
 * Written from include/urio/http.h and the docs alone, as a first program. The server is urio's
 * own on 127.0.0.1 (port from the kernel): /echo answers 201 with the body it got, any other path
 * 404. A 404 is a response, not an error: ur_http_request() returns 0 and the status says it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <urio.h>
#include <urio/http_server.h>

static int echo(const struct ur_http_server_req *rq, struct ur_http_server_resp *rs, void *arg)
{
	(void)arg;
	if (rq->path_len != 5 || memcmp(rq->path, "/echo", 5) != 0)
		return ur_http_resp_mem(rs, 404, "text/plain", "no such page\n", 13);
	/* header values are kept by reference until the response is sent: one per connection
	   task would do; this server answers one request at a time on one thread */
	static char len[24];
	snprintf(len, sizeof(len), "%zu", rq->body_len);
	int r = ur_http_resp_header(rs, "X-Length", len);
	if (r < 0)
		return r;
	/* the request body lives only until the handler returns: take it (no copy), and let the
	   response own it */
	char *body = ur_http_req_take_body(rq);
	if (!body)
		return -ENOMEM;
	r = ur_http_resp_take(rs, 201, "text/plain", body, rq->body_len);
	if (r < 0)
		free(body);
	return r;
}

static int on_conn(struct ur_stream *s, void *arg)
{
	struct ur_http_server_opts o = {.handler = echo};
	(void)arg;
	ur_http_serve_conn(s, &o);
	return 0;
}

static int run(void *arg)
{
	uint16_t port = *(uint16_t *)arg;
	char url[64], missing[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/echo", port);
	snprintf(missing, sizeof(missing), "http://127.0.0.1:%u/nowhere", port);

	struct ur_http_client client;
	int r = ur_http_client_init(&client, ur_current_loop(), NULL);
	if (r < 0)
		return r;
	const char msg[] = "name=urio&lang=C";
	struct ur_http_header h[] = {{"Content-Type", 12, "application/x-www-form-urlencoded", 33}};
	struct ur_http_request rq = {
	    .method = "POST",
	    .url = url,
	    .headers = h,
	    .num_headers = 1,
	    .body_source = UR_HTTP_BODY_MEMORY,
	    .body = msg,
	    .body_len = strlen(msg),
	};
	struct ur_http_response resp;
	ur_http_response_init(&resp);
	int bad = 0;
	r = ur_http_request(&client, &rq, &resp);
	if (r < 0) {
		printf("POST %s: %s\n", url, ur_strerror(r));
		bad++;
	} else {
		const char *xl = ur_http_response_header(&resp, "x-length");
		printf("POST %s: %d %s, X-Length %s, body \"%s\"\n", url, resp.status, resp.reason,
		       xl ? xl : "(none)", resp.body);
		bad += resp.status != 201 || !xl || strcmp(xl, "16") || strcmp(resp.body, msg);
	}
	ur_http_response_free(&resp);

	ur_http_response_init(&resp);
	r = ur_http_get(&client, missing, &resp);
	printf("GET %s: %s, status %d\n", missing, ur_strerror(r), resp.status);
	bad += r != 0 || resp.status != 404;
	ur_http_response_free(&resp);

	ur_http_client_close(&client);
	return bad;
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
	uint16_t port = ur_server_port(sv);
	int bad = 0;
	r = ur_run(NULL, run, &port, &bad);
	ur_server_stop(sv, 0);
	ur_server_join(sv);
	ur_server_free(&sv);
	if (r < 0 || bad) {
		fprintf(stderr, "post_status: %s, %d unexpected results\n", ur_strerror(r), bad);
		return 1;
	}
	return 0;
}
