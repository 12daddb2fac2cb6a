/* SPDX-License-Identifier: MIT */
/*
 * core/scope.c - timeout scopes (asyncio.timeout): a deadline over a block of task code.
 *
 * A scope is an entry of the loop's timer heap plus a link in its task's list of scopes
 * (innermost first). Expiry marks the scope and counts it on the task (ur_task.expired); while
 * that count is non-zero every wait of the task ends at once with -ETIMEDOUT, the way
 * cancellation makes them end with -ECANCELED, and the wait in progress is interrupted exactly
 * as ur_task_cancel() interrupts it. Ending the scope takes its count back, so the task's waits
 * work again after the block. Nothing here makes a system call.
 */
#include <errno.h>

#include "internal.h"

enum {
	S_ACTIVE = 1u << 0,  /* begun and not ended */
	S_EXPIRED = 1u << 1, /* its deadline passed while it was begun */
};

static void expire(struct ur_timeout *to)
{
	to->state_ |= S_EXPIRED;
	to->task_->expired++;
	ur__task_interrupt(to->task_);
}

static void scope_fire(struct ur_loop *l, struct ur_timer_ *tm)
{
	(void)l;
	expire((struct ur_timeout *)(void *)tm); /* the entry is the scope's first member */
}

/* Puts the deadline in force: in the heap, or expired now if it has passed already. */
static void schedule(struct ur_timeout *to, uint64_t when)
{
	to->timer_.at_ = when;
	to->timer_.linked_ = 0;
	if (when == UR_NO_DEADLINE)
		return;
	/* A time already past expires it at once, as the header promises: the turn's time (read
	 * once per turn) settles the common case without a clock read, and the clock the rest,
	 * since a turn may have run for longer than any margin we could pick (valgrind, ASan). */
	uint64_t now = to->task_->loop->now;
	if (when <= now || when <= ur_now_ns())
		expire(to);
	else
		ur__timer_add(to->task_->loop, &to->timer_, when, scope_fire);
}

int ur_timeout_begin_at(struct ur_timeout *to, uint64_t when_ns)
{
	struct ur_task *t = ur__task_self();
	if (!t)
		return UR_ENOTASK;
	to->task_ = t;
	to->state_ = S_ACTIVE;
	to->outer_ = t->scopes;
	t->scopes = to;
	schedule(to, when_ns);
	return 0;
}

/*
 * A relative timeout as an absolute deadline. 0 is "already past" (time 0), not "now": schedule()
 * compares against the turn's time, and a turn that has run longer than a millisecond would put
 * "now" in the future and let the next wait finish before the scope fires (seen under ASan).
 */
static uint64_t deadline_in(uint64_t ns)
{
	return ns == 0 ? 0 : ur__deadline_in(ns);
}

int ur_timeout_begin(struct ur_timeout *to, uint64_t timeout_ns)
{
	if (!ur__task_self())
		return UR_ENOTASK;
	return ur_timeout_begin_at(to, deadline_in(timeout_ns));
}

int ur_timeout_reschedule(struct ur_timeout *to, uint64_t when_ns)
{
	if (!(to->state_ & S_ACTIVE))
		return -EINVAL;
	if (to->state_ & S_EXPIRED)
		return -EALREADY;
	ur__timer_del(to->task_->loop, &to->timer_);
	schedule(to, when_ns);
	return 0;
}

uint64_t ur_timeout_when(const struct ur_timeout *to)
{
	return to->timer_.at_;
}

bool ur_timeout_expired(const struct ur_timeout *to)
{
	return (to->state_ & S_EXPIRED) != 0;
}

/* Takes @to out of force; returns whether it had expired. */
static bool drop(struct ur_task *t, struct ur_timeout *to)
{
	ur__timer_del(t->loop, &to->timer_);
	to->state_ &= (uint8_t)~S_ACTIVE;
	t->scopes = to->outer_;
	if (!(to->state_ & S_EXPIRED))
		return false;
	t->expired--;
	return true;
}

int ur_timeout_end(struct ur_timeout *to)
{
	struct ur_task *t = ur__task_self();
	if (!t)
		return UR_ENOTASK;
	if (t->scopes != to || !(to->state_ & S_ACTIVE) || to->task_ != t)
		return -EINVAL;
	return drop(t, to) ? -ETIMEDOUT : 0;
}

void ur__scopes_drop(struct ur_task *t)
{
	while (t->scopes)
		drop(t, t->scopes);
}

/* --- ur_deadline: a scope around the very next task-style call ------------------------------- */

void ur_deadline(uint64_t timeout_ns)
{
	struct ur_task *t = ur__task_self();
	if (!t)
		return;
	/* 0 is a deadline too: expire at once. */
	t->deadline = deadline_in(timeout_ns);
}

void ur_deadline_at(uint64_t when_ns)
{
	struct ur_task *t = ur__task_self();
	if (t)
		t->deadline = when_ns;
}

void ur__deadline_begin(struct ur_task *t, struct ur_timeout *to)
{
	uint64_t at = t->deadline;
	t->deadline = UR_NO_DEADLINE;
	ur_timeout_begin_at(to, at);
}

ssize_t ur__deadline_end(struct ur_timeout *to, ssize_t r)
{
	ur_timeout_end(to);
	return r;
}
