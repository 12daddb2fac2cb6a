/* SPDX-License-Identifier: MIT */
/*
 * urio/future.h - the future: the completion record of one io_uring submission.
 *
 * A future is owned by the caller: embed it in your own struct or put it on a task's stack.
 * Starting an operation (the *_start calls in urio/io.h and urio/timer.h) fills it in and allocates
 * nothing. The kernel's result lands in it when the operation completes, and its continuation runs.
 *
 * Rules every future keeps (docs/design.md has the reasoning):
 *  - It completes exactly once per start: its callback runs once with the final result. A multishot
 *    operation completes many times; every completion but the last has ur_future_more() true.
 *  - It completes only from inside ur_loop_run(), never inside the call that started it.
 *  - If a start call fails it returns -errno (or a UR_E* code) and the future never completes.
 *  - Memory handed to an operation (buffers, iovecs, sockaddrs, paths, the future itself) belongs
 * to the kernel until the future's final completion, even after ur_cancel() returned.
 *  - ur_cancel() is a request. The future still completes: with -ECANCELED, or with its real result
 *    if the operation won the race; an operation that created a file descriptor (accept, openat,
 *    socket) and succeeded after cancellation was requested has that descriptor closed by urio and
 *    completes with -ECANCELED.
 */
#ifndef URIO_FUTURE_H
#define URIO_FUTURE_H

#include <stdbool.h>
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ur_future;

/*
 * Continuation of a future. Called from ur_loop_run() on the loop's thread, once per completion
 * (several times for multishot). It may start new operations, cancel others, and re-start @f itself
 * once its final completion has been delivered. It must not free @f's memory while
 * ur_future_more(@f) is true.
 */
typedef void ur_callback_fn(struct ur_future *f, void *arg);

enum ur_future_state {
	UR_FUTURE_IDLE = 0, /* initialised, never started */
	UR_FUTURE_PENDING,  /* started, final completion not yet delivered */
	UR_FUTURE_DONE,     /* final completion delivered; may be started again */
};

struct ur_future {
	/* public, read-only: valid in the callback and once the future is done */
	int32_t res;        /* the kernel's result: >= 0 value, < 0 -errno (or UR_E*) */
	uint32_t cqe_flags; /* IORING_CQE_F_* of the latest completion */

	/* private: urio's bookkeeping, do not touch (the layout is fixed: 72 bytes, align 8) */
	uint8_t state_;
	uint8_t op_; /* which operation */
	uint16_t flags_;
	uint32_t owed_; /* completions still owed by the kernel for this start */
	ur_callback_fn *cb_;
	void *arg_;
	struct ur_loop *loop_;
	struct ur_future *next_;
	uint64_t scratch_[3]; /* the operation's own state (a deadline's timespec, ...) */
};

/*
 * Prepares @f for its first start. @cb is called on completion with @arg; @cb may be NULL, in
 * which case the result is only recorded (poll it with ur_future_done()). Must not be called on a
 * pending future.
 */
UR_EXPORT void ur_future_init(struct ur_future *f, ur_callback_fn *cb, void *arg);

/* Replaces the continuation of an idle or done future. */
UR_EXPORT void ur_future_set_callback(struct ur_future *f, ur_callback_fn *cb, void *arg);

/*
 * Gives the next start of @f a deadline: if the operation has not completed @timeout_ns after it
 * reaches the kernel, the kernel cancels it and the future completes with -ETIMEDOUT. Implemented
 * as an IORING_OP_LINK_TIMEOUT linked to the operation, so it costs no extra system call. Applies
 * to one start only; not allowed on timeouts or multishot operations (their start returns -EINVAL).
 * @timeout_ns == 0 expires at once (the operation completes only if it can when issued, as with
 * ur_deadline(0)); UR_NO_DEADLINE removes a deadline set earlier.
 * Returns 0, or -EBUSY if @f is pending.
 */
UR_EXPORT int ur_future_set_deadline(struct ur_future *f, uint64_t timeout_ns);

/*
 * Requests cancellation of @f's operation. Returns 0 when the request is made (the future will
 * still complete, see above), -EALREADY if cancellation was already requested, or -ENOENT if @f is
 * not pending. A future still waiting in urio's local queue (the SQ was full) never reaches the
 * kernel: it completes with -ECANCELED on the next loop turn. Never completes @f inline.
 * On a task's future (urio/task.h) it is ur_task_cancel() and returns what that returns.
 */
UR_EXPORT int ur_cancel(struct ur_future *f);

/*
 * A future completed by the program instead of the kernel (asyncio's Future with set_result):
 * ur_future_begin() makes @f pending on @loop (it holds the loop like any operation), and
 * ur_future_resolve() completes it with @res on the loop's next turn, never inline. Cancelling it
 * completes it with -ECANCELED. Loop thread only; from another thread, resolve inside a
 * ur_loop_post() function.
 * begin returns 0, -EBUSY (pending), UR_ELOOPCLOSED; resolve returns 0, -EINVAL (not a pending
 * program-completed future), -EALREADY (already resolved or cancelled).
 */
UR_EXPORT int ur_future_begin(struct ur_loop *loop, struct ur_future *f);
UR_EXPORT int ur_future_resolve(struct ur_future *f, int res);

/*
 * A cancellation hook for a program-completed future whose work must stop before it may
 * complete (a request running in a task of its own that touches the caller's memory).
 * Caller-owned; it must stay valid until the future has completed.
 */
struct ur_cancel_hook {
	void (*fn)(struct ur_future *f, void *arg);
	void *arg;
};

/*
 * ur_future_begin() with a cancellation hook: ur_cancel(@f) does not complete @f but calls
 * @hook->fn(@f, @hook->arg) (once; a second ur_cancel returns -EALREADY), from the canceller's
 * context; the program then stops its work and ur_future_resolve()s @f with -ECANCELED (or the
 * result it got). The hook must not complete @f inline. Loop teardown still completes an
 * unresolved @f with -ECANCELED, after every task has returned. @hook NULL: ur_future_begin().
 * Returns as ur_future_begin() does.
 */
UR_EXPORT int ur_future_begin_hooked(struct ur_loop *loop, struct ur_future *f,
                                     const struct ur_cancel_hook *hook);

/* Returns the state of @f. */
static inline enum ur_future_state ur_future_state(const struct ur_future *f)
{
	return (enum ur_future_state)f->state_;
}

/* True once the final completion of the latest start has been delivered. */
static inline bool ur_future_done(const struct ur_future *f)
{
	return f->state_ == UR_FUTURE_DONE;
}

/* True in a multishot callback when more completions will follow (IORING_CQE_F_MORE). */
static inline bool ur_future_more(const struct ur_future *f)
{
	return (f->cqe_flags & (1U << 1)) != 0;
}

/* The loop @f was last started on, or NULL. */
static inline struct ur_loop *ur_future_loop(const struct ur_future *f)
{
	return f->loop_;
}

#ifdef __cplusplus
}
#endif

#endif
