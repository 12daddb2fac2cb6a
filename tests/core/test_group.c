/* SPDX-License-Identifier: MIT */
/*
 * tests/core/test_group.c - task groups (asyncio.TaskGroup) and ur_to_thread_ptr: wait for all,
 * first failure cancels the rest, under a timeout scope and ur_wait_for, cancellation, members
 * spawning members, misuse; pointer results and the release of an abandoned argument.
 */
#include <pthread.h>
#include <stdatomic.h>

#define T_FAULT_UNSAFE_FILE "enomem"
#define T_FAULT_UNSAFE_WHY                                                                         \
	"each test asserts its starts and spawns succeed so that each error is the group's"
#include "helpers.h"

TestSuite(group, .timeout = 120);

static int run_task(ur_task_fn *fn, void *arg)
{
	struct ur_loop *l = t_loop();
	int result = INT32_MIN;
	cr_assert_eq(ur_run(l, fn, arg, &result), 0);
	t_loop_done(&l);
	return result;
}

struct member {
	int ret;     /* what it returns after its sleep */
	uint64_t ns; /* how long it sleeps first */
	int sleep_res;
	bool ran, returned;
};

static int member_fn(void *arg)
{
	struct member *m = arg;
	m->ran = true;
	m->sleep_res = ur_sleep(m->ns);
	m->returned = true;
	return m->sleep_res < 0 ? m->sleep_res : m->ret;
}

static int all_succeed_body(void *arg)
{
	(void)arg;
	struct ur_task_group g;
	struct member m[10];
	ur_group_init(&g, ur_current_loop());
	for (int i = 0; i < 10; i++) {
		m[i] = (struct member){.ret = i, .ns = (uint64_t)(i % 3) * UR_MSEC};
		ASSERT_RES(ur_group_spawn(&g, member_fn, &m[i], NULL), 0);
	}
	ASSERT_RES(ur_group_wait(&g), 0);
	for (int i = 0; i < 10; i++)
		cr_assert(m[i].returned && m[i].sleep_res == 0);
	ASSERT_RES(ur_group_spawn(&g, member_fn, &m[0], NULL), -EINVAL); /* finished */
	return 0;
}

Test(group, waits_for_every_member)
{
	ASSERT_RES(run_task(all_succeed_body, NULL), 0);
}

static int first_failure_body(void *arg)
{
	(void)arg;
	struct ur_task_group g;
	struct member fail = {.ret = -EIO, .ns = 5 * UR_MSEC};
	struct member slow[3];
	ur_group_init(&g, ur_current_loop());
	for (int i = 0; i < 3; i++) {
		slow[i] = (struct member){.ret = 1, .ns = 100 * UR_SEC};
		ASSERT_RES(ur_group_spawn(&g, member_fn, &slow[i], NULL), 0);
	}
	ASSERT_RES(ur_group_spawn(&g, member_fn, &fail, NULL), 0);
	ASSERT_RES(ur_group_wait(&g), -EIO); /* the first error, not the cancellations it caused */
	for (int i = 0; i < 3; i++) {
		cr_assert(slow[i].returned);
		ASSERT_RES(slow[i].sleep_res, -ECANCELED);
	}
	return 0;
}

Test(group, first_failure_cancels_the_rest)
{
	ASSERT_RES(run_task(first_failure_body, NULL), 0);
}

static int under_scope_body(void *arg)
{
	(void)arg;
	struct ur_task_group g;
	struct member m[3];
	struct ur_timeout to;
	ur_group_init(&g, ur_current_loop());
	for (int i = 0; i < 3; i++) {
		m[i] = (struct member){.ret = 0, .ns = 100 * UR_SEC};
		ASSERT_RES(ur_group_spawn(&g, member_fn, &m[i], NULL), 0);
	}
	ur_timeout_begin(&to, 20 * UR_MSEC);
	ASSERT_RES(ur_group_wait(&g), -ETIMEDOUT);
	ASSERT_RES(ur_timeout_end(&to), -ETIMEDOUT);
	for (int i = 0; i < 3; i++)
		cr_assert(m[i].returned && m[i].sleep_res == -ECANCELED);
	return 0;
}

