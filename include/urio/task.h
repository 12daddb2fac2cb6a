/* SPDX-License-Identifier: MIT */
/*
 * urio/task.h - tasks: stackful coroutines that await futures.
 *
 * A task runs a C function on a stack of its own. When it awaits a future that is not done, it
 * suspends and the loop runs other tasks and reaps completions; the future's completion makes it
 * ready again. So a task reads as sequential code:
 *
 *	ssize_t n = ur_read(fd, buf, sizeof(buf), 0);	// suspends this task only
 *
 * A task is itself a future (ur_task_future()), completing with its function's return value, so
 * ur_gather() waits on tasks and I/O alike. Tasks belong to the loop they were spawned on and run
 * on its thread. Awaiting from code outside any task drives the loop until the future is done:
 * that is ur_run(), asyncio's run().
 *
 * One awaiter per future: ur_await(), ur_gather() and friends install the future's continuation,
 * so the futures they are given must have been initialised without a callback (or be task
 * futures), and must not be awaited by two waiters at once (-EBUSY).
 */
#ifndef URIO_TASK_H
#define URIO_TASK_H

#include <stdbool.h>
#include <sys/types.h>
#include "common.h"
#include "future.h"
#include "io.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ur_task;

/* A task's body. Its return value (>= 0 result, < 0 error) becomes the task future's res. */
typedef int ur_task_fn(void *arg);

struct ur_task_opts {
	size_t stack_size; /* usable stack bytes; 0 = the loop's default (256 KiB) */
	uint32_t reserved[4];
};

/*
 * asyncio.run(): spawns @main(@arg) as a task on @loop (or, if @loop is NULL, on a loop created
 * for the call and freed after it), runs the loop until that task has returned and stores its
 * return value in *@result (may be NULL). Tasks still running when main returns are cancelled and
 * awaited when the loop is a temporary one; on a caller's loop they are left alone.
 * Returns 0, or -errno / UR_E* if the loop or the task could not be made, or -EBUSY (nothing
 * started) when called from inside a task or from a loop callback: a nested run could never end.
 */
UR_EXPORT int ur_run(struct ur_loop *loop, ur_task_fn *main, void *arg, int *result);

/*
 * Creates a task running @fn(@arg) on @loop; it starts on the loop's next turn (never inside
 * this call). @opts may be NULL. The task is the caller's until ur_join() or ur_task_detach();
 * with @task NULL it is detached at once (spawn-and-forget in one call).
 * Returns 0 and stores it in *@task, or -ENOMEM, -EINVAL (also a stack_size above 1 GiB),
 * UR_ELOOPCLOSED (ur_loop_free() has begun).
 */
UR_EXPORT int ur_spawn(struct ur_loop *loop, struct ur_task **task, ur_task_fn *fn, void *arg,
                       const struct ur_task_opts *opts);

/* The task's future: done when its function has returned; res = the return value. */
UR_EXPORT struct ur_future *ur_task_future(struct ur_task *task);

/*
 * Waits for @task (see ur_await()), frees it, and returns its result. The task pointer is
 * invalid afterwards. If the waiting task is cancelled meanwhile, @task is cancelled too, and
 * still awaited and freed. If it cannot wait (-EBUSY: called from a loop callback, or another
 * waiter has the task's future), it returns that error and the task is still the caller's.
 */
UR_EXPORT int ur_join(struct ur_task *task);

/* Lets @task free itself when it finishes; its result is dropped. The pointer is invalid after. */
UR_EXPORT void ur_task_detach(struct ur_task *task);

/*
 * Requests cancellation of @task (asyncio's Task.cancel()): the operation it awaits now is
 * cancelled, and from then on every await in that task returns -ECANCELED at once, until its
 * function returns. A task that has not started yet never runs: it completes with -ECANCELED.
 * Returns 0, or -EALREADY if already requested or the task is done.
 */
UR_EXPORT int ur_task_cancel(struct ur_task *task);

/* The task running now, or NULL outside any task. */
UR_EXPORT struct ur_task *ur_task_current(void);

/* The loop of the task running now, or NULL outside any task. */
UR_EXPORT struct ur_loop *ur_current_loop(void);

