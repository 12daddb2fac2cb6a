/* SPDX-License-Identifier: MIT */
/*
 * future.c - futures: the completion record of one io_uring operation, awaited with ur_await();
 * and a future the program completes itself (asyncio's loop.create_future() + set_result()).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <urio.h>

/* Completes the future it is given, from another task, 5 ms later. */
static int resolver(void *arg)
{
	int r = ur_sleep(5 * UR_MSEC);
	return r < 0 ? r : ur_future_resolve(arg, 42); /* fut.set_result(42) */
}

static int main_task(void *arg)
{
	struct ur_loop *loop = arg;
	struct ur_future answer; /* on this task's stack: it outlives the await below */
	struct ur_task *t;

	ur_future_init(&answer, NULL, NULL);
	/* The task first: a pending future must not be left on this stack if the spawn fails. */
	int r = ur_spawn(loop, &t, resolver, &answer, NULL);
	if (r < 0)
		return r;
	/* Pending, and holds the loop, until resolved; the resolver starts on the next turn. */
	r = ur_future_begin(loop, &answer);
	if (r < 0) {
		ur_task_cancel(t);
		ur_join(t);
		return r;
	}
	r = ur_await(&answer);
	printf("program-completed future: %d\n", r);
	int rr = ur_join(t);
	return rr < 0 ? rr : r;
}

int main(void)
{
	char path[] = "/tmp/urio-future-XXXXXX", buf[32] = {0};
	struct ur_loop *loop = NULL;
	struct ur_future rd;
	int fail = 1, result = -1;

	int fd = mkstemp(path);
	if (fd < 0)
		return 1;
	unlink(path); /* the open descriptor keeps the file alive */
	if (ur_loop_new(&loop, NULL) < 0 || write(fd, "from the kernel", 15) != 15)
		goto out;
	/* A raw operation: the future records the kernel's result. No callback: it is awaited. */
	ur_future_init(&rd, NULL, NULL);
	int r = ur_read_start(loop, &rd, fd, buf, sizeof(buf) - 1, 0);
	if (r < 0)
		goto out;
	printf("started; done yet? %s\n", ur_future_done(&rd) ? "yes" : "no"); /* never inline */
	r = ur_await(&rd); /* outside any task: turns the loop until rd is done */
	printf("read: res %d (%s), \"%s\"\n", r, ur_strerror(r), buf);
	if (r != 15 || rd.res != r || strcmp(buf, "from the kernel") != 0)
		goto out;
	/* ur_run() on a loop the caller owns: the loop is not freed afterwards. */
	fail = ur_run(loop, main_task, loop, &result) < 0 || result != 42;
out:
	close(fd);
	ur_loop_free(&loop);
	return fail;
}
