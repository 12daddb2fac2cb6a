/* SPDX-License-Identifier: MIT */
/*
 * tests/threads/test_threads.c - everything in core that crosses threads, as a plain program so
 * ThreadSanitizer can run it: Criterion cannot start under TSan (its inheritable arena is mapped
 * where TSan's shadow lives: Snaipe/Criterion#274). Runs in every build; tools/dev.sh runs it in
 * the TSan build (build-tsan/), where a data race is a failure.
 *
 *   posts      8 threads post 20,000 times each to one loop: each post runs once, in order per
 *              thread; a post's payload written before posting is read by the loop after
 *   to_thread  2,000 tasks each hand a job to the worker pool, some with a deadline that expires
 *              while the job runs (the job outlives its task) and some cancelled
 *   dropped    2,000 ur_to_thread_ptr calls, a third cancelled and a third timed out at once or
 *              after some yields, racing the workers that take their jobs: each function runs
 *              at most once, a caller that left gets its release exactly once, with NULL only
 *              if the function never ran (nor runs later)
 *   pool       ur_thread_pool_start/shutdown: shutdown joins idle workers (returns 0), twice is
 *              harmless, a running job is left to finish and still posts back, a job may shut
 *              the pool down itself, a fork child has no workers and starts its own; ends with
 *              the pool running, for the library's destructor to join (suite 'leaks' runs this
 *              under valgrind --leak-check=full --error-exitcode=1: no "possibly lost" TLS)
 *   ring       4 loops on 4 threads pass a token round a ring of posts, 2,000 laps, each hop
 *              resuming a task that waits on a program-completed future
 *   teardown   the loop is freed the moment the last of 8,000 posts from 4 threads has run,
 *              while its poster may still be inside ur_loop_post (20 rounds)
 * Exit status 0 when every check holds; the first failed check is printed with its line.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <urio.h>

/* ThreadSanitizer: gcc says __SANITIZE_THREAD__, clang __has_feature(thread_sanitizer). */
#if defined(__SANITIZE_THREAD__)
#define T_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define T_TSAN 1
#endif
#endif
#ifndef T_TSAN
#define T_TSAN 0
#endif

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);      \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

/* --- posts ----------------------------------------------------------------------------------- */

enum {
	P_THREADS = 8,
	P_EACH = 20000
};

struct p_item {
	struct ur_post post;
	int thread, seq;
	int payload; /* written by the poster before posting: the loop must see it */
};

struct p_state {
	struct ur_loop *loop;
	struct p_item *items;
	int next[P_THREADS]; /* the loop's view: the next seq expected per thread */
	int ran;
	pthread_barrier_t go;
};

static struct p_state ps;

static void p_run(void *arg)
{
	struct p_item *it = arg;
	CHECK(it->payload == it->thread * 1000003 + it->seq);
	CHECK(ps.next[it->thread] == it->seq);
	ps.next[it->thread]++;
	if (++ps.ran == P_THREADS * P_EACH)
		ur_loop_unref(ps.loop);
}

static void *p_thread(void *arg)
{
	int me = (int)(intptr_t)arg;
	pthread_barrier_wait(&ps.go);
	for (int i = 0; i < P_EACH; i++) {
		struct p_item *it = &ps.items[me * P_EACH + i];
		it->thread = me;
		it->seq = i;
		it->payload = me * 1000003 + i;
		it->post.fn = p_run;
		it->post.arg = it;
		CHECK(ur_loop_post(ps.loop, &it->post) == 0);
	}
	return NULL;
}

static void test_posts(void)
{
	pthread_t th[P_THREADS];
	ps.items = calloc(P_THREADS * P_EACH, sizeof(*ps.items));
	CHECK(ps.items);
	CHECK(ur_loop_new(&ps.loop, NULL) == 0);
	ur_loop_ref(ps.loop);
	pthread_barrier_init(&ps.go, NULL, P_THREADS);
	for (int i = 0; i < P_THREADS; i++)
		CHECK(pthread_create(&th[i], NULL, p_thread, (void *)(intptr_t)i) == 0);
	CHECK(ur_loop_run(ps.loop, UR_RUN_DEFAULT) == 0);
	for (int i = 0; i < P_THREADS; i++)
		pthread_join(th[i], NULL);
	CHECK(ps.ran == P_THREADS * P_EACH);
	ur_loop_free(&ps.loop);
	pthread_barrier_destroy(&ps.go);
	free(ps.items);
}

