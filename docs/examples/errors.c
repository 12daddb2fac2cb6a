/* SPDX-License-Identifier: MIT */
/*
 * errors.c - try/except becomes "check the int": every urio call returns >= 0 or -errno (or a
 * UR_E* code), ur_strerror()/ur_strerror_name() name it, and a gather reports its first error
 * while each child's own result stays readable.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <urio.h>

static char dir[] = "/tmp/urio-errors-XXXXXX", present[64], missing[64];

/* Returns the number of bytes in the file at @arg, or -errno. */
static int read_file(void *arg)
{
	char buf[64];
	int fd = ur_openat(AT_FDCWD, arg, O_RDONLY, 0);
	if (fd < 0)
		return fd; /* raise: the caller sees -ENOENT */
	ssize_t n = ur_read(fd, buf, sizeof(buf), 0);
	/* close(2), not ur_close(): in a cancelled task that returns -ECANCELED, closing nothing */
	close(fd);
	return (int)n;
}

static int slow(void *arg)
{
	(void)arg;
	int r = ur_sleep(50 * UR_MSEC);
	return r < 0 ? r : 1;
}

/* gather(read_file(present), read_file(missing), slow()) with @flags. */
static int gather_three(unsigned flags, int res[3])
{
	static ur_task_fn *const fn[3] = {read_file, read_file, slow};
	void *args[3] = {present, missing, NULL};
	struct ur_task *t[3];
	struct ur_future *fs[3];
	for (int i = 0; i < 3; i++) {
		if (ur_spawn(ur_current_loop(), &t[i], fn[i], args[i], NULL) < 0)
			abort(); /* -ENOMEM */
		fs[i] = ur_task_future(t[i]);
	}
	int r = ur_gather(fs, 3, flags); /* every child has finished when it returns */
	for (int i = 0; i < 3; i++)
		res[i] = ur_join(t[i]);
	printf("gather%s: %s; children: %d %s, %d %s, %d %s\n", flags ? " (cancel on error)" : "",
	       ur_strerror_name(r), res[0], ur_strerror_name(res[0]), res[1],
	       ur_strerror_name(res[1]), res[2], ur_strerror_name(res[2]));
	return r;
}

static int main_task(void *arg)
{
	(void)arg;
	int a[3], b[3];
	int fd = ur_openat(AT_FDCWD, present, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || ur_write(fd, "hello", 5, 0) != 5 || ur_close(fd) < 0)
		return -1;
	fd = ur_openat(AT_FDCWD, missing, O_RDONLY, 0);
	if (fd == -ENOENT) /* except FileNotFoundError as e: */
		printf("openat: %s, \"%s\"\n", ur_strerror_name(fd), ur_strerror(fd));
	int r1 = gather_three(0, a);
	int r2 = gather_three(UR_GATHER_CANCEL_ON_ERROR, b);
	bool ok = fd == -ENOENT && r1 == -ENOENT && a[0] == 5 && a[1] == -ENOENT && a[2] == 1;
	return ok && r2 == -ENOENT && b[2] == -ECANCELED ? 0 : -1;
}

int main(void)
{
	int result = -1;
	if (!mkdtemp(dir))
		return 1;
	snprintf(present, sizeof(present), "%s/present", dir);
	snprintf(missing, sizeof(missing), "%s/missing", dir);
	int r = ur_run(NULL, main_task, NULL, &result);
	unlink(present);
	rmdir(dir);
	/* urio's own codes: a task-only call made outside any task. */
	int e = ur_sleep(UR_MSEC);
	printf("ur_sleep outside a task: %s (%d), \"%s\"\n", ur_strerror_name(e), e,
	       ur_strerror(e));
	return r < 0 || result < 0 || e != UR_ENOTASK;
}
