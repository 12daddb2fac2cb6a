/* SPDX-License-Identifier: MIT */
/*
 * urio/loop.h - the event loop: one io_uring, driven by one thread.
 *
 * Operations started while the program runs are written to the submission queue and submitted
 * together when the loop next enters the kernel; every completion that is ready is reaped in one
 * pass. A loop belongs to the thread that created it: every call below except ur_loop_wake() and
 * ur_loop_post() must be made on that thread (the ring is set up with IORING_SETUP_SINGLE_ISSUER
 * where the kernel has it). Debug builds (without NDEBUG) assert it, with a message naming the
 * mistake; release builds do not check.
 */
#ifndef URIO_LOOP_H
#define URIO_LOOP_H

#include <stdbool.h>
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

enum ur_loop_flags {
	/*
	 * Set the ring up with no optional flags (no SINGLE_ISSUER, DEFER_TASKRUN, COOP_TASKRUN,
	 * SUBMIT_ALL): the setup used on kernels that refuse them, available on demand for tests
	 * and for hosts that share the ring across threads.
	 */
	UR_LOOP_PLAIN_SETUP = 1u << 0,
	/*
	 * Never enter the kernel from a start call. Without it, a start call that finds the SQ full
	 * submits what is queued to make room (one system call); with it, the operation waits in
	 * urio's local queue until the loop's next turn.
	 */
	UR_LOOP_LAZY_SUBMIT = 1u << 1,
	/*
	 * Wake this loop through its eventfd only. Without it, a post or wake made on the thread
	 * of another urio loop (from its tasks or callbacks) is delivered as a completion sent
	 * from that loop's ring (IORING_OP_MSG_RING, 5.18), one kernel wake-up instead of an
	 * eventfd write and the read that reports it. For measuring one path against the other.
	 */
	UR_LOOP_NO_MSG_RING = 1u << 2,
};

struct ur_loop_opts {
	uint32_t sq_entries;   /* submission queue size, 3..32768; default 256, rounded up to a
	                          power of 2 */
	uint32_t cq_entries;   /* completion queue size, sq_entries..65536; default 8 * sq_entries
	                          (at most 65536) */
	uint32_t flags;        /* enum ur_loop_flags */
	uint32_t max_per_turn; /* fairness cap: completions handled before submitting again;
	                          default 1024 */
	uint32_t iowq_max_bounded;   /* io-wq worker cap for file I/O; 0 = kernel default */
	uint32_t iowq_max_unbounded; /* io-wq worker cap for blocking socket work; 0 = default */
	/*
	 * Poll before sleeping: when ur_loop_run() (or a wait outside any task) would block in
	 * io_uring_enter(2), it first watches, from user space and for up to this many ns, for a
	 * completion, a post (ur_loop_post) or a wake-up (ur_loop_wake), and takes it without
	 * sleeping. 0 (the default): never; the loop sleeps at once. The poll ends early at the
	 * loop's earliest timer, and never starts when the loop has nothing to wait for, nor under
	 * UR_RUN_NOWAIT. A post to a loop that is polling is made without its wake-up (no eventfd
	 * write or MSG_RING). It trades a CPU kept busy while waiting for the wake-up of a sleeping
	 * thread (several µs on a virtual machine): for loops that hand work to each other and
	 * have cores of their own; never on a machine with fewer cores than busy threads.
	 */
	uint32_t spin_ns;
	uint32_t reserved[5]; /* must be zero */
};

enum ur_run_mode {
	UR_RUN_DEFAULT = 0, /* run until no operation is pending and no reference holds the loop */
	UR_RUN_ONCE,        /* submit, wait for at least one completion if any is pending, handle a
	                       batch, return */
	UR_RUN_NOWAIT,      /* submit, handle what is ready, never block */
};

/*
 * Creates a loop. @opts may be NULL for the defaults. Setup asks for SINGLE_ISSUER, DEFER_TASKRUN,
 * COOP_TASKRUN and SUBMIT_ALL and drops them one by one while the kernel refuses; the opcodes the
 * kernel supports are probed once here.
 * Returns 0 and stores the loop in *@loop, or -EINVAL (bad flags or reserved fields),
 * UR_ERINGSIZE (a queue size out of the ranges below), UR_ENOURING (io_uring_setup(2) refused:
 * kernel.io_uring_disabled, a seccomp or container policy, or no io_uring in the kernel),
 * UR_ERINGMEM (no memory for the rings; before Linux 5.12, RLIMIT_MEMLOCK too low), -ENOMEM,
 * -ENOSYS (a kernel without IORING_FEAT_NODROP), or another error of io_uring_setup(2).
 */
UR_EXPORT int ur_loop_new(struct ur_loop **loop, const struct ur_loop_opts *opts);

/*
 * Tears the loop down and sets *@loop to NULL. Operations still pending are cancelled and their
 * final completions awaited, so their callbacks run (mostly with -ECANCELED) before this returns;
 * starting anything from those callbacks fails with UR_ELOOPCLOSED, and ur_loop_free(),
 * ur_loop_run() and waits on this loop are refused (-EBUSY / nothing done) as from any callback.
 * Nothing the kernel may still touch is freed early. Tasks still alive are cancelled and run until
 * they return, and ur_to_thread work still running is waited for, first; ur_spawn() fails with
 * UR_ELOOPCLOSED from the moment teardown begins, so a cancelled task cannot keep it going.
 * Program-completed futures (ur_future_begin) complete with -ECANCELED. NULL and *@loop == NULL are
 * accepted; a call from inside ur_loop_run() of the same loop (a callback or a task) does nothing.
 */
