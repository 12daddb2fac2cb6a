/* SPDX-License-Identifier: MIT */
/*
 * core/loop.c - the loop: ring setup, one turn (submit, wait, reap), teardown, cross-thread posts.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"
#include "valgrind.h"

#define DEFAULT_SQ       256u
#define DEFAULT_PER_TURN 1024u
#define MAX_SQ           32768u /* IORING_MAX_ENTRIES */
#define MAX_CQ           65536u /* IORING_MAX_CQ_ENTRIES */

/*
 * The optional setup flags, best first. On -EINVAL the first remaining one is dropped and setup
 * retried: DEFER_TASKRUN needs 6.1, SINGLE_ISSUER 6.0, COOP_TASKRUN and TASKRUN_FLAG 5.19,
 * SUBMIT_ALL 5.18.
 */
static const uint32_t optional_flags[] = {
    IORING_SETUP_DEFER_TASKRUN,
    IORING_SETUP_SINGLE_ISSUER,
    IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
    IORING_SETUP_SUBMIT_ALL,
};

static int ring_setup(struct ur_loop *l, unsigned sq, unsigned cq, bool plain)
{
	uint32_t want = 0;
	if (!plain)
		for (size_t i = 0; i < sizeof(optional_flags) / sizeof(optional_flags[0]); i++)
			want |= optional_flags[i];

	for (size_t drop = 0;; drop++) {
		struct io_uring_params p;
		memset(&p, 0, sizeof(p));
		p.flags = want | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
		p.cq_entries = cq;
		int ret = io_uring_queue_init_params(sq, &l->ring, &p);
		if (ret == 0) {
			if (!(p.features & IORING_FEAT_NODROP)) {
				/* Before 5.5 a full CQ drops completions; urio cannot keep its word
				 * there. */
				io_uring_queue_exit(&l->ring);
				return -ENOSYS;
			}
			l->setup_flags =
			    p.flags & ~(uint32_t)(IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP);
			return 0;
		}
		/*
		 * io_uring_setup(2) says EPERM when kernel.io_uring_disabled (6.6) or a seccomp or
		 * container policy refuses it, ENOSYS without io_uring, and ENOMEM when the rings
		 * cannot be charged, which before 5.12 means RLIMIT_MEMLOCK. Named, since the bare
		 * errno text says nothing of io_uring.
		 */
		if (ret == -EPERM || ret == -ENOSYS)
			return UR_ENOURING;
		if (ret == -ENOMEM)
			return UR_ERINGMEM;
		if (ret != -EINVAL || want == 0 ||
		    drop >= sizeof(optional_flags) / sizeof(optional_flags[0]))
			return ret;
		want &= ~optional_flags[drop];
	}
}

static void probe_ops(struct ur_loop *l)
{
	struct io_uring_probe *p = io_uring_get_probe_ring(&l->ring);
	if (!p) {
		/* Probing arrived in 5.6: assume what 5.6 has, and let the kernel judge the rest.
		 */
		memset(l->probe, 0xff, sizeof(l->probe));
		return;
	}
	for (unsigned op = 0; op < p->ops_len && op < 256; op++)
		if (p->ops[op].flags & IO_URING_OP_SUPPORTED)
			l->probe[op >> 3] |= (uint8_t)(1u << (op & 7));
	io_uring_free_probe(p);
}

static void wake_cb(struct ur_future *f, void *arg);

static int wake_arm(struct ur_loop *l)
{
	return ur_read_start(l, &l->wake_f, l->wake_fd, &l->wake_buf, sizeof(l->wake_buf), 0);
}

/* The same, once the loop runs: the enomem class may refuse it (core/fault.h), as ENOMEM would. */
static int wake_rearm(struct ur_loop *l)
{
	return UR__FAULT_ENOMEM(l, UR__FAULT_AT_WAKE) ? -ENOMEM : wake_arm(l);
}

