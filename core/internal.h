/* SPDX-License-Identifier: MIT */
/*
 * core/internal.h - what the files of core/ share and nobody else sees.
 *
 * First the types every file of core/ works on (the future's private flags and scratch, user_data,
 * the loop, an operation being started, the task); then, under a heading per file, what that file
 * defines for the others, its inline helpers with it. The headings go in the order the inline
 * helpers need (a task's wake-up before the completion that calls it). Files with no heading
 * (io.c, taskio.c, thread.c, error.c, version.c) define nothing the others call; stack.c has a
 * header of its own, stack.h.
 */
#ifndef UR_CORE_INTERNAL_H
#define UR_CORE_INTERNAL_H

#include <assert.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "urio.h"
#include "ctx.h"
#include "ops.h"
#include "stack.h"

#ifndef UR_FAULT_INJECTION
#define UR_FAULT_INJECTION 0 /* meson -Dfault_injection=true sets 1: core/fault.h */
#endif
#include "fault.h"

/* --- types: shared by every file of core/ ---------------------------------------------------- */

/* Private future flags (struct ur_future.flags_). */
enum {
	UR__F_CANCEL = 1u << 0,    /* cancellation requested */
	UR__F_DEADLINE = 1u << 1,  /* the next start gets a linked timeout */
	UR__F_LINKED = 1u << 2,    /* this start carries a linked timeout */
	UR__F_TIMEDOUT = 1u << 3,  /* the linked timeout fired */
	UR__F_MANY = 1u << 4,      /* several CQEs per SQE (row MULTI or NOTIF): see op_cqe */
	UR__F_QUEUED = 1u << 5,    /* its SQEs wait in the loop's local queue */
	UR__F_STARVED = 1u << 6,   /* multishot recv waiting for a recycled buffer */
	UR__F_INTERNAL = 1u << 7,  /* urio's own future: does not hold the loop */
	UR__F_READY = 1u << 8,     /* completed locally, on the ready list */
	UR__F_FIXUP = 1u << 9,     /* its final result goes through op_fix (row FIX) */
	UR__F_SEEN = 1u << 10,     /* scratch mark of a wait's duplicate check, never left set */
	UR__F_NOCANCEL = 1u << 11, /* ur_cancel refuses (-EALREADY): a cancelled task's close */
};

/*
 * The per-operation state of a future, in its scratch_ words: each kind names what it keeps
 * there. A kind that takes a deadline (no NODL in its row) leaves the first 16 bytes to the
 * linked timeout's timespec, which ur_future_set_deadline writes before the start; a NODL kind
 * may use all 24.
 */
union ur__scratch {
	struct {
		struct __kernel_timespec
		    ts; /* the linked timeout's; read when the SQE is submitted */
		union {
			struct {
				unsigned local; /* recvs cancelled in urio's own queue */
				bool all;
			} cancel_fd; /* CANCEL_FD */
		};
	} dl;
	struct __kernel_timespec timeout; /* TIMEOUT */
	struct {
		struct ur_future *next, *prev;     /* the loop's list of them (l->locals) */
		const struct ur_cancel_hook *hook; /* ur_future_begin_hooked */
	} local;                                   /* LOCAL */
	struct {
		int fd, flags;
		int64_t ino; /* the socket's inode at start; 0 if it was not open */
		struct ur_bufring *br;
	} recv_multi; /* RECV_MULTI */
	struct {
		struct ur_bufring *br;
		int bid;
	} send_buffer; /* SEND_BUFFER */
	struct {
		const void *buf; /* what a plain send needs, should the kernel refuse zero copy */
		unsigned len;
		int fd, flags;
	} send_zc; /* SEND_ZC */
};

static inline union ur__scratch *ur__sc(struct ur_future *f)
{
	return (union ur__scratch *)(void *)f->scratch_;
}

static inline const union ur__scratch *ur__csc(const struct ur_future *f)
{
	return (const union ur__scratch *)(const void *)f->scratch_;
}

/* What the public header promises, and what the casts of core/ rely on. */
_Static_assert(sizeof(struct ur_future) == 72 && _Alignof(struct ur_future) == 8,
               "struct ur_future's size is ABI");
