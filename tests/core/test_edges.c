/* SPDX-License-Identifier: MIT */
/*
 * tests/core/test_edges.c - the edges a review found: re-entrant teardown, misuse that must fail
 * instead of hanging, lifetimes in either order, fork, tasks driving another loop. Each test
 * names the defect of issue 6 it pins down.
 */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include "helpers.h"

TestSuite(edges, .timeout = 30);

static int nothing(void *arg)
{
	(void)arg;
	return 7;
}

/* ---- 13: ur_strerror of any int ----------------------------------------------------------- */

Test(edges, strerror_of_any_int_is_defined)
{
	const int codes[] = {INT_MIN, INT_MIN + 1, -4096, -4095, -30000, -31000, -1, 0, INT_MAX};
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		cr_assert_not_null(ur_strerror(codes[i]));
		cr_assert_not_null(ur_strerror_name(codes[i]));
	}
	cr_assert_str_eq(ur_strerror_name(INT_MIN), "UNKNOWN");
	cr_assert_str_eq(ur_strerror(INT_MIN), "unknown error");
	cr_assert_str_eq(ur_strerror_name(-EPERM), "EPERM");
}

/* ---- 12: a zero deadline expires at once; "no deadline" has its own name --------------------- */

static int zero_deadline_task(void *arg)
{
	int *p = arg;
	char c;
	ur_deadline(0);
	return (int)ur_read(p[0], &c, 1, UR_OFF_CURRENT);
}

Test(edges, zero_deadline_expires_at_once_for_tasks_and_futures)
{
	t_fault_unsafe("eintr,enomem", "a pipe read that is interrupted or refused ends before its "
	                               "deadline, and the test asserts its starts succeed");
	struct ur_loop *l = t_loop();
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	int res = 0;
	ASSERT_RES(ur_run(l, zero_deadline_task, p, &res), 0);
	ASSERT_RES(res, -ETIMEDOUT);

	struct ur_future f;
	char c;
	ur_future_init(&f, NULL, NULL);
	ASSERT_RES(ur_future_set_deadline(&f, 0), 0);
	ASSERT_RES(ur_read_start(l, &f, p[0], &c, 1, UR_OFF_CURRENT), 0);
	t_run_until(l, &f);
	ASSERT_RES(f.res, -ETIMEDOUT);

	/* UR_NO_DEADLINE takes a deadline back: a timeout (which refuses deadlines) starts. */
	ur_future_init(&f, NULL, NULL);
	ASSERT_RES(ur_future_set_deadline(&f, UR_SEC), 0);
	ASSERT_RES(ur_future_set_deadline(&f, UR_NO_DEADLINE), 0);
	ASSERT_RES(ur_timeout_start(l, &f, 1000, 0), 0);
	t_run_until(l, &f);
	ASSERT_RES(f.res, 0);
	close(p[0]);
	close(p[1]);
	t_loop_done(&l);
}

/* ---- 11, 9: ur_run where it can never finish ----------------------------------------------- */

struct run_from_cb {
	struct ur_loop *l;
	int ran;
	int res_same, res_null;
	unsigned pending_before, pending_after;
};

static int count_run(void *arg)
{
	((struct run_from_cb *)arg)->ran++;
	return 0;
}

static void run_from_callback(struct ur_future *f, void *arg)
{
	struct run_from_cb *s = arg;
	(void)f;
	s->pending_before = ur_loop_pending(s->l);
	s->res_same = ur_run(s->l, count_run, s, NULL);
	s->res_null = ur_run(NULL, count_run, s, NULL);
	s->pending_after = ur_loop_pending(s->l);
}

Test(edges, run_from_a_loop_callback_is_ebusy_and_starts_nothing)
{
	t_fault_unsafe("enomem", "asserts its starts succeed");
	struct run_from_cb s = {.l = t_loop()};
	struct ur_future f;
	ur_future_init(&f, run_from_callback, &s);
	ASSERT_RES(ur_nop_start(s.l, &f), 0);
	ASSERT_RES(ur_loop_run(s.l, UR_RUN_DEFAULT), 0);
	ASSERT_RES(s.res_same, -EBUSY);
	ASSERT_RES(s.res_null, -EBUSY);
	cr_assert_eq(s.pending_after, s.pending_before);
	cr_assert_eq(s.ran, 0);
	t_loop_done(&s.l);
}