/* True if cancellation of the current task was requested. */
UR_EXPORT bool ur_cancelled(void);

/*
 * Waits until @f is done and returns f->res. @f must have been started (its loop is known) and
 * initialised without a callback. Inside a task, suspends it; outside any task, runs @f's loop
 * until @f is done. In a task being cancelled, @f is cancelled, its final completion still
 * awaited (its memory may be on this stack), and -ECANCELED returned.
 * Returns f->res, -EINVAL (never started), -EBUSY (has a callback, or another awaiter, or called
 * from a loop callback), -EDEADLK (a task awaiting its own future), UR_EWRONGLOOP (a task awaiting
 * a pending future of another loop). The same errors hold for every wait below; those given an
 * array also return -EINVAL if a future is in it twice.
 */
UR_EXPORT int ur_await(struct ur_future *f);

enum ur_gather_flags {
	/* On the first failure, cancel every other future; still wait for all of them. */
	UR_GATHER_CANCEL_ON_ERROR = 1u << 0,
};

/*
 * asyncio.gather(): waits until every future of @fs[0..n) is done. Returns 0 if all succeeded
 * (res >= 0), else the first error in completion order; each future's own res tells the rest.
 * With UR_GATHER_CANCEL_ON_ERROR the others are cancelled at the first error, and gather still
 * returns only when every one has completed. A cancelled caller cancels all of them.
 */
UR_EXPORT int ur_gather(struct ur_future **fs, size_t n, unsigned flags);

/*
 * Waits until at least one future of @fs[0..n) is done; returns the index of one that is (the
 * lowest, if several are), or -ECANCELED if the calling task was cancelled (the futures are then
 * left running, their continuations removed), or -EINVAL for n == 0.
 */
UR_EXPORT int ur_wait_any(struct ur_future **fs, size_t n);

/*
 * asyncio.as_completed(): yields the futures of an array in the order they complete.
 *
 *	struct ur_as_completed it;
 *	struct ur_future *f;
 *	ur_as_completed_init(&it, fs, n);
 *	while (ur_as_completed_next(&it, &f) == 0)
 *		use(f);
 *
 * next() returns 0 with *@f set, -ENOENT when every future has been yielded, or -ECANCELED
 * (the calling task was cancelled: call ur_as_completed_stop()). Leaving early: call
 * ur_as_completed_stop(), which removes the continuations of futures not yet yielded.
 */
struct ur_as_completed {
	struct ur_future **fs_;
	size_t n_, next_;
	struct ur_future *done_head_, *done_tail_;
	struct ur_task *waiter_;
};
/* init returns 0, or -EINVAL (a future twice in @fs; the iterator then yields nothing). */
UR_EXPORT int ur_as_completed_init(struct ur_as_completed *it, struct ur_future **fs, size_t n);
UR_EXPORT int ur_as_completed_next(struct ur_as_completed *it, struct ur_future **f);
UR_EXPORT void ur_as_completed_stop(struct ur_as_completed *it);

/*
 * asyncio.wait_for(): waits for @f at most @timeout_ns. On expiry @f is cancelled and its final
 * completion awaited; returns -ETIMEDOUT if it ended cancelled, or its real result if it won
 * the race. Otherwise returns f->res.
 */
UR_EXPORT int ur_wait_for(struct ur_future *f, uint64_t timeout_ns);

/* asyncio.sleep(): suspends the task for @ns. Returns 0, or -ECANCELED. */
UR_EXPORT int ur_sleep(uint64_t ns);

/*
 * Lets every other ready task run once, then resumes; completions are reaped at least once per
 * round of the ready tasks (and every 64 yields), with a system call only when operations are in
 * flight or waiting to be submitted. Returns 0, or -ECANCELED in a cancelled task, UR_ENOTASK
 * outside a task.
 */
UR_EXPORT int ur_yield(void);

/* --- timeout scopes: asyncio.timeout() ------------------------------------------------------ */