_Static_assert(offsetof(struct ur_future, res) == 0 && offsetof(struct ur_future, cqe_flags) == 4,
               "struct ur_future's public fields moved");
_Static_assert(sizeof(union ur__scratch) <= sizeof(((struct ur_future *)0)->scratch_) &&
                   _Alignof(union ur__scratch) <= _Alignof(struct ur_future),
               "an operation's scratch outgrew struct ur_future");
_Static_assert(offsetof(union ur__scratch, dl.cancel_fd) >= sizeof(struct __kernel_timespec),
               "a kind that takes a deadline overlaps its timespec");
_Static_assert(IORING_CQE_F_MORE == (1U << 1), "ur_future_more() tests bit 1");

/*
 * user_data of every SQE: the address of its future (8-byte aligned) with a tag in the low bits,
 * saying which SQE of the future's chain the completion is for. A NULL future means a
 * fire-and-forget SQE of the loop itself (a cancel request, the close of a raced descriptor).
 */
enum {
	UR__TAG_MAIN = 0, /* the operation; its result is the future's */
	UR__TAG_LT = 1,   /* the linked timeout of a deadline */
	UR__TAG_AUX = 2,  /* a helper SQE before the operation (close's cancel-by-fd) */
	UR__TAG_SKIP = 3, /* a locally queued SQE whose future was cancelled: never submitted */
	UR__TAG_MASK = 7,
};

/*
 * Two user_data values with no future: a wake-up another urio loop sent to this ring with
 * MSG_RING (nothing owed, it runs the posts), and the sending side's own completion of it (a
 * fire-and-forget SQE of the loop, checked at once for a refusal). core/loop.c.
 */
#define UR__UD_WAKE   ((uint64_t)4)
#define UR__UD_MSGSRC ((uint64_t)5)

static inline uint64_t ur__ud(struct ur_future *f, unsigned tag)
{
	return (uint64_t)(uintptr_t)f | tag;
}

/* The future a user_data names (NULL: the loop's own SQE), and which SQE of its chain. */
static inline struct ur_future *ur__ud_future(uint64_t ud)
{
	return (struct ur_future *)(uintptr_t)(ud & ~(uint64_t)UR__TAG_MASK);
}

static inline unsigned ur__ud_tag(uint64_t ud)
{
	return (unsigned)(ud & UR__TAG_MASK);
}

struct ur_loop {
	struct io_uring ring;
	uint32_t setup_flags; /* IORING_SETUP_* in force */
	uint32_t flags;       /* enum ur_loop_flags */
	uint32_t max_per_turn;
	unsigned pending;  /* user futures started and not finally completed */
	unsigned inflight; /* SQEs handed out (SQ, local queue, kernel) still owing a final CQE */
	unsigned refs;
	bool running;
	bool stopping;
	bool freeing;     /* ur_loop_free has begun: no new tasks */
	bool closing;     /* ... and tasks are gone: nothing new starts */
	bool send_zc_off; /* the kernel refused a SEND_ZC: ur_send_zc_start sends plainly */

	/* local queue: SQEs that found the SQ full, FIFO, chains kept whole */
	struct io_uring_sqe *backlog;
	unsigned bl_head, bl_len, bl_cap;

	/* futures completed without the kernel (cancelled while queued), delivered next turn */
	struct ur_future *ready_head, *ready_tail;

	/* cross-thread posts: a lock-free LIFO the loop drains and reverses */
	_Atomic(struct ur_post *) posts;
	atomic_uint posters;      /* ur_loop_post calls in progress on other threads */
	atomic_bool posts_closed; /* teardown: ur_loop_post refuses from now on */
	int wake_fd;
	atomic_int poll_fd; /* eventfd registered with the ring, for hosts (ur_loop_fd), or -1;
	                       written once, read by wakers on other threads */
	uint64_t wake_buf;
	struct ur_future wake_f;
	bool wake_lost; /* wake_f could not be re-armed (ENOMEM): re-armed each turn, no blocking */
	bool msg_ring;  /* posts made on this loop's thread to other loops may use MSG_RING */
	uint32_t spin_ns;     /* ur_loop_opts.spin_ns: poll this long before sleeping */
	atomic_bool spinning; /* polling before a wait: a post needs no wake-up (loop.c) */