Test(group, wait_under_a_timeout_scope)
{
	ASSERT_RES(run_task(under_scope_body, NULL), 0);
}

static int wait_for_body(void *arg)
{
	(void)arg;
	struct ur_task_group g;
	struct member quick = {.ret = 3, .ns = 0}, slow = {.ret = 0, .ns = 100 * UR_SEC};
	ur_group_init(&g, ur_current_loop());
	ASSERT_RES(ur_group_spawn(&g, member_fn, &quick, NULL), 0);
	ASSERT_RES(ur_group_spawn(&g, member_fn, &slow, NULL), 0);
	/* Gather with a timeout, one call. */
	ASSERT_RES(ur_wait_for(ur_group_future(&g), 20 * UR_MSEC), -ETIMEDOUT);
	cr_assert(quick.returned && slow.returned);
	ASSERT_RES(slow.sleep_res, -ECANCELED);

	/* In time: the group's result. */
	ur_group_init(&g, ur_current_loop());
	ASSERT_RES(ur_group_spawn(&g, member_fn, &quick, NULL), 0);
	ASSERT_RES(ur_wait_for(ur_group_future(&g), 100 * UR_SEC), 0);
	return 0;
}

Test(group, wait_for_on_the_group_future)
{
	ASSERT_RES(run_task(wait_for_body, NULL), 0);
}

struct tree {
	struct ur_task_group *g;
	int depth;
	atomic_int count;
};

static int spawns_more(void *arg)
{
	struct tree *t = arg;
	atomic_fetch_add(&t->count, 1);
	if (t->depth-- > 0) {
		ASSERT_RES(ur_group_spawn(t->g, spawns_more, t, NULL), 0);
		ASSERT_RES(ur_group_spawn(t->g, spawns_more, t, NULL), 0);
	}
	return ur_yield();
}

static int members_spawn_body(void *arg)
{
	(void)arg;
	struct ur_task_group g;
	struct tree t = {.g = &g, .depth = 10};
	ur_group_init(&g, ur_current_loop());
	ASSERT_RES(ur_group_spawn(&g, spawns_more, &t, NULL), 0);
	ASSERT_RES(ur_group_wait(&g), 0);
	cr_assert_eq(atomic_load(&t.count), 21);
	return 0;
}

Test(group, members_spawn_members_while_waited)
{
	ASSERT_RES(run_task(members_spawn_body, NULL), 0);
}

static int cancel_body(void *arg)
{
	(void)arg;
	struct ur_task_group g;
	struct member m = {.ns = 100 * UR_SEC}, late = {.ns = 0};
	ur_group_init(&g, ur_current_loop());
	ASSERT_RES(ur_group_spawn(&g, member_fn, &m, NULL), 0);
	ASSERT_RES(ur_yield(), 0); /* m runs and sleeps */
	ASSERT_RES(ur_group_cancel(&g), 0);
	ASSERT_RES(ur_group_cancel(&g), -EALREADY);
	ASSERT_RES(ur_group_spawn(&g, member_fn, &late, NULL), 0); /* starts cancelled */
	ASSERT_RES(ur_group_wait(&g), -ECANCELED);
	cr_assert(m.returned);
	ASSERT_RES(m.sleep_res, -ECANCELED);
	cr_assert_not(late.ran);
	return 0;
}

Test(group, cancel_cancels_members_now_and_later)
{
	ASSERT_RES(run_task(cancel_body, NULL), 0);
}

struct waiter_arg {
	struct member m[2];
	int res;
};

static int group_waiter(void *arg)
{
	struct waiter_arg *w = arg;
	struct ur_task_group g;
	ur_group_init(&g, ur_current_loop());
	for (int i = 0; i < 2; i++) {
		w->m[i] = (struct member){.ns = 100 * UR_SEC};
		ASSERT_RES(ur_group_spawn(&g, member_fn, &w->m[i], NULL), 0);
	}
	w->res = ur_group_wait(&g);
	return w->res;
}

