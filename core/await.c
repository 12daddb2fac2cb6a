/* SPDX-License-Identifier: MIT */
/*
 * core/await.c - waiting on futures: await, gather, wait_any, as_completed, wait_for, sleep, run.
 *
 * Every wait has two shapes. Inside a task, the futures' continuations wake the task and it
 * suspends (ur__task_wait). Outside any task, the call turns the futures' loop until the
 * condition holds: the same code path, with the loop's thread doing the waiting.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

/*
 * A future the caller may wait on: started, with no continuation but ours, and one a task can
 * see finish: not its own (it would wait for itself), not pending on a loop it does not run on.
 */
static int check_awaitable(const struct ur_future *f)
{
	struct ur_task *t = ur__task_self();
	if (f->state_ == UR_FUTURE_IDLE || !f->loop_)
		return -EINVAL;
	if (t && f == ur_task_future(t))
		return -EDEADLK;
	if (f->state_ == UR_FUTURE_PENDING && f->cb_)
		return -EBUSY;
	if (t && f->state_ == UR_FUTURE_PENDING && f->loop_ != ur__task_loop(t))
		return UR_EWRONGLOOP;
	return 0;
}

/* -EINVAL if a future is in @fs twice: its one continuation could report it only once. */
static int check_distinct(struct ur_future **fs, size_t n)
{
	int r = 0;
	for (size_t i = 0; i < n; i++) {
		if (fs[i]->flags_ & UR__F_SEEN)
			r = -EINVAL;
		fs[i]->flags_ |= UR__F_SEEN;
	}
	for (size_t i = 0; i < n; i++)
		fs[i]->flags_ &= (uint16_t)~UR__F_SEEN;
	return r;
}

/*
 * Outside any task a wait turns the loop, which cannot be done from inside one of its callbacks:
 * refuse before installing anything, so no continuation is left pointing at this stack.
 */
static int can_wait(const struct ur_loop *l)
{
	return (!ur__task_self() && l && l->running) ? -EBUSY : 0;
}

/*
 * Removes our continuation from every future of @fs that still has it, done or not: a done
 * future keeps its callback until someone replaces it, and a restart would call us back.
 */
static void drop_callbacks(struct ur_future **fs, size_t n, ur_callback_fn *cb, void *arg)
{
	for (size_t i = 0; i < n; i++)
		if (fs[i]->cb_ == cb && fs[i]->arg_ == arg)
			ur_future_set_callback(fs[i], NULL, NULL);
}

/* Waits until @f is done, whatever cancellation says: its memory may be on this stack. */
int ur__await_uninterrupted(struct ur_future *f)
{
	struct ur_task *t = ur__task_self();
	bool own = t && f->state_ == UR_FUTURE_PENDING;
	if (own) {
		ur_future_set_callback(f, ur__task_wake_cb, t);
		ur__task_set_awaiting(t, f);
	}
	int r = ur__wait_until(t, f->loop_, ur__future_settled, f, false);
	if (own)
		ur__task_set_awaiting(t, NULL);
	if (t)
		ur_future_set_callback(f, NULL, NULL);
	return r < 0 ? r : f->res;
}

static int await_call(struct ur_future *f)
{
	int r = check_awaitable(f);
	if (r == 0 && f->state_ == UR_FUTURE_PENDING)
		r = can_wait(f->loop_);
	if (r < 0)
		return r;
	struct ur_task *t = ur__task_self();
	if (t && ur__task_interrupted(t) && f->state_ == UR_FUTURE_PENDING)
		ur_cancel(f);
	return ur__task_result(t, ur__await_uninterrupted(f));
}

int ur_await(struct ur_future *f)
{
	UR__DEADLINE_CALL(int, await_call(f));
}

/* --- gather ---------------------------------------------------------------------------------- */

struct gather {
	struct ur_future **fs;
	size_t n, remaining;
	int first_err;
	unsigned flags;
	struct ur_task *task;
};

static void gather_cancel_all(struct gather *g)
{
	for (size_t i = 0; i < g->n; i++)
		if (g->fs[i]->state_ == UR_FUTURE_PENDING)
			ur_cancel(g->fs[i]);
}

static void gather_cb(struct ur_future *f, void *arg)
{
	struct gather *g = arg;
	ur_future_set_callback(f, NULL, NULL);
	g->remaining--;
	if (f->res < 0 && !g->first_err) {
		g->first_err = f->res;
		if (g->flags & UR_GATHER_CANCEL_ON_ERROR)
			gather_cancel_all(g);
	}
	if (g->remaining == 0 && g->task)
		ur__task_wake(g->task);
}

static void gather_on_cancel(struct ur_task *t, void *state)
{
	(void)t;
	gather_cancel_all(state);
}

static bool gather_settled(const void *arg)
{
	return ((const struct gather *)arg)->remaining == 0;
}

