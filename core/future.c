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
	ur__sc(f)->dl.ts.tv_sec = (long long)(timeout_ns / UR_SEC);
	ur__sc(f)->dl.ts.tv_nsec = (long long)(timeout_ns % UR_SEC);
	f->flags_ |= UR__F_DEADLINE;
	return 0;
}

/* ur__op_begin's slow path (core/internal.h): a chain, a deadline, or no room in the SQ. */
int ur__op_begin_slow(struct ur_loop *l, struct ur_future *f, unsigned kind,
                      struct io_uring_sqe *s[UR__MAX_CHAIN])
{
	unsigned traits = ur__op_traits(kind);
	unsigned naux = (traits & UR__OPF_AUX) ? 1 : 0;
	bool dl = (f->flags_ & UR__F_DEADLINE) != 0;

	if (dl && (traits & UR__OPF_NODL))
		return -EINVAL;
	return ur__reserve(l, naux + 1 + dl, s);
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
	struct io_uring_sqe *sqe =
	    UR__FAULT_ENOMEM(l, UR__FAULT_AT_CANCEL) ? NULL : ur__loop_sqe(l);
	if (sqe) {
		io_uring_prep_cancel64(sqe, ud, (int)flags);
		io_uring_sqe_set_data64(sqe, 0);
		return;
	}
	/*
	 * No SQE, and no memory to queue one. A lost cancellation would leave a wait that a
	 * deadline or ur_cancel() should end waiting for an operation that may never complete, so
	 * ask through the registration interface, which needs neither (IORING_REGISTER_SYNC_CANCEL,
	 * Linux 6.0). A zero timeout: ask, do not wait; the operation's own CQE (-ECANCELED) comes
	 * as any other. On 5.19 this fails too, and the operation runs to completion
	 * (docs/reliability.md). The kernel cancels only what it has: what waits in the SQ (the
	 * operation itself, perhaps, started this turn) is submitted first.
	 */
	if (io_uring_sq_ready(&l->ring)) {
		int n = io_uring_submit(&l->ring);
		l->stats.enters++;
		if (n > 0)
			l->stats.submitted += (unsigned)n;
	}
	struct io_uring_sync_cancel_reg reg = {
	    .addr = ud, .fd = -1, .flags = flags, .timeout = {.tv_sec = 0, .tv_nsec = 0}};
	int r = io_uring_register_sync_cancel(&l->ring, &reg);
	l->stats.enters++;
	(void)r; /* -ENOENT: it completed meanwhile; -ETIME: asked, still running (io-wq) */
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
		l->inflight -= ur__backlog_drop(l, f);
		ur__complete_local(l, f, -ECANCELED);
		return 0;
	}
	switch (f->op_) {
	case UR__OP_TASK:
		/* The task decides when it is done. */
		f->flags_ &= (uint16_t)~UR__F_CANCEL;
		return ur__task_cancel_future(f);
	case UR__OP_GROUP:
		/* ... and a group's members do. */
		f->flags_ &= (uint16_t)~UR__F_CANCEL;
		return ur__group_cancel_future(f);
	case UR__OP_LOCAL:
		if (ur__sc(f)->local.hook) {
			/* hooked: the program stops its work, then resolves @f itself */
			const struct ur_cancel_hook *h = ur__sc(f)->local.hook;
			h->fn(f, h->arg);
			return 0;
		}
		local_unlink(l, f);
		ur__complete_local(l, f, -ECANCELED);
		return 0;
	case UR__OP_RECV_MULTI:
		/* Waiting for a recycled buffer is waiting in no kernel queue. */
		if ((f->flags_ & UR__F_STARVED) &&
		    ur__bufring_unstarve(ur__sc(f)->recv_multi.br, f)) {
			ur__complete_local(l, f, -ECANCELED);
			return 0;
		}
		break;
	default:
		break;
	}
	ur__cancel_ud(l, ur__ud(f, UR__TAG_MAIN), 0);
	return 0;
}

/*
 * Program-completed futures are kept on a list of the loop's, so that teardown can complete
 * them (-ECANCELED) as it does every other pending operation (links: scratch local).
 */
static void local_unlink(struct ur_loop *l, struct ur_future *f)
{
	struct ur_future *next = ur__sc(f)->local.next, *prev = ur__sc(f)->local.prev;
	if (prev)
		ur__sc(prev)->local.next = next;
	else
		l->locals = next;
	if (next)
		ur__sc(next)->local.prev = prev;
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
	ur__future_begin_local(l, f, UR__OP_LOCAL);
	ur__sc(f)->local.hook = hook;
	ur__sc(f)->local.prev = NULL;
	ur__sc(f)->local.next = l->locals;
	if (l->locals)
		ur__sc(l->locals)->local.prev = f;
	l->locals = f;
	return 0;
}