int ur_loop_new(struct ur_loop **loopp, const struct ur_loop_opts *opts)
{
	struct ur_loop_opts o = {0};
	int ret;

	*loopp = NULL;
	if (opts)
		o = *opts;
	for (size_t i = 0; i < sizeof(o.reserved) / sizeof(o.reserved[0]); i++)
		if (o.reserved[i])
			return -EINVAL;
	if (o.flags & ~(uint32_t)(UR_LOOP_PLAIN_SETUP | UR_LOOP_LAZY_SUBMIT | UR_LOOP_NO_MSG_RING))
		return -EINVAL;
	if (!o.sq_entries)
		o.sq_entries = DEFAULT_SQ;
	if (!o.cq_entries)
		o.cq_entries = o.sq_entries > MAX_CQ / 8 ? MAX_CQ : o.sq_entries * 8;
	/*
	 * An SQ smaller than the longest chain (aux + operation + linked timeout) could never take
	 * that chain: it would wait in the local queue forever. Above the kernel's maxima the
	 * kernel would clamp or say -EINVAL; a size of its own says which number is wrong.
	 */
	if (o.sq_entries < UR__MAX_CHAIN || o.sq_entries > MAX_SQ || o.cq_entries < o.sq_entries ||
	    o.cq_entries > MAX_CQ)
		return UR_ERINGSIZE;
	if (!o.max_per_turn)
		o.max_per_turn = DEFAULT_PER_TURN;

	struct ur_loop *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->flags = o.flags;
	l->owner = pthread_self();
	l->max_per_turn = o.max_per_turn;
	l->spin_ns = o.spin_ns;
	l->wake_fd = -1;
	atomic_init(&l->poll_fd, -1);
	atomic_init(&l->posts, NULL);
	atomic_init(&l->posters, 0);
	atomic_init(&l->posts_closed, false);
	atomic_init(&l->spinning, false);

	ret = ring_setup(l, o.sq_entries, o.cq_entries, o.flags & UR_LOOP_PLAIN_SETUP);
	if (ret < 0) {
		free(l);
		return ret;
	}
#if UR_FAULT_INJECTION
	ur__fault_init(l);
#endif
	/* Saves the fd lookup on every io_uring_enter(2) (5.18); harmless where unsupported. */
	io_uring_register_ring_fd(&l->ring);
	probe_ops(l);
	l->msg_ring = ur__supports(l, IORING_OP_MSG_RING);
	if (o.iowq_max_bounded || o.iowq_max_unbounded) {
		unsigned vals[2] = {o.iowq_max_bounded, o.iowq_max_unbounded};
		ret = io_uring_register_iowq_max_workers(&l->ring, vals);
		if (ret < 0)
			goto fail;
	}
	l->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->wake_fd < 0) {
		ret = -errno;
		goto fail;
	}
	ur_future_init(&l->wake_f, wake_cb, l);
	l->wake_f.flags_ = UR__F_INTERNAL;
	ret = wake_arm(l);
	if (ret < 0)
		goto fail;
	/* Submitted now, so the SQ starts empty for the caller. */
	ret = ur__enter(l, 0);
	if (ret < 0)
		goto fail;
	*loopp = l;
	return 0;
fail:
	if (l->wake_fd >= 0)
		close(l->wake_fd);
	io_uring_queue_exit(&l->ring);
#if UR_FAULT_INJECTION
	ur__fault_free(l);
#endif
	free(l);
	return ret;
}

/* Takes every post made so far and runs them in the order they were made. */
static void run_posts(struct ur_loop *l)
{
	if (!atomic_load_explicit(&l->posts, memory_order_relaxed))
		return;
	struct ur_post *p = atomic_exchange_explicit(&l->posts, NULL, memory_order_acquire);
	struct ur_post *fifo = NULL;
	while (p) {
		struct ur_post *next = p->next_;
		p->next_ = fifo;
		fifo = p;
		p = next;
	}
	while (fifo) {
		struct ur_post *next = fifo->next_;
		fifo->fn(fifo->arg); /* may free the post */
		fifo = next;
	}
}

static void wake_cb(struct ur_future *f, void *arg)
{
	struct ur_loop *l = arg;
	(void)f;
	run_posts(l);
	/*
	 * Only fails on ENOMEM. Unarmed, a post's eventfd write wakes nobody: ur_loop_run() then
	 * retries the arm each turn and does not sleep in the kernel until it holds, so a post is
	 * never stranded behind a loop that waits for nothing else.
	 */
	if (!l->closing && wake_rearm(l) < 0)
		l->wake_lost = true;
}