static int run_inside_task(void *arg)
{
	int *ran = arg;
	int r1 = ur_run(NULL, count_run, ran, NULL);
	int r2 = ur_run(ur_current_loop(), count_run, ran, NULL);
	return r1 == -EBUSY && r2 == -EBUSY ? 0 : -1;
}

Test(edges, run_from_inside_a_task_is_ebusy, .timeout = 10)
{
	t_fault_unsafe("enomem", "asserts its ur_run succeeds");
	struct ur_loop *l = t_loop();
	struct run_from_cb s = {0};
	int res = -1;
	ASSERT_RES(ur_run(l, run_inside_task, &s, &res), 0);
	ASSERT_RES(res, 0);
	cr_assert_eq(s.ran, 0);
	t_loop_done(&l);
}

/* ---- 9: waits that can never finish fail --------------------------------------------------- */

static int await_other_loop(void *arg)
{
	struct ur_loop *other = arg;
	struct ur_future f;
	ur_future_init(&f, NULL, NULL);
	int r = ur_nop_start(other, &f);
	if (r < 0)
		return r;
	r = ur_await(&f);
	/* the future is still the other loop's; let it finish there */
	while (!ur_future_done(&f))
		ur_loop_run(other, UR_RUN_ONCE);
	return r;
}

Test(edges, awaiting_another_loops_future_from_a_task_is_ewrongloop, .timeout = 10)
{
	t_fault_unsafe("enomem", "asserts its starts succeed");
	struct ur_loop *l = t_loop(), *other = t_loop();
	int res = 0;
	ASSERT_RES(ur_run(l, await_other_loop, other, &res), 0);
	ASSERT_RES(res, UR_EWRONGLOOP);
	t_loop_done(&other);
	t_loop_done(&l);
}

static int await_self(void *arg)
{
	(void)arg;
	struct ur_task *self = ur_task_current();
	int a = ur_await(ur_task_future(self));
	int j = ur_join(self);
	return a == -EDEADLK && j == -EDEADLK ? 0 : -1;
}

Test(edges, a_task_awaiting_or_joining_itself_is_edeadlk, .timeout = 10)
{
	t_fault_unsafe("enomem", "asserts its ur_run succeeds");
	struct ur_loop *l = t_loop();
	int res = -1;
	ASSERT_RES(ur_run(l, await_self, NULL, &res), 0);
	ASSERT_RES(res, 0);
	t_loop_done(&l);
}

static int same_future_twice(void *arg)
{
	(void)arg;
	struct ur_future f, g;
	struct ur_future *fs[3] = {&f, &g, &f};
	struct ur_as_completed it;
	ur_future_init(&f, NULL, NULL);
	ur_future_init(&g, NULL, NULL);
	ur_timeout_start(ur_current_loop(), &f, UR_MSEC, 0);
	ur_timeout_start(ur_current_loop(), &g, UR_MSEC, 0);
	int r1 = ur_gather(fs, 3, 0);
	int r2 = ur_wait_any(fs, 3);
	int r3 = ur_as_completed_init(&it, fs, 3);
	struct ur_future *out;
	int r4 = ur_as_completed_next(&it, &out);
	/* nothing was left installed: both can still be awaited normally */
	int a = ur_await(&f), b = ur_await(&g);
	if (r1 != -EINVAL || r2 != -EINVAL || r3 != -EINVAL || r4 != -ENOENT || a || b)
		return -1;
	/* done futures twice too */
	if (ur_gather(fs, 3, 0) != -EINVAL || ur_as_completed_init(&it, fs, 3) != -EINVAL)
		return -2;
	return 0;
}

Test(edges, the_same_future_twice_in_one_wait_is_einval, .timeout = 10)
{
	t_fault_unsafe("enomem", "asserts its starts succeed");
	struct ur_loop *l = t_loop();
	int res = -1;
	ASSERT_RES(ur_run(l, same_future_twice, NULL, &res), 0);
	ASSERT_RES(res, 0);
	t_loop_done(&l);
}

