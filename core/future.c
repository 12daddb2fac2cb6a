/* SPDX-License-Identifier: MIT */
/*
 * core/future.c - the future's life: start, completion, cancellation.
 *
 * A start reserves the SQEs of one chain: [aux] operation [linked timeout]. Every SQE carries the
 * future's address, tagged with its role, and the future counts the completions it is still owed
 * (owed_). The future's final completion is delivered only when that count reaches zero, so the
 * memory of every SQE of the chain (the timespec of a deadline lives in the future itself) stays
 * alive until the kernel is done with all of them, whatever order the CQEs come in.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

void ur_future_init(struct ur_future *f, ur_callback_fn *cb, void *arg)
{
	memset(f, 0, sizeof(*f));
	f->cb_ = cb;
	f->arg_ = arg;
}

void ur_future_set_callback(struct ur_future *f, ur_callback_fn *cb, void *arg)
{
	f->cb_ = cb;
	f->arg_ = arg;
}

int ur_future_set_deadline(struct ur_future *f, uint64_t timeout_ns)
{
	if (f->state_ == UR_FUTURE_PENDING)
		return -EBUSY;
	if (timeout_ns == UR_NO_DEADLINE) {
		f->flags_ &= (uint16_t)~UR__F_DEADLINE;
		return 0;
	}
	f->ts_[0] = (int64_t)(timeout_ns / UR_SEC);
	f->ts_[1] = (int64_t)(timeout_ns % UR_SEC);
	f->flags_ |= UR__F_DEADLINE;
	return 0;
}

static bool creates_fd(unsigned op)
{
	return op == IORING_OP_ACCEPT || op == IORING_OP_OPENAT || op == IORING_OP_OPENAT2 ||
	       op == IORING_OP_SOCKET;
}

/* ur__op_begin's slow path (core/internal.h): a chain, or no room in the SQ. */
int ur__op_begin_slow(struct ur_loop *l, struct ur_future *f, unsigned naux, struct ur__op *op)
{
	struct io_uring_sqe *s[3];
	unsigned n = naux + 1 + ((f->flags_ & UR__F_DEADLINE) ? 1 : 0);
	int ret = ur__reserve(l, n, s);
	if (ret < 0)
		return ret;
	op->queued = ret == 1;
	op->aux = naux ? s[0] : NULL;
	op->sqe = s[naux];
	op->lt = (f->flags_ & UR__F_DEADLINE) ? s[naux + 1] : NULL;
	return 0;
}

struct io_uring_sqe *ur__loop_sqe(struct ur_loop *l)
{
	struct io_uring_sqe *sqe;
	if (ur__reserve(l, 1, &sqe) < 0)
		return NULL;
	io_uring_sqe_set_data64(sqe, 0);
	l->inflight++;
	return sqe;
}

void ur__cancel_ud(struct ur_loop *l, uint64_t ud, unsigned flags)
{
	struct io_uring_sqe *sqe = ur__loop_sqe(l);
	if (!sqe)
		return; /* out of memory: the operation simply runs to completion */
	io_uring_prep_cancel64(sqe, ud, (int)flags);
	io_uring_sqe_set_data64(sqe, 0);
}

/*
 * Closes a descriptor nobody will receive. A plain close(2), not an SQE: this is the rare path, and
 * the descriptor must be gone by the time the caller hears of the cancellation.
 */
void ur__close_fd(struct ur_loop *l, int fd)
{
	int saved = errno;
	(void)l;
	close(fd);
	errno = saved;
}

static void local_unlink(struct ur_loop *l, struct ur_future *f);

int ur_cancel(struct ur_future *f)
{
	struct ur_loop *l = f->loop_;

	if (f->state_ != UR_FUTURE_PENDING)
		return -ENOENT;
	UR__ASSERT_OWNER(l);
	if (f->flags_ & (UR__F_CANCEL | UR__F_READY | UR__F_NOCANCEL))
		return -EALREADY;
	f->flags_ |= UR__F_CANCEL;
	if (f->flags_ & UR__F_QUEUED) {
		/* Never reached the kernel: take it back and complete it here. */
		unsigned n = ur__backlog_drop(l, f);
		l->inflight -= n;
		f->owed_ = 0;
		f->flags_ &= (uint16_t)~UR__F_QUEUED;
		ur__complete_local(l, f, -ECANCELED);
		return 0;
	}
	if (f->flags_ & UR__F_TASK) {
		/* The task (or the group's members) decide when it is done. */
		f->flags_ &= (uint16_t)~UR__F_CANCEL;
		return f->op_ == UR__OP_GROUP ? ur__group_cancel_future(f)
		                              : ur__task_cancel_future(f);
	}
	if (f->flags_ & UR__F_LOCAL) {
		if (f->aux_) {
			/* hooked: the program stops its work, then resolves @f itself */
			const struct ur_cancel_hook *h = f->aux_;
			h->fn(f, h->arg);
			return 0;
		}
		local_unlink(l, f);
		ur__complete_local(l, f, -ECANCELED);
		return 0;
	}
	if (f->flags_ & UR__F_STARVED) {
		if (ur__bufring_unstarve(f->aux_, f)) {
			f->owed_ = 0;
			ur__complete_local(l, f, -ECANCELED);
			return 0;
		}
	}
	ur__cancel_ud(l, ur__ud(f, UR__TAG_MAIN), 0);
	return 0;
}