static int waiter_cancelled_body(void *arg)
{
	(void)arg;
	struct waiter_arg w = {0};
	struct ur_task *t;
	cr_assert_eq(ur_spawn(ur_current_loop(), &t, group_waiter, &w, NULL), 0);
	ASSERT_RES(ur_sleep(5 * UR_MSEC), 0);
	ASSERT_RES(ur_task_cancel(t), 0);
	ASSERT_RES(ur_join(t), -ECANCELED);
	for (int i = 0; i < 2; i++)
		cr_assert(w.m[i].returned && w.m[i].sleep_res == -ECANCELED);
	return 0;
}

Test(group, a_cancelled_waiter_cancels_and_still_awaits_the_members)
{
	ASSERT_RES(run_task(waiter_cancelled_body, NULL), 0);
}

static void wait_from_cb(struct ur_future *f, void *arg)
{
	(void)f;
	struct ur_task_group *g = arg;
	ASSERT_RES(ur_group_wait(g), -EBUSY);
	static struct member m = {.ret = 1};
	ASSERT_RES(ur_group_spawn(g, member_fn, &m, NULL),
	           0); /* spawning from a callback is fine */
}

Test(group, outside_a_task_and_from_a_callback)
{
	struct ur_loop *l = t_loop();
	struct ur_task_group g;
	struct member m = {.ret = 2, .ns = UR_MSEC};
	ur_group_init(&g, l);
	ASSERT_RES(ur_group_wait(&g), 0); /* empty: done at once */

	ur_group_init(&g, l);
	ASSERT_RES(ur_group_spawn(&g, member_fn, &m, NULL), 0);
	struct ur_future f;
	ur_future_init(&f, wait_from_cb, &g);
	cr_assert_eq(ur_nop_start(l, &f), 0);
	t_run_until(l, &f);
	ASSERT_RES(ur_group_wait(&g), 0); /* outside any task: turns the loop */
	cr_assert(m.returned);
	t_loop_done(&l);
}

/* --- ur_to_thread_ptr ------------------------------------------------------------------------ */

struct query {
	struct t_gate *gate; /* if set, the function runs until it is opened */
	intptr_t answer;
	atomic_int started; /* set by answer() as it begins */
	pthread_t loop_thread;
	atomic_int released;
	void *released_result;
	bool release_on_loop_thread;
};

static void *answer(void *arg)
{
	struct query *q = arg;
	atomic_store(&q->started, 1);
	if (q->gate)
		t_gate_wait(q->gate);
	return (void *)q->answer;
}

static void release(void *arg, void *result)
{
	struct query *q = arg;
	q->released_result = result;
	q->release_on_loop_thread = pthread_equal(pthread_self(), q->loop_thread);
	atomic_fetch_add(&q->released, 1);
}

static int ptr_body(void *arg)
{
	struct query *q = arg;
	void *res = NULL;
	q->answer = -2; /* looks like -ENOENT, and is not confused with it */
	ASSERT_RES(ur_to_thread_ptr(answer, q, release, &res), 0);
	cr_assert_eq((intptr_t)res, -2);
	q->answer = (intptr_t)q;
	ASSERT_RES(ur_to_thread_ptr(answer, q, release, &res), 0);
	cr_assert_eq(res, q);
	ASSERT_RES(ur_to_thread_ptr(answer, q, NULL, NULL), 0);
	cr_assert_eq(atomic_load(&q->released), 0); /* the caller got every result */
	return 0;
}

Test(group, to_thread_ptr_returns_a_pointer_sized_result)
{
	t_skip_under_valgrind();
	struct query q = {.loop_thread = pthread_self()};
	ASSERT_RES(run_task(ptr_body, &q), 0);
}

/* Expires @arg's scope once the function has started (a job still queued would be dropped). */
struct expirer {
	struct query *q;
	struct ur_timeout *to;
};

static int expire_once_started(void *arg)
{
	struct expirer *e = arg;
	while (!atomic_load(&e->q->started))
		ASSERT_RES(ur_sleep(UR_MSEC), 0);
	ASSERT_RES(ur_timeout_reschedule(e->to, ur_now_ns()), 0);
	return 0;
}

