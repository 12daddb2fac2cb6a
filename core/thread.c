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
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "internal.h"

struct job {
	int (*fn)(void *);
	void *arg;
	int result;
	bool done;
	struct ur_loop *loop;
	struct ur_task *waiter; /* NULL once the task has left */
	struct ur_post post;
	struct job *next;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job *head, *tail;
	unsigned size;
	bool started;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 4, false};

static void *worker(void *unused)
{
	(void)unused;
	for (;;) {
		pthread_mutex_lock(&pool.lock);
		while (!pool.head)
			pthread_cond_wait(&pool.cond, &pool.lock);
		struct job *j = pool.head;
		pool.head = j->next;
		if (!pool.head)
			pool.tail = NULL;
		pthread_mutex_unlock(&pool.lock);

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
	if (j->waiter)
		ur__task_wake(j->waiter);
	else
		free(j); /* the task left: nobody wants the result */
}

static void timer_wake(struct ur_future *f, void *arg)
{
	(void)f;
	ur__task_wake(arg);
}

static void cancel_wake(struct ur_task *t, void *state)
{
	(void)state;
	ur__task_wake(t);
}

int ur_to_thread(int (*fn)(void *), void *arg)
{
	struct ur_task *t = ur__task_self();
	if (!t)
		return UR_ENOTASK;
	if (ur__task_cancelled(t))
		return -ECANCELED;
	struct ur_loop *l = ur__task_loop(t);
	struct job *j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	*j = (struct job){.fn = fn, .arg = arg, .loop = l, .waiter = t};
	j->post.fn = job_posted;
	j->post.arg = j;

	pthread_once(&atfork_once, atfork_register);
	pthread_mutex_lock(&pool.lock);
	int r = pool_start();
	if (r == 0) {
		if (pool.tail)
			pool.tail->next = j;
		else
			pool.head = j;
		pool.tail = j;
		pthread_cond_signal(&pool.cond);
	}
	pthread_mutex_unlock(&pool.lock);
	if (r < 0) {
		free(j);
		return r;
	}
	l->jobs++;

	/* An optional deadline (ur_deadline): a kernel timeout that wakes us. */
	struct ur_future timer;
	uint64_t d = ur__task_take_deadline(t);
	ur_future_init(&timer, timer_wake, t);
	bool timed = d != UR_NO_DEADLINE && ur_timeout_start(l, &timer, d, 0) == 0;
	ur__task_set_cancel_hook(t, cancel_wake, NULL);
	while (!j->done && !ur__task_cancelled(t) && !(timed && ur_future_done(&timer)))
		ur__task_wait(t);
	ur__task_set_cancel_hook(t, NULL, NULL);
	if (timed && !ur_future_done(&timer)) {
		ur_cancel(&timer);
		ur_future_set_callback(&timer, NULL, NULL);
		ur__await_uninterrupted(&timer);
	}
	if (!j->done) {
		j->waiter = NULL; /* job_posted frees it */
		return ur__task_cancelled(t) ? -ECANCELED : -ETIMEDOUT;
	}
	r = j->result;
	free(j);
	return r;
}
