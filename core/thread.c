/* SPDX-License-Identifier: MIT */
/*
 * core/thread.c - ur_to_thread: blocking work on a pool of worker threads.
 *
 * A job is queued for the process-wide pool; the worker that runs it hands the result back to
 * the owning loop with ur_loop_post(), which wakes the loop through its eventfd, and the post
 * wakes the waiting task. The job is on the heap, not the task's stack, so that a task cancelled
 * or timed out can leave at once while the function runs on: whoever is last (the post or the
 * task) frees it. The loop counts its outstanding jobs and does not finish tearing down before
 * every one has posted back.
 *
 * A job whose task is cancelled (or whose timeout scope expires) before a worker has taken it
 * is unlinked from the queue and never runs (asyncio drops a work item that has not started):
 * the queue and a job's queued/running state change only under pool.lock, so the cancel hook
 * and a worker taking the job agree on who has it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "internal.h"

struct job {
	int (*fn)(void *);    /* ur_to_thread */
	void *(*pfn)(void *); /* ur_to_thread_ptr */
	void (*release)(void *arg, void *result);
	void *arg;
	int result;
	void *presult;
	bool done;
	bool dropped; /* loop's thread: unlinked before it ran, never runs */
	bool queued;  /* under pool.lock: on the queue, no worker has taken it */
	struct ur_loop *loop;
	struct ur_task *waiter; /* NULL once the task has left */
	struct ur_post post;
	struct job *prev, *next; /* the queue, under pool.lock */
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job *head, *tail;
	unsigned size;
	bool started;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 4, false};

/* Takes @j off the queue. Called with pool.lock held, @j queued. */
static void queue_unlink(struct job *j)
{
	if (j->prev)
		j->prev->next = j->next;
	else
		pool.head = j->next;
	if (j->next)
		j->next->prev = j->prev;
	else
		pool.tail = j->prev;
	j->prev = j->next = NULL;
	j->queued = false;
}

static void *worker(void *unused)
{
	(void)unused;
	for (;;) {
		pthread_mutex_lock(&pool.lock);
		while (!pool.head)
			pthread_cond_wait(&pool.cond, &pool.lock);
		struct job *j = pool.head;
		queue_unlink(j);
		pthread_mutex_unlock(&pool.lock);

		if (j->pfn)
			j->presult = j->pfn(j->arg);
		else
			j->result = j->fn(j->arg);
		/* The loop outlives its jobs (teardown waits for them), so this cannot dangle. */
		ur_loop_post(j->loop, &j->post);
	}
	return NULL;
}

/*
 * fork() copies the pool's state but not its threads: a child would queue jobs nobody runs. The
 * lock is held across fork (so the child's copy is consistent), and the child starts afresh:
 * no workers, and none of the parent's jobs (they belong to the parent's loops).
 */
static void fork_prepare(void)
{
	pthread_mutex_lock(&pool.lock);
}

static void fork_parent(void)
{
	pthread_mutex_unlock(&pool.lock);
}