/*
 * Handles up to @max completions, in one pass over the CQ: each CQE is read and the CQ head moved
 * past it before its future completes, so that a callback that enters the kernel (a start on a
 * full SQ) finds that slot free, and the kernel never parks completions in its overflow list on
 * our account. Never nested: the head is ours alone (callbacks cannot turn or free a loop that is
 * turning or tearing down), so it is kept in a register and only stored.
 */
static unsigned reap(struct ur_loop *l, unsigned max)
{
	struct io_uring_cq *cq = &l->ring.cq;
	unsigned done = 0;
	bool flushed = false;

	while (done < max) {
		unsigned head = *cq->khead;
		unsigned n = io_uring_smp_load_acquire(cq->ktail) - head;
		if (n == 0) {
			/*
			 * CQ empty. Completions the kernel could not fit are on its overflow list
			 * (IORING_FEAT_NODROP); fetch them once per call, then let the caller turn.
			 */
			if (flushed || !io_uring_cq_has_overflow(&l->ring))
				break;
			io_uring_get_events(&l->ring);
			l->stats.enters++;
			l->stats.overflows++;
			flushed = true;
			continue;
		}
		if (n > max - done)
			n = max - done;
		unsigned take = n;
#if UR_FAULT_INJECTION
		if (l->fault)
			take = ur__fault_cut(l, n);
#endif
		l->stats.reaped += take;
		for (unsigned end = head + take; head != end;) {
			/* 16-byte CQEs: urio never sets up IORING_SETUP_CQE32 */
			const struct io_uring_cqe *cqe = &cq->cqes[head & cq->ring_mask];
			uint64_t ud = cqe->user_data;
			int32_t res = cqe->res;
			uint32_t flags = cqe->flags;
			assert(*cq->khead == head && "urio: reap() nested");
			io_uring_smp_store_release(cq->khead, ++head);
			if (ud == UR__UD_WAKE) {
				/* another loop's MSG_RING wake-up: no SQE of ours, nothing owed */
				l->stats.msg_wakes++;
				run_posts(l);
				continue;
			}
#if UR_FAULT_INJECTION
			ur__fault_cqe(&ud, &res, &flags);
#endif
			ur__cqe(l, ud, res, flags);
		}
		done += take;
		if (take < n)
			break; /* the rest stays in the CQ for the next turn */
	}
	return done;
}

static void poll_fd_drain(struct ur_loop *l);

static bool has_work(const struct ur_loop *l)
{
	return l->pending > 0 || l->refs > 0 || l->jobs > 0 || l->runq_head;
}

/*
 * Everything that runs without the kernel: posts, local completions, ready tasks. Returns true
 * if anything ran.
 */