/* ---- 10: a task that drives another loop stays a task --------------------------------------- */

static int drive_other_loop(void *arg)
{
	(void)arg;
	struct ur_task *self = ur_task_current();
	struct ur_loop *mine = ur_current_loop(), *other = NULL;
	int r = ur_loop_new(&other, &(struct ur_loop_opts){.flags = t_loop_flags()});
	if (r < 0)
		return r;
	struct ur_task *t;
	ur_spawn(other, &t, nothing, NULL, NULL);
	ur_task_detach(t);
	struct ur_future f;
	ur_future_init(&f, NULL, NULL);
	ur_nop_start(other, &f);
	ur_loop_run(other, UR_RUN_DEFAULT);
	ur_loop_free(&other);
	if (ur_task_current() != self || ur_current_loop() != mine)
		return -100;
	return ur_nop();
}

Test(edges, a_task_that_runs_another_loop_is_still_a_task)
{
	t_fault_unsafe("enomem", "asserts its starts succeed");
	struct ur_loop *l = t_loop();
	int res = -1;
	ASSERT_RES(ur_run(l, drive_other_loop, NULL, &res), 0);
	ASSERT_RES(res, 0);
	t_loop_done(&l);
}

/* ---- 5: rings too small for a chain, sizes that overflow ----------------------------------- */

Test(edges, ring_sizes_too_small_or_overflowing_are_refused)
{
	struct ur_loop *l = NULL;
	uint32_t bad[] = {1, 2, 32769, 1u << 29, 1u << 31};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ur_loop_opts o = {.sq_entries = bad[i], .flags = t_loop_flags()};
		ASSERT_RES(ur_loop_new(&l, &o), UR_ERINGSIZE);
		cr_assert_null(l);
	}
	struct ur_loop_opts o = {.sq_entries = 8, .cq_entries = 65537, .flags = t_loop_flags()};
	ASSERT_RES(ur_loop_new(&l, &o), UR_ERINGSIZE);
	cr_assert_str_neq(ur_strerror(UR_ERINGSIZE), "unknown error");

	/* The smallest accepted ring still carries the longest chain: close with a deadline. */
	int fds[2];
	cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
	l = t_loop_opts(&(struct ur_loop_opts){.sq_entries = 3});
	struct ur_future f;
	ur_future_init(&f, NULL, NULL);
	ASSERT_RES(ur_future_set_deadline(&f, UR_SEC), 0);
	ASSERT_RES(ur_close_start(l, &f, fds[0]), 0);
	t_run_until(l, &f);
	ASSERT_RES(f.res, 0);
	cr_assert(!t_fd_is_open(fds[0]));
	close(fds[1]);
	t_loop_done(&l);
}

/* ---- 14: absurd stacks; calls from a foreign thread ---------------------------------------- */

Test(edges, absurd_stack_size_fails_in_spawn)
{
	struct ur_loop *l = t_loop();
	struct ur_task *t = (void *)1;
	struct ur_task_opts o = {.stack_size = SIZE_MAX / 2};
	int r = ur_spawn(l, &t, nothing, NULL, &o);
	cr_assert(r == -EINVAL || r == -ENOMEM, "ur_spawn: %s", ur_strerror_name(r));
	cr_assert_null(t);
	t_loop_done(&l);
}

#ifndef NDEBUG
static void *start_from_thread(void *arg)
{
	struct ur_future f;
	ur_future_init(&f, NULL, NULL);
	ur_nop_start(arg, &f); /* must trip the debug assertion */
	return NULL;
}

Test(edges, start_from_a_foreign_thread_asserts_in_debug_builds, .signal = SIGABRT)
{
	struct ur_loop *l = t_loop();
	pthread_t th;
	pthread_create(&th, NULL, start_from_thread, l);
	pthread_join(th, NULL);
}
#endif

/* ---- 1: re-entering ur_loop_free from its own callbacks ------------------------------------ */

struct reenter {
	struct ur_loop *l;
	struct ur_future other;
	int run_res, await_res, start_res, calls;
};

