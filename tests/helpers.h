/* SPDX-License-Identifier: MIT */
/*
 * tests/helpers.h - what every test suite shares: loops made the way the run asks for, descriptor
 * counting, loopback sockets. Header-only so each suite stays one executable.
 */
#ifndef UR_TEST_HELPERS_H
#define UR_TEST_HELPERS_H

#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <dirent.h>
#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <urio.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define T_UNDER_VALGRIND() RUNNING_ON_VALGRIND
#else
#define T_UNDER_VALGRIND() 0
#endif

/*
 * valgrind runs one thread at a time and does not let go of its lock while a thread sleeps in
 * io_uring_enter(2). urio bounds its kernel waits on valgrind and yields (core/valgrind.h), so
 * the core thread tests run there; a test that still cannot skips (ASan/UBSan runs it).
 */
#define t_skip_under_valgrind()                                                                    \
	do {                                                                                       \
		if (T_UNDER_VALGRIND())                                                            \
			cr_skip_test(                                                              \
			    "valgrind cannot run another thread while io_uring_enter sleeps");     \
	} while (0)

/*
 * Fault builds (meson -Dfault_injection=true; core/fault.h, docs/reliability.md). A test that
 * cannot hold under some fault classes names them and says why: they are turned off for that
 * test alone (Criterion runs each test in a process of its own, and the loop reads
 * UR_FAULT_SPEC when it is made, so call this first). If that leaves no class active the test is
 * skipped, since it would only repeat the fault-free run. A file whose every test shares the
 * reason defines T_FAULT_UNSAFE_FILE and T_FAULT_UNSAFE_WHY before including this header;
 * t_loop() applies them.
 */
#include "../core/fault.h"

static inline bool t_fault_active(void)
{
	const char *seed = getenv("UR_FAULT_SEED");
	return UR_FAULT_INJECTION && seed && *seed;
}

/* Turns @classes off in UR_FAULT_SPEC; false if that leaves none on (the spec is then unchanged).
 */
static inline bool t_fault_narrow(const char *classes)
{
	static const char *const names[] = {UR__FAULT_NAMES};
	if (!t_fault_active())
		return true;
	const char *spec = getenv("UR_FAULT_SPEC");
	if (!spec || !*spec || !strcmp(spec, "all"))
		spec = UR__FAULT_ALL;
	char left[128] = "";
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t n = strlen(names[i]);
		bool on = false, unsafe = false;
		for (const char *p = spec; (p = strstr(p, names[i])); p += n)
			on |= (p == spec || p[-1] == ',') && (p[n] == ',' || !p[n]);
		for (const char *p = classes; (p = strstr(p, names[i])); p += n)
			unsafe |= (p == classes || p[-1] == ',') && (p[n] == ',' || !p[n]);
		if (on && !unsafe)
			snprintf(left + strlen(left), sizeof(left) - strlen(left), "%s%s",
			         left[0] ? "," : "", names[i]);
	}
	if (!left[0])
		return false;
	setenv("UR_FAULT_SPEC", left, 1);
	return true;
}

static inline void t_fault_unsafe(const char *classes, const char *why)
{
	if (!t_fault_narrow(classes))
		cr_skip_test("fault injection: cannot hold under %s: %s", classes, why);
}

#ifdef T_FAULT_UNSAFE_FILE
/*
 * The file's classes are off for every loop of the process, those the library makes itself (the
 * server helper's threads) too: narrowed before any test runs; t_loop() skips if none is left.
 */
__attribute__((constructor)) static void t_fault_unsafe_file(void)
{
	t_fault_narrow(T_FAULT_UNSAFE_FILE);
}
#endif

/* In a fault build, a failed test prints how to replay it: the seed, rate and classes. */
ReportHook(POST_TEST)(struct criterion_test_stats *st)
{
	if (!t_fault_active() || st->test_status != CR_STATUS_FAILED)
		return;
	const char *rate = getenv("UR_FAULT_RATE"), *spec = getenv("UR_FAULT_SPEC");
	fprintf(stderr,
	        "fault injection: replay with UR_FAULT_SEED=%s UR_FAULT_RATE=%s UR_FAULT_SPEC=%s "
	        "%s --filter '%s/%s'\n",
	        getenv("UR_FAULT_SEED"), rate ? rate : "0.1", spec ? spec : "all",
	        program_invocation_name, st->test->category, st->test->name);
}

/*
 * Every suite runs twice under meson: as is, and with UR_TEST_PLAIN=1, which sets each loop up
 * with UR_LOOP_PLAIN_SETUP (the setup of kernels that refuse the optional flags).
 */
static inline uint32_t t_loop_flags(void)
{
	const char *p = getenv("UR_TEST_PLAIN");
	return (p && *p == '1') ? UR_LOOP_PLAIN_SETUP : 0;
}

/*
 * ur_loop_new() with this pass's setup, returning its result instead of asserting: for loops made
 * in forked children and on other threads, where a failed cr_assert cannot report.
 */
static inline int t_loop_new(struct ur_loop **l)
{
	struct ur_loop_opts o = {.flags = t_loop_flags()};
	return ur_loop_new(l, &o);
}

static inline struct ur_loop *t_loop_opts(struct ur_loop_opts *o)
{
	struct ur_loop *l = NULL;
	struct ur_loop_opts d = {0};
	if (!o)
		o = &d;
#ifdef T_FAULT_UNSAFE_FILE
	t_fault_unsafe(T_FAULT_UNSAFE_FILE, T_FAULT_UNSAFE_WHY);
#endif
	o->flags |= t_loop_flags();
	int ret = ur_loop_new(&l, o);
	cr_assert_eq(ret, 0, "ur_loop_new: %s", ur_strerror(ret));
	if (t_loop_flags())
		cr_assert_eq(ur_loop_setup_flags(l), 0);
	return l;
}

