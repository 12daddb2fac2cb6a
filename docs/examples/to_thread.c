/* SPDX-License-Identifier: MIT */
/*
 * to_thread.c - keep blocking work off the loop. The same CPU-bound function runs twice while a
 * ticker task wants to wake every 2 ms: called directly, it blocks the loop and the ticker never
 * runs; through ur_to_thread() it runs on a worker thread and the ticker keeps ticking.
 */
#include <stdbool.h>
#include <stdio.h>

#include <urio.h>

struct work {
	uint64_t ns;   /* how long to keep the CPU busy */
	uint64_t hash; /* the result */
};

/* Blocking and CPU-heavy: FNV-1a rounds until @ns have passed. Thread-safe code only. */
static int busy_hash(void *arg)
{
	struct work *w = arg;
	uint64_t h = 14695981039346656037u, end = ur_now_ns() + w->ns;
	int rounds = 0;
	for (; ur_now_ns() < end; rounds++)
		for (unsigned i = 0; i < 10000; i++)
			h = (h ^ (i & 0xff)) * 1099511628211u;
	w->hash = h;
	return rounds;
}

struct ticker {
	bool stop;
	int ticks;
};

static int tick(void *arg)
{
	struct ticker *tk = arg;
	while (!tk->stop && ur_sleep(2 * UR_MSEC) == 0)
		tk->ticks++;
	return 0;
}

/* Runs busy_hash for 50 ms, on a worker thread if @offload; returns the ticks seen meanwhile. */
static int measure(bool offload)
{
	struct ticker tk = {0};
	/* On this stack, as nothing cancels this task: a cancelled ur_to_thread() returns while
	 * busy_hash still runs, so its argument must then live elsewhere (heap, static). */
	struct work w = {.ns = 50 * UR_MSEC};
	struct ur_task *t;
	if (ur_spawn(ur_current_loop(), &t, tick, &tk, NULL) < 0 || ur_sleep(UR_MSEC) < 0)
		return -1;
	int start = tk.ticks;
	int rounds = offload ? ur_to_thread(busy_hash, &w) : busy_hash(&w);
	int ticks = tk.ticks - start;
	tk.stop = true;
	ur_join(t);
	printf("%-16s %4d rounds, hash %016llx; ticker ticked %2d times meanwhile\n",
	       offload ? "ur_to_thread:" : "called directly:", rounds, (unsigned long long)w.hash,
	       ticks);
	return rounds < 0 ? rounds : ticks;
}

static int main_task(void *arg)
{
	(void)arg;
	int blocked = measure(false);
	int offloaded = measure(true);
	/* 50 ms at one tick per 2 ms: up to 25, fewer on a busy machine; any shows the loop ran. */
	return blocked == 0 && offloaded >= 2 ? 0 : -1;
}

int main(void)
{
	int result = -1;
	int r = ur_run(NULL, main_task, NULL, &result);
	return r < 0 || result < 0;
}