static void reenter_cb(struct ur_future *f, void *arg)
{
	struct reenter *s = arg;
	(void)f;
	s->calls++;
	struct ur_loop *copy = s->l;
	ur_loop_free(&copy); /* refused: does nothing */
	s->run_res = ur_loop_run(s->l, UR_RUN_NOWAIT);
	s->await_res = ur_await(&s->other);
	struct ur_future g;
	ur_future_init(&g, NULL, NULL);
	s->start_res = ur_nop_start(s->l, &g);
}

Test(edges, loop_free_refuses_reentry_from_teardown_callbacks)
{
	t_fault_unsafe("enomem", "asserts its starts succeed");
	struct reenter s = {.l = t_loop()};
	struct ur_future f;
	ur_future_init(&f, reenter_cb, &s);
	ur_future_init(&s.other, NULL, NULL);
	ASSERT_RES(ur_timeout_start(s.l, &f, 3600 * UR_SEC, 0), 0);
	ASSERT_RES(ur_timeout_start(s.l, &s.other, 3600 * UR_SEC, 0), 0);
	struct ur_loop *l = s.l;
	ur_loop_free(&l);
	cr_assert_null(l);
	cr_assert_eq(s.calls, 1);
	ASSERT_RES(s.run_res, -EBUSY);
	ASSERT_RES(s.await_res, -EBUSY);
	ASSERT_RES(s.start_res, UR_ELOOPCLOSED);
	ASSERT_RES(f.res, -ECANCELED);
}

/* ---- 6: tasks spawned during teardown ------------------------------------------------------ */

static int sleeps_forever(void *arg)
{
	(void)arg;
	for (;;)
		ur_sleep(3600 * UR_SEC); /* ignores -ECANCELED on purpose */
	return 0;
}

static int spawns_when_cancelled(void *arg)
{
	int *spawn_res = arg;
	ur_sleep(3600 * UR_SEC);
	struct ur_task *t;
	*spawn_res = ur_spawn(ur_current_loop(), &t, sleeps_forever, NULL, NULL);
	if (*spawn_res == 0)
		ur_task_detach(t);
	return 0;
}

static void spawn_from_teardown_cb(struct ur_future *f, void *arg)
{
	struct ur_task *t;
	int *res = arg;
	*res = ur_spawn(ur_future_loop(f), &t, sleeps_forever, NULL, NULL);
	if (*res == 0)
		ur_task_detach(t);
}

Test(edges, tasks_spawned_during_teardown_are_refused_and_free_returns, .timeout = 10)
{
	t_fault_unsafe("enomem", "asserts its starts succeed");
	struct ur_loop *l = t_loop();
	struct ur_task *t;
	int from_task = 1, from_cb = 1;
	ASSERT_RES(ur_spawn(l, &t, spawns_when_cancelled, &from_task, NULL), 0);
	ur_task_detach(t);
	struct ur_future f;
	ur_future_init(&f, spawn_from_teardown_cb, &from_cb);
	ASSERT_RES(ur_timeout_start(l, &f, 3600 * UR_SEC, 0), 0);
	ASSERT_RES(ur_loop_run(l, UR_RUN_NOWAIT),
	           2); /* the task and the timeout (a sleep is no future) */
	ur_loop_free(&l);
	ASSERT_RES(from_task, UR_ELOOPCLOSED);
	ASSERT_RES(from_cb, UR_ELOOPCLOSED);
}

/* ---- 3: buffer ring and loop freed in either order ----------------------------------------- */

Test(edges, bufring_freed_after_its_loop_is_safe)
{
	struct ur_loop *l = t_loop();
	struct ur_bufring *br = NULL, *br2 = NULL;
	int r = ur_bufring_new(l, &br, 4, 256);
	if (r == -EOPNOTSUPP)
		cr_skip_test("no buffer rings before 5.19");
	ASSERT_RES(r, 0);
	ASSERT_RES(ur_bufring_new(l, &br2, 2, 64), 0);
	ASSERT_RES(ur_bufring_free(&br2), 0); /* before the loop */
	t_loop_done(&l);
	cr_assert_not_null(ur_bufring_buf(br, 3)); /* its memory is still the program's */
	ur_bufring_recycle(br, 1);                 /* harmless: no kernel to give it to */
	ASSERT_RES(ur_bufring_free(&br), 0);       /* after the loop */
	cr_assert_null(br);
}

