/* SPDX-License-Identifier: MIT */
/*
 * urio/timer.h - kernel timeouts (IORING_OP_TIMEOUT).
 *
 * Per-operation deadlines are set on the future itself: see ur_future_set_deadline() in
 * urio/future.h.
 */
#ifndef URIO_TIMER_H
#define URIO_TIMER_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

enum ur_timeout_flags {
	UR_TIMEOUT_ABS = 1u << 0,      /* @ns is an absolute time, not a delay */
	UR_TIMEOUT_BOOTTIME = 1u << 1, /* CLOCK_BOOTTIME (counts suspend) instead of MONOTONIC */
	UR_TIMEOUT_REALTIME = 1u << 2, /* CLOCK_REALTIME; only meaningful with UR_TIMEOUT_ABS */
};

/*
 * Completes @f with 0 when @ns nanoseconds have passed (or at time @ns with UR_TIMEOUT_ABS), or
 * with -ECANCELED if cancelled first. The time is read when the operation reaches the kernel: a
 * relative timeout that waited in urio's local queue starts counting then.
 */
UR_EXPORT int ur_timeout_start(struct ur_loop *loop, struct ur_future *f, uint64_t ns,
                               unsigned flags);

/* Current CLOCK_MONOTONIC time in nanoseconds, the clock UR_TIMEOUT_ABS uses by default. */
UR_EXPORT uint64_t ur_now_ns(void);

/*
 * The time of the running loop's current turn: CLOCK_MONOTONIC as read once per turn, after the
 * loop's wait, so a task or callback gets it without a clock read. It trails ur_now_ns() by what
 * the turn has run so far (microseconds, usually): right for arming deadlines and stamping
 * events (libuv's uv_now), not for measuring work done within a turn. On a thread that runs no
 * loop, it is ur_now_ns().
 */
UR_EXPORT uint64_t ur_loop_time_ns(void);

#ifdef __cplusplus
}
#endif

#endif