int ur_future_resolve(struct ur_future *f, int res)
{
	if (f->state_ != UR_FUTURE_PENDING || f->op_ != UR__OP_LOCAL)
		return -EINVAL;
	UR__ASSERT_OWNER(f->loop_);
	if (f->flags_ & UR__F_READY)
		return -EALREADY;
	local_unlink(f->loop_, f);
	ur__sc(f)->local.hook = NULL;
	ur__complete_local(f->loop_, f, res);
	return 0;
}

void ur__locals_cancel(struct ur_loop *l)
{
	while (l->locals) {
		struct ur_future *f = l->locals;
		local_unlink(l, f);
		ur__sc(f)->local.hook = NULL;
		ur__complete_local(l, f, -ECANCELED);
	}
}

void ur__complete_local(struct ur_loop *l, struct ur_future *f, int res)
{
	f->owed_ = 0;
	f->flags_ &= (uint16_t) ~(UR__F_QUEUED | UR__F_STARVED);
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
 * the recvs cancelled in urio's own queue (ur_cancel_fd_start counted them).
 */
static int cancel_fd_result(struct ur_future *f, int res)
{
	int local = (int)ur__sc(f)->dl.cancel_fd.local;
	if (res == 0)
		res = ur__sc(f)->dl.cancel_fd.all ? 0 : 1;
	if (local)
		return res >= 0 ? res + local : local;
	return res == 0 ? -ENOENT : res;
}

/*
 * What a final result means, beyond the kernel's number: a deadline's cancellation is a timeout,
 * a descriptor created after cancellation was requested is closed (row FD), and the kinds whose
 * row says FIX translate their result or release what they held. Runs only when one of those
 * can apply (ur__finish tests the flags), so the common completion pays one test.
 */
int ur__op_fix(struct ur_loop *l, struct ur_future *f, int res)
{
	/* An io-wq operation interrupted by its cancellation can leak the kernel's own restart
	 * codes (ERESTARTSYS 512 .. ERESTART_RESTARTBLOCK 516; seen from splice): cancelled. */
	if ((f->flags_ & UR__F_CANCEL) && res <= -512 && res >= -516)
		res = -ECANCELED;
	if ((f->flags_ & UR__F_TIMEDOUT) && (res == -ECANCELED || res == -EINTR))
		res = -ETIMEDOUT;
	if (res >= 0 && (f->flags_ & UR__F_CANCEL) && (ur__op_traits(f->op_) & UR__OPF_FD)) {
		/* Cancelled too late: the caller has given up on this descriptor. */
		ur__close_fd(l, res);
		res = -ECANCELED;
	}
	if (!(f->flags_ & UR__F_FIXUP))
		return res;
	switch (f->op_) {
	case UR__OP_TIMEOUT:
		return res == -ETIME ? 0 : res; /* expired: slept the whole time */
	case UR__OP_CANCEL_FD:
		return res == -ETIMEDOUT ? res : cancel_fd_result(f, res);
	case UR__OP_RECV_MULTI:
		ur__bufring_done(f);
		return res;
	case UR__OP_SEND_BUFFER:
		ur__send_buffer_done(f);
		return res;
	default:
		assert(!"a row says FIX but ur__op_fix has no case for it");
		return res;
	}
}

/* One result of a multishot operation: the future stays pending. */
static void deliver_more(struct ur_future *f, int32_t res, uint32_t flags)
{
	f->res = res;
	f->cqe_flags = flags;
	if (f->cb_)
		f->cb_(f, f->arg_);
}

static void recv_more(struct ur_future *f, int32_t res, uint32_t flags)
{
	if (flags & IORING_CQE_F_BUFFER)
		ur__bufring_took(ur__sc(f)->recv_multi.br, flags);
	deliver_more(f, res, flags | IORING_CQE_F_MORE);
}

/*
 * The last CQE of a multishot recv. The kernel ends the multishot when the buffer ring runs dry
 * (-ENOBUFS), and on some kernels after a CQ overflow (data, but no MORE flag). Neither is the
 * end of the stream: deliver the data, if any, as one more chunk and arm again. Returns true if
 * the recv goes on; false if this is its final completion, with *@res what it reports.
 */
static bool recv_multi_continues(struct ur_loop *l, struct ur_future *f, int32_t *res,
                                 uint32_t flags)
{
	if (*res > 0) {
		recv_more(f, *res, flags);
		if (f->state_ != UR_FUTURE_PENDING)
			return true; /* defensive: nothing a callback can do ends it here */
	} else if (*res != -ENOBUFS) {
		return false;
	}
	if ((f->flags_ & UR__F_CANCEL) || l->closing) {
		*res = -ECANCELED;
		return false;
	}
	ur__recv_multi_rearm(l, f);
	return true;
}

/*
 * SEND_ZC refused: the kernel or the socket does not do zero copy (-EOPNOTSUPP: a Unix socket,
 * say; -EINVAL). The loop stops asking (ur_send_zc_start sends plainly from now on) and this
 * send goes again as a plain one, from the scratch the start kept; the kernel's last CQE for the
 * zero-copy SQE has arrived, so its count is the new SQE's. Returns false if it cannot (the loop
 * is closing, cancellation was requested: then the send did nothing, and says -ECANCELED; no
 * memory for the plain send: it did nothing, and says -ENOMEM, not the refusal, which the
 * caller never asked about and which a retry would not meet again).
 */
static bool send_zc_fallback(struct ur_loop *l, struct ur_future *f)
{
	struct io_uring_sqe *sqe;
	l->send_zc_off = true;
	if ((f->flags_ & UR__F_CANCEL) || l->closing) {
		f->res = -ECANCELED;
		return false;
	}
	int q = UR__FAULT_ENOMEM(l, UR__FAULT_AT_SENDZC) ? -ENOMEM : ur__reserve(l, 1, &sqe);
	if (q < 0) {
		f->res = q;
		return false;
	}
	io_uring_prep_send(sqe, ur__sc(f)->send_zc.fd, ur__sc(f)->send_zc.buf,
	                   ur__sc(f)->send_zc.len, ur__sc(f)->send_zc.flags);
	io_uring_sqe_set_data64(sqe, ur__ud(f, UR__TAG_MAIN));
	f->op_ = UR__OP_SEND;
	f->flags_ &= (uint16_t)~UR__F_MANY;
	if (q == 1)
		f->flags_ |= UR__F_QUEUED;
	f->res = 0;
	f->cqe_flags = 0;
	l->inflight++;
	return true;
}

/*
 * SEND_ZC's CQEs: the result (bytes sent, or -errno), flagged MORE when a notification follows,
 * then the notification (F_NOTIF), once the kernel no longer reads the buffer. The future keeps
 * the result and completes after the last of them. Returns as ur__op_cqe.
 */
static bool send_zc_cqe(struct ur_loop *l, struct ur_future *f, int32_t res, uint32_t flags)
{
	if (!(flags & IORING_CQE_F_NOTIF)) {
		f->res = res;
		f->cqe_flags = flags & ~(uint32_t)IORING_CQE_F_MORE;
		if (flags & IORING_CQE_F_MORE)
			return false; /* the buffer is still the kernel's */
	}
	if ((f->res == -EOPNOTSUPP || f->res == -EINVAL) && send_zc_fallback(l, f))
		return false;
	return true;
}

/*
 * A CQE of the operation itself (tag MAIN) whose kind makes several per SQE (row MULTI or
 * NOTIF). Returns true if it was the SQE's last CQE, its result stored in @f, for ur__cqe to
 * count; false if the future stays as it is (more to come, or urio armed the operation again).
 */
bool ur__op_cqe(struct ur_loop *l, struct ur_future *f, int32_t res, uint32_t flags)
{
	switch (f->op_) {
	case UR__OP_ACCEPT_MULTI:
		if (!(flags & IORING_CQE_F_MORE))
			break;
		if (res >= 0 && (f->flags_ & UR__F_CANCEL))
			ur__close_fd(l, res); /* after cancellation: nobody receives it */
		else
			deliver_more(f, res, flags);
		return false;
	case UR__OP_RECV_MULTI:
		if (flags & IORING_CQE_F_MORE) {
			recv_more(f, res, flags);
			return false;
		}
		if (recv_multi_continues(l, f, &res, flags))
			return false;
		flags = 0;
		break;
	case UR__OP_SEND_ZC:
		return send_zc_cqe(l, f, res, flags);
	default:
		assert(!"a row says MULTI or NOTIF but ur__op_cqe has no case for it");
		break;
	}
	f->res = res;
	f->cqe_flags = flags;
	return true;
}
