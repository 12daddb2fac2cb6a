/* SPDX-License-Identifier: MIT */
/*
 * tools/bench/post.c - bench_post: the round trip between two loops on two threads, against what
 * the kernel itself allows on this machine.
 *
 * urio: loop a (main thread) and loop b (a thread of its own) post to each other in turn with
 * ur_loop_post(), -n round trips per run: a's post runs on b, which posts back to a. Both posts
 * are made from inside the poster's own loop run, so urio sends them as MSG_RING completions;
 * the eventfd path is the same ping-pong with both loops made with UR_LOOP_NO_MSG_RING (an
 * eventfd write, then the completion of the loop's eventfd read and its re-arm). Each path runs
 * twice: loops that sleep in io_uring_enter at once, and loops made with ur_loop_opts.spin_ns =
 * -s (they poll for up to that long before sleeping, and a post to a polling loop sends no
 * wake-up at all).
 *
 * The anchors, with no urio in between: two rings of the setup urio's loops get, each driven by
 * its own thread, ping-ponging with raw liburing as tightly as it allows. "raw MSG_RING": the
 * message to the other ring (CQE_SKIP_SUCCESS) goes to the kernel in the same io_uring_enter as
 * the wait for the answer, one entry per hop. "raw eventfd": a write(2) to the other thread's
 * eventfd, whose read is always in flight on that ring, re-armed in the enter that waits. "raw
 * MSG_RING, polling": the wait polls the CQ and IORING_SQ_TASKRUN instead of sleeping.
 * "shared memory": the two threads hand a counter back and forth through one cache line, no
 * kernel at all: the floor of any hand-over between two CPUs.
 *
 * Every variant runs once per round, rounds -r times, in the same order each round; the best and
 * median of each are printed: wall time per round trip, the CPU time of both threads per round
 * trip, and the system calls and sleeping waits (enters that may sleep) per round trip.
 */
#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "urio.h"

#include "bench.h"

#define MAX_REPEATS 50

enum kind {
	URIO,
	RAW_MSG,
	RAW_EFD,
	RAW_MSG_POLL,
	RAW_MEM,
};

struct variant {
	const char *name;
	enum kind kind;
	uint32_t flags; /* URIO: ur_loop_opts.flags */
	bool spin;      /* URIO: spin_ns = -s */
	double wall[MAX_REPEATS], cpu[MAX_REPEATS];
	double calls, sleeps; /* per round trip, over every run */
	long rts;
};

static uint32_t spin_ns = 100000;
static bool pin; /* -p: a on CPU 0, b on CPU 1 */

static void pin_to(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (pin && sched_setaffinity(0, sizeof(set), &set) < 0) {
		perror("bench_post: sched_setaffinity");
		exit(1);
	}
}

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}
static uint32_t raw_setup; /* the setup flags urio's loops get */

static void die(const char *what, int err)
{
	fprintf(stderr, "bench_post: %s: %s\n", what, ur_strerror(err));
	exit(1);
}

static double clock_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* --- urio ------------------------------------------------------------------------------------ */

struct pp {
	struct ur_loop *a, *b;
	struct ur_loop_opts opts;
	struct ur_post to_a, to_b, stop;
	struct ur_future kick;
	long rounds, total;
	struct ur_loop_stats bst;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

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
	pin_to(1);
	int r = ur_loop_new(&b, &p->opts);
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
	ur_loop_stats(b, &p->bst);
	ur_loop_free(&b);
	return NULL;
}

/* One run of @v: @total round trips; wall and CPU ns per round trip into *@wall, *@cpu. */
static void run_urio(struct variant *v, long total, double *wall, double *cpu)
{
	struct pp p = {.total = total};
	struct ur_loop_stats st;
	pthread_t th;

	p.opts.flags = v->flags;
	p.opts.spin_ns = v->spin ? spin_ns : 0;
	pthread_mutex_init(&p.mu, NULL);
	pthread_cond_init(&p.cv, NULL);
	int r = ur_loop_new(&p.a, &p.opts);
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
	struct ur_loop_stats a0;
	ur_loop_stats(p.a, &a0);
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
	/* b's counters include its setup (one enter): negligible over thousands of round trips */
	v->calls += (double)(st.enters - a0.enters + p.bst.enters);
	v->sleeps += (double)(uint32_t)(st.waits - a0.waits + p.bst.waits);
	v->rts += total;
	ur_loop_free(&p.a);
	pthread_mutex_destroy(&p.mu);
	pthread_cond_destroy(&p.cv);
}