static void fork_child(void)
{
	pthread_mutex_init(&pool.lock, NULL);
	pthread_cond_init(&pool.cond, NULL);
	pool.head = pool.tail = NULL;
	pool.started = false;
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_register(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* Starts the workers on first use. Called with pool.lock held. */
static int pool_start(void)
{
	if (pool.started)
		return 0;
	for (unsigned i = 0; i < pool.size; i++) {
		pthread_t th;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		int r = pthread_create(&th, &attr, worker, NULL);
		pthread_attr_destroy(&attr);
		if (r != 0) {
			if (i == 0)
				return -r;
			break; /* fewer workers than asked, but some */
		}
	}
	pool.started = true;
	return 0;
}

int ur_thread_pool_size(unsigned n)
{
	if (n == 0 || n > 256)
		return -EINVAL;
	pthread_mutex_lock(&pool.lock);
	int r = pool.started ? -EBUSY : 0;
	if (!r)
		pool.size = n;
	pthread_mutex_unlock(&pool.lock);
	return r;
}

/* On the loop's thread: the function has returned. */
static void job_posted(void *arg)
{
	struct job *j = arg;
	j->loop->jobs--;
	j->done = true;
	if (j->waiter) {
		ur__task_wake(j->waiter);
		return;
	}
	/* The task left: nobody wants the result, and what it abandoned can go now. */
	if (j->release)
		j->release(j->arg, j->presult);
	free(j);
}

/*
 * The task is cancelled or its timeout scope expired (loop's thread): a job no worker has taken
 * yet comes off the queue now, so that it never runs and delays nobody.
 */
static void job_try_drop(struct job *j)
{
	if (j->dropped)
		return;
	pthread_mutex_lock(&pool.lock);
	if (j->queued) {
		queue_unlink(j);
		j->dropped = true;
	}
	pthread_mutex_unlock(&pool.lock);
}

static void cancel_hook(struct ur_task *t, void *state)
{
	job_try_drop(state);
	ur__task_wake(t);
}

/*
 * Queues @j for the pool and waits for it. Returns 0 with the result in @j (the caller frees
 * it), or a -errno, in which case @j is gone: never queued, dropped from the queue, or handed to
 * job_posted. Either way a stop code (-ECANCELED, -ETIMEDOUT) hands j->arg to j->release, at
 * once (the function never ran) or once the function has returned.
 */
static int run_job(struct job *j)
{
	struct ur_task *t = ur__task_self();
	if (!t) {
		free(j);
		return UR_ENOTASK;
	}
	if (ur__task_interrupted(t)) {
		/* never queued, but the caller reads this code as "left early": release owns arg */
		if (j->release)
			j->release(j->arg, NULL);
		free(j);
		return ur__task_stop_code(t);
	}
	struct ur_loop *l = ur__task_loop(t);
	j->loop = l;
	j->waiter = t;
	j->post.fn = job_posted;
	j->post.arg = j;

	pthread_once(&atfork_once, atfork_register);
	pthread_mutex_lock(&pool.lock);
	int r = pool_start();
	if (r == 0) {
		j->prev = pool.tail;
		if (pool.tail)
			pool.tail->next = j;
		else
			pool.head = j;
		pool.tail = j;
		j->queued = true;
		pthread_cond_signal(&pool.cond);
	}
	pthread_mutex_unlock(&pool.lock);
	if (r < 0) {
		free(j);
		return r;
	}
	l->jobs++;

	/* Cancellation and a timeout scope's expiry both come through the cancel hook. */
	ur__task_set_cancel_hook(t, cancel_hook, j);
	while (!j->done && !j->dropped && !ur__task_interrupted(t))
		ur__task_wait(t);
	ur__task_set_cancel_hook(t, NULL, NULL);
	if (!j->done)
		job_try_drop(j);
	if (j->dropped) {
		/* never ran: as if the task had been stopped before the call */
		l->jobs--;
		if (j->release)
			j->release(j->arg, NULL);
		free(j);
		return ur__task_stop_code(t);
	}
	if (!j->done) {
		j->waiter = NULL; /* job_posted releases and frees it */
		return ur__task_stop_code(t);
	}
	return 0;
}

static int to_thread_call(int (*fn)(void *), void *arg)
{
	struct job *j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->fn = fn;
	j->arg = arg;
	int r = run_job(j);
	if (r < 0)
		return r;
	r = j->result;
	free(j);
	return r;
}

int ur_to_thread(int (*fn)(void *), void *arg)
{
	UR__DEADLINE_CALL(int, to_thread_call(fn, arg));
}

static int to_thread_ptr_call(void *(*fn)(void *), void *arg, void (*release)(void *, void *),
                              void **result)
{
	struct job *j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->pfn = fn;
	j->arg = arg;
	j->release = release;
	int r = run_job(j);
	if (r < 0)
		return r;
	if (result)
		*result = j->presult;
	free(j);
	return 0;
}

int ur_to_thread_ptr(void *(*fn)(void *), void *arg, void (*release)(void *, void *), void **result)
{
	UR__DEADLINE_CALL(int, to_thread_ptr_call(fn, arg, release, result));
}
