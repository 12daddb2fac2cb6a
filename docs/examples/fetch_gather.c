/* SPDX-License-Identifier: MIT */
/*
 * fetch_gather.c - the seed's aiohttp + asyncio.gather example, line for line, in urio:
 *
 *	async def fetch_page(session, url):
 *	    async with session.get(url) as response:
 *	        return await response.text()
 *
 *	async def main():
 *	    urls = ["https://example.com/page1", ".../page2", ".../page3"]
 *	    async with aiohttp.ClientSession() as session:
 *	        tasks = [fetch_page(session, url) for url in urls]
 *	        results = await asyncio.gather(*tasks)
 *	        for result in results:
 *	            print(result)
 *
 *	asyncio.run(main())
 *
 * To run offline (and in CI) the pages come from a tiny HTTP server that is a task of the same
 * program on 127.0.0.1, port chosen by the kernel. Then the same with request futures instead of
 * tasks (ur_http_request_start), a thousand pages at once on one loop, every body checked.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <urio.h>

#define MANY 1000

static char base[64]; /* "http://127.0.0.1:PORT" */

/* --- the "web": one task per connection, keep-alive, a page per path ------------------------- */

static int serve_conn(void *arg)
{
	struct ur_stream s;
	char req[2048], resp[256];
	if (ur_stream_init(&s, (int)(intptr_t)arg, 0) < 0)
		return -1;
	for (;;) {
		ssize_t n = ur_stream_read_until(&s, "\r\n\r\n", 4, req, sizeof(req) - 1);
		if (n <= 0)
			break;
		req[n] = 0;
		char *path = req + 4, *sp = strchr(path, ' '); /* "GET /page1 HTTP/1.1" */
		if (strncmp(req, "GET ", 4) != 0 || !sp)
			break;
		*sp = 0;
		char body[128];
		int blen = snprintf(body, sizeof(body), "<html>%s</html>", path);
		int rlen = snprintf(resp, sizeof(resp),
		                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
		                    "Content-Length: %d\r\n\r\n%s",
		                    blen, body);
		if (ur_stream_write_all(&s, resp, (size_t)rlen) < 0)
			break;
	}
	ur_stream_close(&s);
	return 0;
}

static int serve(void *arg)
{
	int lfd = *(int *)arg;
	for (;;) {
		int fd = ur_accept(lfd, NULL, NULL, 0);
		if (fd < 0)
			return fd == -ECANCELED ? 0 : fd;
		struct ur_task *t;
		if (ur_spawn(ur_current_loop(), &t, serve_conn, (void *)(intptr_t)fd, NULL) < 0) {
			ur_close(fd);
			continue;
		}
		ur_task_detach(t);
	}
}

/* --- the example ------------------------------------------------------------------------------ */

struct page {
	struct ur_http_client *session;
	char url[96];
	struct ur_http_response response;
};

/* async def fetch_page(session, url): */
static int fetch_page(void *arg)
{
	struct page *p = arg;
	/* async with session.get(url) as response: return await response.text() */
	return ur_http_get(p->session, p->url, &p->response);
}

static int example(void)
{
	/* urls = [...] */
	static struct page pages[3];
	const char *paths[3] = {"/page1", "/page2", "/page3"};
	struct ur_task *tasks[3];
	struct ur_future *futures[3];

	/* async with aiohttp.ClientSession() as session: */
	struct ur_http_client session;
	ur_http_client_init(&session, ur_current_loop(), NULL);

	/* tasks = [fetch_page(session, url) for url in urls] */
	for (int i = 0; i < 3; i++) {
		pages[i].session = &session;
		snprintf(pages[i].url, sizeof(pages[i].url), "%s%s", base, paths[i]);
		ur_http_response_init(&pages[i].response);
		ur_spawn(ur_current_loop(), &tasks[i], fetch_page, &pages[i], NULL);
		futures[i] = ur_task_future(tasks[i]);
	}

	/* results = await asyncio.gather(*tasks) */
	int r = ur_gather(futures, 3, 0);

	/* for result in results: print(result) */
	for (int i = 0; i < 3; i++) {
		if (futures[i]->res == 0)
			printf("%s\n", pages[i].response.body);
		else
			printf("%s: %s\n", pages[i].url, ur_strerror(futures[i]->res));
		ur_join(tasks[i]);
		ur_http_response_free(&pages[i].response);
	}
	ur_http_client_close(&session); /* leaving "async with" */
	return r;
}

/* The same a thousand times over, with request futures instead of tasks. */
static int many(void)
{
	static struct ur_http_request rq[MANY];
	static struct ur_http_response resp[MANY];
	static struct ur_future f[MANY];
	static struct ur_future *fs[MANY];
	static char urls[MANY][96];
	struct ur_http_client session;
	ur_http_client_init(&session, ur_current_loop(), NULL);
	for (int i = 0; i < MANY; i++) {
		snprintf(urls[i], sizeof(urls[i]), "%s/page%d", base, i);
		rq[i] = (struct ur_http_request){.url = urls[i]};
		ur_http_response_init(&resp[i]);
		ur_future_init(&f[i], NULL, NULL);
		if (ur_http_request_start(&session, &rq[i], &resp[i], &f[i]) < 0)
			return -1;
		fs[i] = &f[i];
	}
	int r = ur_gather(fs, MANY, 0);
	int bad = 0;
	for (int i = 0; i < MANY; i++) {
		char want[64];
		snprintf(want, sizeof(want), "<html>/page%d</html>", i);
		if (f[i].res != 0 || resp[i].status != 200 || strcmp(resp[i].body, want) != 0)
			bad++;
		ur_http_response_free(&resp[i]);
	}
	struct ur_http_client_stats st;
	ur_http_client_stats(&session, &st);
	printf("%d pages fetched concurrently over %llu connections, %d wrong\n", MANY - bad,
	       (unsigned long long)st.connections, bad);
	ur_http_client_close(&session);
	return r < 0 ? r : -bad;
}

static int main_task(void *arg)
{
	(void)arg;
	struct ur_addr a;
	int lfd = ur_tcp_listen("127.0.0.1", 0, NULL);
	if (lfd < 0 || ur_local_addr(lfd, &a) < 0)
		return -1;
	snprintf(base, sizeof(base), "http://127.0.0.1:%u", ur_addr_port(&a));
	struct ur_task *server;
	ur_spawn(ur_current_loop(), &server, serve, &lfd, NULL);

	int r = example();
	if (r == 0)
		r = many();

	ur_task_cancel(server);
	ur_join(server);
	ur_close(lfd);
	return r;
}

int main(void)
{
	int result;
	/* asyncio.run(main()) */
	int r = ur_run(NULL, main_task, NULL, &result);
	if (r < 0 || result != 0) {
		fprintf(stderr, "fetch_gather: %s\n", ur_strerror(r < 0 ? r : result));
		return 1;
	}
	return 0;
}