static int ptr_timeout_body(void *arg)
{
	struct query *q = arg;
	struct ur_timeout to;
	struct ur_task *t;
	void *res = (void *)1;
	static struct t_gate gate; /* not on this stack: the worker still touches it once opened */
	gate = (struct t_gate)T_GATE_INIT;
	q->gate = &gate;
	q->answer = 42;
	ur_timeout_begin(&to, UR_NO_DEADLINE);
	struct expirer e = {q, &to};
	cr_assert_eq(ur_spawn(ur_current_loop(), &t, expire_once_started, &e, NULL), 0);
	ASSERT_RES(ur_to_thread_ptr(answer, q, release, &res), -ETIMEDOUT);
	t_gate_open(&gate); /* the loop's teardown waits for the function */
	ASSERT_RES(ur_join(t), 0);
	cr_assert_eq(res, (void *)1); /* untouched */
	ASSERT_RES(ur_timeout_end(&to), -ETIMEDOUT);
	return 0;
}

Test(group, to_thread_ptr_releases_the_arg_when_the_caller_timed_out)
{
	t_skip_under_valgrind();
	struct query q = {.loop_thread = pthread_self()};
	ASSERT_RES(run_task(ptr_timeout_body, &q), 0); /* the loop's teardown waits for the job */
	cr_assert_eq(atomic_load(&q.released), 1);
	cr_assert_eq((intptr_t)q.released_result, 42);
	cr_assert(q.release_on_loop_thread);
}

static int ptr_cancelled_child(void *arg)
{
	return ur_to_thread_ptr(answer, arg, release, NULL);
}

static int ptr_cancel_body(void *arg)
{
	struct query *q = arg;
	struct ur_task *t;
	static struct t_gate gate; /* not on this stack: the worker still touches it once opened */
	gate = (struct t_gate)T_GATE_INIT;
	q->gate = &gate;
	q->answer = 9;
	cr_assert_eq(ur_spawn(ur_current_loop(), &t, ptr_cancelled_child, q, NULL), 0);
	while (!atomic_load(&q->started)) /* cancelled while still queued, it would never run */
		ASSERT_RES(ur_sleep(UR_MSEC), 0);
	ur_task_cancel(t);
	ASSERT_RES(ur_join(t), -ECANCELED);
	t_gate_open(&gate);
	while (!atomic_load(&q->released)) /* the function is still running: wait for it */
		ASSERT_RES(ur_sleep(5 * UR_MSEC), 0);
	return 0;
}

Test(group, to_thread_ptr_releases_the_arg_when_the_caller_was_cancelled)
{
	t_skip_under_valgrind();
	struct query q = {.loop_thread = pthread_self()};
	ASSERT_RES(run_task(ptr_cancel_body, &q), 0);
	cr_assert_eq(atomic_load(&q.released), 1);
	cr_assert_eq((intptr_t)q.released_result, 9);
	cr_assert(q.release_on_loop_thread);
}

static int ptr_entry_body(void *arg)
{
	struct query *q = arg;
	q->answer = 5;
	ur_task_cancel(ur_task_current());
	ASSERT_RES(ur_to_thread_ptr(answer, q, release, NULL), -ECANCELED);
	/* never queued, yet released before the return: the caller cannot tell the two apart */
	cr_assert_eq(atomic_load(&q->released), 1);
	cr_assert_null(q->released_result);
	return 0;
}

Test(group, to_thread_ptr_releases_the_arg_when_cancelled_at_entry)
{
	struct query q = {.loop_thread = pthread_self()};
	ASSERT_RES(run_task(ptr_entry_body, &q), 0); /* a task returns what it returns */
	cr_assert_eq(atomic_load(&q.released), 1);
	cr_assert(q.release_on_loop_thread);
}

/*
 * Jobs cancelled (or timed out) while still queued are taken off the queue: they never run, their
 * release function gets (arg, NULL) before the caller's return, and a later job does not wait
 * behind them. One worker, held busy by a gated job, so that the queued ones cannot start.
 */
enum {
	QUEUED_N = 10
};

