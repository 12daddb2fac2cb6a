/* SPDX-License-Identifier: MIT */
/*
 * shard.c - thread-per-core: N loops on N threads (N = argv[1], default 2), each loop created on
 * the thread that runs it. The main task shards jobs over them with ur_loop_post(); each job runs
 * as a task on its shard, then posts its result home, where the post resolves a program-completed
 * future that the main task gathers. Nothing is shared but the posts: no locks.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <urio.h>

#define MAX_SHARDS 16
#define JOBS       8
#define SPAN       10000

static struct shard {
	pthread_t thread;
	struct ur_loop *loop;
	struct ur_post stop;
} shards[MAX_SHARDS];

static pthread_barrier_t ready, posted;

struct job {
	int lo, hi, shard, primes;
	struct ur_loop *home, *ran_on;
	struct ur_future done;   /* pending on the home loop until the result arrives */
	struct ur_post go, back; /* caller-owned: alive until their functions have run */
};

static int count_primes(int lo, int hi)
{
	int n = 0;
	for (int i = lo < 2 ? 2 : lo; i < hi; i++) {
		int d = 2;
		while (d * d <= i && i % d)
			d++;
		n += d * d > i;
	}
	return n;
}

/* On the home loop's thread. */
static void deliver(void *arg)
{
	struct job *j = arg;
	ur_future_resolve(&j->done, j->primes);
}

/* A task on the shard's loop. */
static int run_job(void *arg)
{
	struct job *j = arg;
	j->ran_on = ur_current_loop();
	j->primes = count_primes(j->lo, j->hi);
	j->back = (struct ur_post){.fn = deliver, .arg = j};
	ur_loop_post(j->home, &j->back); /* the last touch of *j on this thread */
	return 0;
}

/* On the shard's thread: the job becomes a task there. */
static void start_job(void *arg)
{
	struct job *j = arg;
	struct ur_task *t;
	if (ur_spawn(shards[j->shard].loop, &t, run_job, j, NULL) < 0)
		abort(); /* -ENOMEM */
	ur_task_detach(t);
}

static void stop_shard(void *loop)
{
	ur_loop_unref(loop); /* its UR_RUN_DEFAULT returns once nothing is pending */
}

static void *shard_main(void *arg)
{
	struct shard *s = arg;
	if (ur_loop_new(&s->loop, NULL) < 0)
		abort();
	ur_loop_ref(s->loop); /* keep running with nothing pending: posts will come */
	pthread_barrier_wait(&ready);
	ur_loop_run(s->loop, UR_RUN_DEFAULT);
	/* Free a loop only once no thread can still be inside ur_loop_post() on it. */
	pthread_barrier_wait(&posted);
	ur_loop_free(&s->loop);
	return NULL;
}

static int main_task(void *arg)
{
	int n = *(int *)arg, total = 0;
	struct job jobs[JOBS];
	struct ur_future *fs[JOBS];
	for (int i = 0; i < JOBS; i++) {
		struct job *j = &jobs[i];
		*j = (struct job){.lo = i * SPAN, .hi = (i + 1) * SPAN, .shard = i % n};
		j->home = ur_current_loop();
		j->go = (struct ur_post){.fn = start_job, .arg = j};
		ur_future_init(&j->done, NULL, NULL);
		/* Neither can fail here: the future is new and the shard loop is held open. */
		if (ur_future_begin(j->home, &j->done) < 0 ||
		    ur_loop_post(shards[j->shard].loop, &j->go) < 0)
			abort();
		fs[i] = &j->done;
	}
	int r = ur_gather(fs, JOBS, 0);
	for (int i = 0; i < JOBS; i++) {
		printf("[%5d, %5d) on shard %d: %4d primes\n", jobs[i].lo, jobs[i].hi,
		       jobs[i].shard, jobs[i].done.res);
		total += jobs[i].done.res;
		if (jobs[i].ran_on != shards[jobs[i].shard].loop)
			r = -1;
	}
	printf("%d primes below %d on %d shards\n", total, JOBS * SPAN, n);
	return r < 0 ? r : total == count_primes(0, JOBS * SPAN) ? 0 : -1;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 2, result = -1;
	struct ur_loop *home;
	if (n < 1 || n > MAX_SHARDS || ur_loop_new(&home, NULL) < 0)
		return 2;
	pthread_barrier_init(&ready, NULL, (unsigned)n + 1);
	pthread_barrier_init(&posted, NULL, (unsigned)n + 1);
	for (int i = 0; i < n; i++)
		if (pthread_create(&shards[i].thread, NULL, shard_main, &shards[i]) != 0)
			abort();
	pthread_barrier_wait(&ready);
	int r = ur_run(home, main_task, &n, &result);
	for (int i = 0; i < n; i++) {
		shards[i].stop = (struct ur_post){.fn = stop_shard, .arg = shards[i].loop};
		ur_loop_post(shards[i].loop, &shards[i].stop);
	}
	pthread_barrier_wait(&posted);
	for (int i = 0; i < n; i++)
		pthread_join(shards[i].thread, NULL);
	ur_loop_free(&home); /* after the joins: the shards posted to it */
	return r < 0 || result < 0;
}