static inline struct ur_loop *t_loop(void)
{
	return t_loop_opts(NULL);
}

/*
 * ur_run() on a loop made by t_loop() (so the plain-setup pass covers tasks too), freed after:
 * what ur_run(NULL, ...) does with a loop of its own, tasks left behind cancelled and awaited.
 */
static inline int t_run(ur_task_fn *main, void *arg, int *result)
{
	struct ur_loop *l = t_loop_opts(NULL);
	int r = ur_run(l, main, arg, result);
	ur_loop_free(&l);
	return r;
}

/* Asserts nothing is left pending or in flight, then frees the loop. */
static inline void t_loop_done(struct ur_loop **l)
{
	struct ur_loop_stats st;
	ur_loop_stats(*l, &st);
	cr_assert_eq(st.pending, 0, "futures still pending: %u", st.pending);
	cr_assert_eq(st.waiting, 0, "SQEs still in the local queue: %u", st.waiting);
	ur_loop_free(l);
	cr_assert_null(*l);
}

/*
 * A gate a worker thread waits at until the test opens it: for a function that must still be
 * running when the caller gives up on it (timed out, cancelled), instead of one that sleeps long
 * enough on an idle machine. Open it before the loop's teardown, which waits for the function.
 * Not on a task's stack: the worker still unlocks it after the opener has moved on.
 */
struct t_gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool open;
};
#define T_GATE_INIT                                                                                \
	{                                                                                          \
		PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false                         \
	}

static inline void t_gate_wait(struct t_gate *g)
{
	pthread_mutex_lock(&g->lock);
	while (!g->open)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
}

static inline void t_gate_open(struct t_gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->open = true;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

/* Number of open descriptors of this process. */
static inline int t_count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	cr_assert_not_null(d);
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory stream's own descriptor */
}

static inline int t_fd_is_open(int fd)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return access(path, F_OK) == 0;
}

/* A TCP listener on 127.0.0.1, port chosen by the kernel; *port receives it (host order). */
static inline int t_listen_tcp(uint16_t *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(fd, 128), 0);
	socklen_t len = sizeof(a);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	if (port)
		*port = ntohs(a.sin_port);
	return fd;
}

/*
 * Waits (bounded) until listening socket @lfd's accept queue is full, so that the next connect to
 * it gets no answer: the kernel finishes loopback handshakes asynchronously. For a listener,
 * TCP_INFO's unacked is the accept queue's length and sacked its limit (the backlog).
 */
static inline void t_wait_accept_queue_full(int lfd)
{
	for (int i = 0; i < 10000; i++) {
		struct tcp_info ti;
		socklen_t len = sizeof(ti);
		cr_assert_eq(getsockopt(lfd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
		if (ti.tcpi_unacked > ti.tcpi_sacked)
			return;
		usleep(1000);
	}
	cr_assert_fail("the accept queue of fd %d never filled", lfd);
}

/*
 * Waits (bounded) until thread @tid is inside system call @nr (/proc/self/task/TID/syscall): a
 * thread blocked in the kernel, not about to enter it. Returns false if it was not seen there
 * (under valgrind, not looked for at all; callers then go on regardless).
 */
static inline bool t_wait_in_syscall(pid_t tid, long nr)
{
	char path[64];
	if (T_UNDER_VALGRIND())
		return false; /* its lock is held across the call: we would run only when it is over
		               */
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	for (int i = 0; i < 5000; i++) {
		FILE *f = fopen(path, "r");
		long cur = -1;
		if (f) {
			if (fscanf(f, "%ld", &cur) != 1)
				cur = -1;
			fclose(f);
		}
		if (cur == nr)
			return true;
		usleep(1000);
	}
	return false;
}

static inline struct sockaddr_in t_loopback(uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons(port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	return a;
}

/* A connected pair of TCP sockets over loopback (blocking, for the test's own side). */
static inline void t_tcp_pair(int *client, int *server)
{
	uint16_t port;
	int lfd = t_listen_tcp(&port);
	struct sockaddr_in a = t_loopback(port);
	*client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(*client, 0);
	cr_assert_eq(connect(*client, (struct sockaddr *)&a, sizeof(a)), 0);
	*server = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	cr_assert_geq(*server, 0);
	close(lfd);
}

/* Asserts an exact result, naming both codes on failure. */
#define ASSERT_RES(got, want)                                                                      \
	do {                                                                                       \
		int got_ = (got), want_ = (want);                                                  \
		cr_assert_eq(got_, want_, "%s: got %d (%s), want %d (%s)", #got, got_,             \
		             ur_strerror_name(got_), want_, ur_strerror_name(want_));              \
	} while (0)

/* Runs the loop until @f is done (or the loop has nothing left). */
static inline void t_run_until(struct ur_loop *l, const struct ur_future *f)
{
	while (!ur_future_done(f)) {
		int r = ur_loop_run(l, UR_RUN_ONCE);
		cr_assert_geq(r, 0, "ur_loop_run: %s", ur_strerror(r));
	}
}

/* A callback that counts its calls in the int its argument points to. */
static inline void t_count_cb(struct ur_future *f, void *arg)
{
	(void)f;
	(*(int *)arg)++;
}

#endif