/* --- to_thread ------------------------------------------------------------------------------- */

enum {
	T_TASKS = 2000
};

struct t_job {
	int in;
	int out; /* written by the worker, read by the task after ur_to_thread returns */
};

static int t_work(void *arg)
{
	struct t_job *j = arg;
	if (j->in % 50 == 0) {
		struct timespec ts = {0, 2 * 1000 * 1000};
		nanosleep(&ts, NULL); /* outlives a 1 ms deadline */
	}
	j->out = j->in * 3;
	return j->in;
}

static int t_task(void *arg)
{
	struct t_job *j = arg;
	if (j->in % 50 == 0)
		ur_deadline(UR_MSEC);
	int r = ur_to_thread(t_work, j);
	if (r == -ETIMEDOUT || r == -ECANCELED)
		return r; /* the worker still owns j until it posts back: do not read j->out */
	CHECK(r == j->in);
	CHECK(j->out == j->in * 3);
	return 0;
}

static int t_main(void *arg)
{
	struct t_job *jobs = arg;
	struct ur_task *t[T_TASKS];
	for (int i = 0; i < T_TASKS; i++) {
		jobs[i].in = i;
		CHECK(ur_spawn(ur_current_loop(), &t[i], t_task, &jobs[i], NULL) == 0);
	}
	for (int i = 7; i < T_TASKS; i += 97)
		ur_task_cancel(t[i]);
	for (int i = 0; i < T_TASKS; i++) {
		int r = ur_join(t[i]);
		CHECK(r == 0 || r == -ETIMEDOUT || r == -ECANCELED);
	}
	return 0;
}

static void test_to_thread(void)
{
	struct t_job *jobs = calloc(T_TASKS, sizeof(*jobs));
	int result = -1;
	CHECK(jobs);
	CHECK(ur_run(NULL, t_main, jobs, &result) == 0); /* returns once every job posted back */
	CHECK(result == 0);
	free(jobs);
}

/* --- jobs dropped from the queue ---------------------------------------------------------------
 */

enum {
	Q_TASKS = 2000
};

struct q_job {
	int in;
	atomic_int ran;      /* q_work calls */
	atomic_int released; /* q_release calls */
	atomic_int released_null;
	int res; /* the caller's return */
};

static void *q_work(void *arg)
{
	struct q_job *j = arg;
	atomic_fetch_add(&j->ran, 1);
	if (j->in % 10 == 0) {
		struct timespec ts = {0, 1000 * 1000};
		nanosleep(&ts, NULL); /* the jobs behind it wait queued */
	}
	return j;
}

static void q_release(void *arg, void *result)
{
	struct q_job *j = arg;
	CHECK(result == NULL || result == j);
	if (!result)
		atomic_fetch_add(&j->released_null, 1);
	atomic_fetch_add(&j->released, 1);
}

static int q_task(void *arg)
{
	struct q_job *j = arg;
	if (j->in % 3 == 1)
		ur_deadline((uint64_t)(j->in % 7) * 100 * UR_USEC); /* 0 .. 600 us */
	void *res = NULL;
	j->res = ur_to_thread_ptr(q_work, j, q_release, &res);
	if (j->res == 0)
		CHECK(res == j);
	return 0;
}

static int q_main(void *arg)
{
	struct q_job *jobs = arg;
	struct ur_task *t[Q_TASKS];
	for (int i = 0; i < Q_TASKS; i++) {
		jobs[i].in = i;
		CHECK(ur_spawn(ur_current_loop(), &t[i], q_task, &jobs[i], NULL) == 0);
	}
	ur_yield(); /* every task has queued its job */
	for (int round = 0; round < 9; round++) {
		for (int i = 2 + 3 * round; i < Q_TASKS; i += 27)
			ur_task_cancel(t[i]);
		ur_sleep(100 * UR_USEC);
	}
	for (int i = 0; i < Q_TASKS; i++) {
		if (i % 3 == 2)
			ur_task_cancel(t[i]);
		CHECK(ur_join(t[i]) == 0);
	}
	return 0;
}

