/* SPDX-License-Identifier: MIT */
/*
 * core/timer.c - kernel timeouts, and the loop's timer heap.
 *
 * A timeout is an IORING_OP_TIMEOUT whose timespec lives in the future (the kernel copies it when
 * the SQE is submitted). The kernel reports an expired timer as -ETIME; urio reports 0, so that
 * "slept the whole time" reads as success and only cancellation is an error.
 *
 * Sleeps, wait_for and timeout scopes do not each get a kernel timeout: they are entries of a
 * pairing heap per loop (intrusive, so adding one allocates nothing; O(1) insert, O(log n)
 * amortised removal). When the loop sleeps in io_uring_enter, the time to the earliest entry is
 * the enter's own timeout (IORING_ENTER_EXT_ARG, core/submit.c), and after every turn the loop
 * runs the entries that are due. So a timer costs no SQE and no CQE at all.
 *
 * A host that sleeps on ur_loop_fd() instead (or a kernel without EXT_ARG) needs a completion
 * to wake it: for it one internal IORING_OP_TIMEOUT is armed for the earliest entry when the
 * loop returns, and moved only when an earlier entry arrives (IORING_TIMEOUT_UPDATE: one SQE;
 * the kernel reads the timespec from the loop, which is hot memory). Removing an entry never
 * touches the kernel: a kernel timeout left early fires, finds nothing due, and the next arm is
 * for what is then the earliest.
 */
#include <errno.h>
#include <time.h>

#include "internal.h"

int ur_timeout_start(struct ur_loop *l, struct ur_future *f, uint64_t ns, unsigned flags)
{
	struct ur__op op;
	unsigned kflags = 0;

	if (flags & ~(unsigned)(UR_TIMEOUT_ABS | UR_TIMEOUT_BOOTTIME | UR_TIMEOUT_REALTIME))
		return -EINVAL;
	if ((flags & UR_TIMEOUT_BOOTTIME) && (flags & UR_TIMEOUT_REALTIME))
		return -EINVAL;
	if (flags & UR_TIMEOUT_ABS)
		kflags |= IORING_TIMEOUT_ABS;
	if (flags & UR_TIMEOUT_BOOTTIME)
		kflags |= IORING_TIMEOUT_BOOTTIME;
	if (flags & UR_TIMEOUT_REALTIME)
		kflags |= IORING_TIMEOUT_REALTIME;

	int ret = ur__op_begin(l, f, UR__OP_TIMEOUT, &op);
	if (ret)
		return ret;
	ur__sc(f)->timeout.tv_sec = (long long)(ns / UR_SEC);
	ur__sc(f)->timeout.tv_nsec = (long long)(ns % UR_SEC);
	io_uring_prep_timeout(op.sqe, &ur__sc(f)->timeout, 0, kflags);
	return ur__op_end(l, f, &op);
}

uint64_t ur_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * UR_SEC + (uint64_t)ts.tv_nsec;
}

uint64_t ur_loop_time_ns(void)
{
	struct ur_loop *l = ur__running;
	return l && l->running ? l->now : ur_now_ns();
}

/* --- the timer heap -------------------------------------------------------------------------- */

/*
 * Pairing heap. A node's prev_ is its parent if it is a first child, else its left sibling;
 * the root's is NULL. meld() keeps the older root on ties.
 */
static struct ur_timer_ *meld(struct ur_timer_ *a, struct ur_timer_ *b)
{
	if (!a)
		return b;
	if (!b)
		return a;
	if (b->at_ < a->at_) {
		struct ur_timer_ *t = a;
		a = b;
		b = t;
	}
	b->prev_ = a;
	b->next_ = a->child_;
	if (a->child_)
		a->child_->prev_ = b;
	a->child_ = b;
	return a;
}

/* The two-pass merge of a sibling list, iterative: pairs left to right, then melds right to left.
 */