/* --- the anchors: raw liburing, and shared memory ------------------------------------------- */

#define UD_MSG  1u /* a message from the other ring */
#define UD_READ 2u /* this ring's eventfd read */
#define UD_SEND 3u /* a refused MSG_RING (successes post no CQE) */

struct raw_side {
	struct io_uring ring;
	int efd;
	uint64_t buf;
	unsigned long calls, sleeps;
};

struct raw {
	enum kind kind;
	long total;
	struct raw_side s[2];
	pthread_barrier_t bar;
	_Atomic long ball;
	double wall, cpu;
};

static void raw_arm_read(struct raw_side *me)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&me->ring);
	io_uring_prep_read(sqe, me->efd, &me->buf, sizeof(me->buf), 0);
	io_uring_sqe_set_data64(sqe, UD_READ);
}

/* Hands the ball to the other side. MSG_RING's SQE goes in with the next wait, unless polling. */
static void raw_send(struct raw *r, int i)
{
	struct raw_side *me = &r->s[i], *peer = &r->s[!i];
	if (r->kind == RAW_EFD) {
		uint64_t one = 1;
		if (write(peer->efd, &one, sizeof(one)) != sizeof(one))
			die("eventfd write", -errno);
		return;
	}
	struct io_uring_sqe *sqe = io_uring_get_sqe(&me->ring);
	io_uring_prep_msg_ring(sqe, peer->ring.ring_fd, 0, UD_MSG, 0);
	io_uring_sqe_set_data64(sqe, UD_SEND);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	if (r->kind == RAW_MSG_POLL) {
		int ret = io_uring_submit(&me->ring);
		if (ret < 0)
			die("submit", ret);
		me->calls++;
	}
}

/* Waits for the ball. */
static void raw_wait(struct raw *r, int i)
{
	struct raw_side *me = &r->s[i];
	struct io_uring_cqe *cqe;
	int ret;

	if (r->kind == RAW_MSG_POLL) {
		while (!io_uring_cq_ready(&me->ring)) {
			if (IO_URING_READ_ONCE(*me->ring.sq.kflags) & IORING_SQ_TASKRUN) {
				io_uring_get_events(&me->ring);
				me->calls++;
			} else {
				relax();
			}
		}
	} else {
		ret = io_uring_submit_and_wait(&me->ring, 1);
		if (ret < 0)
			die("submit_and_wait", ret);
		me->calls++;
		me->sleeps++;
	}
	if ((ret = io_uring_peek_cqe(&me->ring, &cqe)) < 0)
		die("peek", ret);
	uint64_t ud = cqe->user_data;
	if (ud == UD_SEND || cqe->res < 0)
		die("raw ping-pong", cqe->res < 0 ? cqe->res : -EPROTO);
	io_uring_cqe_seen(&me->ring, cqe);
	if (ud == UD_READ)
		raw_arm_read(me);
}

