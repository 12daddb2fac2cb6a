/* SPDX-License-Identifier: MIT */
/*
 * tasks_gather.c - "fetch pages concurrently" without a network: N tasks each ask a loopback
 * echo server (a task of the same program on 127.0.0.1, port chosen by the kernel) for a page.
 * Three ways to wait for them: the first to finish (ur_wait_any), each as it finishes
 * (ur_as_completed), all of them with results in request order (ur_gather).
 */
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <urio.h>

#define N 3

static struct sockaddr_in server_addr = {.sin_family = AF_INET};

struct page {
	char path[16];
	int ms; /* how slow this page is */
	char body[32];
};

/* The "web": echoes each request, one connection at a time. */
static int server(void *arg)
{
	char req[32];
	for (int i = 0; i < N; i++) {
		int c = ur_accept(*(int *)arg, NULL, NULL, 0);
		if (c < 0)
			return c;
		ssize_t n = ur_recv(c, req, sizeof(req), 0);
		if (n > 0)
			n = ur_send(c, req, (size_t)n, 0);
		ur_close(c);
		if (n < 0)
			return (int)n;
	}
	return 0;
}

/* async def fetch_page(url) */
static int fetch_page(void *arg)
{
	struct page *p = arg;
	int fd = ur_sleep((uint64_t)p->ms * UR_MSEC);
	if (fd == 0)
		fd = ur_socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return fd;
	ssize_t r = ur_connect(fd, (struct sockaddr *)&server_addr, sizeof(server_addr));
	if (r == 0)
		r = ur_send(fd, p->path, strlen(p->path), 0);
	if (r >= 0)
		r = ur_recv(fd, p->body, sizeof(p->body) - 1, 0);
	ur_close(fd);
	return (int)r;
}

static int main_task(void *arg)
{
	struct page pages[N] = {{"/page0", 30, ""}, {"/page1", 20, ""}, {"/page2", 10, ""}};
	struct ur_task *srv, *t[N];
	struct ur_future *fs[N], *done;
	struct ur_as_completed it;
	int r = ur_spawn(ur_current_loop(), &srv, server, arg, NULL), k = 0, bad = 0;

	for (int i = 0; r == 0 && i < N; i++) { /* tasks = [fetch_page(u) for u in urls] */
		r = ur_spawn(ur_current_loop(), &t[i], fetch_page, &pages[i], NULL);
		fs[i] = r == 0 ? ur_task_future(t[i]) : NULL;
	}
	if (r < 0)
		return r; /* (a real program would cancel and join what it started) */
	int first = ur_wait_any(fs, N);
	printf("wait_any: %s finished first\n", first >= 0 ? pages[first].path : "?");
	ur_as_completed_init(&it, fs, N); /* for f in asyncio.as_completed(tasks) */
	while (ur_as_completed_next(&it, &done) == 0) {
		for (k = 0; fs[k] != done; k++)
			;
		printf("as_completed: %s\n", pages[k].path);
	}
	r = ur_gather(fs, N, 0); /* results = await asyncio.gather(*tasks) */
	for (int i = 0; i < N; i++) {
		printf("gather: %s -> %d \"%s\"\n", pages[i].path, fs[i]->res, pages[i].body);
		bad |= strcmp(pages[i].path, pages[i].body) != 0;
		ur_join(t[i]); /* frees the task: fs[i] is gone too */
	}
	int sr = ur_join(srv);
	return r < 0 ? r : sr < 0 ? sr : (bad || first != N - 1 || k != 0) ? -1 : 0;
}

int main(void)
{
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), result = -1;
	socklen_t len = sizeof(server_addr);
	server_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* port 0: the kernel picks */
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&server_addr, len) < 0 || listen(lfd, N) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&server_addr, &len) < 0)
		return 1;
	int r = ur_run(NULL, main_task, &lfd, &result);
	close(lfd);
	if (r < 0 || result < 0)
		fprintf(stderr, "tasks_gather: %s\n", ur_strerror(r < 0 ? r : result));
	return r < 0 || result < 0;
}