/*
 * Program-completed futures are kept on a list of the loop's, so that teardown can complete
 * them (-ECANCELED) as it does every other pending operation. The links live in the timespec
 * storage, which such a future never uses.
 */
#define LOCAL_NEXT(f) (*(struct ur_future **)(void *)&(f)->ts_[0])
#define LOCAL_PREV(f) (*(struct ur_future **)(void *)&(f)->ts_[1])

static void local_unlink(struct ur_loop *l, struct ur_future *f)
{
	if (LOCAL_PREV(f))
		LOCAL_NEXT(LOCAL_PREV(f)) = LOCAL_NEXT(f);
	else
		l->locals = LOCAL_NEXT(f);
	if (LOCAL_NEXT(f))
		LOCAL_PREV(LOCAL_NEXT(f)) = LOCAL_PREV(f);
}

int ur_future_begin(struct ur_loop *l, struct ur_future *f)
{
	return ur_future_begin_hooked(l, f, NULL);
}

int ur_future_begin_hooked(struct ur_loop *l, struct ur_future *f,
                           const struct ur_cancel_hook *hook)
{
	UR__ASSERT_OWNER(l);
	if (f->state_ == UR_FUTURE_PENDING)
		return -EBUSY;
	if (l->closing)
		return UR_ELOOPCLOSED;
	ur__future_begin_local(l, f, UR__F_LOCAL);
	f->aux_ = (void *)hook;
	LOCAL_PREV(f) = NULL;
	LOCAL_NEXT(f) = l->locals;
	if (l->locals)
		LOCAL_PREV(l->locals) = f;
	l->locals = f;
	return 0;
}

int ur_future_resolve(struct ur_future *f, int res)
{
	if (f->state_ != UR_FUTURE_PENDING || !(f->flags_ & UR__F_LOCAL))
		return -EINVAL;
	UR__ASSERT_OWNER(f->loop_);
	if (f->flags_ & UR__F_READY)
		return -EALREADY;
	local_unlink(f->loop_, f);
	f->aux_ = NULL;
	ur__complete_local(f->loop_, f, res);
	return 0;
}

void ur__locals_cancel(struct ur_loop *l)
{
	while (l->locals) {
		struct ur_future *f = l->locals;
		local_unlink(l, f);
		f->aux_ = NULL;
		ur__complete_local(l, f, -ECANCELED);
	}
}

void ur__complete_local(struct ur_loop *l, struct ur_future *f, int res)
{
	f->res = res;
	f->cqe_flags = 0;
	f->flags_ |= UR__F_READY;
	f->next_ = NULL;
	if (l->ready_tail)
		l->ready_tail->next_ = f;
	else
		l->ready_head = f;
	l->ready_tail = f;
}

void ur__run_ready(struct ur_loop *l)
{
	/* Take the list as it is now: futures completed by these callbacks wait for the next turn.
	 */
	struct ur_future *f = l->ready_head;
	l->ready_head = l->ready_tail = NULL;
	while (f) {
		struct ur_future *next = f->next_;
		f->flags_ &= (uint16_t)~UR__F_READY;
		ur__finish(l, f);
		f = next;
	}
}

/*
 * The count of a cancel-by-fd: the kernel's 0 means "one" without ALL and "none" with it; add
 * the recvs cancelled in urio's own queue (ur_cancel_fd_start keeps their number in aux_).
 */
static int cancel_fd_result(struct ur_future *f, int res)
{
	int local = (int)(uintptr_t)f->aux_;
	f->aux_ = NULL;
	if (res == 0)
		res = (f->flags_ & UR__F_ALL) ? 0 : 1;
	if (local)
		return res >= 0 ? res + local : local;
	return res == 0 ? -ENOENT : res;
}