	struct ur_bufring *bufrings; /* live buffer rings, freed at teardown */
	struct ur_future *locals;    /* pending program-completed futures (ur_future_begin) */
	uint16_t next_bgid;

	/* tasks (core/task.c) */
	struct ur_task *runq_head, *runq_tail; /* ready to run, FIFO */
	struct ur_task *tasks;                 /* every task not yet joined or freed */
	unsigned live_tasks;                   /* tasks whose function has not returned */
	unsigned jobs;                         /* ur_to_thread calls whose function still runs */
	struct ur__ctx sched_ctx;              /* the loop's own context, tasks switch back to it */
	struct ur_task *sched_from;            /* the task that last switched back to sched_ctx */
	unsigned sched_budget;                 /* task runs left in this turn */
	unsigned runq_len;
	struct ur__stack_pool stacks;
	bool stacks_ready;

	/* timers (core/timer.c): a heap in user space, one kernel timeout for its earliest entry */
	struct ur_timer_ *theap; /* pairing heap, root = earliest */
	struct ur_future tfut;   /* the kernel timeout, internal; armed while pending */
	uint64_t tarmed;         /* when tfut fires; 0 = not armed */
	uint64_t now;   /* CLOCK_MONOTONIC as of this turn, after its wait (ur_loop_time_ns) */
	int64_t tts[2]; /* timespec of a re-arm (TIMEOUT_UPDATE), read at submission */

	struct ur_loop_stats stats;
	uint8_t probe[32]; /* one bit per IORING_OP_* the kernel supports */
	pthread_t owner;   /* the thread that created the loop (debug builds check calls) */
#if UR_FAULT_INJECTION
	struct ur__fault *fault; /* core/fault.c; NULL when UR_FAULT_SEED is unset */
#endif
};

/*
 * Debug builds (no NDEBUG) check that a loop-thread-only call is made on the loop's thread: a
 * call from another thread races with the loop on memory that has no lock, and with
 * SINGLE_ISSUER the kernel would refuse its submissions anyway. Release builds pay nothing.
 */
#ifndef NDEBUG
#define UR__ASSERT_OWNER(l)                                                                        \
	assert(pthread_equal((l)->owner, pthread_self()) &&                                        \
	       "urio: a loop-thread-only call was made on a thread other than the loop's owner "   \
	       "(use ur_loop_post)")
#else
#define UR__ASSERT_OWNER(l) ((void)0)
#endif

/*
 * An operation being started: the SQEs reserved for its chain. The start call preps @sqe (and
 * @aux, if its row says AUX), then hands it to ur__op_end().
 */
/* The longest chain a start makes: aux + operation + linked timeout (close with a deadline). */
#define UR__MAX_CHAIN 3u

struct ur__op {
	struct io_uring_sqe *aux;
	struct io_uring_sqe *sqe;
	struct io_uring_sqe *lt;
	uint8_t kind; /* enum ur__op_kind */
	bool queued;
};

enum ur__task_state {
	UR__T_NEW,     /* spawned, never run */
	UR__T_READY,   /* on the run queue */
	UR__T_RUNNING, /* the current task */
	UR__T_WAITING, /* suspended until woken */
	UR__T_DONE,    /* function returned; stack given back */
};

/* A task (core/task.c); here so the hot accessors below inline across files. */
struct ur_task {
	struct ur_future fut; /* the task as a future: res = the function's return value */
	struct ur_loop *loop;
	ur_task_fn *fn;
	void *arg;
	struct ur__ctx ctx;
	struct ur__stack stack;
	size_t stack_size;
	struct ur_task *run_next;             /* run queue */
	struct ur_task *all_next, **all_prev; /* the loop's list of tasks */
	struct ur_future *awaiting;           /* the future it waits on, for cancellation */
	void (*on_cancel)(struct ur_task *t, void *state); /* a combinator's waiting state */
	void *on_cancel_state;
	uint64_t
	    deadline; /* ur_deadline(): absolute, for the next task-style call, or UR_NO_DEADLINE */
	struct ur_timeout *scopes;   /* innermost timeout scope begun, NULL if none */
	unsigned expired;            /* scopes begun and expired: its waits end with -ETIMEDOUT */
	struct ur_task_group *group; /* the group it is a member of, or NULL */
	struct ur_task *grp_next, **grp_prev; /* the group's members */
	uint8_t state;
	bool queued;
	bool cancel;
	bool detached;
};

