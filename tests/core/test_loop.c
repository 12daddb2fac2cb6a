/* SPDX-License-Identifier: MIT */
/*
 * tests/core/test_loop.c - the loop: setup and its fallback, batching, a full SQ, CQ overflow, run
 * modes, the fairness cap, embedding in epoll, cross-thread posts, teardown with work in flight.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/syscall.h>

/* Every test here asserts results that these faults change by design (see t_fault_unsafe). */
#define T_FAULT_UNSAFE_FILE "enomem"
#define T_FAULT_UNSAFE_WHY  "asserts that every start succeeds"
#include "helpers.h"

TestSuite(loop, .timeout = 60);

Test(loop, options_are_validated)
{
	struct ur_loop *l = (void *)1;
	struct ur_loop_opts o = {.reserved = {0, 1}};
	cr_assert_eq(ur_loop_new(&l, &o), -EINVAL);
	cr_assert_null(l);
	o = (struct ur_loop_opts){.flags = 1u << 20};
	cr_assert_eq(ur_loop_new(&l, &o), -EINVAL);
	o = (struct ur_loop_opts){.sq_entries = 64, .cq_entries = 32};
	cr_assert_eq(ur_loop_new(&l, &o), UR_ERINGSIZE);
	ur_loop_free(NULL);
	l = NULL;
	ur_loop_free(&l);
}

Test(loop, setup_flags_and_probe)
{
	struct ur_loop *l = t_loop();
	uint32_t fl = ur_loop_setup_flags(l);
	if (t_loop_flags())
		cr_assert_eq(fl, 0);
	else if (!(fl & IORING_SETUP_DEFER_TASKRUN))
		cr_log_warn("kernel refused DEFER_TASKRUN; running with setup flags %#x", fl);
	else
		cr_assert_eq(fl & IORING_SETUP_SINGLE_ISSUER, IORING_SETUP_SINGLE_ISSUER);
	cr_assert(ur_loop_supports(l, IORING_OP_NOP));
	cr_assert_not(ur_loop_supports(l, 255));
	cr_assert_geq(ur_loop_fd(l), 0);
	t_loop_done(&l);
}

Test(loop, iowq_worker_cap)
{
	struct ur_loop_opts o = {.iowq_max_bounded = 2, .iowq_max_unbounded = 2};
	struct ur_loop *l = t_loop_opts(&o);
	t_loop_done(&l);
}

static void start_nops(struct ur_loop *l, struct ur_future *f, int n, int *calls)
{
	for (int i = 0; i < n; i++) {
		ur_future_init(&f[i], t_count_cb, calls);
		cr_assert_eq(ur_nop_start(l, &f[i]), 0);
	}
}

