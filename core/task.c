/* SPDX-License-Identifier: MIT */
/*
 * core/task.c - tasks: stackful coroutines scheduled by the loop.
 *
 * The loop's own context (the thread's stack) is the scheduler. A task runs until it waits, then
 * switches back to it; a completion that concerns a waiting task puts the task on the loop's run
 * queue, and the loop switches into ready tasks once per turn, after reaping. Nothing here makes
 * a system call: a switch is the ~20 instructions of core/arch/, plus a queue push.
 *
 * A task's stack is taken from the loop's pool when it first runs and given back the moment its
 * function returns, so spawned-but-not-started and finished-but-not-joined tasks cost only their
 * struct. The task's own future is a local one (no SQE): it is pending from spawn until the
 * function returns, which also keeps UR_RUN_DEFAULT turning while tasks live.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

_Thread_local struct ur_task *ur__current;

struct ur_task *ur_task_current(void)
{
	return ur__current;
}

struct ur_loop *ur_current_loop(void)
{
	return ur__current ? ur__current->loop : NULL;
}

bool ur_cancelled(void)
{
	return ur__current && ur__current->cancel;
}

struct ur_future *ur_task_future(struct ur_task *t)
{
	return &t->fut;
}

/*
 * A future completed by urio or the program, not the kernel: pending until ur__complete_local().
 * @kind is one of the LOCAL rows of core/ops.h.
 */
void ur__future_begin_local(struct ur_loop *l, struct ur_future *f, unsigned kind)
{
	uint16_t keep = f->flags_ & UR__F_INTERNAL;
	f->loop_ = l;
	f->op_ = (uint8_t)kind;
	f->res = 0;
	f->cqe_flags = 0;
	f->owed_ = 0;
	f->flags_ = keep;
	f->state_ = UR_FUTURE_PENDING;
	if (!(keep & UR__F_INTERNAL))
		l->pending++;
}

void ur__task_wake_cb(struct ur_future *f, void *arg)
{
	(void)f;
	ur__task_wake(arg);
}

void ur__task_wake_hook(struct ur_task *t, void *state)
{
	(void)state;
	ur__task_wake(t);
}

static struct ur_task *runq_pop(struct ur_loop *l);

/*
 * Leaves @t, which is waiting or queued again: straight into the next ready task while the
 * turn's budget lasts, else back to the loop. The hand-off saves a register switch per wait and
 * lets each switch's return land where the CPU predicts it (a yield went from 38 to 11 ns).
 * A task that has never run goes through the loop, which gives it its stack.
 */
static void task_leave(struct ur_task *t)
{
	struct ur_loop *l = t->loop;
	struct ur_task *n = l->runq_head;
	if (n && n != t && n->state != UR__T_NEW && l->sched_budget) {
		l->sched_budget--;
		runq_pop(l);
		n->state = UR__T_RUNNING;
		ur__current = n;
		ur__ctx_switch_san(&t->ctx, &n->ctx, false);
		return;
	}
	l->sched_from = t;
	ur__current = NULL;
	ur__ctx_switch_san(&t->ctx, &l->sched_ctx, false);
}

/* Suspends the running task until ur__task_wake(); returns on its stack, on the loop's thread. */
void ur__task_wait(struct ur_task *t)
{
	t->state = UR__T_WAITING;
	task_leave(t);
}

void ur__task_free(struct ur_task *t)
{
	if (t->state != UR__T_DONE && t->state != UR__T_NEW) {
		/* Freed while suspended (teardown gave up on it): its stack goes back unused. */
		ur__ctx_discard_san(&t->ctx);
		ur__stack_put(&t->loop->stacks, &t->stack);
	}
	*t->all_prev = t->all_next;
	if (t->all_next)
		t->all_next->all_prev = t->all_prev;
	free(t);
}

static void detached_done(struct ur_future *f, void *arg)
{
	(void)f;
	ur__task_free(arg);
}