static int gather_call(struct ur_future **fs, size_t n, unsigned flags)
{
	struct gather g = {.fs = fs, .n = n, .flags = flags, .task = ur__task_self()};
	struct ur_loop *l = NULL;

	if (flags & ~(unsigned)UR_GATHER_CANCEL_ON_ERROR || check_distinct(fs, n) < 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		int r = check_awaitable(fs[i]);
		if (r == 0 && fs[i]->state_ == UR_FUTURE_PENDING)
			r = can_wait(fs[i]->loop_);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < n; i++) {
		if (fs[i]->state_ == UR_FUTURE_PENDING) {
			g.remaining++;
			l = fs[i]->loop_;
			ur_future_set_callback(fs[i], gather_cb, &g);
		} else if (fs[i]->res < 0 && !g.first_err) {
			g.first_err = fs[i]->res;
		}
	}
	if (g.first_err && (flags & UR_GATHER_CANCEL_ON_ERROR))
		gather_cancel_all(&g);
	if (g.task) {
		if (ur__task_interrupted(g.task))
			gather_cancel_all(&g);
		ur__task_set_cancel_hook(g.task, gather_on_cancel, &g);
	}
	int r = ur__wait_until(g.task, l, gather_settled, &g, false);
	if (g.task)
		ur__task_set_cancel_hook(g.task, NULL, NULL);
	if (r < 0)
		return r; /* only from inside a callback, before anything completed */
	return ur__task_result(g.task, g.first_err);
}

int ur_gather(struct ur_future **fs, size_t n, unsigned flags)
{
	UR__DEADLINE_CALL(int, gather_call(fs, n, flags));
}

/* --- wait_any, as_completed ------------------------------------------------------------------ */

static int lowest_done(struct ur_future **fs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fs[i]->state_ == UR_FUTURE_DONE)
			return (int)i;
	return -1;
}

struct any_set {
	struct ur_future **fs;
	size_t n;
};

static bool any_settled(const void *arg)
{
	const struct any_set *a = arg;
	return lowest_done(a->fs, a->n) >= 0;
}

/*
 * Outside a task nothing needs waking (the loop turns until any_settled holds), but every future
 * still gets a continuation of ours: it marks them taken (a second wait on one says -EBUSY).
 */
static void any_mark(struct ur_future *f, void *arg)
{
	(void)f;
	(void)arg;
}

static int wait_any_call(struct ur_future **fs, size_t n)
{
	struct ur_task *t = ur__task_self();
	struct ur_loop *l = NULL;
	int i;
	ur_callback_fn *cb = t ? ur__task_wake_cb : any_mark;

	if (n == 0 || n > INT32_MAX || check_distinct(fs, n) < 0)
		return -EINVAL;
	for (size_t k = 0; k < n; k++) {
		int r = check_awaitable(fs[k]);
		if (r < 0)
			return r;
		l = fs[k]->loop_;
	}
	if ((i = lowest_done(fs, n)) >= 0)
		return i;
	int busy = can_wait(l);
	if (busy < 0)
		return busy;
	if (t && ur__task_interrupted(t))
		return ur__task_stop_code(t);
	for (size_t k = 0; k < n; k++)
		ur_future_set_callback(fs[k], cb, t);
	struct any_set set = {fs, n};
	if (t)
		ur__task_set_cancel_hook(t, ur__task_wake_hook, NULL);
	int r = ur__wait_until(t, l, any_settled, &set, true);
	if (t)
		ur__task_set_cancel_hook(t, NULL, NULL);
	drop_callbacks(fs, n, cb, t);
	return r < 0 ? r : lowest_done(fs, n);
}

int ur_wait_any(struct ur_future **fs, size_t n)
{
	UR__DEADLINE_CALL(int, wait_any_call(fs, n));
}

static void as_completed_cb(struct ur_future *f, void *arg)
{
	struct ur_as_completed *it = arg;
	f->next_ = NULL; /* free while the future is done: urio only links pending futures */
	if (it->done_tail_)
		it->done_tail_->next_ = f;
	else
		it->done_head_ = f;
	it->done_tail_ = f;
	if (it->waiter_)
		ur__task_wake(it->waiter_);
}

int ur_as_completed_init(struct ur_as_completed *it, struct ur_future **fs, size_t n)
{
	*it = (struct ur_as_completed){.fs_ = fs, .n_ = n};
	if (check_distinct(fs, n) < 0) {
		it->n_ = 0; /* next() says -ENOENT; nothing was installed */
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (fs[i]->state_ == UR_FUTURE_PENDING)
			ur_future_set_callback(fs[i], as_completed_cb, it);
		else
			as_completed_cb(fs[i], it);
	}
	return 0;
}

static bool as_completed_settled(const void *arg)
{
	const struct ur_as_completed *it = arg;
	return it->done_head_ || it->next_ == it->n_;
}