/* private: an entry of the loop's timer heap (core/timer.c). */
struct ur_timer_ {
	uint64_t at_; /* CLOCK_MONOTONIC ns (ur_now_ns) */
	struct ur_timer_ *child_, *next_, *prev_;
	void (*fn_)(struct ur_loop *loop, struct ur_timer_ *tm);
	uint8_t linked_;
};

/*
 * A timeout scope, asyncio.timeout(): every wait of the current task between ur_timeout_begin()
 * and ur_timeout_end() is bounded by the scope's deadline. Caller-owned, normally on the task's
 * stack; all fields private.
 *
 *	struct ur_timeout to;
 *	ur_timeout_begin(&to, 2 * UR_SEC);
 *	n = ur_read_all(fd, buf, len, 0);	// every read inside is bounded, not only the first
 *	r = ur_gather(fs, k, 0);		// so is any other wait
 *	if (ur_timeout_end(&to) == -ETIMEDOUT)
 *		...				// the block ran out of time
 *
 * When the deadline passes, the scope expires: what the task awaits at that moment is cancelled
 * (an I/O operation, a sleep, the futures of a gather, a joined task, a task group's members; a
 * ur_to_thread() call returns while its function runs on), and from then until the scope ends,
 * every wait of the task returns -ETIMEDOUT at once without starting anything (ur_close() still
 * closes). Waits whose target was cancelled by the expiry return -ETIMEDOUT as well, unless the
 * target won the race and completed anyway: then its real result. Cancellation of the task
 * (ur_task_cancel) takes precedence: -ECANCELED.
 *
 * Scopes nest: the earliest deadline of the scopes in force wins, and an expired outer scope
 * bounds the inner blocks too (their waits return -ETIMEDOUT; the inner scope's end reports 0,
 * as it did not expire itself). They end in the reverse order they began. A scope costs no
 * system call, SQE or CQE unless its deadline becomes the earliest of the loop's timers and the
 * loop has to sleep past it: deadlines live in the loop's timer heap (docs/design-tasks.md).
 * A task function that returns with scopes still begun has them ended for it.
 */
struct ur_timeout {
	struct ur_timer_ timer_;
	struct ur_timeout *outer_;
	struct ur_task *task_;
	uint8_t state_;
};

/*
 * Begins scope @to in the current task, expiring @timeout_ns from now (0: at once, before the
 * next wait, and ur_timeout_when() reads 0, a time past; UR_NO_DEADLINE: not until rescheduled).
 * ur_timeout_begin_at() takes an absolute ur_now_ns() time instead (asyncio.timeout_at()). @to
 * needs no initialisation and must not be begun already. Returns 0; UR_ENOTASK outside a task (a
 * loop callback included).
 */
UR_EXPORT int ur_timeout_begin(struct ur_timeout *to, uint64_t timeout_ns);
UR_EXPORT int ur_timeout_begin_at(struct ur_timeout *to, uint64_t when_ns);

/*
 * Moves the deadline of begun scope @to to absolute time @when_ns (ur_now_ns() clock;
 * UR_NO_DEADLINE: none), earlier or later; a time already past expires it now. Callable from
 * the scope's task, and from a loop callback or another task of the same loop.
 * Returns 0; -EALREADY if the scope has expired already; -EINVAL if it is not begun.
 */
UR_EXPORT int ur_timeout_reschedule(struct ur_timeout *to, uint64_t when_ns);

/* The deadline of @to (ur_now_ns() clock), UR_NO_DEADLINE if none. */
UR_EXPORT uint64_t ur_timeout_when(const struct ur_timeout *to);

/* True once @to has expired (also after its end). */
UR_EXPORT bool ur_timeout_expired(const struct ur_timeout *to);

/*
 * Ends scope @to, which must be the innermost scope of the calling task. Its deadline is
 * dropped; nothing stays pending.
 * Returns 0, or -ETIMEDOUT if the scope expired; -EINVAL if @to is not the innermost begun scope
 * of the calling task (nothing is changed then); UR_ENOTASK outside a task.
 */
UR_EXPORT int ur_timeout_end(struct ur_timeout *to);

