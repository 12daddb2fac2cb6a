/* SPDX-License-Identifier: MIT */
/*
 * tests/core/test_spin.c - polling before sleeping (ur_loop_opts.spin_ns): off by default, the
 * poll ends at the earliest timer, work that arrives during it (a kernel completion, a post from
 * another thread, a post from another loop) is taken without a sleeping io_uring_enter, and a
 * loop with nothing to wait for never polls.
 *
 * "Without sleeping" is read from ur_loop_stats: waits counts the io_uring_enter calls that asked
 * to wait. With a poll of UINT32_MAX ns (4.3 s) a wait can only come from a poll that ran out,
 * which these tests never allow; they assert counts, never times.
 */
#include <pthread.h>
#include <stdatomic.h>

/* Every fault class changes what these tests count (a start replaced by a NOP that completes at
 * once, a completion held back a turn): the file is skipped in fault builds. */
#define T_FAULT_UNSAFE_FILE "short,eintr,eagain,reset,enobufs,enomem,delay"
#define T_FAULT_UNSAFE_WHY  "asserts exact counts of waits and polls"
#include "helpers.h"

TestSuite(spin, .timeout = 60);

#define HUGE_SPIN UINT32_MAX

static struct ur_loop *spin_loop(uint32_t spin_ns)
{
	struct ur_loop_opts o = {.spin_ns = spin_ns};
	return t_loop_opts(&o);
}

static struct ur_loop_stats stats(struct ur_loop *l)
{
	struct ur_loop_stats st;
	ur_loop_stats(l, &st);
	return st;
}

Test(spin, reserved_fields_still_checked)
{
	struct ur_loop *l = (void *)1;
	struct ur_loop_opts o = {.spin_ns = 1000, .reserved = {0, 0, 0, 0, 1}};
	cr_assert_eq(ur_loop_new(&l, &o), -EINVAL);
	cr_assert_null(l);
}

/* A kernel timeout: its completion is the kernel's, never in the CQ before an entry with
 * DEFER_TASKRUN (it comes as task work, IORING_SQ_TASKRUN). */