static void task_main(void *arg)
{
	struct ur_task *t = arg;
	ur__ctx_landed_san(&t->ctx);
	int ret = t->cancel ? -ECANCELED : t->fn(t->arg);
	ur__scopes_drop(t); /* scopes the function left begun: their deadlines are on this stack */
	t->state = UR__T_DONE;
	t->loop->live_tasks--;
	ur__complete_local(t->loop, &t->fut, ret);
	t->loop->sched_from = t;
	ur__current = NULL;
	ur__ctx_switch_san(&t->ctx, &t->loop->sched_ctx, true);
	__builtin_unreachable();
}

/* Gives the task a stack and a context; -errno if no stack could be had. */
static int task_prepare(struct ur_loop *l, struct ur_task *t)
{
	int ret = ur__stack_get(&l->stacks, t->stack_size, &t->stack);
	if (ret < 0)
		return ret;
	ur__ctx_make_san(&t->ctx, t->stack.base, t->stack.size, task_main, t);
	return 0;
}

static struct ur_task *runq_pop(struct ur_loop *l)
{
	struct ur_task *t = l->runq_head;
	if (t) {
		l->runq_len--;
		l->runq_head = t->run_next;
		if (!l->runq_head)
			l->runq_tail = NULL;
		t->queued = false;
	}
	return t;
}

/*
 * Runs the tasks that are ready, each until it waits or returns. A task that yields goes to the
 * back of the queue; the budget bounds how long completions wait to be reaped.
 */
void ur__sched_run(struct ur_loop *l)
{
	struct ur_task *t;

	/*
	 * Every task ready now runs once, and at least 64 runs happen (yielders go round again)
	 * before completions are reaped: a task that yields in a loop cannot starve I/O, and 256
	 * tasks awaiting I/O are all resubmitted in one kernel entry.
	 */
	l->sched_budget = l->runq_len > 64 ? l->runq_len : 64;
	while (l->sched_budget && (t = runq_pop(l))) {
		l->sched_budget--;
		if (t->state == UR__T_NEW) {
			int ret = t->cancel ? -ECANCELED : task_prepare(l, t);
			if (ret < 0) {
				/* Never ran: cancelled before its start, or no stack for it. */
				t->state = UR__T_DONE;
				l->live_tasks--;
				ur__complete_local(l, &t->fut, ret);
				continue;
			}
		}
		t->state = UR__T_RUNNING;
		ur__current = t;
		ur__ctx_switch_san(&l->sched_ctx, &t->ctx, false);
		t = l->sched_from; /* tasks hand over among themselves: this one came back */
		ur__current = NULL;
		if (t->state == UR__T_DONE)
			ur__stack_put_lazy(&l->stacks, &t->stack);
	}
	if (l->stacks.pending_n)
		ur__stack_flush(&l->stacks); /* the stacks this turn freed, in runs */
}

#if UR_FAULT_INJECTION
/* The pool's mappings and guards, refused under the enomem class (core/fault.h). */
static bool stack_refused(void *arg)
{
	return ur__fault_enomem(arg, UR__FAULT_AT_STACK);
}
#endif

int ur_spawn(struct ur_loop *l, struct ur_task **out, ur_task_fn *fn, void *arg,
             const struct ur_task_opts *opts)
{
	if (out)
		*out = NULL;
	if (!fn)
		return -EINVAL;
	if (l->freeing)
		return UR_ELOOPCLOSED;
	UR__ASSERT_OWNER(l);
	if (opts) {
		for (size_t i = 0; i < sizeof(opts->reserved) / sizeof(opts->reserved[0]); i++)
			if (opts->reserved[i])
				return -EINVAL;
		if (opts->stack_size > UR__STACK_MAX_SIZE)
			return -EINVAL; /* refused now, not when the task first runs */
	}
	if (!l->stacks_ready) {
		int ret = ur__stack_pool_init(&l->stacks, 0);
		if (ret < 0)
			return ret;
#if UR_FAULT_INJECTION
		if (l->fault) {
			l->stacks.nomem = stack_refused;
			l->stacks.nomem_arg = l;
		}
#endif
		l->stacks_ready = true;
	}
	struct ur_task *t = UR__FAULT_ENOMEM(l, UR__FAULT_AT_TASK) ? NULL : calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->loop = l;
	t->fn = fn;
	t->arg = arg;
	t->stack_size = opts ? opts->stack_size : 0;
	t->deadline = UR_NO_DEADLINE;
	t->state = UR__T_NEW;
	ur_future_init(&t->fut, NULL, NULL);
	ur__future_begin_local(l, &t->fut, UR__OP_TASK);
	t->all_next = l->tasks;
	if (l->tasks)
		l->tasks->all_prev = &t->all_next;
	t->all_prev = &l->tasks;
	l->tasks = t;
	l->live_tasks++;
	ur__task_wake(t);
	if (out)
		*out = t;
	else
		ur_task_detach(t); /* asked for no handle: detached */
	return 0;
}