static void test_dropped(void)
{
	struct q_job *jobs = calloc(Q_TASKS, sizeof(*jobs));
	int result = -1;
	CHECK(jobs);
	CHECK(ur_run(NULL, q_main, jobs, &result) == 0); /* returns once every job posted back */
	CHECK(result == 0);
	for (int i = 0; i < Q_TASKS; i++) {
		struct q_job *j = &jobs[i];
		int ran = atomic_load(&j->ran), rel = atomic_load(&j->released);
		CHECK(ran <= 1);
		if (j->res == 0) {
			CHECK(ran == 1 && rel == 0);
		} else {
			CHECK(j->res == -ECANCELED || j->res == -ETIMEDOUT);
			CHECK(rel == 1);
			CHECK(atomic_load(&j->released_null) == (ran == 0));
		}
	}
	free(jobs);
}

/* --- starting and stopping the pool ----------------------------------------------------------- */

static atomic_int pool_gate, pool_in_job;

static int pool_wait_gate(void *arg)
{
	(void)arg;
	atomic_store(&pool_in_job, 1);
	while (!atomic_load(&pool_gate)) {
		struct timespec ts = {0, 200 * 1000};
		nanosleep(&ts, NULL);
	}
	return 5;
}

static int pool_gate_task(void *arg)
{
	(void)arg;
	return ur_to_thread(pool_wait_gate, NULL);
}

static int pool_shutdown_inside(void *arg)
{
	(void)arg;
	return ur_thread_pool_shutdown(); /* this worker is busy: left running, not joined */
}

static int pool_body(void *arg)
{
	(void)arg;
	struct ur_task *t;
	CHECK(ur_to_thread(pool_shutdown_inside, NULL) >= 1);
	/* A job running while the pool shuts down finishes and posts back. */
	CHECK(ur_spawn(ur_current_loop(), &t, pool_gate_task, NULL, NULL) == 0);
	while (!atomic_load(&pool_in_job))
		CHECK(ur_sleep(UR_MSEC) == 0);
	CHECK(ur_thread_pool_shutdown() == 1); /* the gated one is left to finish */
	CHECK(ur_thread_pool_shutdown() == 0);
	atomic_store(&pool_gate, 1);
	CHECK(ur_join(t) == 5);
	return 0;
}

static void test_pool(void)
{
	int result = -1;
	CHECK(ur_thread_pool_shutdown() == 0); /* never started */
	CHECK(ur_thread_pool_start(300) == -EINVAL);
	CHECK(ur_thread_pool_start(3) == 0);
	CHECK(ur_thread_pool_start(3) == 0);
	CHECK(ur_thread_pool_start(0) == 0);
	CHECK(ur_thread_pool_start(2) == -EBUSY);
	CHECK(ur_thread_pool_size(2) == -EBUSY);
	CHECK(ur_thread_pool_shutdown() == 0); /* idle: all joined */
	CHECK(ur_thread_pool_shutdown() == 0);
	CHECK(ur_thread_pool_size(2) == 0); /* stopped: the size may change */
	CHECK(ur_run(NULL, pool_body, NULL, &result) == 0);
	CHECK(result == 0);

	/*
	 * A child of fork() has none of the parent's workers, and starts its own. Not under TSan,
	 * which cannot start threads in a child forked from a threaded process.
	 */
	CHECK(ur_thread_pool_start(0) == 0);
#if !T_TSAN
	fflush(NULL);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		int r = -1;
		if (ur_thread_pool_shutdown() != 0)
			_exit(2);
		if (ur_run(NULL, pool_gate_task, NULL, &r) != 0 || r != 5)
			_exit(3);
		_exit(ur_thread_pool_shutdown() == 0 ? 0 : 4);
	}
	int status = 0;
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
#endif
	/* Left running: the library's destructor joins these workers at exit. */
	CHECK(ur_thread_pool_start(0) == 0);
}

/* --- ring of loops --------------------------------------------------------------------------- */

enum {
	R_LOOPS = 4,
	R_LAPS = 2000
};

struct r_node {
	struct ur_loop *loop;
	struct r_node *next;
	struct ur_future token; /* program-completed: resolved by a post from the previous node */
	struct ur_post post;
	int value; /* carried round the ring: written before the post, read after */
	pthread_t th;
	pthread_barrier_t *ready;
};

static struct r_node rn[R_LOOPS];

static void r_deliver(void *arg)
{
	struct r_node *n = arg;
	CHECK(ur_future_resolve(&n->token, n->value) == 0);
}

