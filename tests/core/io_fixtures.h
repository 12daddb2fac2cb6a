/* SPDX-License-Identifier: MIT */
/*
 * tests/core/io_fixtures.h - what the operation suites (test_file.c, test_socket.c,
 * test_bufring.c, test_cancel.c) share: a future that records its completions, loop helpers, a
 * temporary directory per file test (.init/.fini), patterns.
 *
 * Every buffer the kernel writes into is initialised first, or urio's valgrind client requests
 * (core/valgrind.h) mark it: valgrind does not see io_uring's writes.
 */
#ifndef UR_TEST_IO_FIXTURES_H
#define UR_TEST_IO_FIXTURES_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <poll.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

/*
 * The raw operations of these suites assert the exact result of each start and completion, which
 * these fault classes change by design (see t_fault_unsafe in helpers.h).
 */
#define T_FAULT_UNSAFE_FILE "short,eintr,eagain,reset,enomem"
#define T_FAULT_UNSAFE_WHY                                                                         \
	"raw operations: each asserts the exact result of its own start and completion"
#include "helpers.h"

/* ---- a future that records its completions ---- */

struct op {
	struct ur_future f;
	int calls;   /* completions delivered */
	int res;     /* res of the latest */
	bool more;   /* ur_future_more() of the latest */
	uint64_t at; /* ur_now_ns() of the latest */
};

static inline void op_cb(struct ur_future *f, void *arg)
{
	struct op *o = arg;
	o->calls++;
	o->res = f->res;
	o->more = ur_future_more(f);
	o->at = ur_now_ns();
}

static inline void op_init(struct op *o)
{
	memset(o, 0, sizeof(*o));
	ur_future_init(&o->f, op_cb, o);
}

/* Starts an operation on a fresh op: the start must succeed and must not complete it inline. */
#define START(o, call)                                                                             \
	do {                                                                                       \
		op_init(o);                                                                        \
		int start_ret_ = (call);                                                           \
		cr_assert_eq(start_ret_, 0, "%s: %s", #call, ur_strerror(start_ret_));             \
		cr_assert_eq((o)->calls, 0, "%s completed inside its start call", #call);          \
		cr_assert_eq(ur_future_state(&(o)->f), UR_FUTURE_PENDING);                         \
	} while (0)

/* Runs the loop until @o's final completion; asserts its callback ran once; returns res. */
static inline int op_wait(struct ur_loop *l, struct op *o)
{
	t_run_until(l, &o->f);
	cr_assert_eq(o->calls, 1, "callback ran %d times", o->calls);
	cr_assert_eq(o->res, o->f.res);
	cr_assert_not(o->more, "final completion flagged more");
	return o->res;
}

/* Lets the loop submit what is queued and handle what is ready, without blocking. */
static inline void settle(struct ur_loop *l)
{
	for (int i = 0; i < 3; i++)
		cr_assert_geq(ur_loop_run(l, UR_RUN_NOWAIT), 0);
}

/* Runs the loop until nothing is pending. */
static inline void drain(struct ur_loop *l)
{
	int r = ur_loop_run(l, UR_RUN_DEFAULT);
	cr_assert_eq(r, 0, "ur_loop_run: %d (%s)", r, ur_strerror_name(r));
}

static inline void need_op(struct ur_loop *l, unsigned op, const char *name)
{
	if (!ur_loop_supports(l, op)) {
		ur_loop_free(&l);
		cr_skip_test("kernel lacks %s", name);
	}
}

static inline void fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
	uint32_t x = seed ? seed : 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)(x >> 11);
	}
}

static inline uint16_t local_port(int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	memset(&a, 0, sizeof(a));
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	return ntohs(a.sin_port);
}

/* ---- a temporary directory per file test ---- */

static struct {
	char path[64];
	int dfd;
} g_dir = {.dfd = -1};

static inline void dir_setup(void)
{
	snprintf(g_dir.path, sizeof(g_dir.path), "/tmp/urio-test-io-XXXXXX");
	cr_assert_not_null(mkdtemp(g_dir.path), "mkdtemp: %s", strerror(errno));
	g_dir.dfd = open(g_dir.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(g_dir.dfd, 0);
}

static inline int rm_entry(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(p);
}

static inline void dir_teardown(void)
{
	if (g_dir.dfd >= 0)
		close(g_dir.dfd);
	g_dir.dfd = -1;
	if (g_dir.path[0])
		nftw(g_dir.path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	g_dir.path[0] = '\0';
}

/* Creates @name in the test directory with @len bytes of @data; returns an O_RDWR descriptor. */
static inline int make_file(const char *name, const void *data, size_t len)
{
	int fd = openat(g_dir.dfd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0);
	if (len)
		cr_assert_eq(write(fd, data, len), (ssize_t)len);
	cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

/* A buffer ring on *@l; skips the test (freeing the loop) where the kernel has none. */
static inline struct ur_bufring *t_bufring(struct ur_loop **l, unsigned count, size_t size)
{
	struct ur_bufring *br = NULL;
	int r = ur_bufring_new(*l, &br, count, size);
	if (r == -EOPNOTSUPP) {
		ur_loop_free(l);
		cr_skip_test("kernel has no provided buffer rings (5.19)");
	}
	cr_assert_eq(r, 0, "ur_bufring_new: %s", ur_strerror(r));
	cr_assert_not_null(br);
	cr_assert_eq(ur_bufring_size(br), size);
	cr_assert_eq(ur_bufring_available(br), count);
	return br;
}

#endif
