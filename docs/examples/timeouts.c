/* SPDX-License-Identifier: MIT */
/*
 * timeouts.c - asyncio.wait_for() on a recv that never completes, a timeout scope around a block
 * (asyncio.timeout: docs/examples/timeout_scope.c shows more), and Task.cancel() of a sleeping
 * task: its await returns -ECANCELED, and so does every await after it, until its function
 * returns.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include <urio.h>

struct sleeper {
	int first, second;
};

static int sleepy(void *arg)
{
	struct sleeper *s = arg;
	s->first = ur_sleep(10 * UR_SEC);
	s->second = ur_sleep(UR_MSEC); /* already cancelled: returns at once, starts nothing */
	return s->first;
}

static int main_task(void *arg)
{
	int *sv = arg, ok = 1;
	char buf[16];
	struct ur_future rf;
	struct ur_task *t;
	struct sleeper s = {0};

	/* 1. await asyncio.wait_for(reader.read(16), 0.02): nothing is ever sent on sv[1]. */
	ur_future_init(&rf, NULL, NULL);
	if (ur_recv_start(ur_current_loop(), &rf, sv[0], buf, sizeof(buf), 0) < 0)
		return -1;
	int r = ur_wait_for(&rf, 20 * UR_MSEC);
	printf("wait_for: %s; the recv itself ended with %s\n", ur_strerror_name(r),
	       ur_strerror_name(rf.res));
	ok &= r == -ETIMEDOUT && ur_future_done(&rf) && rf.res == -ECANCELED;

	/* 2. async with asyncio.timeout(0.02): a deadline over a block (here, one recv). */
	struct ur_timeout to;
	ur_timeout_begin(&to, 20 * UR_MSEC);
	ssize_t n = ur_recv(sv[0], buf, sizeof(buf), 0);
	ok &= ur_timeout_end(&to) == -ETIMEDOUT;
	ok &= n == -ETIMEDOUT && write(sv[1], "late", 4) == 4;
	ssize_t m = ur_recv(sv[0], buf, sizeof(buf), 0); /* no deadline: waits for the data */
	printf("timeout scope: %s; the next recv got %zd bytes\n", ur_strerror_name((int)n), m);
	ok &= m == 4;

	/* 3. task.cancel() */
	uint64_t t0 = ur_now_ns();
	if (ur_spawn(ur_current_loop(), &t, sleepy, &s, NULL) < 0 || ur_sleep(5 * UR_MSEC) < 0)
		return -1;
	ur_task_cancel(t);
	r = ur_join(t);
	printf("cancel: task returned %s after %.0f ms; its next sleep: %s\n", ur_strerror_name(r),
	       (double)(ur_now_ns() - t0) / 1e6, ur_strerror_name(s.second));
	ok &= r == -ECANCELED && s.second == -ECANCELED && ur_now_ns() - t0 < UR_SEC;
	return ok ? 0 : -1;
}

int main(void)
{
	int sv[2], result = -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 1;
	int r = ur_run(NULL, main_task, sv, &result);
	close(sv[0]);
	close(sv[1]);
	return r < 0 || result < 0;
}
