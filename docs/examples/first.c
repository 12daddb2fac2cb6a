/* SPDX-License-Identifier: MIT */
/*
 * docs/examples/first.c - README's "your first program": two tasks, one reads a file while the
 * other sleeps, gathered; written from the headers alone, as a newcomer would.
 *
 *   cc first.c $(pkg-config --cflags --libs urio) -o first && ./first
 */
/* AT_FDCWD and ssize_t are POSIX, not ISO C: `cc -std=c11` hides them without this. */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdio.h>
#include <urio.h>

static int count_bytes(void *arg)
{
	const char *path = arg;
	char buf[4096];
	int fd = ur_openat(AT_FDCWD, path, O_RDONLY, 0);
	if (fd < 0)
		return fd; /* -ENOENT...: errno values, negated (<errno.h> comes with urio.h) */
	ssize_t n, total = 0;
	while ((n = ur_read(fd, buf, sizeof(buf), UR_OFF_CURRENT)) > 0)
		total += n;
	ur_close(fd);
	return n < 0 ? (int)n : (int)total;
}

static int nap(void *arg)
{
	(void)arg;
	return ur_sleep(10 * UR_MSEC);
}

static int main_task(void *arg)
{
	struct ur_task *reader, *sleeper;
	int r = ur_spawn(ur_current_loop(), &reader, count_bytes, arg, NULL);
	if (r < 0)
		return r;
	r = ur_spawn(ur_current_loop(), &sleeper, nap, NULL, NULL);
	if (r < 0)
		return r;
	struct ur_future *fs[] = {ur_task_future(reader), ur_task_future(sleeper)};
	r = ur_gather(fs, 2, 0); /* asyncio.gather: both, first error */
	int bytes = fs[0]->res;
	ur_join(reader);
	ur_join(sleeper);
	if (r < 0)
		return r;
	printf("%d bytes read while another task slept\n", bytes);
	return 0;
}

int main(int argc, char **argv)
{
	int result;
	int r = ur_run(NULL, main_task, argc > 1 ? argv[1] : "/etc/hostname", &result);
	if (r < 0 || result < 0) {
		fprintf(stderr, "first: %s\n", ur_strerror(r < 0 ? r : result));
		return 1;
	}
	return result == -ENOENT;
}