/* ---- 4: a cancelled task's ur_close closes, even from the local queue ---------------------- */

struct close_race {
	int fd;
	int close_res;
	struct ur_task *closer;
};

static int closer(void *arg)
{
	struct close_race *c = arg;
	struct ur_future nops[4];
	/* Fill the SQ (lazy submit: nothing enters the kernel), so the close waits locally. */
	for (int i = 0; i < 4; i++) {
		ur_future_init(&nops[i], NULL, NULL);
		ur_nop_start(ur_current_loop(), &nops[i]);
	}
	c->close_res = ur_close(c->fd);
	for (int i = 0; i < 4; i++)
		ur_await(&nops[i]);
	return 0;
}

static int canceller(void *arg)
{
	struct close_race *c = arg;
	return ur_task_cancel(c->closer);
}

Test(edges, close_in_a_cancelled_task_closes_even_from_the_local_queue)
{
	t_fault_unsafe("enomem", "asserts its spawns succeed");
	struct ur_loop *l =
	    t_loop_opts(&(struct ur_loop_opts){.sq_entries = 4, .flags = UR_LOOP_LAZY_SUBMIT});
	int fds[2];
	cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
	struct close_race c = {.fd = fds[0], .close_res = 1};
	struct ur_task *t2;
	ASSERT_RES(ur_spawn(l, &c.closer, closer, &c, NULL), 0);
	ASSERT_RES(ur_spawn(l, &t2, canceller, &c, NULL), 0);
	ASSERT_RES(ur_join(t2), 0);
	ASSERT_RES(ur_join(c.closer), 0);
	ASSERT_RES(c.close_res, 0);
	cr_assert(!t_fd_is_open(fds[0]), "the descriptor is still open");
	close(fds[1]);
	t_loop_done(&l);
}

/* ---- 2: close from a multishot recv's callback, its -ENOBUFS in the same batch -------------- */

struct close_in_cb {
	struct ur_loop *l;
	struct ur_bufring *br;
	struct ur_future close_f;
	int fd, chunks, bid;
};

static void recv_then_close_cb(struct ur_future *f, void *arg)
{
	struct close_in_cb *s = arg;
	if (f->res > 0) {
		s->chunks++;
		s->bid = ur_future_buffer(f);
		/* Keep the buffer (the ring stays dry) and close the socket right away. */
		if (s->chunks == 1)
			ur_close_start(s->l, &s->close_f, s->fd);
	}
}

Test(edges, close_from_recv_callback_with_enobufs_in_the_same_batch, .timeout = 10)
{
	struct close_in_cb s = {.l = t_loop()};
	int client, server;
	t_tcp_pair(&client, &server);
	int r = ur_bufring_new(s.l, &s.br, 1, 64);
	if (r == -EOPNOTSUPP)
		cr_skip_test("no buffer rings before 5.19");
	ASSERT_RES(r, 0);
	s.fd = server;
	ur_future_init(&s.close_f, NULL, NULL);
	/* Data for several buffers is there before the recv is armed: the kernel fills the one
	 * buffer and ends the multishot with -ENOBUFS, both CQEs reaped in one batch. */
	char data[256];
	memset(data, 'x', sizeof(data));
	cr_assert_eq(write(client, data, sizeof(data)), (ssize_t)sizeof(data));
	struct ur_future f;
	ur_future_init(&f, recv_then_close_cb, &s);
	ASSERT_RES(ur_recv_multishot_start(s.l, &f, server, s.br, 0), 0);
	while (!ur_future_done(&f) || !ur_future_done(&s.close_f))
		cr_assert_geq(ur_loop_run(s.l, UR_RUN_ONCE), 0);
	ASSERT_RES(f.res, -ECANCELED);
	ASSERT_RES(s.close_f.res, 0);
	cr_assert(!t_fd_is_open(server));
	ur_bufring_recycle(s.br, (unsigned)s.bid);
	char buf[16];
	struct pollfd pfd = {.fd = client, .events = POLLIN};
	cr_assert_eq(poll(&pfd, 1, 5000), 1);
	/* Unread data was left in the closed socket, so TCP ends with a reset rather than a FIN. */
	ssize_t n = read(client, buf, sizeof(buf));
	cr_assert(n == 0 || (n < 0 && errno == ECONNRESET), "the peer sees the end: %zd", n);
	close(client);
	ASSERT_RES(ur_bufring_free(&s.br), 0);
	t_loop_done(&s.l);
}

