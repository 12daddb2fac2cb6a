/* SPDX-License-Identifier: MIT */
/*
 * tools/bench/post.c - bench_post: the round trip between two loops on two threads.
 *
 * Loop a (main thread) and loop b (a thread of its own) post to each other in turn with
 * ur_loop_post(), -n round trips per run: a's post runs on b, which posts back to a. Both posts
 * are made from inside the poster's own loop run, so urio sends them as MSG_RING completions;
 * the anchor is the same ping-pong with b (and a) made with UR_LOOP_NO_MSG_RING, which wakes a
 * loop through its eventfd (a write, then the completion of the loop's eventfd read). The two
 * paths alternate run by run (-r runs each); the best and median of each are printed, wall time
 * per round trip and the CPU time both threads spent per round trip.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "urio.h"

#include "bench.h"

#define MAX_REPEATS 50

struct pp {
	struct ur_loop *a, *b;
	uint32_t flags;
	struct ur_post to_a, to_b, stop;
	struct ur_future kick;
	long rounds, total;
	unsigned a_msg, b_msg;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

static void die(const char *what, int err)
{
	fprintf(stderr, "bench_post: %s: %s\n", what, ur_strerror(err));
	exit(1);
}

static void on_b(void *arg)
{
	struct pp *p = arg;
	int r = ur_loop_post(p->a, &p->to_a);
	if (r < 0)
		die("post to a", r);
}

static void on_b_stop(void *arg)
{
	ur_loop_unref(((struct pp *)arg)->b);
}

static void on_a(void *arg)
{
	struct pp *p = arg;
	int r = ur_loop_post(p->b, ++p->rounds < p->total ? &p->to_b : &p->stop);
	if (r < 0)
		die("post to b", r);
	if (p->rounds == p->total)
		ur_loop_unref(p->a);
}

static void kick_cb(struct ur_future *f, void *arg)
{
	struct pp *p = arg;
	(void)f;
	int r = ur_loop_post(p->b, &p->to_b);
	if (r < 0)
		die("post to b", r);
}

static void *b_thread(void *arg)
{
	struct pp *p = arg;
	struct ur_loop *b;
	struct ur_loop_opts o = {.flags = p->flags};
	struct ur_loop_stats st;
	int r = ur_loop_new(&b, &o);
	if (r < 0)
		die("ur_loop_new", r);
	ur_loop_ref(b);
	pthread_mutex_lock(&p->mu);
	p->b = b;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	r = ur_loop_run(b, UR_RUN_DEFAULT);
	if (r < 0)
		die("ur_loop_run b", r);
	ur_loop_stats(b, &st);
	p->b_msg = st.msg_wakes;
	ur_loop_free(&b);
	return NULL;
}

static double clock_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* One run: @total round trips; wall ns and process CPU ns per round trip. */
static void run(long total, uint32_t flags, double *wall, double *cpu, unsigned *msgs)
{
	struct pp p = {.flags = flags, .total = total};
	struct ur_loop_opts o = {.flags = flags};
	struct ur_loop_stats st;
	pthread_t th;

	pthread_mutex_init(&p.mu, NULL);
	pthread_cond_init(&p.cv, NULL);
	int r = ur_loop_new(&p.a, &o);
	if (r < 0)
		die("ur_loop_new", r);
	p.to_a = (struct ur_post){.fn = on_a, .arg = &p};
	p.to_b = (struct ur_post){.fn = on_b, .arg = &p};
	p.stop = (struct ur_post){.fn = on_b_stop, .arg = &p};
	if (pthread_create(&th, NULL, b_thread, &p))
		die("pthread_create", -EAGAIN);
	pthread_mutex_lock(&p.mu);
	while (!p.b)
		pthread_cond_wait(&p.cv, &p.mu);
	pthread_mutex_unlock(&p.mu);

	ur_loop_ref(p.a);
	ur_future_init(&p.kick, kick_cb, &p);
	double w0 = clock_ns(CLOCK_MONOTONIC), c0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	r = ur_nop_start(p.a, &p.kick);
	if (r == 0)
		r = ur_loop_run(p.a, UR_RUN_DEFAULT);
	if (r < 0)
		die("ur_loop_run a", r);
	pthread_join(th, NULL);
	*wall = (clock_ns(CLOCK_MONOTONIC) - w0) / (double)total;
	*cpu = (clock_ns(CLOCK_PROCESS_CPUTIME_ID) - c0) / (double)total;
	ur_loop_stats(p.a, &st);
	*msgs = st.msg_wakes + p.b_msg;
	ur_loop_free(&p.a);
	pthread_mutex_destroy(&p.mu);
	pthread_cond_destroy(&p.cv);
}

