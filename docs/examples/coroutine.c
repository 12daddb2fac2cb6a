/* SPDX-License-Identifier: MIT */
/*
 * coroutine.c - asyncio's coroutine is a urio task: a plain C function that reads top to bottom
 * and suspends (the task, not the thread) wherever it waits for the kernel. ur_run() is
 * asyncio.run(): it makes a loop, runs the task to completion and frees the loop.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <urio.h>

/* "await say_after(...)" is an ordinary call: anything a task calls may suspend it. */
static ssize_t say_after(int fd, uint64_t delay_ns, const char *what)
{
	int r = ur_sleep(delay_ns);
	if (r < 0)
		return r;
	return ur_write(fd, what, strlen(what), UR_OFF_CURRENT);
}

static int main_task(void *arg)
{
	(void)arg;
	int p[2];
	char buf[64] = {0};

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	uint64_t t0 = ur_now_ns();
	ssize_t r = say_after(p[1], 10 * UR_MSEC, "hello, ");
	if (r >= 0)
		r = say_after(p[1], 20 * UR_MSEC, "world");
	ur_close(p[1]); /* end of file for the reader */
	if (r >= 0)
		r = ur_read_all(p[0], buf, sizeof(buf) - 1, UR_OFF_CURRENT);
	ur_close(p[0]);
	if (r < 0)
		return (int)r;
	printf("read \"%s\" (%zd bytes) after %.0f ms\n", buf, r, (double)(ur_now_ns() - t0) / 1e6);
	return strcmp(buf, "hello, world") == 0 ? 0 : -1;
}

int main(void)
{
	int result = -1;
	int r = ur_run(NULL, main_task, NULL, &result); /* asyncio.run(main()) */
	if (r < 0 || result < 0) {
		fprintf(stderr, "coroutine: %s\n", ur_strerror(r < 0 ? r : result));
		return 1;
	}
	return 0;
}
