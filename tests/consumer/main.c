/* SPDX-License-Identifier: MIT */
/* A consumer of urio built as a meson subproject: a NOP and a timeout through the public API. */
#include <stdio.h>
#include <urio.h>

static void done(struct ur_future *f, void *arg)
{
	*(int *)arg += f->res == 0;
}

int main(void)
{
	struct ur_loop *loop;
	struct ur_future nop, sleep;
	int ok = 0;

	int ret = ur_loop_new(&loop, NULL);
	if (ret < 0) {
		fprintf(stderr, "ur_loop_new: %s\n", ur_strerror(ret));
		return 1;
	}
	ur_future_init(&nop, done, &ok);
	ur_future_init(&sleep, done, &ok);
	if (ur_nop_start(loop, &nop) < 0 || ur_timeout_start(loop, &sleep, UR_MSEC, 0) < 0)
		return 1;
	ur_loop_run(loop, UR_RUN_DEFAULT);
	ur_loop_free(&loop);
	printf("urio %s: %d of 2 operations completed\n", ur_version(), ok);
	return ok == 2 ? 0 : 1;
}