static void *raw_thread(void *arg)
{
	struct raw *r = ((void **)arg)[0];
	int i = (int)(long)((void **)arg)[1];
	struct raw_side *me = &r->s[i];
	double w0 = 0, c0 = 0;

	if (i == 1)
		pin_to(1);
	if (r->kind != RAW_MEM) {
		struct io_uring_params p = {.flags = raw_setup};
		int ret = io_uring_queue_init_params(256, &me->ring, &p);
		if (ret < 0)
			die("io_uring_queue_init_params", ret);
		me->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (me->efd < 0)
			die("eventfd", -errno);
		if (r->kind == RAW_EFD) {
			raw_arm_read(me);
			io_uring_submit(
			    &me->ring); /* with DEFER_TASKRUN, by the ring's own thread */
		}
	}
	pthread_barrier_wait(&r->bar);
	if (i == 0) {
		w0 = clock_ns(CLOCK_MONOTONIC);
		c0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	}
	for (long k = 0; k < r->total; k++) {
		if (r->kind == RAW_MEM) {
			/* a writes 2k + 1 and waits for b's 2k + 2 */
			if (i == 0)
				atomic_store_explicit(&r->ball, 2 * k + 1, memory_order_release);
			while (atomic_load_explicit(&r->ball, memory_order_acquire) !=
			       2 * k + 1 + !i)
				relax();
			if (i == 1)
				atomic_store_explicit(&r->ball, 2 * k + 2, memory_order_release);
			continue;
		}
		if (i == 0) {
			raw_send(r, 0);
			raw_wait(r, 0);
		} else {
			raw_wait(r, 1);
			raw_send(r, 1);
		}
	}
	if (r->kind != RAW_MEM && io_uring_sq_ready(&me->ring))
		io_uring_submit(&me->ring); /* b's last answer */
	if (i == 0) {
		r->wall = clock_ns(CLOCK_MONOTONIC) - w0;
		r->cpu = clock_ns(CLOCK_PROCESS_CPUTIME_ID) - c0;
	}
	pthread_barrier_wait(&r->bar); /* neither ring goes while the other may still message it */
	if (r->kind != RAW_MEM) {
		io_uring_queue_exit(&me->ring);
		close(me->efd);
	}
	return NULL;
}

static void run_raw(struct variant *v, long total, double *wall, double *cpu)
{
	struct raw r = {.kind = v->kind, .total = total};
	pthread_t th;
	void *args[2][2] = {{&r, (void *)0L}, {&r, (void *)1L}};

	atomic_init(&r.ball, 0);
	pthread_barrier_init(&r.bar, NULL, 2);
	if (pthread_create(&th, NULL, raw_thread, args[1]))
		die("pthread_create", -EAGAIN);
	raw_thread(args[0]);
	pthread_join(th, NULL);
	pthread_barrier_destroy(&r.bar);
	/* a's time runs from the barrier; the thread in between is b's, inside the CPU time */
	*wall = r.wall / (double)total;
	*cpu = r.cpu / (double)total;
	v->calls += (double)(r.s[0].calls + r.s[1].calls);
	v->sleeps += (double)(r.s[0].sleeps + r.s[1].sleeps);
	v->rts += total;
}

static void run(struct variant *v, long total, double *wall, double *cpu)
{
	if (v->kind == URIO)
		run_urio(v, total, wall, cpu);
	else
		run_raw(v, total, wall, cpu);
}

/* --- the table -------------------------------------------------------------------------------- */

static double best(const double *v, unsigned n)
{
	double b = v[0];
	for (unsigned i = 1; i < n; i++)
		b = v[i] < b ? v[i] : b;
	return b;
}