struct queued_state {
	struct t_gate gate;
	atomic_int gate_started;
	atomic_int calls;    /* counted() calls: must stay 0 */
	atomic_int released; /* release_queued() calls */
	atomic_int fresh_saw_calls;
	int waiting; /* tasks about to call ur_to_thread_ptr */
	struct ur_task *t[2 * QUEUED_N];
};

static struct queued_state qs = {.gate = T_GATE_INIT};

static int gated(void *arg)
{
	(void)arg;
	atomic_store(&qs.gate_started, 1);
	t_gate_wait(&qs.gate);
	return 1;
}

static void *counted(void *arg)
{
	atomic_fetch_add(&qs.calls, 1);
	return arg;
}

static void release_queued(void *arg, void *result)
{
	cr_assert_null(result, "a job that never ran has no result");
	cr_assert_eq(arg, &qs);
	atomic_fetch_add(&qs.released, 1);
}

static int gate_task(void *arg)
{
	(void)arg;
	return ur_to_thread(gated, NULL);
}

static int queued_task(void *arg)
{
	if (arg)
		ur_deadline(UR_MSEC); /* expires while the gate holds the only worker */
	qs.waiting++;
	return ur_to_thread_ptr(counted, &qs, release_queued, NULL);
}

static int fresh(void *arg)
{
	(void)arg;
	atomic_store(&qs.fresh_saw_calls, atomic_load(&qs.calls));
	return 7;
}

static int thread_task_fresh(void *arg)
{
	(void)arg;
	return ur_to_thread(fresh, NULL);
}

static int queued_body(void *arg)
{
	(void)arg;
	struct ur_loop *l = ur_current_loop();
	struct ur_task *gate, *late;
	cr_assert_eq(ur_spawn(l, &gate, gate_task, NULL, NULL), 0);
	while (!atomic_load(&qs.gate_started))
		ASSERT_RES(ur_sleep(UR_MSEC), 0);
	/* QUEUED_N to cancel, QUEUED_N whose deadline expires */
	for (int i = 0; i < 2 * QUEUED_N; i++)
		cr_assert_eq(ur_spawn(l, &qs.t[i], queued_task, i < QUEUED_N ? NULL : &qs, NULL),
		             0);
	while (qs.waiting < 2 * QUEUED_N)
		ASSERT_RES(ur_yield(), 0);
	ASSERT_RES(ur_yield(), 0); /* the last one queues its job */
	for (int i = 0; i < QUEUED_N; i++)
		ASSERT_RES(ur_task_cancel(qs.t[i]), 0);
	for (int i = 0; i < 2 * QUEUED_N; i++) {
		int r = ur_join(qs.t[i]);
		ASSERT_RES(r, i < QUEUED_N ? -ECANCELED : -ETIMEDOUT);
		/* released before the caller returned (others may have returned meanwhile) */
		cr_assert_geq(atomic_load(&qs.released), i + 1);
	}
	/* A fresh job queues behind nothing: it runs next, before any of theirs (none runs). */
	cr_assert_eq(ur_spawn(l, &late, thread_task_fresh, NULL, NULL), 0);
	ASSERT_RES(ur_yield(), 0);
	cr_assert_eq(atomic_load(&qs.released), 2 * QUEUED_N); /* once each */
	t_gate_open(&qs.gate);
	ASSERT_RES(ur_join(gate), 1);
	ASSERT_RES(ur_join(late), 7);
	cr_assert_eq(atomic_load(&qs.fresh_saw_calls), 0);
	return 0;
}

Test(group, to_thread_jobs_stopped_while_queued_never_run)
{
	ASSERT_RES(ur_thread_pool_size(1), 0);
	ASSERT_RES(run_task(queued_body, NULL), 0); /* the teardown waits for every job */
	cr_assert_eq(atomic_load(&qs.calls), 0);
	cr_assert_eq(atomic_load(&qs.released), 2 * QUEUED_N);
}

Test(group, to_thread_ptr_outside_a_task)
{
	struct query q = {0};
	ASSERT_RES(ur_to_thread_ptr(answer, &q, release, NULL), UR_ENOTASK);
	cr_assert_eq(atomic_load(&q.released), 0);
}