/*
 * A timeout scope around exactly one call: the very next task-style call the current task makes,
 * of any kind (I/O, ur_sleep, ur_yield, ur_await, ur_gather, ur_join, ur_wait_any,
 * ur_as_completed_next, ur_wait_for, ur_to_thread*, ur_group_wait, ur_read_all...), runs inside
 * a scope expiring @timeout_ns from now, and consumes the deadline whatever it returns. The call
 * is bounded as a whole (every transfer of ur_read_all; a gather's every future) and returns
 * -ETIMEDOUT if the deadline passed. 0 expires at once (that call returns -ETIMEDOUT without
 * starting anything); UR_NO_DEADLINE clears a deadline set and not yet consumed. Outside a
 * task it does nothing. For more than one call, use a scope (ur_timeout_begin).
 */
UR_EXPORT void ur_deadline(uint64_t timeout_ns);
/* As ur_deadline(), at the absolute CLOCK_MONOTONIC time @when_ns (no clock read: for a caller
 * that holds a deadline already, as a stream does). */
UR_EXPORT void ur_deadline_at(uint64_t when_ns);

/*
 * asyncio.to_thread(): runs @fn(@arg) on urio's worker pool and suspends the task until it
 * returns; returns its return value. The pool is process-wide and starts on first use with
 * ur_thread_pool_size() threads (default 4). That first call creates the threads on the loop's
 * thread, stalling its every task meanwhile (about a millisecond natively, far more under
 * valgrind): call ur_thread_pool_start() beforehand, at startup, to pay it there. Cancelled,
 * or its timeout scope expired, the task resumes at once with -ECANCELED / -ETIMEDOUT. A job
 * no worker has taken yet is removed from the queue then and @fn never runs (asyncio drops a
 * work item that has not started); once started, @fn runs to completion on its thread, its
 * result dropped: @arg must stay valid until @fn returns, and the caller cannot tell which
 * happened (ur_to_thread_ptr() can free @arg).
 * A child of fork() starts a pool of its own on first use (the parent's workers do not exist
 * there; jobs queued by the parent are not run in the child).
 * @fn's own results must not look like those codes; where they might, use ur_to_thread_ptr().
 * Returns @fn's result, -ECANCELED, -ETIMEDOUT, -ENOMEM, UR_ENOTASK.
 */
UR_EXPORT int ur_to_thread(int (*fn)(void *), void *arg);

/*
 * ur_to_thread() for a function with a pointer-sized result, kept apart from the call's own
 * status: on success returns 0 and stores @fn's return value in *@result (may be NULL), so a
 * result of any value (a pointer, an EAI_* code cast to intptr_t) never collides with -errno.
 *
 * If the caller leaves before @fn has returned (-ECANCELED: the task was cancelled; -ETIMEDOUT:
 * its timeout scope expired), @fn runs on and, once it has returned, @release(@arg, its result)
 * is called on the loop's thread (as a loop callback: it must not wait) to free what the caller
 * abandoned; @release may be NULL. If @fn has not started when the caller leaves (still queued
 * behind busy workers), or the task was already cancelled (or past its deadline) when it
 * called, @fn never runs: then @release(@arg, NULL) is called on the task before the return.
 * Either way, after those two codes @arg is never the caller's. @release is
 * not called when the caller got the result, nor on -ENOMEM or UR_ENOTASK: then @arg is still
 * the caller's. The loop's teardown waits for such functions to return.
 *
 *	static void *lookup(void *q) { ...getaddrinfo...; return q; }
 *	static void drop(void *q, void *res) { freeaddrinfo(((struct query *)q)->ai); free(q); }
 *	r = ur_to_thread_ptr(lookup, q, drop, NULL);	// on -ETIMEDOUT, drop() frees q later
 *
 * Returns 0, -ECANCELED, -ETIMEDOUT, -ENOMEM, UR_ENOTASK.
 */
UR_EXPORT int ur_to_thread_ptr(void *(*fn)(void *arg), void *arg,
                               void (*release)(void *arg, void *result), void **result);

/*
 * Sets the worker pool's size before its first use, or after ur_thread_pool_shutdown() (1..256).
 * Returns 0, -EINVAL, or -EBUSY (the pool runs).
 */