/*
 * The few results urio translates: a deadline's cancellation is a timeout, an expired timeout is
 * success, a cancel-by-fd's count, and a descriptor created after cancellation was requested.
 */
static int fix_result(struct ur_loop *l, struct ur_future *f, int res)
{
	if ((f->flags_ & UR__F_TIMEDOUT) && (res == -ECANCELED || res == -EINTR))
		res = -ETIMEDOUT;
	else if (f->op_ == IORING_OP_TIMEOUT && res == -ETIME)
		res = 0;
	else if (f->op_ == IORING_OP_ASYNC_CANCEL)
		res = cancel_fd_result(f, res);
	if (res >= 0 && (f->flags_ & UR__F_CANCEL) && creates_fd(f->op_)) {
		/* Cancelled too late: the caller has given up on this descriptor. */
		ur__close_fd(l, res);
		res = -ECANCELED;
	}
	if ((f->flags_ & UR__F_MULTI) && f->op_ == IORING_OP_RECV)
		ur__bufring_done(f);
	if (f->flags_ & UR__F_SENDBUF)
		ur__send_buffer_done(f);
	return res;
}

void ur__finish(struct ur_loop *l, struct ur_future *f)
{
	int res = f->res;

	if (f->flags_ & (UR__F_TIMEDOUT | UR__F_CANCEL | UR__F_MULTI | UR__F_FIXUP | UR__F_SENDBUF))
		res = fix_result(l, f, res);
	f->res = res;
	f->cqe_flags &= ~(uint32_t)IORING_CQE_F_MORE;
	if (!(f->flags_ & UR__F_INTERNAL))
		l->pending--;
	f->flags_ &= UR__F_INTERNAL;
	f->state_ = UR_FUTURE_DONE;
	/* Last touch of @f: the callback may restart or free it. */
	if (f->cb_)
		f->cb_(f, f->arg_);
}

/* A completion flagged MORE: one result of a multishot operation, the future stays pending. */
static void multishot_more(struct ur_loop *l, struct ur_future *f, int32_t res, uint32_t flags)
{
	if (f->op_ == IORING_OP_ACCEPT && res >= 0 && (f->flags_ & UR__F_CANCEL)) {
		ur__close_fd(l, res);
		return;
	}
	if (f->op_ == IORING_OP_RECV && (flags & IORING_CQE_F_BUFFER))
		ur__bufring_took(f->aux_, flags);
	f->res = res;
	f->cqe_flags = flags;
	if (f->cb_)
		f->cb_(f, f->arg_);
}

/*
 * The last completion of a multishot recv. The kernel ends the multishot when the buffer ring
 * runs dry (-ENOBUFS), and on some kernels after a CQ overflow (data, but no MORE flag). Neither
 * is the end of the stream: deliver the data, if any, as one more chunk and arm again.
 */
static bool recv_multi_continues(struct ur_loop *l, struct ur_future *f, int32_t res,
                                 uint32_t flags)
{
	if (f->op_ != IORING_OP_RECV || !(f->flags_ & UR__F_MULTI))
		return false;
	if (res > 0) {
		multishot_more(l, f, res, flags | IORING_CQE_F_MORE);
		if (f->state_ != UR_FUTURE_PENDING)
			return true; /* defensive: nothing a callback can do ends it here */
	} else if (res != -ENOBUFS) {
		return false;
	}
	if ((f->flags_ & UR__F_CANCEL) || l->closing) {
		f->res = -ECANCELED;
		f->cqe_flags = 0;
		f->owed_ = 0;
		ur__finish(l, f);
		return true;
	}
	ur__recv_multi_rearm(l, f);
	return true;
}

void ur__cqe(struct ur_loop *l, uint64_t ud, int32_t res, uint32_t flags)
{
	struct ur_future *f = (void *)(uintptr_t)(ud & ~(uint64_t)UR__TAG_MASK);

	l->stats.reaped++;
	if (!(flags & IORING_CQE_F_MORE))
		l->inflight--;
	if (!f)
		return;
	switch (ud & UR__TAG_MASK) {
	case UR__TAG_MAIN:
		if (flags & IORING_CQE_F_MORE) {
			multishot_more(l, f, res, flags);
			return;
		}
		if (f->owed_ == 1 && recv_multi_continues(l, f, res, flags))
			return;
		f->res = res;
		f->cqe_flags = flags;
		break;
	case UR__TAG_LT:
		if (res == -ETIME)
			f->flags_ |= UR__F_TIMEDOUT;
		break;
	default: /* UR__TAG_AUX: its result does not matter */
		break;
	}
	if (--f->owed_ == 0)
		ur__finish(l, f);
}
