/* SPDX-License-Identifier: MIT */
/*
 * core/timer.c - kernel timeouts.
 *
 * A timeout is an IORING_OP_TIMEOUT whose timespec lives in the future (the kernel copies it when
 * the SQE is submitted). The kernel reports an expired timer as -ETIME; urio reports 0, so that
 * "slept the whole time" reads as success and only cancellation is an error.
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
	if (f->state_ != UR_FUTURE_PENDING && (f->flags_ & UR__F_DEADLINE))
		return -EINVAL; /* the deadline's timespec and ours share the future's storage */
	if (flags & UR_TIMEOUT_ABS)
		kflags |= IORING_TIMEOUT_ABS;
	if (flags & UR_TIMEOUT_BOOTTIME)
		kflags |= IORING_TIMEOUT_BOOTTIME;
	if (flags & UR_TIMEOUT_REALTIME)
		kflags |= IORING_TIMEOUT_REALTIME;

	int ret = ur__op_begin(l, f, IORING_OP_TIMEOUT, 0, &op);
	if (ret)
		return ret;
	f->ts_[0] = (int64_t)(ns / UR_SEC);
	f->ts_[1] = (int64_t)(ns % UR_SEC);
	io_uring_prep_timeout(op.sqe, (struct __kernel_timespec *)f->ts_, 0, kflags);
	return ur__op_end(l, f, &op);
}

uint64_t ur_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * UR_SEC + (uint64_t)ts.tv_nsec;
}