/* ---- 8: fork ------------------------------------------------------------------------------ */

static int add_one(void *arg)
{
	return *(int *)arg + 1;
}

static int to_thread_main(void *arg)
{
	return ur_to_thread(add_one, arg);
}

/* In a child: a fresh loop, one ur_to_thread; exit 0 if it returned 42. */
static int child_uses_pool(void)
{
	int v = 41, res = -1;
	struct ur_loop *l = NULL;
	if (ur_loop_new(&l, &(struct ur_loop_opts){.flags = t_loop_flags()}) < 0)
		return 2;
	if (ur_run(l, to_thread_main, &v, &res) < 0)
		return 3;
	ur_loop_free(&l);
	return res == 42 ? 0 : 4;
}

static void fork_and_check(void)
{
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		alarm(10); /* a hang in the child becomes a failure, not a stuck test */
		_exit(child_uses_pool());
	}
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: status %#x", st);
}

Test(edges, fork_child_uses_to_thread_whether_or_not_the_parent_did, .timeout = 30)
{
	t_fault_unsafe("enomem", "asserts its ur_run succeeds");
#if defined(__SANITIZE_ADDRESS__)
	/*
	 * Not run under ASan: gcc 12's ASan allocator is not fork-safe. A child forked while
	 * another thread of the parent (a pool worker freeing its job, a Criterion thread) holds
	 * one of the allocator's size-class locks inherits it held; the child's own pool workers
	 * then block in free() for ever (seen in gdb: every worker in
	 * SizeClassAllocator64::GetFromAllocator, under
	 * __pthread_getattr_np). glibc's malloc takes its locks across fork, so plain builds and
	 * valgrind run the test.
	 */
	cr_skip_test("ASan's allocator (gcc 12) is not fork-safe in a multi-threaded parent");
#endif
	fork_and_check(); /* the parent has not used the pool (in this process, yet) */
	struct ur_loop *l = t_loop();
	int v = 1, res = 0;
	ASSERT_RES(ur_run(l, to_thread_main, &v, &res), 0);
	ASSERT_RES(res, 2);
	fork_and_check(); /* now it has: its workers do not exist in the child */
	t_loop_done(&l);
}

/* ---- 7: ur_loop_fd wakes the host for every cross-thread post -------------------------------- */

struct poster {
	struct ur_loop *l;
	struct ur_post post;
	atomic_int ran;
};

static void post_fn(void *arg)
{
	struct poster *p = arg;
	atomic_fetch_add(&p->ran, 1);
}

static void *post_thread(void *arg)
{
	struct poster *p = arg;
	p->post.fn = post_fn;
	p->post.arg = p;
	ur_loop_post(p->l, &p->post);
	return NULL;
}

Test(edges, loop_fd_wakes_the_host_for_every_post, .timeout = 20)
{
	struct poster p = {.l = t_loop()};
	int pfd = ur_loop_fd(p.l);
	cr_assert_geq(pfd, 0);
	ur_loop_ref(p.l);
	for (int i = 1; i <= 20; i++) {
		ASSERT_RES(ur_loop_run(p.l, UR_RUN_NOWAIT), 1);
		pthread_t th;
		pthread_create(&th, NULL, post_thread, &p);
		/* The host sleeps in poll until urio says there is work: no timeout would be right.
		 */
		struct pollfd q = {.fd = pfd, .events = POLLIN};
		int n;
		while ((n = poll(&q, 1, 5000)) < 0 && errno == EINTR)
			;
		pthread_join(th, NULL);
		cr_assert_eq(n, 1, "post %d did not wake the host's poll", i);
		while (atomic_load(&p.ran) < i)
			ur_loop_run(p.l, UR_RUN_ONCE);
	}
	ur_loop_unref(p.l);
	t_loop_done(&p.l);
}