int main(int argc, char **argv)
{
	long total = 20000;
	unsigned repeats = 5;
	int opt;

	while ((opt = getopt(argc, argv, "n:r:h")) != -1) {
		switch (opt) {
		case 'n':
			total = strtol(optarg, NULL, 0);
			break;
		case 'r':
			repeats = (unsigned)strtoul(optarg, NULL, 0);
			break;
		default:
			fprintf(stderr,
			        "usage: %s [-n ROUNDS] [-r REPEATS]\n"
			        "  -n ROUNDS   round trips per run (default 20000)\n"
			        "  -r REPEATS  runs per path, alternating (default 5)\n",
			        argv[0]);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (total < 1 || repeats == 0 || repeats > MAX_REPEATS)
		return 2;

	double mw[MAX_REPEATS], mc[MAX_REPEATS], ew[MAX_REPEATS], ec[MAX_REPEATS];
	unsigned mmsg = 0, emsg = 0;
	double w, c;
	run(total / 10 + 1, 0, &w, &c, &mmsg); /* warm-up */
	run(total / 10 + 1, UR_LOOP_NO_MSG_RING, &w, &c, &emsg);
	for (unsigned i = 0; i < repeats; i++) {
		run(total, 0, &mw[i], &mc[i], &mmsg);
		run(total, UR_LOOP_NO_MSG_RING, &ew[i], &ec[i], &emsg);
	}
	printf("bench_post: %ld round trips between two loops on two threads, %u runs per path\n",
	       total, repeats);
	printf("  %-26s %14s %14s %14s %14s %12s\n", "", "wall us (best)", "wall us (med)",
	       "CPU us (best)", "CPU us (med)", "MSG_RING/rt");
	double mwb = mw[0], ewb = ew[0], mcb = mc[0], ecb = ec[0];
	for (unsigned i = 1; i < repeats; i++) {
		mwb = mw[i] < mwb ? mw[i] : mwb;
		ewb = ew[i] < ewb ? ew[i] : ewb;
		mcb = mc[i] < mcb ? mc[i] : mcb;
		ecb = ec[i] < ecb ? ec[i] : ecb;
	}
	double mwm = median(mw, repeats), ewm = median(ew, repeats);
	double mcm = median(mc, repeats), ecm = median(ec, repeats);
	printf("  %-26s %14.2f %14.2f %14.2f %14.2f %12.2f\n", "MSG_RING (default)", mwb / 1e3,
	       mwm / 1e3, mcb / 1e3, mcm / 1e3, (double)mmsg / (double)total);
	printf("  %-26s %14.2f %14.2f %14.2f %14.2f %12.2f\n", "eventfd (NO_MSG_RING)", ewb / 1e3,
	       ewm / 1e3, ecb / 1e3, ecm / 1e3, (double)emsg / (double)total);
	printf("  MSG_RING / eventfd: wall %.2fx (medians %.2fx), CPU %.2fx (medians %.2fx); goal "
	       "wall <= 0.5x: %s\n",
	       mwb / ewb, mwm / ewm, mcb / ecb, mcm / ecm, mwb / ewb <= 0.5 ? "met" : "MISSED");
	return 0;
}
