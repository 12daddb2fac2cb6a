/* SPDX-License-Identifier: MIT */
/*
 * core/submit.c - getting SQEs: the submission queue, and the local queue behind it.
 *
 * A start call never fails because the SQ is full. It takes SQEs from the ring while there is room;
 * when there is none it first submits what is queued (unless the loop is UR_LOOP_LAZY_SUBMIT),
 * and if that still leaves no room (the kernel said -EBUSY/-EAGAIN, or lazy mode) the SQEs are
 * written to a local FIFO that the loop moves into the SQ on its next turns. Once anything waits
 * locally, new SQEs queue behind it, so submission order is kept. A chain (aux + operation +
 * linked timeout) is always reserved, queued and moved as one piece: links only work between SQEs
 * that reach the kernel together and in order.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "valgrind.h"

static int backlog_grow(struct ur_loop *l, unsigned n)
{
	if (l->bl_head > 0 && l->bl_head + l->bl_len + n > l->bl_cap) {
		memmove(l->backlog, l->backlog + l->bl_head, l->bl_len * sizeof(*l->backlog));
		l->bl_head = 0;
	}
	if (l->bl_len + n <= l->bl_cap)
		return 0;
	unsigned cap = l->bl_cap ? l->bl_cap * 2 : 64;
	while (cap < l->bl_len + n)
		cap *= 2;
	struct io_uring_sqe *nb = realloc(l->backlog, cap * sizeof(*nb));
	if (!nb)
		return -ENOMEM;
	l->backlog = nb;
	l->bl_cap = cap;
	return 0;
}

int ur__reserve(struct ur_loop *l, unsigned n, struct io_uring_sqe **out)
{
	if (l->bl_len == 0) {
		if (io_uring_sq_space_left(&l->ring) < n && !(l->flags & UR_LOOP_LAZY_SUBMIT)) {
			/* Errors (-EBUSY, -EAGAIN) just mean no room was made: queue locally. */
			int ret = io_uring_submit(&l->ring);
			l->stats.enters++;
			if (ret > 0)
				l->stats.submitted += (unsigned)ret;
		}
		if (io_uring_sq_space_left(&l->ring) >= n) {
			for (unsigned i = 0; i < n; i++)
				out[i] = io_uring_get_sqe(&l->ring);
			return 0;
		}
	}
	if (backlog_grow(l, n))
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		out[i] = &l->backlog[l->bl_head + l->bl_len + i];
		memset(out[i], 0, sizeof(*out[i]));
	}
	l->bl_len += n;
	l->stats.queued += n;
	return 1;
}

static unsigned chain_len(const struct io_uring_sqe *s, unsigned avail)
{
	unsigned n = 1;
	while (n < avail && (s[n - 1].flags & (IOSQE_IO_LINK | IOSQE_IO_HARDLINK)))
		n++;
	return n;
}

/*
 * Moves what waits in the local queue into the SQ, whole chains only, as room allows. Entries of
 * cancelled futures (tagged SKIP) are dropped. Returns the number of entries still waiting.
 */
unsigned ur__backlog_flush(struct ur_loop *l)
{
	while (l->bl_len > 0) {
		struct io_uring_sqe *s = &l->backlog[l->bl_head];
		if (ur__ud_tag(s->user_data) == UR__TAG_SKIP) {
			l->bl_head++;
			l->bl_len--;
			continue;
		}
		unsigned n = chain_len(s, l->bl_len);
		if (io_uring_sq_space_left(&l->ring) < n)
			break;
		for (unsigned i = 0; i < n; i++) {
			struct io_uring_sqe *d = io_uring_get_sqe(&l->ring);
			*d = s[i];
			struct ur_future *f = ur__ud_future(s[i].user_data);
			if (f)
				f->flags_ &= (uint16_t)~UR__F_QUEUED;
		}
		l->bl_head += n;
		l->bl_len -= n;
	}
	if (l->bl_len == 0)
		l->bl_head = 0;
	return l->bl_len;
}

/*
 * Turns every locally queued SQE of @f into a SKIP entry. Returns how many there were (the
 * SQEs then owe no completion).
 */
unsigned ur__backlog_drop(struct ur_loop *l, struct ur_future *f)
{
	unsigned dropped = 0;
	for (unsigned i = 0; i < l->bl_len; i++) {
		struct io_uring_sqe *s = &l->backlog[l->bl_head + i];
		if (ur__ud_future(s->user_data) == f && ur__ud_tag(s->user_data) != UR__TAG_SKIP) {
			s->user_data = ur__ud(NULL, UR__TAG_SKIP);
			s->flags &= (uint8_t) ~(IOSQE_IO_LINK | IOSQE_IO_HARDLINK);
			dropped++;
		}
	}
	return dropped;
}

/*
 * Submits and waits at most @ns for @wait_nr completions. io_uring_submit_and_wait_timeout
 * reports only 0 or -errno when the timeout rides on the enter (IORING_FEAT_EXT_ARG), so what
 * was submitted is read from the SQ instead. Returns the SQEs submitted, or -errno (-ETIME:
 * the time ran out).
 */
static int submit_and_wait_for(struct ur_loop *l, unsigned wait_nr, uint64_t ns)
{
	struct __kernel_timespec ts = {.tv_sec = (long long)(ns / UR_SEC),
	                               .tv_nsec = (long long)(ns % UR_SEC)};
	struct io_uring_cqe *cqe;
	unsigned before = io_uring_sq_ready(&l->ring);
	int ret = io_uring_submit_and_wait_timeout(&l->ring, &cqe, wait_nr, &ts, NULL);
	unsigned done = before - io_uring_sq_ready(&l->ring);
	return ret < 0 && ret != -ETIME ? ret : (int)done;
}