static struct ur_timer_ *merge_pairs(struct ur_timer_ *first)
{
	struct ur_timer_ *acc = NULL;
	while (first) {
		struct ur_timer_ *a = first, *b = a->next_;
		first = b ? b->next_ : NULL;
		a->next_ = a->prev_ = NULL;
		if (b)
			b->next_ = b->prev_ = NULL;
		a = meld(a, b);
		a->next_ = acc; /* acc is a stack of the pairs, latest first */
		acc = a;
	}
	struct ur_timer_ *root = NULL;
	while (acc) {
		struct ur_timer_ *n = acc->next_;
		acc->next_ = NULL;
		root = meld(root, acc);
		acc = n;
	}
	if (root)
		root->prev_ = root->next_ = NULL;
	return root;
}

void ur__timer_add(struct ur_loop *l, struct ur_timer_ *tm, uint64_t at,
                   void (*fn)(struct ur_loop *, struct ur_timer_ *))
{
	tm->at_ = at;
	tm->fn_ = fn;
	tm->child_ = tm->next_ = tm->prev_ = NULL;
	tm->linked_ = 1;
	l->theap = meld(l->theap, tm);
	l->theap->prev_ = l->theap->next_ = NULL;
}

void ur__timer_del(struct ur_loop *l, struct ur_timer_ *tm)
{
	if (!tm->linked_)
		return;
	tm->linked_ = 0;
	if (tm == l->theap) {
		l->theap = merge_pairs(tm->child_);
		return;
	}
	if (tm->prev_->child_ == tm)
		tm->prev_->child_ = tm->next_;
	else
		tm->prev_->next_ = tm->next_;
	if (tm->next_)
		tm->next_->prev_ = tm->prev_;
	l->theap = meld(l->theap, merge_pairs(tm->child_));
	l->theap->prev_ = l->theap->next_ = NULL;
}

void ur__timers_run_due(struct ur_loop *l)
{
	uint64_t now = l->now; /* read by run() after this turn's wait */
	while (l->theap && l->theap->at_ <= now) {
		struct ur_timer_ *tm = l->theap;
		ur__timer_del(l, tm);
		tm->fn_(l, tm);
	}
}

/* The kernel timeout fired (or was cancelled by teardown); the loop runs what is due. */
static void kernel_timer_done(struct ur_future *f, void *arg)
{
	struct ur_loop *l = arg;
	(void)f;
	l->tarmed = 0;
}

static void to_ts(int64_t ts[2], uint64_t at)
{
	ts[0] = (int64_t)(at / UR_SEC);
	ts[1] = (int64_t)(at % UR_SEC);
}

/*
 * Arms the kernel timeout for the earliest entry (ur__timers_arm says when). Out of SQEs and
 * memory, it stays unarmed and the next turn tries again.
 */
void ur__timers_arm_slow(struct ur_loop *l)
{
	uint64_t at = l->theap->at_;
	if (l->closing)
		return;
	if (l->tfut.state_ == UR_FUTURE_PENDING) {
		/* Armed for later: move it (the update's CQE is the loop's own, user_data 0). */
		struct io_uring_sqe *sqe = ur__loop_sqe(l);
		if (!sqe)
			return;
		to_ts(l->tts, at);
		io_uring_prep_timeout_update(sqe, (struct __kernel_timespec *)l->tts,
		                             ur__ud(&l->tfut, UR__TAG_MAIN), IORING_TIMEOUT_ABS);
		l->tarmed = at;
		return;
	}
	ur_future_init(&l->tfut, kernel_timer_done, l);
	l->tfut.flags_ = UR__F_INTERNAL;
	if (ur_timeout_start(l, &l->tfut, at, UR_TIMEOUT_ABS) == 0)
		l->tarmed = at;
}

uint64_t ur__deadline_in(uint64_t ns)
{
	if (ns == UR_NO_DEADLINE)
		return UR_NO_DEADLINE;
	uint64_t now = ur_now_ns();
	return ns > UR_NO_DEADLINE - 1 - now ? UR_NO_DEADLINE - 1 : now + ns;
}