/* --- core/loop.c: the turn, teardown, posts -------------------------------------------------- */

/*
 * Turns @l as ur_loop_run(UR_RUN_DEFAULT) does, returning as soon as until(@arg) holds (checked
 * before every kernel entry), or when the loop has nothing left or was stopped. Returns what
 * ur_loop_run does. For waits outside any task.
 */
int ur__loop_run_until(struct ur_loop *l, bool (*until)(const void *), const void *arg);

/* The loop whose ur_loop_run() is on this thread's stack (innermost), or NULL. */
extern _Thread_local struct ur_loop *ur__running __attribute__((tls_model("initial-exec")));

static inline bool ur__supports(const struct ur_loop *l, unsigned op)
{
	return op < 256 && (l->probe[op >> 3] >> (op & 7)) & 1;
}

/* --- core/submit.c: the SQ and the local queue behind it ------------------------------------- */

/* Reserve @n consecutive SQEs; returns 1 if they are in the local queue, 0 in the SQ, -ENOMEM. */
int ur__reserve(struct ur_loop *l, unsigned n, struct io_uring_sqe **out);

/* The local queue. */
unsigned ur__backlog_flush(struct ur_loop *l);
unsigned ur__backlog_drop(struct ur_loop *l, struct ur_future *f);
void ur__backlog_cancel_all(struct ur_loop *l);
void ur__backlog_free(struct ur_loop *l);
bool ur__close_queued(struct ur_loop *l, int fd);
int ur__enter(struct ur_loop *l, unsigned wait_nr);

/* --- core/fault.c: fault injection, fault builds only ---------------------------------------- */

#if UR_FAULT_INJECTION
/*
 * Fault injection (core/fault.c, core/fault.h), fault builds only. ur__fault_start runs before a
 * start commits: it may shrink the prepped length (short), or refuse the start (-ENOMEM, its SQEs
 * turned into no-ops the loop owns), or return a stand-in tag that ur__fault_commit puts on a NOP
 * replacing the operation, whose completion ur__fault_cqe turns into the fault's result.
 * ur__fault_cut chooses how many of @n reaped CQEs to take this turn (delay).
 */
int ur__fault_start(struct ur_loop *l, struct ur_future *f, struct ur__op *op);
void ur__fault_commit(struct ur_loop *l, struct ur_future *f, struct ur__op *op, int tag);
void ur__fault_cqe(uint64_t *ud, int32_t *res, uint32_t *flags);
unsigned ur__fault_cut(struct ur_loop *l, unsigned n);
void ur__fault_init(struct ur_loop *l);
void ur__fault_free(struct ur_loop *l);
/* True if the enomem class fails the core's own allocation or submission at @site (fault.h). */
bool ur__fault_enomem(struct ur_loop *l, unsigned site);
#define UR__FAULT_ENOMEM(l, site) ((l)->fault && ur__fault_enomem((l), (site)))
#else
#define UR__FAULT_ENOMEM(l, site) false
#endif

/* --- core/task.c: tasks and their scheduler -------------------------------------------------- */

void ur__sched_run(struct ur_loop *l);
void ur__tasks_teardown(struct ur_loop *l);
int ur__task_cancel_future(struct ur_future *f);
/*
 * A future completed by urio or the program, not the kernel (@kind: a LOCAL row of ops.h); a
 * task's own future is one, and so are ur_future_begin's (core/future.c) and a group's.
 */
void ur__future_begin_local(struct ur_loop *l, struct ur_future *f, unsigned kind);

/*
 * The task running on this thread, NULL in the loop's own context. initial-exec: one
 * %fs-relative load instead of the __tls_get_addr call a shared library's default TLS model
 * costs (three per yield, measured); the price is a slot of glibc's static TLS surplus should
 * urio be dlopen()ed.
 */