UR_EXPORT int ur_thread_pool_size(unsigned n);

/*
 * Starts the worker pool now, with @n threads (0: ur_thread_pool_size()'s, default 4), so that
 * the first ur_to_thread() does not stall its loop creating them. From any thread, any time:
 * typically in main() before the loops run. Returns 0 (also if the pool runs already with that
 * size), -EINVAL (@n > 256), -EBUSY (it runs with another size), -EAGAIN or -ENOMEM (no thread
 * could be created).
 */
UR_EXPORT int ur_thread_pool_start(unsigned n);

/*
 * Stops the worker pool: idle workers exit and are joined before the return. A worker running a
 * function is not waited for: it finishes (with the jobs still queued, if any) and exits on its
 * own. The next ur_to_thread() or ur_thread_pool_start() starts a fresh pool. The library calls
 * it from a destructor at exit, so that a program leaves no worker (nor its thread-local memory,
 * which valgrind reports as "possibly lost") behind; call it yourself to release the threads
 * earlier, or before a leak check of your own. Safe from any thread, more than once, while jobs
 * run (from one of them too), and in a child of fork(). Returns the number of workers left
 * running (0: every worker was joined).
 */
UR_EXPORT int ur_thread_pool_shutdown(void);

/* --- task groups: asyncio.TaskGroup -------------------------------------------------------- */

/*
 * A task group, asyncio.TaskGroup: tasks spawned into it are waited for together; the first one
 * that fails (returns < 0) cancels the others; the group's result is that first error.
 * Caller-owned; all fields private. It must stay in place until ur_group_wait() (or an await of
 * ur_group_future()) has returned.
 *
 *	struct ur_task_group g;
 *	ur_group_init(&g, ur_current_loop());
 *	for (i = 0; i < n; i++)
 *		ur_group_spawn(&g, fetch, &pages[i], NULL);
 *	r = ur_group_wait(&g);		// 0, or the first member's error; all members have ended
 *
 * Members belong to the group: each is freed when its function returns, its result dropped
 * (return data through @arg). Members may spawn more members while the group is waited for.
 */
struct ur_task_group {
	struct ur_future fut_;
	struct ur_loop *loop_;
	struct ur_task *members_;
	size_t live_;
	int32_t err_;
	uint8_t state_;
};

/* Prepares @g for tasks on @loop. Never fails; allocates nothing. */
UR_EXPORT void ur_group_init(struct ur_task_group *g, struct ur_loop *loop);

/*
 * Spawns @fn(@arg) as a member of @g (see ur_spawn(); @opts may be NULL). A member spawned after
 * the group has failed or been cancelled starts cancelled. From a task or a loop callback.
 * Returns 0, -ENOMEM, -EINVAL (@g already finished), UR_ELOOPCLOSED.
 */
UR_EXPORT int ur_group_spawn(struct ur_task_group *g, ur_task_fn *fn, void *arg,
                             const struct ur_task_opts *opts);

/*
 * Cancels every member of @g now and every member spawned later (as the first failure does).
 * The group's result becomes -ECANCELED unless a member had failed already.
 * Returns 0, or -EALREADY if the group was already failed or cancelled.
 */
UR_EXPORT int ur_group_cancel(struct ur_task_group *g);

/*
 * Waits until every member of @g has returned (leaving `async with TaskGroup()`), see
 * ur_await(): from a task, or outside any task (it turns the loop). If the waiting task is
 * cancelled or its timeout scope expires meanwhile, the members are cancelled and still waited
 * for. Afterwards the group is finished (spawning returns -EINVAL); init it again to reuse it.
 * Returns 0 if no member failed, else the first member's error in completion order; -ECANCELED
 * (group or waiter cancelled), -ETIMEDOUT (the waiter's scope expired); -EBUSY from a loop
 * callback or if another waiter has the group's future.
 */
UR_EXPORT int ur_group_wait(struct ur_task_group *g);