/*
 * On valgrind: a wait that gives up after UR__VALGRIND_WAIT_NS, so that valgrind lets the
 * program's other threads run (core/valgrind.h). Needs IORING_FEAT_EXT_ARG (5.11); without it,
 * the wait is not bounded.
 */
static int wait_bounded(struct ur_loop *l, unsigned wait_nr)
{
	int ret = submit_and_wait_for(l, wait_nr, UR__VALGRIND_WAIT_NS);
	/* valgrind hands its lock over at a yield, not after a syscall it runs synchronously. */
	if (ret >= 0)
		sched_yield();
	return ret;
}

/*
 * Submits and sleeps until @wait_nr completions or the loop's earliest timer, whichever comes
 * first: the timeout rides on the io_uring_enter itself (IORING_ENTER_EXT_ARG, 5.11), so the
 * timer heap costs no SQE and no CQE. Returns what io_uring_submit_and_wait would: the SQEs
 * submitted, or -errno.
 */
static int submit_and_wait_timer(struct ur_loop *l, unsigned wait_nr)
{
	uint64_t at = l->theap->at_, now = l->now;
	if (at > now) /* the turn's time is early: a timer not due by it may be by the clock's */
		now = ur_now_ns();
	if (at <= now)
		return io_uring_submit_and_get_events(&l->ring); /* due: no sleeping */
	if (!(l->ring.features & IORING_FEAT_EXT_ARG))
		return io_uring_submit_and_wait(&l->ring, wait_nr); /* tfut will wake us */
	if (UR__ON_VALGRIND() && at - now > UR__VALGRIND_WAIT_NS)
		return wait_bounded(l, wait_nr); /* the shorter bound: other threads get turns */
	return submit_and_wait_for(l, wait_nr, at - now);
}

/*
 * Enters the kernel: moves the local queue into the SQ, submits, and waits for @wait_nr
 * completions (0: only run deferred task work, so completions become visible), or until the
 * earliest timer of the loop's heap is due.
 */
int ur__enter(struct ur_loop *l, unsigned wait_nr)
{
	int ret;
	for (;;) {
		/* Never sleep while SQEs still wait locally: they may be what wakes us. */
		unsigned left = ur__backlog_flush(l);
		if (wait_nr && !left && l->theap)
			ret = submit_and_wait_timer(l, wait_nr);
		else if (wait_nr && !left && UR__ON_VALGRIND())
			ret = wait_bounded(l, wait_nr);
		else if (wait_nr && !left)
			ret = io_uring_submit_and_wait(&l->ring, wait_nr);
		else
			ret = io_uring_submit_and_get_events(&l->ring);
		l->stats.enters++;
		if (wait_nr && !left)
			l->stats.waits++;
		if (ret < 0 || !left || ret == 0)
			break;
		l->stats.submitted += (unsigned)ret;
	}
	if (ret > 0) {
		l->stats.submitted += (unsigned)ret;
		ret = 0;
	}
	/* Interrupted, or the kernel is short of room: nothing is lost, the caller comes back. */
	if (ret == -EINTR || ret == -ETIME || ret == -EBUSY || ret == -EAGAIN)
		ret = 0;
	return ret;
}

/*
 * Teardown: nothing queued locally will reach the kernel now. Every future waiting there
 * completes with -ECANCELED on the next pass over the ready list; the loop's own SQEs just go.
 */
void ur__backlog_cancel_all(struct ur_loop *l)
{
	for (unsigned i = 0; i < l->bl_len; i++) {
		struct io_uring_sqe *s = &l->backlog[l->bl_head + i];
		struct ur_future *f = ur__ud_future(s->user_data);
		if (ur__ud_tag(s->user_data) == UR__TAG_SKIP)
			continue;
		l->inflight--;
		if (f && (f->flags_ & UR__F_QUEUED)) /* once per future, not once per SQE */
			ur__complete_local(l, f, -ECANCELED);
	}
	l->bl_len = l->bl_head = 0;
}

/*
 * True if a close of @fd is written but not yet submitted (in the SQ or the local queue). The
 * descriptor is still open then, yet whoever started the close has given up on it. Scans both
 * queues: only for the rare re-arm of a multishot recv.
 */
bool ur__close_queued(struct ur_loop *l, int fd)
{
	struct io_uring_sq *sq = &l->ring.sq;
	for (unsigned i = sq->sqe_head; i != sq->sqe_tail; i++) {
		const struct io_uring_sqe *s = &sq->sqes[i & sq->ring_mask];
		if (s->opcode == IORING_OP_CLOSE && s->fd == fd)
			return true;
	}
	for (unsigned i = 0; i < l->bl_len; i++) {
		const struct io_uring_sqe *s = &l->backlog[l->bl_head + i];
		if (s->opcode == IORING_OP_CLOSE && s->fd == fd &&
		    ur__ud_tag(s->user_data) != UR__TAG_SKIP)
			return true;
	}
	return false;
}

/* The local queue's memory, once the loop is done with it (the last of teardown). */
void ur__backlog_free(struct ur_loop *l)
{
	free(l->backlog);
	l->backlog = NULL;
	l->bl_head = l->bl_len = l->bl_cap = 0;
}