extern _Thread_local struct ur_task *ur__current __attribute__((tls_model("initial-exec")));

static inline struct ur_task *ur__task_self(void)
{
	return ur__current;
}

/* Cancelled, or a timeout scope of the task expired: its waits must end now. */
static inline bool ur__task_interrupted(const struct ur_task *t)
{
	return t->cancel || t->expired;
}

/* What a wait of an interrupted task returns: -ECANCELED before -ETIMEDOUT. */
static inline int ur__task_stop_code(const struct ur_task *t)
{
	return t->cancel ? -ECANCELED : -ETIMEDOUT;
}

/*
 * The result of a wait as the task sees it: a cancellation that an expired timeout scope caused
 * (the task itself not cancelled) reads as -ETIMEDOUT. @t may be NULL (no task: unchanged).
 */
static inline int ur__task_result(const struct ur_task *t, int r)
{
	return (r == -ECANCELED && t && t->expired && !t->cancel) ? -ETIMEDOUT : r;
}

static inline struct ur_loop *ur__task_loop(const struct ur_task *t)
{
	return t->loop;
}

/* A combinator's hook, called by ur_task_cancel() while the task waits in it. */
static inline void ur__task_set_cancel_hook(struct ur_task *t, void (*fn)(struct ur_task *, void *),
                                            void *st)
{
	t->on_cancel = fn;
	t->on_cancel_state = st;
}

static inline void ur__task_set_awaiting(struct ur_task *t, struct ur_future *f)
{
	t->awaiting = f;
}

void ur__task_wait(struct ur_task *t);

/* Puts @t on its loop's run queue, unless it is there, running or done. */
static inline void ur__task_wake(struct ur_task *t)
{
	struct ur_loop *l = t->loop;
	if (t->queued || t->state == UR__T_DONE || t->state == UR__T_RUNNING)
		return;
	t->queued = true;
	t->run_next = NULL;
	l->runq_len++;
	if (l->runq_tail)
		l->runq_tail->run_next = t;
	else
		l->runq_head = t;
	l->runq_tail = t;
	if (t->state != UR__T_NEW)
		t->state = UR__T_READY;
}

/* The continuation that wakes a task (@arg) when the future completes. */
void ur__task_wake_cb(struct ur_future *f, void *arg);
/* The cancel hook of a wait that only has to wake its task (ur__task_set_cancel_hook). */
void ur__task_wake_hook(struct ur_task *t, void *state);

/* Ends the task's current wait: cancels what it awaits, pokes its combinator (cancel, expiry). */
void ur__task_interrupt(struct ur_task *t);
void ur__task_free(struct ur_task *t);

/* --- core/future.c: a future's life: start, completion, cancellation ------------------------- */

/*
 * ur__op_begin's slow path: reserves the chain in @s (aux, operation, linked timeout, those the
 * row and the deadline ask for). Returns 0 (in the SQ), 1 (in the local queue) or -errno.
 */
int ur__op_begin_slow(struct ur_loop *l, struct ur_future *f, unsigned kind,
                      struct io_uring_sqe *s[UR__MAX_CHAIN]);

/* An SQE of the loop's own, whose completion nobody waits for (user_data 0). */
struct io_uring_sqe *ur__loop_sqe(struct ur_loop *l);

/* Completions (ur__finish and ur__cqe, inline, end this part). */
void ur__run_ready(struct ur_loop *l);
/* Row-specific meaning of a final result (deadline, late descriptor, FIX rows): ur__finish. */
int ur__op_fix(struct ur_loop *l, struct ur_future *f, int res);
/* A MAIN CQE of a MULTI or NOTIF row: true if it was the SQE's last, its result in @f. */
bool ur__op_cqe(struct ur_loop *l, struct ur_future *f, int32_t res, uint32_t flags);

/* Fire-and-forget SQEs of the loop itself. */
void ur__cancel_ud(struct ur_loop *l, uint64_t ud, unsigned flags);
void ur__close_fd(struct ur_loop *l, int fd);