static bool dispatch(struct ur_loop *l)
{
	bool any =
	    l->ready_head || l->runq_head || atomic_load_explicit(&l->posts, memory_order_relaxed);
	if (!any)
		return false;
	run_posts(l);
	ur__run_ready(l);
	if (l->runq_head) {
		ur__sched_run(l);
		ur__run_ready(l); /* what the tasks completed locally (their own futures) */
	}
	return true;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/* Work that needs no sleep: a completion in the CQ, or a post. */
static bool spin_found(struct ur_loop *l)
{
	return io_uring_cq_ready(&l->ring) ||
	       atomic_load_explicit(&l->posts, memory_order_relaxed) != NULL;
}

/*
 * Poll before sleeping (ur_loop_opts.spin_ns), called when the turn would block. Returns true if
 * the loop has work without sleeping: a completion, a post, or its earliest timer due.
 *
 * What can be seen without a system call: the CQ, and the post list (ur_loop_post pushes before
 * it wakes, so a post is seen here before its wake-up is even sent). With DEFER_TASKRUN, which
 * urio asks for, a completion reaches the CQ only when this thread enters the kernel: MSG_RING
 * messages (6.18 posts them to a DEFER_TASKRUN target as task work too), socket and eventfd
 * completions, everything. What the kernel shows instead is IORING_SQ_TASKRUN in the SQ flags
 * (TASKRUN_FLAG, which every kernel with DEFER_TASKRUN has and setup asks for with it): then one
 * io_uring_get_events(), which runs that work and does not sleep, posts them. Without
 * DEFER_TASKRUN the kernel posts completions to the CQ itself, and COOP_TASKRUN's deferred work
 * raises the same flag. The flag also says the CQ overflowed (IORING_SQ_CQ_OVERFLOW); reap()
 * fetches those.
 *
 * What this turn started is submitted first: it may be what the loop waits for. While polling
 * the loop says so (spinning), and ur_loop_post then skips the wake-up: the Dekker pair there
 * (push the post, fence, read spinning) and here (clear spinning, fence, read the list) makes
 * sure that a poster who saw the flag set has its post found below.
 */
static bool spin(struct ur_loop *l)
{
	l->stats.spins++;
	if ((io_uring_sq_ready(&l->ring) || l->bl_len) && ur__enter(l, 0) < 0)
		return false; /* the wait's own entry reports it */
	uint64_t now = ur_now_ns(), end = now + l->spin_ns;
	bool timer = l->theap && l->theap->at_ <= end;
	if (timer)
		end = l->theap->at_;
	atomic_store_explicit(&l->spinning, true, memory_order_relaxed);
	bool found = false;
	for (unsigned i = 1;; i++) {
		if ((found = spin_found(l)))
			break;
		if (IO_URING_READ_ONCE(*l->ring.sq.kflags) &
		    (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) {
			io_uring_get_events(&l->ring);
			l->stats.enters++;
			if ((found =
			         io_uring_cq_ready(&l->ring) || io_uring_cq_has_overflow(&l->ring)))
				break;
		}
		/* a clock read (vDSO) costs some 20-50 ns: every 16th round */
		if ((i & 15) == 0 && ur_now_ns() >= end) {
			found = timer; /* a due timer is work; the end of the poll is not */
			break;
		}
		if (UR__ON_VALGRIND())
			sched_yield(); /* valgrind runs one thread at a time: let the others in */
		else
			cpu_relax();
	}
	atomic_store_explicit(&l->spinning, false, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	found = found || atomic_load_explicit(&l->posts, memory_order_relaxed) != NULL;
	if (found)
		l->stats.spin_hits++;
	return found;
}

_Thread_local struct ur_loop *ur__running;

/*
 * One run of the loop in @mode. With @until (internal, mode UR_RUN_DEFAULT), the run also ends as
 * soon as until(@arg) holds, checked before each kernel entry: a wait outside any task turns the
 * loop this way, so that what one turn's tasks started and the next turn's wait go to the kernel
 * in one io_uring_enter, as under UR_RUN_DEFAULT, instead of UR_RUN_ONCE's closing submit plus a
 * separate wait (two entries per turn).
 */
static int run(struct ur_loop *l, enum ur_run_mode mode, bool (*until)(const void *),
               const void *arg)
{
	int ret = 0;

	UR__ASSERT_OWNER(l);
	if (l->running)
		return -EBUSY;
	/*
	 * A task may drive another loop: for that loop's callbacks and tasks this is no task, and
	 * when the run ends the task is current again.
	 */
	struct ur_task *outer_task = ur__current;
	struct ur_loop *outer_loop = ur__running;
	ur__current = NULL;
	ur__running = l;
	l->running = true;
	l->stopping = false;
	l->now = ur_now_ns();
	if (l->poll_fd >= 0)
		poll_fd_drain(l);
	/* What this dispatch runs counts as UR_RUN_ONCE's batch: it must not block after it. */
	bool ran_first = dispatch(l) && mode == UR_RUN_ONCE;
	for (;;) {
		if (until && until(arg))
			break;
		if (l->wake_lost && !l->closing && wake_rearm(l) == 0)
			l->wake_lost = false;
		bool block = mode != UR_RUN_NOWAIT && !ran_first && !l->wake_lost && has_work(l) &&
		             !l->ready_head && !l->runq_head && !l->stopping &&
		             io_uring_cq_ready(&l->ring) == 0 &&
		             !atomic_load_explicit(&l->posts, memory_order_relaxed);
		if (!(l->ring.features & IORING_FEAT_EXT_ARG))
			ur__timers_arm(l);
		/* A poll that found work has entered the kernel for it if it had to. */
		bool spun = block && l->spin_ns && spin(l);
		if (spun)
			block = false;
		/*
		 * A turn that would not block, with nothing to submit and nothing the kernel owes
		 * us but its own wake-up read, needs no entry: posts and timers are checked in user
		 * space, and a wake-up (the eventfd read's completion, a MSG_RING) that waits in
		 * the kernel is only a wake-up. Tasks that only yield run without system calls.
		 * Nor does one whose CQ already holds completions (a MSG_RING's own CQE, posted in
		 * the submit that sent it; a batch beyond max_per_turn): those are reaped first,
		 * and what the kernel still holds is fetched by the next turn's entry.
		 */
		unsigned own = l->wake_f.state_ == UR_FUTURE_PENDING;
		bool fetch = l->inflight > own && !spun && !io_uring_cq_ready(&l->ring);
		if (block || fetch || io_uring_sq_ready(&l->ring) || l->bl_len)
			ret = ur__enter(l, block ? 1 : 0);
		if (ret < 0)
			break;
		/* the turn's time, read once for its timers and tasks (ur_loop_time_ns); every
		 * turn, entered or not: tasks that only yield must not see a time that stopped */
		l->now = ur_now_ns();
		unsigned n = reap(l, l->max_per_turn);
		ur__timers_run(l);
		bool ran = dispatch(l);
		if (mode == UR_RUN_NOWAIT || l->stopping)
			break;
		if (mode == UR_RUN_ONCE && (n > 0 || ran || ran_first || !has_work(l)))
			break;
		if (mode == UR_RUN_DEFAULT && !has_work(l) && !l->ready_head)
			break;
	}
	/*
	 * What the last callbacks started (or cancelled) reaches the kernel before we return, and
	 * for a host that sleeps on ur_loop_fd() a kernel timeout is armed for the earliest timer.
	 */
	if (ret >= 0 && l->poll_fd >= 0)
		ur__timers_arm(l);
	if (ret >= 0 && (io_uring_sq_ready(&l->ring) || l->bl_len))
		ret = ur__enter(l, 0);
	l->running = false;
	ur__running = outer_loop;
	ur__current = outer_task;
	if (ret < 0)
		return ret;
	return (int)(l->pending + l->refs + l->jobs);
}

int ur_loop_run(struct ur_loop *l, enum ur_run_mode mode)
{
	return run(l, mode, NULL, NULL);
}

int ur__loop_run_until(struct ur_loop *l, bool (*until)(const void *), const void *arg)
{
	return run(l, UR_RUN_DEFAULT, until, arg);
}

void ur_loop_stop(struct ur_loop *l)
{
	UR__ASSERT_OWNER(l);
	l->stopping = true;
}

/*
 * The ring fd itself is not a reliable wake-up source: with DEFER_TASKRUN a completion is queued
 * as task work for the submitter and poll(2) on the ring is not woken for it. An eventfd
 * registered with the ring is signalled in both setups (on every posted CQE, or when deferred
 * work is queued), so that is what a host polls. Created on first use: loops that are not
 * embedded pay nothing.
 */
int ur_loop_fd(struct ur_loop *l)
{
	UR__ASSERT_OWNER(l);
	if (l->poll_fd >= 0)
		return l->poll_fd;
	int saved = errno;
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int ret = fd < 0 ? -errno : io_uring_register_eventfd(&l->ring, fd);
	errno = saved;
	if (ret < 0) {
		if (fd >= 0)
			close(fd);
		return ret;
	}
	atomic_store_explicit(&l->poll_fd, fd, memory_order_release);
	return fd;
}

/* Resets the host's eventfd before reaping: completions posted after this signal it again. */
static void poll_fd_drain(struct ur_loop *l)
{
	uint64_t v;
	int saved = errno;
	ssize_t r = read(l->poll_fd, &v, sizeof(v));
	(void)r;
	errno = saved;
}

unsigned ur_loop_pending(const struct ur_loop *l)
{
	return l->pending;
}

void ur_loop_ref(struct ur_loop *l)
{
	UR__ASSERT_OWNER(l);
	l->refs++;
}

void ur_loop_unref(struct ur_loop *l)
{
	UR__ASSERT_OWNER(l);
	if (l->refs)
		l->refs--;
}

uint32_t ur_loop_setup_flags(const struct ur_loop *l)
{
	return l->setup_flags;
}

bool ur_loop_supports(const struct ur_loop *l, unsigned op)
{
	return ur__supports(l, op);
}

void ur_loop_stats(const struct ur_loop *l, struct ur_loop_stats *out)
{
	*out = l->stats;
	out->inflight = l->inflight;
	out->pending = l->pending;
	out->waiting = l->bl_len;
}

/*
 * The poster touches the loop after publishing its post (the wake-up write), and by then the
 * loop's thread may have run the post and be tearing the loop down. So posters announce
 * themselves: ur_loop_free closes the door (posts_closed), waits until no poster is inside, runs
 * what was posted, and only then frees. Sequentially consistent, because the door and the count
 * are two variables each side reads after writing the other.
 */
int ur_loop_post(struct ur_loop *l, struct ur_post *p)
{
	atomic_fetch_add(&l->posters, 1);
	if (atomic_load(&l->posts_closed)) {
		atomic_fetch_sub(&l->posters, 1);
		return UR_ELOOPCLOSED;
	}
	struct ur_post *head = atomic_load_explicit(&l->posts, memory_order_relaxed);
	do
		p->next_ = head;
	while (!atomic_compare_exchange_weak_explicit(&l->posts, &head, p, memory_order_release,
	                                              memory_order_relaxed));
	/*
	 * Only the post that found the list empty wakes: the loop drains the whole list at once.
	 * A loop polling before its wait (spin_ns) finds the post by itself; the fence pairs with
	 * the one in spin() (see there).
	 */
	atomic_thread_fence(memory_order_seq_cst);
	if (!head && !atomic_load_explicit(&l->spinning, memory_order_relaxed))
		ur_loop_wake(l);
	atomic_fetch_sub(&l->posters, 1);
	return 0;
}

/*
 * Wakes the loop through its eventfd, whose read is always in flight; that read's completion
 * makes the ring signal the host's eventfd (ur_loop_fd) as any completion does. Except that with
 * DEFER_TASKRUN (6.18 at least) an eventfd registered with the ring and signalled from inside the
 * write of another eventfd wakes its pollers the first time only: reproduced with raw liburing
 * in tools/repro/eventfd_in_eventfd.c. So a loop that has a host's eventfd gets it written here
 * directly as well: one more write(2) per cross-thread wake-up, for embedded loops only.
 */
/*
 * A wake-up of @l sent as a completion from the ring of the loop this thread runs (MSG_RING):
 * one io_uring_enter here, and @l's thread wakes from its wait with a CQE to reap, where the
 * eventfd path costs a write here and, on @l's side, the completion of its eventfd read and that
 * read's re-arm. Returns false where it cannot be used; the caller then writes the eventfd.
 *
 * The SQE is submitted before returning, while the caller still holds @l alive (ur_loop_post
 * counts itself a poster; ur_loop_wake's caller vouches for @l): the kernel takes its reference
 * to @l's ring during that submit, so a later ur_loop_free of @l cannot race with it. The
 * kernel's refusals (no MSG_RING, an old kernel's restrictions) are reported at issue, that is
 * in the submit, by the source CQE: it is looked for right away, and a refusal turns MSG_RING
 * off for this source loop (the caller falls back to the eventfd this time).
 */
static bool wake_by_msg_ring(struct ur_loop *l)
{
	struct ur_loop *src = ur__running;
	if (!src || src == l || !src->msg_ring || src->closing || src->bl_len ||
	    (l->flags & UR_LOOP_NO_MSG_RING) ||
	    atomic_load_explicit(&l->poll_fd, memory_order_acquire) >= 0)
		return false;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&src->ring);
	if (!sqe)
		return false;
	io_uring_prep_msg_ring(sqe, l->ring.ring_fd, 0, UR__UD_WAKE, 0);
	io_uring_sqe_set_data64(sqe, UR__UD_MSGSRC);
	src->inflight++;
	int ret = io_uring_submit(&src->ring);
	src->stats.enters++;
	if (ret > 0)
		src->stats.submitted += (unsigned)ret;
	if (ret < 0) {
		/* Nothing was submitted (-EBUSY, -EINTR): later would be too late, @l may be gone.
		 */
		io_uring_prep_nop(sqe);
		io_uring_sqe_set_data64(sqe, 0);
		return false;
	}
	/* the last source CQE of ours in the CQ is this one's (earlier ones were checked too) */
	struct io_uring_cqe *cqe;
	unsigned head;
	int res = 0;
	io_uring_for_each_cqe(&src->ring, head, cqe)
	{
		if (cqe->user_data == UR__UD_MSGSRC)
			res = cqe->res;
	}
	if (res >= 0)
		return true;
	src->msg_ring = false;
	return false;
}

void ur_loop_wake(struct ur_loop *l)
{
	if (wake_by_msg_ring(l))
		return;
	uint64_t one = 1;
	int saved = errno;
	/* EAGAIN means the counter is already non-zero: the loop is being woken anyway. */
	ssize_t r = write(l->wake_fd, &one, sizeof(one));
	int host = atomic_load_explicit(&l->poll_fd, memory_order_acquire);
	if (host >= 0)
		r = write(host, &one, sizeof(one));
	(void)r;
	errno = saved;
}

/*
 * Teardown: complete what never reached the kernel, ask the kernel to cancel everything else
 * (IORING_ASYNC_CANCEL_ANY, 5.19), and reap until every SQE has had its final completion. Only
 * then is anything freed, so no completion can land in freed memory.
 *
 * Callbacks run all along, and may call back into the loop. While tasks unwind the loop runs
 * normally (ur_loop_run is on the stack, so nested runs and waits say -EBUSY); new tasks are
 * refused from the start (l->freeing), or a cancelled task could keep spawning forever. While
 * the kernel is drained the loop is marked running, so ur_loop_run, waits and a second
 * ur_loop_free are refused exactly as from a callback of a normal turn.
 */
void ur_loop_free(struct ur_loop **loopp)
{
	struct ur_loop *l = loopp ? *loopp : NULL;
	if (!l || l->running || l->freeing)
		return; /* from inside the loop's own run or teardown: refused, nothing changes */
	UR__ASSERT_OWNER(l);
	*loopp = NULL;
	l->freeing = true;

	/* Tasks first, while the loop still works: they may need it to unwind. */
	ur__tasks_teardown(l);
	/* Worker threads still running ur_to_thread functions will post back: wait for them. */
	while (l->jobs > 0)
		if (ur_loop_run(l, UR_RUN_ONCE) < 0)
			break;

	struct ur_loop *outer = ur__running;
	ur__running = l;
	l->running = true;
	run_posts(l);
	l->closing = true;
	ur__locals_cancel(l); /* program-completed futures nobody will resolve now */
	ur__backlog_cancel_all(l);
	ur__bufring_teardown(l); /* recvs waiting for a buffer complete, -ECANCELED */

	for (int round = 0; l->inflight > 0 || l->ready_head; round++) {
		ur__run_ready(l);
		if (l->inflight == 0)
			break;
		/* Cancel again every so often: a multishot may have re-armed in between. */
		if ((round & 63) == 0)
			ur__cancel_ud(l, 0, IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL);
		if (ur__enter(l, 1) < 0)
			break;
		reap(l, UINT32_MAX);
	}
	ur__run_ready(l);
	/* No post may arrive, or be half-made, once the loop's memory goes. */
	atomic_store(&l->posts_closed, true);
	while (atomic_load(&l->posters) > 0)
		sched_yield();
	run_posts(l);
	ur__locals_cancel(l);
	ur__run_ready(l); /* what those last posts resolved or cancelled */
	ur__bufring_detach_all(l);
	ur__running = outer;
	io_uring_queue_exit(&l->ring);
	close(l->wake_fd);
	if (l->poll_fd >= 0)
		close(l->poll_fd);
	ur__backlog_free(l);
#if UR_FAULT_INJECTION
	ur__fault_free(l);
#endif
	free(l);
}
