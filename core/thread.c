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

/*
 * A worker thread. Joinable: ur_thread_pool_shutdown() (and the library's destructor, at exit)
 * joins the idle ones, so that a program that ends leaves no thread, and no thread's TLS, behind
 * (valgrind's "possibly lost" blocks). One with work to do is never waited for: it is detached
 * (retired), drains the queue unless a new pool has started, and exits on its own, freeing its
 * record.
 */
struct worker {
	pthread_t th;
	bool busy;    /* running a function */
	bool quit;    /* idle at shutdown: exit now, the shutdown joins it */
	bool retired; /* had work at shutdown: detached, drains the queue, frees itself */
	struct worker *next;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job *head, *tail;
	unsigned size;
	bool started;
	struct worker *workers; /* the running pool's, joinable */
	struct worker *stale;   /* a fork child's copy of the parent's: no threads, free them */
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 4, false, NULL, NULL};

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

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	pthread_mutex_lock(&pool.lock);
	for (;;) {
		while (!pool.head && !w->quit && !w->retired)
			pthread_cond_wait(&pool.cond, &pool.lock);
		/* shut down: idle, or retired with the queue drained or a new pool to drain it */
		if (w->quit || !pool.head || (w->retired && pool.started))
			break;
		struct job *j = pool.head;
		queue_unlink(j);
		w->busy = true;
		pthread_mutex_unlock(&pool.lock);

		if (j->pfn)
			j->presult = j->pfn(j->arg);
		else
			j->result = j->fn(j->arg);
		/* The loop outlives its jobs (teardown waits for them), so this cannot dangle. */
		ur_loop_post(j->loop, &j->post);

		pthread_mutex_lock(&pool.lock);
		w->busy = false;
	}
	bool retired = w->retired;
	pthread_mutex_unlock(&pool.lock);
	if (retired)
		free(w); /* detached: nobody else knows it any more */
	return NULL;
}

/* Called with pool.lock held. */
static void free_stale(void)
{
	while (pool.stale) {
		struct worker *w = pool.stale;
		pool.stale = w->next;
		free(w);
	}
}

/*
 * fork() copies the pool's state but not its threads: a child would queue jobs nobody runs. The
 * lock is held across fork (so the child's copy is consistent), and the child starts afresh:
 * no workers, and none of the parent's jobs (they belong to the parent's loops). The records of
 * the parent's workers are freed later, outside the fork handler (pool.stale).
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
	struct worker **end = &pool.stale;
	while (*end)
		end = &(*end)->next;
	*end = pool.workers;
	pool.workers = NULL;
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_register(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* Starts pool.size workers unless the pool runs. Called with pool.lock held. */
static int pool_start(void)
{
	if (pool.started)
		return 0;
	free_stale();
	int err = 0;
	for (unsigned i = 0; i < pool.size; i++) {
		struct worker *w = calloc(1, sizeof(*w));
		if (!w) {
			err = ENOMEM;
			break;
		}
		err = pthread_create(&w->th, NULL, worker_main, w);
		if (err != 0) {
			free(w);
			break;
		}
		w->next = pool.workers;
		pool.workers = w;
	}
	if (!pool.workers)
		return -err;
	pool.started = true; /* perhaps fewer workers than asked, but some */
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

int ur_thread_pool_start(unsigned n)
{
	if (n > 256)
		return -EINVAL;
	pthread_once(&atfork_once, atfork_register);
	pthread_mutex_lock(&pool.lock);
	int r;
	if (pool.started) {
		r = n == 0 || n == pool.size ? 0 : -EBUSY;
	} else {
		if (n)
			pool.size = n;
		r = pool_start();
	}
	pthread_mutex_unlock(&pool.lock);
	return r;
}

int ur_thread_pool_shutdown(void)
{
	struct worker *join = NULL;
	int left = 0;
	pthread_mutex_lock(&pool.lock);
	free_stale();
	/* Queued jobs are someone's: every worker stays until the queue is empty. */
	bool work = pool.head != NULL;
	while (pool.workers) {
		struct worker *w = pool.workers;
		pool.workers = w->next;
		if (w->busy || work) {
			/* never waited for (it may block for long, or be this very thread) */
			w->retired = true;
			pthread_detach(w->th);
			left++;
		} else {
			w->quit = true;
			w->next = join;
			join = w;
		}
	}
	pool.started = false;
	pthread_cond_broadcast(&pool.cond);
	pthread_mutex_unlock(&pool.lock);
	while (join) {
		struct worker *w = join;
		join = w->next;
		pthread_join(w->th, NULL);
		free(w);
	}
	return left;
}

/* At exit (or dlclose): the idle workers are joined; busy ones are left to the exit. */
__attribute__((destructor)) static void pool_fini(void)
{
	ur_thread_pool_shutdown();
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
