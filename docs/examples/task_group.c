/* SPDX-License-Identifier: MIT */
/*
 * task_group.c - asyncio.TaskGroup: spawn "downloads" into a group and wait for all of them;
 * when one fails, the group cancels the others and its result is that first error. Then the
 * same group under a timeout, which is one call: ur_wait_for() on the group's future.
 */
#include <errno.h>
#include <stdio.h>

#include <urio.h>

struct download {
	const char *name;
	uint64_t ms; /* how long it takes */
	int fails;   /* the error it ends with, or 0 */
	int result;  /* what its sleep returned: 0, or -ECANCELED when the group cancelled it */
};

static int download(void *arg)
{
	struct download *d = arg;
	d->result = ur_sleep(d->ms * UR_MSEC);
	if (d->result < 0)
		return d->result;
	return d->fails;
}

static void report(const char *what, int r, struct download *d, int n)
{
	printf("%s: %s;", what, ur_strerror_name(r));
	for (int i = 0; i < n; i++)
		printf(" %s %s", d[i].name, d[i].result < 0 ? "cancelled" : "done");
	printf("\n");
}

static int main_task(void *arg)
{
	(void)arg;
	struct ur_task_group g;
	int ok = 1;

	/* async with asyncio.TaskGroup() as tg: tg.create_task(...) x 3 */
	struct download a[3] = {{"a", 10, 0, 0}, {"b", 20, 0, 0}, {"c", 5, 0, 0}};
	ur_group_init(&g, ur_current_loop());
	for (int i = 0; i < 3; i++)
		ur_group_spawn(&g, download, &a[i], NULL);
	int r = ur_group_wait(&g);
	report("all succeed", r, a, 3);
	ok &= r == 0;

	/* One fails after 5 ms: the others are cancelled, the group ends with its error. */
	struct download b[3] = {{"a", 1000, 0, 0}, {"b", 5, -EIO, 0}, {"c", 1000, 0, 0}};
	ur_group_init(&g, ur_current_loop());
	for (int i = 0; i < 3; i++)
		ur_group_spawn(&g, download, &b[i], NULL);
	r = ur_group_wait(&g);
	report("one fails", r, b, 3);
	ok &= r == -EIO && b[0].result == -ECANCELED && b[2].result == -ECANCELED;

	/* Gather with a timeout, one call: 30 ms for downloads of 10 ms and 1 s. */
	struct download c[2] = {{"a", 10, 0, 0}, {"b", 1000, 0, 0}};
	ur_group_init(&g, ur_current_loop());
	for (int i = 0; i < 2; i++)
		ur_group_spawn(&g, download, &c[i], NULL);
	r = ur_wait_for(ur_group_future(&g), 30 * UR_MSEC);
	report("with a timeout", r, c, 2);
	ok &= r == -ETIMEDOUT && c[0].result == 0 && c[1].result == -ECANCELED;
	return ok ? 0 : -1;
}

int main(void)
{
	int result = -1;
	int r = ur_run(NULL, main_task, NULL, &result);
	return r < 0 || result < 0;
}
