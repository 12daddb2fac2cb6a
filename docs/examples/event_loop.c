/* SPDX-License-Identifier: MIT */
/*
 * event_loop.c - the loop without tasks: futures with callbacks (loop.call_later,
 * add_done_callback), the run modes, and a loop driven from the host program's own epoll.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <urio.h>

struct timer {
	struct ur_future f; /* caller-owned: alive until its callback has run */
	const char *name;
	int *fired;
};

/* Runs on the loop's thread, from inside ur_loop_run(), never inside the start call. */
static void on_done(struct ur_future *f, void *arg)
{
	struct timer *t = arg;
	printf("  %s done, res %d\n", t->name, f->res);
	(*t->fired)++;
}

static int start(struct ur_loop *loop, struct timer *t, uint64_t ms)
{
	ur_future_init(&t->f, on_done, t);
	return ms ? ur_timeout_start(loop, &t->f, ms * UR_MSEC, 0) : ur_nop_start(loop, &t->f);
}

int main(void)
{
	struct ur_loop *loop;
	int fired = 0, ep = -1, fail = 1;
	struct timer t[4] = {{.name = "nop", .fired = &fired},
	                     {.name = "2 ms timer", .fired = &fired},
	                     {.name = "1 ms timer", .fired = &fired},
	                     {.name = "3 ms timer", .fired = &fired}};

	if (ur_loop_new(&loop, NULL) < 0)
		return 1;
	if (start(loop, &t[0], 0) < 0 || start(loop, &t[1], 2) < 0)
		goto out;
	printf("UR_RUN_ONCE: %d left pending\n", ur_loop_run(loop, UR_RUN_ONCE));
	printf("UR_RUN_DEFAULT: %d left pending\n", ur_loop_run(loop, UR_RUN_DEFAULT));

	/* Embedding: the host sleeps in epoll_wait; urio only runs when its fd is readable. */
	int lfd = ur_loop_fd(loop);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (lfd < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
		goto out;
	if (start(loop, &t[2], 1) < 0 || start(loop, &t[3], 3) < 0)
		goto out;
	int pending, wakeups = 0;
	/* NOWAIT submits what was started and handles what is ready; call it before sleeping. */
	while ((pending = ur_loop_run(loop, UR_RUN_NOWAIT)) > 0) {
		int n = epoll_wait(ep, &ev, 1, 1000);
		if (n < 0 && errno == EINTR)
			continue; /* the kernel's task work can interrupt the wait: retry */
		if (n <= 0)
			goto out;
		wakeups++;
	}
	printf("epoll: %d wake-ups, %d callbacks in all\n", wakeups, fired);
	fail = pending < 0 || fired != 4;
out:
	if (ep >= 0)
		close(ep);
	ur_loop_free(&loop);
	return fail;
}