static int r_task(void *arg)
{
	struct r_node *n = arg;
	for (int i = 0; i < R_LAPS; i++) {
		if (n != &rn[0] || i > 0) {
			int v = ur_await(&n->token);
			CHECK(v >= 0);
			ur_future_init(&n->token, NULL, NULL);
			CHECK(ur_future_begin(n->loop, &n->token) == 0);
			n->next->value = v + 1;
		} else {
			n->next->value = 1;
		}
		n->next->post.fn = r_deliver;
		n->next->post.arg = n->next;
		CHECK(ur_loop_post(n->next->loop, &n->next->post) == 0);
		ur_yield();
	}
	if (n == &rn[0]) {
		int v = ur_await(&n->token); /* the last lap comes home */
		CHECK(v == R_LOOPS * R_LAPS);
	} else {
		ur_cancel(&n->token);
		ur_await(&n->token);
	}
	return 0;
}

static void *r_thread(void *arg)
{
	struct r_node *n = arg;
	int result = -1;
	CHECK(ur_loop_new(&n->loop, NULL) == 0);
	ur_future_init(&n->token, NULL, NULL);
	CHECK(ur_future_begin(n->loop, &n->token) == 0);
	pthread_barrier_wait(n->ready);
	CHECK(ur_run(n->loop, r_task, n, &result) == 0);
	CHECK(result == 0);
	pthread_barrier_wait(n->ready); /* nobody posts to a freed loop */
	ur_loop_free(&n->loop);
	return NULL;
}

static void test_ring(void)
{
	pthread_barrier_t ready;
	pthread_barrier_init(&ready, NULL, R_LOOPS);
	for (int i = 0; i < R_LOOPS; i++) {
		rn[i].next = &rn[(i + 1) % R_LOOPS];
		rn[i].ready = &ready;
	}
	for (int i = 0; i < R_LOOPS; i++)
		CHECK(pthread_create(&rn[i].th, NULL, r_thread, &rn[i]) == 0);
	for (int i = 0; i < R_LOOPS; i++)
		pthread_join(rn[i].th, NULL);
	pthread_barrier_destroy(&ready);
}

/* --- free right after the last post ran ---------------------------------------------------- */

/*
 * The last post running is what tells the owner it may free the loop (as ur_to_thread's job does),
 * while its poster may still be inside ur_loop_post, writing the wake-up. The free must wait for
 * it: no access of the poster may race with the free.
 */
enum {
	D_THREADS = 4,
	D_EACH = 2000,
	D_ROUNDS = 20
};

struct d_state {
	struct ur_loop *loop;
	struct ur_post posts[D_THREADS][D_EACH];
	int ran;
};

static struct d_state ds;

static void d_run(void *arg)
{
	(void)arg;
	if (++ds.ran == D_THREADS * D_EACH)
		ur_loop_unref(ds.loop);
}

static void *d_thread(void *arg)
{
	int me = (int)(intptr_t)arg;
	for (int i = 0; i < D_EACH; i++) {
		ds.posts[me][i].fn = d_run;
		CHECK(ur_loop_post(ds.loop, &ds.posts[me][i]) == 0);
	}
	return NULL;
}

static void test_teardown(void)
{
	for (int round = 0; round < D_ROUNDS; round++) {
		pthread_t th[D_THREADS];
		ds.ran = 0;
		CHECK(ur_loop_new(&ds.loop, NULL) == 0);
		ur_loop_ref(ds.loop);
		for (int i = 0; i < D_THREADS; i++)
			CHECK(pthread_create(&th[i], NULL, d_thread, (void *)(intptr_t)i) == 0);
		CHECK(ur_loop_run(ds.loop, UR_RUN_DEFAULT) == 0);
		CHECK(ds.ran == D_THREADS * D_EACH);
		ur_loop_free(&ds.loop); /* posters may still be inside ur_loop_post */
		for (int i = 0; i < D_THREADS; i++)
			pthread_join(th[i], NULL);
	}
}

int main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;
	struct {
		const char *name;
		void (*fn)(void);
	} tests[] = {{"posts", test_posts},     {"to_thread", test_to_thread},
	             {"dropped", test_dropped}, {"pool", test_pool},
	             {"ring", test_ring},       {"teardown", test_teardown}};
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		if (only && strcmp(only, tests[i].name))
			continue;
		tests[i].fn();
		printf("ok %zu - %s\n", i + 1, tests[i].name);
	}
	return 0;
}