/*
 * Completes @f without a kernel CQE, with @res, delivered on the next turn (never inline). The one
 * place that says "nothing more is owed": no SQE of @f is in the kernel or will reach it (the
 * caller dropped those in the local queue, unlinked it from a buffer ring's starved list, or it
 * never had any), so the owed count goes to 0 and the queued/starved marks go with it.
 */
void ur__complete_local(struct ur_loop *l, struct ur_future *f, int res);

/* Teardown: every pending program-completed future (ur_future_begin) completes, -ECANCELED. */
void ur__locals_cancel(struct ur_loop *l);

/*
 * The last opcode of the oldest kernel urio runs on (5.19, docs/design.md): a start of an opcode
 * up to it needs no look at the probe, and with its kind a constant the check folds away.
 */
#define UR__OP_BASELINE IORING_OP_URING_CMD

/*
 * liburing's io_uring_get_sqe for the ring urio sets up (no SQPOLL, no SQE128): the kernel moves
 * the SQ head only inside io_uring_enter, on this thread, so a plain load of it is current. NULL
 * if the SQ is full.
 */
static inline struct io_uring_sqe *ur__sqe_get(struct io_uring_sq *sq)
{
	unsigned tail = sq->sqe_tail;
	if (tail - IO_URING_READ_ONCE(*sq->khead) >= sq->ring_entries)
		return NULL;
	sq->sqe_tail = tail + 1;
	return &sq->sqes[tail & sq->ring_mask];
}

/*
 * Starting an operation of kind @kind (core/ops.h), inlined into every start call: with @kind a
 * constant the row's lookups fold away, and the common case (one SQE, room in the SQ) costs a
 * few compares and liburing's get_sqe; chains, deadlines and a full SQ take the slow path.
 * Returns 0, -EBUSY, UR_ELOOPCLOSED, -EOPNOTSUPP, -EINVAL (a deadline on a NODL kind), -ENOMEM.
 */
static inline __attribute__((always_inline)) int
ur__op_begin(struct ur_loop *l, struct ur_future *f, unsigned kind, struct ur__op *op)
{
	UR__ASSERT_OWNER(l);
	if (f->state_ == UR_FUTURE_PENDING)
		return -EBUSY;
	if (l->closing)
		return UR_ELOOPCLOSED;
	if (ur__ops[kind].opcode > UR__OP_BASELINE && !ur__supports(l, ur__ops[kind].opcode))
		return -EOPNOTSUPP;
	bool aux = ur__op_traits(kind) & UR__OPF_AUX;
	op->kind = (uint8_t)kind;
	op->queued = false;
	op->aux = op->lt = NULL;
	if (!aux && !(f->flags_ & UR__F_DEADLINE) && l->bl_len == 0 &&
	    (op->sqe = ur__sqe_get(&l->ring.sq)))
		return 0;
	/* @op itself never leaves this inline code, so its kind stays a constant for ur__op_end. */
	struct io_uring_sqe *s[UR__MAX_CHAIN];
	int ret = ur__op_begin_slow(l, f, kind, s);
	if (ret < 0)
		return ret;
	op->queued = ret == 1;
	op->aux = aux ? s[0] : NULL;
	op->sqe = s[aux];
	op->lt = (f->flags_ & UR__F_DEADLINE) ? s[aux + 1] : NULL;
	return 0;
}

/*
 * Commits what ur__op_begin reserved and the start call prepped: tags, links, counters. Forced
 * inline, as ur__op_begin is: the start call's kind must reach here as a constant.
 */
static inline __attribute__((always_inline)) int ur__op_end(struct ur_loop *l, struct ur_future *f,
                                                            struct ur__op *op)
{
#if UR_FAULT_INJECTION
	int fault = l->fault ? ur__fault_start(l, f, op) : 0;
	if (fault < 0)
		return fault;
#endif
	unsigned traits = ur__op_traits(op->kind);
	uint16_t keep = f->flags_ & UR__F_INTERNAL;
	unsigned owed = 1;