UR_EXPORT void ur_loop_free(struct ur_loop **loop);

/*
 * Runs the loop in @mode. Returns the number of operations still pending (plus held references)
 * when it returns, or a negative error from the kernel. Not reentrant: calling it from a callback
 * returns -EBUSY.
 */
UR_EXPORT int ur_loop_run(struct ur_loop *loop, enum ur_run_mode mode);

/*
 * Makes the current ur_loop_run() return after the batch it is handling. Loop thread only.
 */
UR_EXPORT void ur_loop_stop(struct ur_loop *loop);

/*
 * A descriptor for a host program that drives urio from its own poll/epoll loop: it becomes
 * readable (POLLIN) when completions are ready; then call ur_loop_run(loop, UR_RUN_NOWAIT), which
 * also resets it. Call ur_loop_run(loop, UR_RUN_NOWAIT) before the host sleeps, so that work
 * started since is submitted. It is an eventfd registered with the ring (created on the first
 * call; the ring fd itself is not woken by DEFER_TASKRUN completions); urio owns and closes it.
 * Returns the descriptor, or -errno if it could not be created.
 */
UR_EXPORT int ur_loop_fd(struct ur_loop *loop);

/* Number of operations started on @loop whose final completion has not yet been delivered. */
UR_EXPORT unsigned ur_loop_pending(const struct ur_loop *loop);

/*
 * Hold / release the loop: while held, UR_RUN_DEFAULT keeps running (waiting for posts or wake-ups)
 * even with nothing pending. Loop thread only.
 */
UR_EXPORT void ur_loop_ref(struct ur_loop *loop);
UR_EXPORT void ur_loop_unref(struct ur_loop *loop);

/* The io_uring setup flags (IORING_SETUP_*) actually in force, after any fallback. */
UR_EXPORT uint32_t ur_loop_setup_flags(const struct ur_loop *loop);

/* True if the kernel supports io_uring opcode @op (IORING_OP_*), as probed at setup. */
UR_EXPORT bool ur_loop_supports(const struct ur_loop *loop, unsigned op);

/* Counters for observability and tests; cheap to read. */
struct ur_loop_stats {
	uint64_t submitted; /* SQEs handed to the kernel */
	uint64_t reaped;    /* CQEs handled */
	uint64_t enters;    /* io_uring_enter(2) calls made */
	uint64_t queued;    /* SQEs that had to wait in the local queue (SQ full) */
	uint64_t overflows; /* times completions were fetched from the kernel's overflow list */
	uint32_t inflight;  /* now: SQEs still owing their final completion */
	uint32_t pending;   /* now: futures started and not yet finally completed */
	uint32_t waiting;   /* now: SQEs in the local queue */
	uint32_t msg_wakes; /* wake-ups received from other loops as MSG_RING completions
	                       (wraps) */
	uint32_t waits;     /* io_uring_enter(2) calls that asked to wait for a completion, which
	                       may sleep (wraps) */
	uint32_t spins;     /* polls before a wait (ur_loop_opts.spin_ns) (wraps) */
	uint32_t spin_hits; /* ... of which found work (a completion, post, wake-up or due timer),
	                       so the loop did not wait in the kernel (wraps) */
};

/* Fills *@out with @loop's counters. */
UR_EXPORT void ur_loop_stats(const struct ur_loop *loop, struct ur_loop_stats *out);

/* A cross-thread call: caller-owned, alive until its function has run. */
struct ur_post {
	struct ur_post *next_; /* private */
	void (*fn)(void *arg);
	void *arg;
};

/*
 * Runs @p->fn(@p->arg) on @loop's thread during its next turn, waking the loop if it sleeps.
 * Callable from any thread (not from a signal handler). Posts from one thread run in the order
 * made. The post does not hold the loop: a loop with nothing pending returns from UR_RUN_DEFAULT
 * without waiting for posts unless held with ur_loop_ref(). A post accepted (0) always runs,
 * at the latest during ur_loop_free(); once teardown has begun, UR_ELOOPCLOSED is returned and
 * the function never called. The caller must know the loop has not been freed yet: urio makes the
 * call itself safe against a concurrent ur_loop_free(), not a call made after it returned.
 * A loop that is polling before its wait (ur_loop_opts.spin_ns) finds the post by itself: no
 * wake-up is sent.
 */
UR_EXPORT int ur_loop_post(struct ur_loop *loop, struct ur_post *p);

/*
 * Wakes @loop if it is blocked waiting for completions. Callable from any thread. From the thread
 * of another urio loop, while that loop runs, the wake-up (and ur_loop_post's) is a MSG_RING
 * completion sent from that loop's ring, unless @loop has a host eventfd (ur_loop_fd), was made
 * with UR_LOOP_NO_MSG_RING, or the kernel refuses; otherwise an eventfd write.
 */
UR_EXPORT void ur_loop_wake(struct ur_loop *loop);

#ifdef __cplusplus
}
#endif

#endif