static void ten_times_the_sq(uint32_t flags)
{
	struct ur_loop_opts o = {.sq_entries = 16, .flags = flags};
	struct ur_loop *l = t_loop_opts(&o);
	struct ur_future f[160];
	int calls = 0;
	struct ur_loop_stats st0, st;

	ur_loop_stats(l, &st0);
	start_nops(l, f, 160, &calls);
	ur_loop_stats(l, &st);
	if (flags & UR_LOOP_LAZY_SUBMIT) {
		cr_assert_eq(st.waiting, 144, "%u", st.waiting);
		cr_assert_eq(st.enters, st0.enters, "lazy start calls must not enter the kernel");
	} else {
		cr_assert_eq(st.waiting, 0, "%u", st.waiting);
		cr_assert_gt(st.enters, st0.enters, "a full SQ is flushed by the start call");
	}
	cr_assert_eq(calls, 0);
	cr_assert_eq(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	cr_assert_eq(calls, 160);
	for (int i = 0; i < 160; i++)
		cr_assert_eq(f[i].res, 0);
	t_loop_done(&l);
}

Test(loop, ten_times_the_sq_before_first_run)
{
	ten_times_the_sq(0);
}

Test(loop, ten_times_the_sq_lazy)
{
	ten_times_the_sq(UR_LOOP_LAZY_SUBMIT);
}

static void cq_overflow(uint32_t flags, bool timeouts)
{
	enum {
		N = 10000
	};
	struct ur_loop_opts o = {.sq_entries = 8, .cq_entries = 8, .flags = flags};
	struct ur_loop *l = t_loop_opts(&o);
	struct ur_future *f = calloc(N, sizeof(*f));
	int *calls = calloc(N, sizeof(*calls));
	struct ur_loop_stats st;

	for (int i = 0; i < N; i++) {
		ur_future_init(&f[i], t_count_cb, &calls[i]);
		int r =
		    timeouts ? ur_timeout_start(l, &f[i], 20 * UR_MSEC, 0) : ur_nop_start(l, &f[i]);
		cr_assert_eq(r, 0);
	}
	cr_assert_eq(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(calls[i], 1, "future %d completed %d times", i, calls[i]);
		cr_assert_eq(f[i].res, 0);
	}
	ur_loop_stats(l, &st);
	cr_assert_geq(st.reaped, N);
	cr_log_info("CQ of 8, %d ops: %lu overflow fetches, %lu enters", N,
	            (unsigned long)st.overflows, (unsigned long)st.enters);
	free(f);
	free(calls);
	t_loop_done(&l);
}

Test(loop, cq_of_8_with_10000_nops_loses_nothing)
{
	cq_overflow(0, false);
}

Test(loop, cq_of_8_with_10000_timeouts_in_flight_loses_nothing)
{
	cq_overflow(0, true);
}

Test(loop, cq_of_8_lazy_submit_loses_nothing)
{
	cq_overflow(UR_LOOP_LAZY_SUBMIT, true);
}

Test(loop, fairness_cap_per_turn)
{
	t_fault_unsafe("delay", "counts the completions each turn dispatches");
	struct ur_loop_opts o = {.max_per_turn = 4};
	struct ur_loop *l = t_loop_opts(&o);
	struct ur_future f[16];
	int calls = 0;

	start_nops(l, f, 16, &calls);
	cr_assert_eq(ur_loop_run(l, UR_RUN_ONCE), 12);
	cr_assert_eq(calls, 4);
	cr_assert_eq(ur_loop_run(l, UR_RUN_NOWAIT), 8);
	cr_assert_eq(calls, 8);
	cr_assert_eq(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	cr_assert_eq(calls, 16);
	t_loop_done(&l);
}

Test(loop, run_modes)
{
	struct ur_loop *l = t_loop();
	struct ur_future t;
	int calls = 0;

	cr_assert_eq(ur_loop_run(l, UR_RUN_DEFAULT), 0, "nothing to do returns at once");
	cr_assert_eq(ur_loop_run(l, UR_RUN_ONCE), 0);
	ur_future_init(&t, t_count_cb, &calls);
	cr_assert_eq(ur_timeout_start(l, &t, 30 * UR_MSEC, 0), 0);
	cr_assert_eq(ur_loop_run(l, UR_RUN_NOWAIT), 1);
	cr_assert_eq(calls, 0);
	cr_assert_eq(ur_loop_run(l, UR_RUN_ONCE), 0);
	cr_assert_eq(calls, 1);
	t_loop_done(&l);
}

static void stop_cb(struct ur_future *f, void *arg)
{
	(void)f;
	ur_loop_stop(arg);
}

static void reenter_cb(struct ur_future *f, void *arg)
{
	f->res = ur_loop_run(arg, UR_RUN_NOWAIT);
}

Test(loop, stop_and_reentrancy)
{
	struct ur_loop *l = t_loop();
	struct ur_future a, b, c;
	int calls = 0;

	ur_future_init(&a, stop_cb, l);
	ur_future_init(&b, t_count_cb, &calls);
	cr_assert_eq(ur_nop_start(l, &a), 0);
	cr_assert_eq(ur_timeout_start(l, &b, 20 * UR_MSEC, 0), 0);
	cr_assert_eq(ur_loop_run(l, UR_RUN_DEFAULT), 1, "stopped with the timeout pending");
	cr_assert_eq(calls, 0);

	ur_future_init(&c, reenter_cb, l);
	cr_assert_eq(ur_nop_start(l, &c), 0);
	cr_assert_eq(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	cr_assert_eq(c.res, -EBUSY);
	cr_assert_eq(calls, 1);
	t_loop_done(&l);
}

Test(loop, ref_holds_default_run)
{
	struct ur_loop *l = t_loop();
	struct ur_future a;

	ur_loop_ref(l);
	ur_future_init(&a, stop_cb, l);
	cr_assert_eq(ur_timeout_start(l, &a, 10 * UR_MSEC, 0), 0);
	/* Held: DEFAULT keeps running after the timeout until stopped. */
	cr_assert_eq(ur_loop_run(l, UR_RUN_DEFAULT), 1);
	ur_loop_unref(l);
	cr_assert_eq(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	t_loop_done(&l);
}

/* --- embedding ----------------------------------------------------------------------------- */

Test(loop, driven_from_external_epoll)
{
	struct ur_loop *l = t_loop();
	struct ur_future t[3];
	int calls = 0;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN};

	cr_assert_geq(ep, 0);
	cr_assert_eq(epoll_ctl(ep, EPOLL_CTL_ADD, ur_loop_fd(l), &ev), 0);
	for (int i = 0; i < 3; i++) {
		ur_future_init(&t[i], t_count_cb, &calls);
		cr_assert_eq(ur_timeout_start(l, &t[i], (uint64_t)(i + 1) * 10 * UR_MSEC, 0), 0);
	}
	/* The host's loop: submit without blocking, sleep in epoll, handle what is ready. */
	int turns = 0;
	while (calls < 3) {
		cr_assert_geq(ur_loop_run(l, UR_RUN_NOWAIT), 0);
		if (calls == 3)
			break;
		int n = epoll_wait(ep, &ev, 1, 5000);
		if (n < 0 && errno == EINTR)
			continue; /* task work of a plain ring interrupts the host's sleep: retry */
		cr_assert_eq(n, 1, "the ring fd never became readable (%d done)", calls);
		cr_assert_lt(++turns, 100);
	}
	cr_assert_eq(calls, 3);
	close(ep);
	t_loop_done(&l);
}

/* --- cross-thread --------------------------------------------------------------------------- */

enum {
	POSTERS = 2,
	POSTS_EACH = 1000
};

struct post_test {
	struct ur_loop *loop;
	struct ur_post posts[POSTERS][POSTS_EACH];
	int next_expected[POSTERS];
	int received;
	bool in_order;
};

struct post_item {
	struct post_test *t;
	int thread, seq;
};

static struct post_item items[POSTERS][POSTS_EACH];

static void post_fn(void *arg)
{
	struct post_item *it = arg;
	struct post_test *t = it->t;
	if (t->next_expected[it->thread] != it->seq)
		t->in_order = false;
	t->next_expected[it->thread] = it->seq + 1;
	if (++t->received == POSTERS * POSTS_EACH)
		ur_loop_unref(t->loop);
}

static struct post_test ptest;

static void *poster(void *arg)
{
	int th = (int)(intptr_t)arg;
	for (int i = 0; i < POSTS_EACH; i++) {
		items[th][i] = (struct post_item){&ptest, th, i};
		ptest.posts[th][i].fn = post_fn;
		ptest.posts[th][i].arg = &items[th][i];
		cr_assert_eq(ur_loop_post(ptest.loop, &ptest.posts[th][i]), 0);
		if (i % 100 == 0)
			usleep(100);
	}
	return NULL;
}

Test(loop, posts_from_other_threads_run_in_order)
{
	pthread_t th[POSTERS];

	memset(&ptest, 0, sizeof(ptest));
	ptest.in_order = true;
	ptest.loop = t_loop();
	ur_loop_ref(ptest.loop); /* released by the last post */
	for (int i = 0; i < POSTERS; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, poster, (void *)(intptr_t)i), 0);
	cr_assert_eq(ur_loop_run(ptest.loop, UR_RUN_DEFAULT), 0);
	for (int i = 0; i < POSTERS; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(ptest.received, POSTERS * POSTS_EACH);
	cr_assert(ptest.in_order, "posts of one thread ran out of order");
	t_loop_done(&ptest.loop);
}

struct waker {
	struct ur_loop *l;
	pid_t loop_tid;
};

static void *waker(void *arg)
{
	struct waker *w = arg;
	/* until the loop's thread sleeps in io_uring_enter: the wake must interrupt a blocked turn
	 */
	t_wait_in_syscall(w->loop_tid, __NR_io_uring_enter);
	ur_loop_wake(w->l);
	return NULL;
}

Test(loop, wake_interrupts_a_blocking_turn)
{
	struct ur_loop *l = t_loop();
	struct ur_future t;
	int calls = 0;
	pthread_t th;

	ur_future_init(&t, t_count_cb, &calls);
	cr_assert_eq(ur_timeout_start(l, &t, 30 * UR_SEC, 0), 0);
	struct waker w = {l, gettid()};
	cr_assert_eq(pthread_create(&th, NULL, waker, &w), 0);
	uint64_t t0 = ur_now_ns();
	cr_assert_eq(ur_loop_run(l, UR_RUN_ONCE), 1, "woken with the timeout still pending");
	cr_assert_lt(ur_now_ns() - t0, 20 * UR_SEC);
	pthread_join(th, NULL);
	cr_assert_eq(calls, 0);
	cr_assert_eq(ur_cancel(&t), 0);
	cr_assert_eq(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	cr_assert_eq(t.res, -ECANCELED);
	t_loop_done(&l);
}

/* --- teardown ------------------------------------------------------------------------------ */

struct heap_op {
	struct ur_future f;
	char buf[64];
	int *calls;
	int *cancelled;
};

/* Frees the operation's memory in its callback: urio must not touch it afterwards (ASan). */
static void heap_cb(struct ur_future *f, void *arg)
{
	struct heap_op *op = arg;
	(*op->calls)++;
	if (f->res == -ECANCELED)
		(*op->cancelled)++;
	free(op);
}

static struct heap_op *heap_op(int *calls, int *cancelled)
{
	struct heap_op *op = calloc(1, sizeof(*op));
	op->calls = calls;
	op->cancelled = cancelled;
	ur_future_init(&op->f, heap_cb, op);
	return op;
}

Test(loop, teardown_with_operations_in_flight)
{
	t_fault_unsafe("eintr,reset", "its recvs must stay pending until teardown");
	struct ur_loop_opts o = {.sq_entries = 4, .flags = UR_LOOP_LAZY_SUBMIT};
	int before = t_count_fds();
	struct ur_loop *l = t_loop_opts(&o);
	int calls = 0, cancelled = 0, c, s, p[2];
	uint16_t port;

	t_tcp_pair(&c, &s);
	int lfd = t_listen_tcp(&port);
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	struct heap_op *op;
	op = heap_op(&calls, &cancelled);
	cr_assert_eq(ur_recv_start(l, &op->f, s, op->buf, sizeof(op->buf), 0), 0);
	op = heap_op(&calls, &cancelled);
	cr_assert_eq(ur_read_start(l, &op->f, p[0], op->buf, sizeof(op->buf), UR_OFF_CURRENT), 0);
	op = heap_op(&calls, &cancelled);
	cr_assert_eq(ur_timeout_start(l, &op->f, 60 * UR_SEC, 0), 0);
	op = heap_op(&calls, &cancelled);
	cr_assert_eq(ur_accept_multishot_start(l, &op->f, lfd, 0), 0);
	cr_assert_eq(ur_loop_run(l, UR_RUN_NOWAIT), 4);
	/* Two more that only reach urio's local queue (4-entry SQ, lazy). */
	for (int i = 0; i < 6; i++) {
		op = heap_op(&calls, &cancelled);
		cr_assert_eq(ur_timeout_start(l, &op->f, 60 * UR_SEC, 0), 0);
	}
	struct ur_loop_stats st;
	ur_loop_stats(l, &st);
	cr_assert_gt(st.waiting, 0);
	ur_loop_free(&l);
	cr_assert_eq(calls, 10);
	cr_assert_eq(cancelled, 10);
	close(c);
	close(s);
	close(lfd);
	close(p[0]);
	close(p[1]);
	cr_assert_eq(t_count_fds(), before, "the loop must close its ring and eventfd");
}

Test(loop, stats_count_work)
{
	struct ur_loop *l = t_loop();
	struct ur_future f[4];
	int calls = 0;
	struct ur_loop_stats st;

	start_nops(l, f, 4, &calls);
	ur_loop_stats(l, &st);
	cr_assert_eq(st.pending, 4);
	cr_assert_eq(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	ur_loop_stats(l, &st);
	cr_assert_eq(st.pending, 0);
	cr_assert_geq(st.submitted, 4);
	cr_assert_geq(st.reaped, 4);
	t_loop_done(&l);
}

/* --- errors ------------------------------------------------------------------------------- */

Test(loop, strerror_names_every_code)
{
	cr_assert_str_eq(ur_strerror(0), "success");
	cr_assert_str_eq(ur_strerror(5), "success");
	cr_assert_str_eq(ur_strerror(-ECONNRESET), "Connection reset by peer");
	cr_assert_str_eq(ur_strerror_name(-ECONNRESET), "ECONNRESET");
	cr_assert_str_eq(ur_strerror_name(0), "OK");
	/* urio's deadlines and TCP's alike: not libc's "Connection timed out" */
	cr_assert_str_eq(ur_strerror(-ETIMEDOUT), "timed out");
	cr_assert_str_eq(ur_strerror_name(-ETIMEDOUT), "ETIMEDOUT");
	cr_assert_str_eq(ur_strerror(UR_ELOOPCLOSED), "the event loop is closing");
	cr_assert_str_eq(ur_strerror_name(UR_ELOOPCLOSED), "UR_ELOOPCLOSED");
	cr_assert_str_eq(ur_strerror(UR_ERANGE_MIN), "unknown error");
	cr_assert_str_eq(ur_strerror_name(-99999), "UNKNOWN");
	cr_assert_str_eq(ur_strerror(-99999), "unknown error");
	cr_assert_str_eq(ur_version(), "0.1.0");
}

Test(loop, teardown_completes_program_completed_futures)
{
	struct ur_loop *l = t_loop();
	struct ur_future f, g;
	int calls = 0;
	ur_future_init(&f, t_count_cb, &calls);
	ur_future_init(&g, t_count_cb, &calls);
	cr_assert_eq(ur_future_begin(l, &f), 0);
	cr_assert_eq(ur_future_begin(l, &g), 0);
	cr_assert_eq(ur_future_begin(l, &g), -EBUSY);
	cr_assert_eq(ur_future_resolve(&g, 7), 0);
	cr_assert_eq(ur_future_resolve(&g, 8), -EALREADY);
	cr_assert_eq(calls, 0, "resolve never completes inline");
	cr_assert_eq(ur_loop_run(l, UR_RUN_NOWAIT), 1);
	cr_assert_eq(g.res, 7);
	ur_loop_free(&l);
	cr_assert_eq(calls, 2);
	cr_assert_eq(f.res, -ECANCELED);
	cr_assert(ur_future_done(&f));
}

/* --- posts between loops: MSG_RING ---------------------------------------------------------- */

#define PING_ROUNDS 100

/* Loop a on the test's thread and loop b on a thread of its own post to each other in turn. */
struct pingpong {
	struct ur_loop *a, *b;
	uint32_t b_flags;
	struct ur_post to_a, to_b, stop;
	struct ur_future kick;
	int rounds;
	struct ur_loop_stats b_stats;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

/* On b's thread, inside b's run: posting to a urio loop, so MSG_RING where it can. */
static void on_b(void *arg)
{
	struct pingpong *pp = arg;
	cr_assert_eq(ur_loop_post(pp->a, &pp->to_a), 0);
}

static void on_b_stop(void *arg)
{
	struct pingpong *pp = arg;
	ur_loop_unref(pp->b);
}

/* On a's thread, inside a's run. */
static void on_a(void *arg)
{
	struct pingpong *pp = arg;
	if (++pp->rounds < PING_ROUNDS) {
		cr_assert_eq(ur_loop_post(pp->b, &pp->to_b), 0);
		return;
	}
	cr_assert_eq(ur_loop_post(pp->b, &pp->stop), 0);
	ur_loop_unref(pp->a);
}

static void kick(struct ur_future *f, void *arg)
{
	struct pingpong *pp = arg;
	(void)f;
	cr_assert_eq(ur_loop_post(pp->b, &pp->to_b), 0);
}

static void *b_thread(void *arg)
{
	struct pingpong *pp = arg;
	struct ur_loop *b;
	struct ur_loop_opts o = {.flags = t_loop_flags() | pp->b_flags};
	cr_assert_eq(ur_loop_new(&b, &o), 0);
	ur_loop_ref(b);
	pthread_mutex_lock(&pp->mu);
	pp->b = b;
	pthread_cond_signal(&pp->cv);
	pthread_mutex_unlock(&pp->mu);
	cr_assert_eq(ur_loop_run(b, UR_RUN_DEFAULT), 0);
	ur_loop_stats(b, &pp->b_stats);
	ur_loop_free(&b);
	return NULL;
}

/* Runs PING_ROUNDS round trips; returns a's stats. */
static struct ur_loop_stats ping_pong(struct pingpong *pp)
{
	pthread_t th;
	struct ur_loop_stats st;

	pthread_mutex_init(&pp->mu, NULL);
	pthread_cond_init(&pp->cv, NULL);
	pp->a = t_loop();
	pp->to_a = (struct ur_post){.fn = on_a, .arg = pp};
	pp->to_b = (struct ur_post){.fn = on_b, .arg = pp};
	pp->stop = (struct ur_post){.fn = on_b_stop, .arg = pp};
	cr_assert_eq(pthread_create(&th, NULL, b_thread, pp), 0);
	pthread_mutex_lock(&pp->mu);
	while (!pp->b)
		pthread_cond_wait(&pp->cv, &pp->mu);
	pthread_mutex_unlock(&pp->mu);

	ur_loop_ref(pp->a); /* released by the last round */
	ur_future_init(&pp->kick, kick, pp);
	cr_assert_eq(ur_nop_start(pp->a, &pp->kick), 0); /* the first post, from a's run */
	cr_assert_eq(ur_loop_run(pp->a, UR_RUN_DEFAULT), 0);
	pthread_join(th, NULL);
	ur_loop_stats(pp->a, &st);
	t_loop_done(&pp->a);
	pthread_mutex_destroy(&pp->mu);
	pthread_cond_destroy(&pp->cv);
	cr_assert_eq(pp->rounds, PING_ROUNDS);
	return st;
}

/*
 * A post made on the thread of another running urio loop arrives as a MSG_RING completion: one
 * per post that found the list empty, here every one (each waits for the answer to the last).
 * The last one a loop gets may be left unreaped (its turn ran the posts before reaping and the
 * run then ended), so each count may be one short.
 */
Test(loop, posts_between_loops_arrive_by_msg_ring)
{
	t_skip_under_valgrind();
	struct pingpong pp = {0};
	struct ur_loop *probe = t_loop();
	bool have = ur_loop_supports(probe, IORING_OP_MSG_RING);
	t_loop_done(&probe);
	if (!have)
		cr_skip_test("the kernel has no IORING_OP_MSG_RING (5.18)");
	struct ur_loop_stats a = ping_pong(&pp);
	cr_assert(a.msg_wakes == PING_ROUNDS || a.msg_wakes == PING_ROUNDS - 1, "a: %u",
	          a.msg_wakes);
	cr_assert(pp.b_stats.msg_wakes == PING_ROUNDS + 1 || pp.b_stats.msg_wakes == PING_ROUNDS,
	          "b: %u", pp.b_stats.msg_wakes);
}

/* The eventfd path, asked for: the same posts, none by MSG_RING to b, all delivered. */
Test(loop, posts_between_loops_by_eventfd_when_asked)
{
	t_skip_under_valgrind();
	struct pingpong pp = {.b_flags = UR_LOOP_NO_MSG_RING};
	ping_pong(&pp);
	cr_assert_eq(pp.b_stats.msg_wakes, 0);
}