static void run_kernel_timeout(struct ur_loop *l, uint64_t ns)
{
	struct ur_future f;
	int calls = 0;
	ur_future_init(&f, t_count_cb, &calls);
	uint64_t t0 = ur_now_ns();
	cr_assert_eq(ur_timeout_start(l, &f, ns, 0), 0);
	cr_assert_eq(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	cr_assert_eq(calls, 1);
	cr_assert_eq(f.res, 0);
	cr_assert_geq(ur_now_ns() - t0, ns, "the timeout completed early");
}

Test(spin, zero_never_polls)
{
	struct ur_loop *l = spin_loop(0);
	run_kernel_timeout(l, 20 * UR_MSEC);
	struct ur_loop_stats st = stats(l);
	cr_assert_eq(st.spins, 0);
	cr_assert_eq(st.spin_hits, 0);
	cr_assert_geq(st.waits, 1, "the loop slept for the timeout");
	t_loop_done(&l);
}

Test(spin, tiny_poll_runs_out_then_sleeps)
{
	struct ur_loop *l = spin_loop(1);
	run_kernel_timeout(l, 20 * UR_MSEC);
	struct ur_loop_stats st = stats(l);
	cr_assert_geq(st.spins, 1);
	cr_assert_eq(st.spin_hits, 0, "a 1 ns poll found the 20 ms timeout");
	cr_assert_eq(st.waits, st.spins, "every poll that ran out is followed by a sleep");
	t_loop_done(&l);
}

Test(spin, kernel_completion_taken_without_sleeping)
{
	struct ur_loop *l = spin_loop(HUGE_SPIN);
	run_kernel_timeout(l, 20 * UR_MSEC);
	struct ur_loop_stats st = stats(l);
	cr_assert_eq(st.waits, 0, "the loop slept although it polls for 4 s");
	cr_assert_geq(st.spins, 1);
	cr_assert_eq(st.spin_hits, st.spins);
	t_loop_done(&l);
}

/* A task's sleep is an entry of the loop's timer heap: the poll must end when it is due. */
static int sleeper(void *arg)
{
	uint64_t t0 = ur_now_ns();
	int r = ur_sleep(20 * UR_MSEC);
	*(uint64_t *)arg = ur_now_ns() - t0;
	return r;
}

Test(spin, timer_ends_the_poll)
{
	struct ur_loop *l = spin_loop(HUGE_SPIN);
	uint64_t slept = 0;
	int result = -1;
	cr_assert_eq(ur_run(l, sleeper, &slept, &result), 0);
	cr_assert_eq(result, 0);
	cr_assert_geq(slept, 20 * UR_MSEC, "the sleep ended early");
	struct ur_loop_stats st = stats(l);
	/* Ran out after 4.3 s, the poll would count no hit and be followed by a wait. */
	cr_assert_eq(st.waits, 0);
	cr_assert_geq(st.spins, 1);
	cr_assert_eq(st.spin_hits, st.spins, "a poll ran to its end instead of the timer's");
	t_loop_done(&l);
}

Test(spin, nothing_to_wait_for_never_polls)
{
	struct ur_loop *l = spin_loop(HUGE_SPIN);
	cr_assert_eq(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	cr_assert_eq(ur_loop_run(l, UR_RUN_ONCE), 0);
	/* A timeout pending, but UR_RUN_NOWAIT never waits, so never polls either. */
	struct ur_future f;
	int calls = 0;
	ur_future_init(&f, t_count_cb, &calls);
	cr_assert_eq(ur_timeout_start(l, &f, 10 * UR_SEC, 0), 0);
	cr_assert_eq(ur_loop_run(l, UR_RUN_NOWAIT), 1);
	struct ur_loop_stats st = stats(l);
	cr_assert_eq(st.spins, 0);
	cr_assert_eq(st.waits, 0);
	cr_assert_eq(ur_cancel(&f), 0);
	cr_assert_eq(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	cr_assert_eq(calls, 1);
	t_loop_done(&l);
}

/*
 * Posts from a plain thread, each made a while after the previous one ran, so that it lands while
 * the loop polls: the loop takes each without sleeping, and the poster skips the wake-up.
 */
#define POSTS 3

struct poster {
	struct ur_loop *l;
	struct ur_post post;
	atomic_int ran;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

static void on_post(void *arg)
{
	struct poster *p = arg;
	pthread_mutex_lock(&p->mu);
	int n = atomic_fetch_add(&p->ran, 1) + 1;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	if (n == POSTS)
		ur_loop_unref(p->l);
}

static void *poster_thread(void *arg)
{
	struct poster *p = arg;
	for (int i = 0; i < POSTS; i++) {
		pthread_mutex_lock(&p->mu);
		while (atomic_load(&p->ran) < i)
			pthread_cond_wait(&p->cv, &p->mu);
		pthread_mutex_unlock(&p->mu);
		/* not for the kernel to settle: time for the loop to get back to its poll */
		usleep(10000);
		ur_loop_post(p->l, &p->post);
	}
	return NULL;
}

Test(spin, post_during_poll_taken_without_sleeping)
{
	struct poster p = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	p.l = spin_loop(HUGE_SPIN);
	p.post = (struct ur_post){.fn = on_post, .arg = &p};
	atomic_init(&p.ran, 0);
	ur_loop_ref(p.l);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, poster_thread, &p), 0);
	cr_assert_eq(ur_loop_run(p.l, UR_RUN_DEFAULT), 0);
	pthread_join(th, NULL);
	cr_assert_eq(atomic_load(&p.ran), POSTS);
	struct ur_loop_stats st = stats(p.l);
	cr_assert_eq(st.waits, 0, "the loop slept although it polls for 4 s");
	cr_assert_geq(st.spins, 1, "no post arrived while the loop polled");
	cr_assert_eq(st.spin_hits, st.spins);
	t_loop_done(&p.l);
}

/*
 * Two polling loops on two threads ping-pong posts (MSG_RING between urio loops where the
 * kernel has it): neither ever sleeps, every post runs once and in turn.
 */
struct pingpong {
	struct ur_loop *a, *b;
	struct ur_post to_a, to_b, stop;
	int total, rounds, on_b;
	struct ur_future kick;
	struct ur_loop_stats bst;
	struct t_gate ready;
};

static void pp_on_b(void *arg)
{
	struct pingpong *p = arg;
	p->on_b++;
	ur_loop_post(p->a, &p->to_a);
}

static void pp_on_a(void *arg)
{
	struct pingpong *p = arg;
	if (++p->rounds < p->total) {
		ur_loop_post(p->b, &p->to_b);
		return;
	}
	ur_loop_post(p->b, &p->stop);
	ur_loop_unref(p->a);
}

static void pp_stop(void *arg)
{
	ur_loop_unref(((struct pingpong *)arg)->b);
}

static void pp_kick(struct ur_future *f, void *arg)
{
	(void)f;
	struct pingpong *p = arg;
	ur_loop_post(p->b, &p->to_b);
}

static void *pp_b_thread(void *arg)
{
	struct pingpong *p = arg;
	struct ur_loop_opts o = {.flags = t_loop_flags(), .spin_ns = HUGE_SPIN};
	if (ur_loop_new(&p->b, &o) < 0)
		abort();
	ur_loop_ref(p->b);
	t_gate_open(&p->ready);
	if (ur_loop_run(p->b, UR_RUN_DEFAULT) != 0)
		abort();
	ur_loop_stats(p->b, &p->bst);
	ur_loop_free(&p->b);
	return NULL;
}

Test(spin, loops_ping_pong_without_sleeping)
{
	static struct pingpong p = {.ready = T_GATE_INIT};
	p.total = T_UNDER_VALGRIND() ? 20 : 200; /* valgrind hands the CPU over slowly */
	p.a = spin_loop(HUGE_SPIN);
	p.to_a = (struct ur_post){.fn = pp_on_a, .arg = &p};
	p.to_b = (struct ur_post){.fn = pp_on_b, .arg = &p};
	p.stop = (struct ur_post){.fn = pp_stop, .arg = &p};
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, pp_b_thread, &p), 0);
	t_gate_wait(&p.ready);
	ur_loop_ref(p.a);
	ur_future_init(&p.kick, pp_kick, &p);
	cr_assert_eq(ur_nop_start(p.a, &p.kick), 0);
	cr_assert_eq(ur_loop_run(p.a, UR_RUN_DEFAULT), 0);
	pthread_join(th, NULL);
	cr_assert_eq(p.rounds, p.total);
	cr_assert_eq(p.on_b, p.total);
	struct ur_loop_stats st = stats(p.a);
	cr_assert_eq(st.waits, 0, "loop a slept");
	cr_assert_eq(p.bst.waits, 0, "loop b slept");
	cr_assert_eq(st.spin_hits, st.spins);
	t_loop_done(&p.a);
}