/*
 * The group as a future, for ur_wait_for(), ur_gather(), ur_wait_any(): it completes, with the
 * result ur_group_wait() would return, once every member has returned; from this call on the
 * group finishes as soon as it is empty. Cancelling it (ur_cancel, or ur_wait_for's expiry)
 * cancels the members and it completes once they have all returned:
 *
 *	r = ur_wait_for(ur_group_future(&g), 5 * UR_SEC);	// gather with a timeout: -ETIMEDOUT
 */
UR_EXPORT struct ur_future *ur_group_future(struct ur_task_group *g);

/*
 * Task-style operations: start the operation on the current task's loop and await it. Each
 * returns what the matching *_start's future would hold in res. Outside a task: UR_ENOTASK.
 * In a cancelled task: -ECANCELED without starting anything, except ur_close(), which closes
 * even then (it is how a cancelled task cleans up).
 */
UR_EXPORT int ur_nop(void);
UR_EXPORT ssize_t ur_read(int fd, void *buf, size_t len, uint64_t off);
UR_EXPORT ssize_t ur_write(int fd, const void *buf, size_t len, uint64_t off);
UR_EXPORT ssize_t ur_readv(int fd, const struct iovec *iov, unsigned iovcnt, uint64_t off);
UR_EXPORT ssize_t ur_writev(int fd, const struct iovec *iov, unsigned iovcnt, uint64_t off);
UR_EXPORT int ur_openat(int dfd, const char *path, int flags, mode_t mode);
UR_EXPORT int ur_close(int fd);
UR_EXPORT int ur_fsync(int fd, int datasync);
UR_EXPORT int ur_statx(int dfd, const char *path, int flags, unsigned mask, struct statx *out);
UR_EXPORT int ur_socket(int domain, int type, int protocol);
UR_EXPORT int ur_connect(int fd, const struct sockaddr *addr, socklen_t addrlen);
UR_EXPORT int ur_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags);
UR_EXPORT ssize_t ur_send(int fd, const void *buf, size_t len, int flags);
UR_EXPORT ssize_t ur_recv(int fd, void *buf, size_t len, int flags);
UR_EXPORT ssize_t ur_sendmsg(int fd, const struct msghdr *msg, int flags);
UR_EXPORT ssize_t ur_recvmsg(int fd, struct msghdr *msg, int flags);
UR_EXPORT int ur_shutdown(int fd, int how);
UR_EXPORT int ur_poll(int fd, unsigned events);
UR_EXPORT ssize_t ur_send_zc(int fd, const void *buf, size_t len, int flags);
UR_EXPORT ssize_t ur_splice(int fd_in, uint64_t off_in, int fd_out, uint64_t off_out, size_t len,
                            unsigned flags);
UR_EXPORT ssize_t ur_tee(int fd_in, int fd_out, size_t len, unsigned flags);

/*
 * Read exactly @len bytes (or to end of file) / write all @len bytes, looping over short
 * transfers and retrying -EINTR (nothing moved, as PEP 475 retries in Python); sockets and pipes
 * too (then @off must be UR_OFF_CURRENT). Returns the bytes moved (less than @len only at end of
 * file for reads), or the first other error; an error after some bytes moved is still returned
 * as the error.
 */
UR_EXPORT ssize_t ur_read_all(int fd, void *buf, size_t len, uint64_t off);
UR_EXPORT ssize_t ur_write_all(int fd, const void *buf, size_t len, uint64_t off);

/*
 * Sends all @len bytes on socket @fd, looping over short sends (@flags as for send(2); add
 * MSG_NOSIGNAL to get -EPIPE instead of SIGPIPE). Returns @len, or the first error (some bytes
 * may have gone). The task-style form of a write-all for sockets.
 */
UR_EXPORT ssize_t ur_send_all(int fd, const void *buf, size_t len, int flags);

/*
 * Task-style ur_send_buffer_start() (urio/bufring.h): sends the first @len bytes of ring buffer
 * @bid on @fd, all of them, then recycles the buffer whatever happened (also if the task is
 * cancelled: then nothing is sent). Returns @len or -errno.
 */
UR_EXPORT ssize_t ur_send_buffer(int fd, struct ur_bufring *br, int bid, size_t len, int flags);

#ifdef __cplusplus
}
#endif

#endif