int main(int argc, char **argv)
{
	long total = 20000;
	unsigned repeats = 5;
	const char *only = NULL;
	int opt;

	while ((opt = getopt(argc, argv, "n:r:s:o:ph")) != -1) {
		switch (opt) {
		case 'n':
			total = strtol(optarg, NULL, 0);
			break;
		case 'r':
			repeats = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 's':
			spin_ns = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'o':
			only = optarg;
			break;
		case 'p':
			pin = true;
			break;
		default:
			fprintf(
			    stderr,
			    "usage: %s [-n ROUNDS] [-r REPEATS] [-s SPIN_NS]\n"
			    "  -n ROUNDS   round trips per run (default 20000)\n"
			    "  -r REPEATS  runs per variant, in turn (default 5)\n"
			    "  -s SPIN_NS  ur_loop_opts.spin_ns of the polling urio rows (default "
			    "100000)\n"
			    "  -o TEXT     only the variant named TEXT, or those whose name "
			    "contains it (perf)\n"
			    "  -p          pin a to CPU 0 and b to CPU 1 (default: the scheduler "
			    "places "
			    "them)\n",
			    argv[0]);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (total < 1 || repeats == 0 || repeats > MAX_REPEATS || spin_ns == 0)
		return 2;
	pin_to(0);

	struct ur_loop *probe;
	int r = ur_loop_new(&probe, NULL);
	if (r < 0)
		die("ur_loop_new", r);
	raw_setup = ur_loop_setup_flags(probe);
	ur_loop_free(&probe);

	static struct variant vs[] = {
	    {"urio MSG_RING (default)", URIO, 0, false},
	    {"urio eventfd (NO_MSG_RING)", URIO, UR_LOOP_NO_MSG_RING, false},
	    {"raw MSG_RING", RAW_MSG, 0, false},
	    {"raw eventfd", RAW_EFD, 0, false},
	    {"urio MSG_RING, spin_ns", URIO, 0, true},
	    {"urio eventfd, spin_ns", URIO, UR_LOOP_NO_MSG_RING, true},
	    {"raw MSG_RING, polling", RAW_MSG_POLL, 0, false},
	    {"shared memory, polling", RAW_MEM, 0, false},
	};
	enum {
		N = sizeof(vs) / sizeof(vs[0])
	};
	bool on[N];
	double w, c;
	bool exact = false; /* -o names one variant exactly, or a part of several names */
	for (unsigned k = 0; k < N; k++)
		exact |= only && !strcmp(vs[k].name, only);
	for (unsigned k = 0; k < N; k++) { /* warm-up, not counted */
		on[k] = !only || (exact ? !strcmp(vs[k].name, only) : !!strstr(vs[k].name, only));
		if (!on[k])
			continue;
		run(&vs[k], total / 10 + 1, &w, &c);
		vs[k].calls = vs[k].sleeps = 0;
		vs[k].rts = 0;
	}
	for (unsigned i = 0; i < repeats; i++)
		for (unsigned k = 0; k < N; k++)
			if (on[k])
				run(&vs[k], total, &vs[k].wall[i], &vs[k].cpu[i]);

	printf(
	    "bench_post: %ld round trips between two threads%s, %u runs per variant, spin_ns %u, "
	    "ring setup 0x%x\n",
	    total, pin ? " (pinned to CPUs 0 and 1)" : "", repeats, spin_ns, raw_setup);
	printf("  %-28s %10s %10s %10s %10s %10s %10s\n", "", "wall best", "wall med", "CPU best",
	       "CPU med", "enters/rt", "waits/rt");
	double wb[N], wm[N];
	for (unsigned k = 0; k < N; k++) {
		struct variant *v = &vs[k];
		if (!on[k])
			continue;
		wb[k] = best(v->wall, repeats);
		wm[k] = median(v->wall, repeats);
		double cb = best(v->cpu, repeats), cm = median(v->cpu, repeats);
		printf("  %-28s %10.2f %10.2f %10.2f %10.2f %10.2f %10.2f\n", v->name, wb[k] / 1e3,
		       wm[k] / 1e3, cb / 1e3, cm / 1e3, v->calls / (double)v->rts,
		       v->sleeps / (double)v->rts);
	}
	printf("  (us per round trip, both threads; enters: io_uring_enter calls, waits: those "
	       "that may "
	       "sleep;\n   the eventfd rows also make up to 2 write(2) per round trip, none to a "
	       "polling loop)\n");
	static const struct {
		unsigned a, b;
		const char *what;
	} ratios[] = {
	    {0, 1, "urio MSG_RING / urio eventfd (issue 6: goal <= 0.5x)"},
	    {2, 3, "raw MSG_RING / raw eventfd (what the kernel allows)"},
	    {0, 2, "urio MSG_RING / raw MSG_RING"},
	    {1, 3, "urio eventfd / raw eventfd"},
	    {4, 1, "urio MSG_RING spin_ns / urio eventfd (goal <= 0.5x)"},
	    {5, 1, "urio eventfd spin_ns / urio eventfd"},
	    {4, 6, "urio MSG_RING spin_ns / raw polling"},
	};
	for (size_t k = 0; k < sizeof(ratios) / sizeof(ratios[0]); k++)
		if (on[ratios[k].a] && on[ratios[k].b])
			printf("  %-54s best %5.2fx  medians %5.2fx\n", ratios[k].what,
			       wb[ratios[k].a] / wb[ratios[k].b],
			       wm[ratios[k].a] / wm[ratios[k].b]);
	return 0;
}