	if (traits & (UR__OPF_MULTI | UR__OPF_NOTIF))
		keep |= UR__F_MANY;
	if (traits & UR__OPF_FIX)
		keep |= UR__F_FIXUP;
	f->op_ = op->kind;
	f->loop_ = l;
	f->res = 0;
	f->cqe_flags = 0;
	if (op->aux) {
		io_uring_sqe_set_data64(op->aux, ur__ud(f, UR__TAG_AUX));
		/* the operation runs whatever the aux's result */
		op->aux->flags |= IOSQE_IO_HARDLINK;
		owed++;
	}
	io_uring_sqe_set_data64(op->sqe, ur__ud(f, UR__TAG_MAIN));
	if (op->lt) {
		op->sqe->flags |= IOSQE_IO_LINK;
		io_uring_prep_link_timeout(op->lt, &ur__sc(f)->dl.ts, 0);
		io_uring_sqe_set_data64(op->lt, ur__ud(f, UR__TAG_LT));
		keep |= UR__F_LINKED;
		owed++;
	}
	f->flags_ = keep | (op->queued ? UR__F_QUEUED : 0);
	f->owed_ = owed;
	f->state_ = UR_FUTURE_PENDING;
	l->inflight += owed;
	if (!(keep & UR__F_INTERNAL))
		l->pending++;
#if UR_FAULT_INJECTION
	if (fault > 0)
		ur__fault_commit(l, f, op, fault);
#endif
	return 0;
}

/*
 * Delivers the final completion of @f: result fix-ups, state, callback. Inline, as ur__cqe is,
 * so the common completion (one CQE, nothing to fix, a task waiting) costs no call but the
 * wake-up's, and a task's wake-up costs none: the wake callback is recognised and run in place.
 */
static inline void ur__finish(struct ur_loop *l, struct ur_future *f)
{
	uint16_t fl = f->flags_;

	if (fl & (UR__F_TIMEDOUT | UR__F_CANCEL | UR__F_FIXUP)) {
		f->res = ur__op_fix(l, f, f->res);
		fl = f->flags_;
	}
	f->cqe_flags &= ~(uint32_t)IORING_CQE_F_MORE;
	/* @fl, not f->flags_: the store to @l below may alias @f as far as the compiler knows */
	if (!(fl & UR__F_INTERNAL))
		l->pending--;
	f->flags_ = fl & UR__F_INTERNAL;
	f->state_ = UR_FUTURE_DONE;
	/* Last touch of @f: the callback may restart or free it. */
	if (f->cb_ == ur__task_wake_cb)
		ur__task_wake(f->arg_);
	else if (f->cb_)
		f->cb_(f, f->arg_);
}