static int as_completed_next_call(struct ur_as_completed *it, struct ur_future **out)
{
	struct ur_task *t = ur__task_self();
	struct ur_loop *l = it->n_ ? it->fs_[0]->loop_ : NULL;

	if (t) {
		it->waiter_ = t;
		ur__task_set_cancel_hook(t, ur__task_wake_hook, NULL);
	}
	int r = ur__wait_until(t, l, as_completed_settled, it, true);
	if (t) {
		ur__task_set_cancel_hook(t, NULL, NULL);
		it->waiter_ = NULL;
	}
	if (r < 0)
		return r; /* -EBUSY from a callback: the iterator stays usable */
	if (!it->done_head_)
		return -ENOENT; /* every future was handed out */
	struct ur_future *f = it->done_head_;
	it->done_head_ = f->next_;
	if (!it->done_head_)
		it->done_tail_ = NULL;
	ur_future_set_callback(f, NULL, NULL);
	it->next_++;
	*out = f;
	return 0;
}

int ur_as_completed_next(struct ur_as_completed *it, struct ur_future **out)
{
	UR__DEADLINE_CALL(int, as_completed_next_call(it, out));
}

void ur_as_completed_stop(struct ur_as_completed *it)
{
	drop_callbacks(it->fs_, it->n_, as_completed_cb, it);
	it->done_head_ = it->done_tail_ = NULL;
	it->next_ = it->n_;
}

/* --- time ------------------------------------------------------------------------------------ */

/* ur_wait_for's deadline: an entry of the loop's timer heap, no kernel timeout of its own. */
struct wait_for {
	struct ur_timer_ tm; /* first member */
	struct ur_future *f;
	bool fired;
};

static void wait_for_fire(struct ur_loop *l, struct ur_timer_ *tm)
{
	struct wait_for *w = (struct wait_for *)(void *)tm;
	(void)l;
	w->fired = true;
	ur_cancel(w->f);
}

static int wait_for_call(struct ur_future *f, uint64_t timeout_ns)
{
	struct wait_for w = {.f = f};
	int r = check_awaitable(f);
	if (r < 0)
		return r;
	if (f->state_ == UR_FUTURE_DONE)
		return f->res;
	r = can_wait(f->loop_);
	if (r < 0)
		return r;
	uint64_t at = ur__deadline_in(timeout_ns);
	if (at != UR_NO_DEADLINE)
		ur__timer_add(f->loop_, &w.tm, at, wait_for_fire);
	r = ur_await(f);
	ur__timer_del(f->loop_, &w.tm);
	/* Expired: the target was cancelled and has ended; its real result if it won the race. */
	return (w.fired && r == -ECANCELED) ? -ETIMEDOUT : r;
}

int ur_wait_for(struct ur_future *f, uint64_t timeout_ns)
{
	UR__DEADLINE_CALL(int, wait_for_call(f, timeout_ns));
}

/* ur_sleep: an entry of the loop's timer heap that wakes the task; no SQE, no CQE of its own. */
struct sleep {
	struct ur_timer_ tm; /* first member */
	struct ur_task *t;
	bool fired;
};

static void sleep_fire(struct ur_loop *l, struct ur_timer_ *tm)
{
	struct sleep *s = (struct sleep *)(void *)tm;
	(void)l;
	s->fired = true;
	ur__task_wake(s->t);
}

static bool sleep_fired(const void *arg)
{
	return ((const struct sleep *)arg)->fired;
}

static int sleep_call(uint64_t ns)
{
	struct ur_task *t = ur__task_self();
	if (!t)
		return UR_ENOTASK;
	if (ur__task_interrupted(t))
		return ur__task_stop_code(t);
	struct sleep s = {.t = t};
	struct ur_loop *l = ur__task_loop(t);
	uint64_t at = ur__deadline_in(ns);
	if (at != UR_NO_DEADLINE)
		ur__timer_add(l, &s.tm, at, sleep_fire);
	ur__task_set_cancel_hook(t, ur__task_wake_hook, NULL);
	int r = ur__wait_until(t, l, sleep_fired, &s, true);
	ur__task_set_cancel_hook(t, NULL, NULL);
	ur__timer_del(l, &s.tm);
	return r;
}

int ur_sleep(uint64_t ns)
{
	UR__DEADLINE_CALL(int, sleep_call(ns));
}

/* --- run ------------------------------------------------------------------------------------- */

int ur_run(struct ur_loop *loop, ur_task_fn *main, void *arg, int *result)
{
	struct ur_loop *own = NULL;
	struct ur_task *t;
	int r;

	/* asyncio refuses a nested run too: inside a task it would wait on itself, inside a
	 * callback it would turn a loop that is already turning. */
	if (ur__task_self() || ur__running)
		return -EBUSY;
	if (!loop) {
		r = ur_loop_new(&own, NULL);
		if (r < 0)
			return r;
		loop = own;
	}
	r = ur_spawn(loop, &t, main, arg, NULL);
	if (r == 0) {
		r = ur__await_uninterrupted(ur_task_future(t));
		if (ur_future_done(ur_task_future(t))) {
			int res = ur_join(t);
			if (result)
				*result = res;
			r = 0;
		}
	}
	if (own)
		ur_loop_free(&own); /* cancels and awaits the tasks main left behind */
	return r;
}