void ur_task_detach(struct ur_task *t)
{
	if (ur_future_done(&t->fut)) {
		ur__task_free(t);
		return;
	}
	t->detached = true;
	ur_future_set_callback(&t->fut, detached_done, t);
}

void ur__task_interrupt(struct ur_task *t)
{
	if (t->awaiting)
		ur_cancel(t->awaiting);
	if (t->on_cancel)
		t->on_cancel(t, t->on_cancel_state);
}

int ur_task_cancel(struct ur_task *t)
{
	if (t->cancel || t->state == UR__T_DONE)
		return -EALREADY;
	t->cancel = true;
	ur__task_interrupt(t);
	return 0;
}

/* ur_cancel() of a task's future: the task is cancelled (asyncio's Task.cancel()). */
int ur__task_cancel_future(struct ur_future *f)
{
	return ur_task_cancel((struct ur_task *)(void *)f); /* the future is its first member */
}

static int join_call(struct ur_task *t)
{
	struct ur_task *self = ur__current;
	int ret = ur_await(&t->fut);
	if (ret == -ECANCELED && self && self->cancel && !ur_future_done(&t->fut)) {
		/* We were cancelled while waiting: so is the task; it must still end before we
		 * free. */
		ur_task_cancel(t);
		while (!ur_future_done(&t->fut))
			ur_await(&t->fut);
	}
	if (!ur_future_done(&t->fut))
		return ret; /* could not wait (-EBUSY): the task lives on, still the caller's */
	ret = t->fut.res;
	ur__task_free(t);
	return ur__task_result(self, ret);
}

int ur_join(struct ur_task *t)
{
	UR__DEADLINE_CALL(int, join_call(t));
}

static int yield_call(void)
{
	struct ur_task *t = ur__current;
	if (!t)
		return UR_ENOTASK;
	if (ur__task_interrupted(t))
		return ur__task_stop_code(t);
	t->state = UR__T_WAITING;
	ur__task_wake(t);
	task_leave(t);
	return ur__task_interrupted(t) ? ur__task_stop_code(t) : 0;
}

int ur_yield(void)
{
	UR__DEADLINE_CALL(int, yield_call());
}

/*
 * Teardown, before anything else of the loop goes: every task still alive is cancelled and the
 * loop turned until all have returned (a task that ignores cancellation keeps it turning).
 * Tasks never joined are freed.
 */
void ur__tasks_teardown(struct ur_loop *l)
{
	for (struct ur_task *t = l->tasks; t; t = t->all_next)
		if (t->state != UR__T_DONE)
			ur_task_cancel(t);
	bool stuck = false;
	while (l->live_tasks > 0 || l->runq_head) {
		if (ur_loop_run(l, UR_RUN_ONCE) < 0) {
			stuck = true; /* the kernel failed us: tasks may still wait on I/O */
			break;
		}
	}
	/* A task that could not be unwound is leaked, with its stack: the kernel may write there.
	 */
	struct ur_task **pp = &l->tasks;
	while (*pp) {
		struct ur_task *t = *pp;
		if (t->state == UR__T_DONE || t->state == UR__T_NEW)
			ur__task_free(t);
		else
			pp = &t->all_next;
	}
	if (l->stacks_ready && !stuck && !l->tasks)
		ur__stack_pool_destroy(&l->stacks);
}