/* One CQE, as the loop reaped it: routed by its user_data's tag to its future (core/future.c). */
static inline void ur__cqe(struct ur_loop *l, uint64_t ud, int32_t res, uint32_t flags)
{
	struct ur_future *f = ur__ud_future(ud);

	if (!(flags & IORING_CQE_F_MORE))
		l->inflight--;
	if (!f)
		return;
	switch (ur__ud_tag(ud)) {
	case UR__TAG_MAIN:
		if (f->flags_ & UR__F_MANY) {
			if (!ur__op_cqe(l, f, res, flags))
				return;
			break;
		}
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

/* --- core/await.c: waiting on futures -------------------------------------------------------- */

int ur__await_uninterrupted(struct ur_future *f);

/*
 * The one suspend-or-turn step of every wait: until done(@arg) holds, suspends task @t (woken by
 * a continuation or its cancel hook) or, outside any task (@t NULL), turns @l from here. With
 * @stop, a wait of an interrupted task (cancelled, a timeout scope expired) ends with its stop
 * code; without, only done(@arg) ends it. Returns 0 once done(@arg) holds (checked first), the
 * stop code, or what turning @l failed with (-EBUSY from one of its callbacks). Forced inline:
 * @done is a constant at every call, so it inlines too and a task's wait costs what the open-coded
 * loop did.
 */
static inline __attribute__((always_inline)) int ur__wait_until(struct ur_task *t,
                                                                struct ur_loop *l,
                                                                bool (*done)(const void *),
                                                                const void *arg, bool stop)
{
	while (!done(arg)) {
		if (!t) {
			int r = ur__loop_run_until(l, done, arg);
			if (r < 0)
				return r;
			continue;
		}
		if (stop && ur__task_interrupted(t))
			return ur__task_stop_code(t);
		ur__task_wait(t);
	}
	return 0;
}

/* The predicate of a wait on one future: it is no longer pending. */
static inline bool ur__future_settled(const void *f)
{
	return ((const struct ur_future *)f)->state_ != UR_FUTURE_PENDING;
}

/* --- core/scope.c: timeout scopes, ur_deadline ----------------------------------------------- */

/* What a task function left begun goes when it returns. */
void ur__scopes_drop(struct ur_task *t);

/*
 * ur_deadline(): the very next task-style call of any kind runs inside a scope at the deadline
 * (core/scope.c). Every public task-style call is wrapped in UR__DEADLINE_CALL; calls made inside
 * one (ur_read_all's reads, ur_join's await) find the deadline taken already, so the outermost
 * call is bounded as a whole. Costs one load and a branch when no deadline is set.
 */
struct ur__call {
	struct ur_timeout to;
	bool on;
};
void ur__deadline_begin(struct ur_task *t, struct ur_timeout *to);
ssize_t ur__deadline_end(struct ur_timeout *to, ssize_t r);

static inline void ur__call_begin(struct ur__call *c)
{
	struct ur_task *t = ur__current;
	c->on = t && t->deadline != UR_NO_DEADLINE;
	if (c->on)
		ur__deadline_begin(t, &c->to);
}

static inline ssize_t ur__call_end(struct ur__call *c, ssize_t r)
{
	return c->on ? ur__deadline_end(&c->to, r) : r;
}

#define UR__DEADLINE_CALL(type, call)                                                              \
	do {                                                                                       \
		struct ur__call c_;                                                                \
		ur__call_begin(&c_);                                                               \
		type r_ = (call);                                                                  \
		return (type)ur__call_end(&c_, r_);                                                \
	} while (0)

/* --- core/group.c: task groups --------------------------------------------------------------- */

/* ur_cancel() of a group's future. */
int ur__group_cancel_future(struct ur_future *f);

/* --- core/timer.c: the loop's timer heap ----------------------------------------------------- */

/*
 * The timer heap (core/timer.c). Entries are caller-owned (struct ur_timer_), on the loop's
 * thread only; adding and removing make no system call. An entry's fn runs from the loop (as a
 * callback) once its time has come, after it was removed from the heap.
 */
void ur__timer_add(struct ur_loop *l, struct ur_timer_ *tm, uint64_t at,
                   void (*fn)(struct ur_loop *, struct ur_timer_ *));
void ur__timer_del(struct ur_loop *l, struct ur_timer_ *tm);
void ur__timers_arm_slow(struct ur_loop *l);
/* Runs every entry whose time has come; an entry's fn may add or remove others. */
void ur__timers_run_due(struct ur_loop *l);
/* an absolute time @ns from now, saturating (UR_NO_DEADLINE stays never) */
uint64_t ur__deadline_in(uint64_t ns);

static inline void ur__timers_run(struct ur_loop *l)
{
	if (l->theap)
		ur__timers_run_due(l);
}

/*
 * Arms the kernel timeout for the earliest entry, for a host sleeping on ur_loop_fd() or a
 * kernel whose io_uring_enter takes no timeout (core/timer.c).
 */
static inline void ur__timers_arm(struct ur_loop *l)
{
	if (l->theap && (!l->tarmed || l->theap->at_ < l->tarmed))
		ur__timers_arm_slow(l);
}

/* --- core/bufring.c: buffer rings, multishot recv -------------------------------------------- */

void ur__recv_multi_rearm(struct ur_loop *l, struct ur_future *f);
void ur__bufring_took(struct ur_bufring *br, uint32_t cqe_flags);
void ur__bufring_starve(struct ur_bufring *br, struct ur_future *f);
bool ur__bufring_unstarve(struct ur_bufring *br, struct ur_future *f);
void ur__bufring_done(struct ur_future *f);
void ur__send_buffer_done(struct ur_future *f);
unsigned ur__bufring_cancel_fd(struct ur_loop *l, int fd, bool one);
void ur__bufring_teardown(struct ur_loop *l);
void ur__bufring_detach_all(struct ur_loop *l);

#endif
