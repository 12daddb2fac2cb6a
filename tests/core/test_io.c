/* SPDX-License-Identifier: MIT */
/*
 * tests/core/test_io.c - the operations of urio/io.h on files and sockets, buffer rings with
 * multishot recv (urio/bufring.h), and per-operation deadlines (ur_future_set_deadline).
 *
 * Every buffer the kernel writes into is initialised first: valgrind does not see io_uring's
 * writes, and would otherwise report the comparisons below as reads of uninitialised memory.
 */
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

#include "helpers.h"

TestSuite(io, .timeout = 30);

/* ---- a future that records its completions ---- */

struct op {
	struct ur_future f;
	int calls;   /* completions delivered */
	int res;     /* res of the latest */
	bool more;   /* ur_future_more() of the latest */
	uint64_t at; /* ur_now_ns() of the latest */
};

static void op_cb(struct ur_future *f, void *arg)
{
	struct op *o = arg;
	o->calls++;
	o->res = f->res;
	o->more = ur_future_more(f);
	o->at = ur_now_ns();
}

static void op_init(struct op *o)
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
static int op_wait(struct ur_loop *l, struct op *o)
{
	t_run_until(l, &o->f);
	cr_assert_eq(o->calls, 1, "callback ran %d times", o->calls);
	cr_assert_eq(o->res, o->f.res);
	cr_assert_not(o->more, "final completion flagged more");
	return o->res;
}

/* Lets the loop submit what is queued and handle what is ready, without blocking. */
static void settle(struct ur_loop *l)
{
	for (int i = 0; i < 3; i++)
		cr_assert_geq(ur_loop_run(l, UR_RUN_NOWAIT), 0);
}

/* Runs the loop until nothing is pending. */
static void drain(struct ur_loop *l)
{
	int r = ur_loop_run(l, UR_RUN_DEFAULT);
	cr_assert_eq(r, 0, "ur_loop_run: %d (%s)", r, ur_strerror_name(r));
}

static void need_op(struct ur_loop *l, unsigned op, const char *name)
{
	if (!ur_loop_supports(l, op)) {
		ur_loop_free(&l);
		cr_skip_test("kernel lacks %s", name);
	}
}

static void fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
	uint32_t x = seed ? seed : 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)(x >> 11);
	}
}

static uint16_t local_port(int fd)
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

static void dir_setup(void)
{
	snprintf(g_dir.path, sizeof(g_dir.path), "/tmp/urio-test-io-XXXXXX");
	cr_assert_not_null(mkdtemp(g_dir.path), "mkdtemp: %s", strerror(errno));
	g_dir.dfd = open(g_dir.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(g_dir.dfd, 0);
}

static int rm_entry(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(p);
}

static void dir_teardown(void)
{
	if (g_dir.dfd >= 0)
		close(g_dir.dfd);
	g_dir.dfd = -1;
	if (g_dir.path[0])
		nftw(g_dir.path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	g_dir.path[0] = '\0';
}

/* Creates @name in the test directory with @len bytes of @data; returns an O_RDWR descriptor. */
static int make_file(const char *name, const void *data, size_t len)
{
	int fd = openat(g_dir.dfd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0);
	if (len)
		cr_assert_eq(write(fd, data, len), (ssize_t)len);
	cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

/* ==== files ==== */

Test(io, openat_gives_cloexec_fd_and_close_closes_it, .init = dir_setup, .fini = dir_teardown)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	struct op o;

	START(&o, ur_openat_start(l, &o.f, g_dir.dfd, "a", O_RDWR | O_CREAT | O_EXCL, 0600));
	int fd = op_wait(l, &o);
	cr_assert_geq(fd, 0, "openat: %s", ur_strerror(fd));
	cr_assert(t_fd_is_open(fd));
	int fdfl = fcntl(fd, F_GETFD);
	cr_assert_eq(fdfl & FD_CLOEXEC, FD_CLOEXEC, "O_CLOEXEC not set: F_GETFD = %#x", fdfl);
	cr_assert_eq(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDWR);
	struct stat st;
	cr_assert_eq(fstatat(g_dir.dfd, "a", &st, 0), 0);
	cr_assert(S_ISREG(st.st_mode));
	cr_assert_eq(st.st_mode & 0777, 0600);

	/* O_EXCL on an existing file: the kernel's errno, unchanged. */
	START(&o, ur_openat_start(l, &o.f, g_dir.dfd, "a", O_RDWR | O_CREAT | O_EXCL, 0600));
	ASSERT_RES(op_wait(l, &o), -EEXIST);

	/* An absolute path ignores dfd, as openat(2) does. */
	char abs[128];
	snprintf(abs, sizeof(abs), "%s/a", g_dir.path);
	START(&o, ur_openat_start(l, &o.f, -1, abs, O_RDONLY, 0));
	int fd2 = op_wait(l, &o);
	cr_assert_geq(fd2, 0, "openat: %s", ur_strerror(fd2));
	cr_assert_neq(fd2, fd);
	cr_assert_eq(fcntl(fd2, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	cr_assert_eq(fcntl(fd2, F_GETFL) & O_ACCMODE, O_RDONLY);

	START(&o, ur_close_start(l, &o.f, fd));
	ASSERT_RES(op_wait(l, &o), 0);
	cr_assert_not(t_fd_is_open(fd), "fd %d still open after close completed", fd);
	errno = 0;
	cr_assert_eq(fcntl(fd, F_GETFD), -1);
	cr_assert_eq(errno, EBADF);

	START(&o, ur_close_start(l, &o.f, fd2));
	ASSERT_RES(op_wait(l, &o), 0);
	cr_assert_not(t_fd_is_open(fd2));

	/* Closing what is not open. */
	START(&o, ur_close_start(l, &o.f, fd));
	ASSERT_RES(op_wait(l, &o), -EBADF);
	cr_assert_not(t_fd_is_open(9999));
	START(&o, ur_close_start(l, &o.f, 9999));
	ASSERT_RES(op_wait(l, &o), -EBADF);
	START(&o, ur_close_start(l, &o.f, -1));
	ASSERT_RES(op_wait(l, &o), -EBADF);

	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

Test(io, openat_missing_file_is_enoent_once, .init = dir_setup, .fini = dir_teardown)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	struct op o;

	START(&o, ur_openat_start(l, &o.f, g_dir.dfd, "missing", O_RDONLY, 0));
	ASSERT_RES(op_wait(l, &o), -ENOENT);
	settle(l);
	cr_assert_eq(o.calls, 1, "callback ran %d times", o.calls);
	cr_assert(ur_future_done(&o.f));

	/* A missing directory component, and O_DIRECTORY on a regular file. */
	START(&o, ur_openat_start(l, &o.f, g_dir.dfd, "nodir/x", O_RDWR | O_CREAT, 0600));
	ASSERT_RES(op_wait(l, &o), -ENOENT);
	close(make_file("plain", "x", 1));
	START(&o, ur_openat_start(l, &o.f, g_dir.dfd, "plain", O_RDONLY | O_DIRECTORY, 0));
	ASSERT_RES(op_wait(l, &o), -ENOTDIR);

	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

Test(io, write_then_read_back_exact_bytes, .init = dir_setup, .fini = dir_teardown)
{
	struct ur_loop *l = t_loop();
	struct op o;
	uint8_t data[1000], buf[1000];
	fill_pattern(data, sizeof(data), 7);
	int fd = make_file("f", NULL, 0);

	START(&o, ur_write_start(l, &o.f, fd, data, sizeof(data), 0));
	ASSERT_RES(op_wait(l, &o), 1000);
	memset(buf, 0, sizeof(buf));
	START(&o, ur_read_start(l, &o.f, fd, buf, sizeof(buf), 0));
	ASSERT_RES(op_wait(l, &o), 1000);
	cr_assert_arr_eq(buf, data, 1000);

	/* Positioned: 50 bytes at offset 100. */
	memset(buf, 0xEE, sizeof(buf));
	START(&o, ur_read_start(l, &o.f, fd, buf, 50, 100));
	ASSERT_RES(op_wait(l, &o), 50);
	cr_assert_arr_eq(buf, data + 100, 50);
	cr_assert_eq(buf[50], 0xEE, "read wrote past the bytes it reported");

	/* Overwrite in the middle, read around it. */
	START(&o, ur_write_start(l, &o.f, fd, "XYZ", 3, 500));
	ASSERT_RES(op_wait(l, &o), 3);
	memset(buf, 0, sizeof(buf));
	START(&o, ur_read_start(l, &o.f, fd, buf, 10, 495));
	ASSERT_RES(op_wait(l, &o), 10);
	cr_assert_arr_eq(buf, data + 495, 5);
	cr_assert_arr_eq(buf + 5, "XYZ", 3);
	cr_assert_arr_eq(buf + 8, data + 503, 2);

	/* Positioned I/O leaves the file position alone. */
	cr_assert_eq(lseek(fd, 0, SEEK_CUR), 0);
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_eq(st.st_size, 1000);

	/* A write past the end leaves a hole of zeros. */
	START(&o, ur_write_start(l, &o.f, fd, "end", 3, 4096));
	ASSERT_RES(op_wait(l, &o), 3);
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_eq(st.st_size, 4099);
	memset(buf, 0xEE, sizeof(buf));
	START(&o, ur_read_start(l, &o.f, fd, buf, 8, 4091));
	ASSERT_RES(op_wait(l, &o), 8);
	cr_assert_arr_eq(buf, "\0\0\0\0\0end", 8);

	/* A read-only descriptor cannot be written. */
	int ro = openat(g_dir.dfd, "f", O_RDONLY | O_CLOEXEC);
	cr_assert_geq(ro, 0);
	START(&o, ur_write_start(l, &o.f, ro, "x", 1, 0));
	ASSERT_RES(op_wait(l, &o), -EBADF);
	close(ro);

	close(fd);
	t_loop_done(&l);
}

Test(io, short_read_at_end_of_file, .init = dir_setup, .fini = dir_teardown)
{
	struct ur_loop *l = t_loop();
	struct op o;
	static uint8_t buf[4096];
	int fd = make_file("ten", "0123456789", 10);

	memset(buf, 0xAA, sizeof(buf));
	START(&o, ur_read_start(l, &o.f, fd, buf, sizeof(buf), 0));
	ASSERT_RES(op_wait(l, &o), 10);
	cr_assert_arr_eq(buf, "0123456789", 10);
	cr_assert_eq(buf[10], 0xAA, "short read wrote past the bytes it reported");

	START(&o, ur_read_start(l, &o.f, fd, buf, sizeof(buf), 10));
	ASSERT_RES(op_wait(l, &o), 0);
	START(&o, ur_read_start(l, &o.f, fd, buf, sizeof(buf), 7));
	ASSERT_RES(op_wait(l, &o), 3);
	cr_assert_arr_eq(buf, "789", 3);
	START(&o, ur_read_start(l, &o.f, fd, buf, sizeof(buf), 1u << 20));
	ASSERT_RES(op_wait(l, &o), 0);

	close(fd);
	t_loop_done(&l);
}

Test(io, off_current_uses_and_moves_the_file_position, .init = dir_setup, .fini = dir_teardown)
{
	struct ur_loop *l = t_loop();
	struct op o;
	char buf[16];
	int fd = make_file("pos", NULL, 0);

	START(&o, ur_write_start(l, &o.f, fd, "hello", 5, UR_OFF_CURRENT));
	ASSERT_RES(op_wait(l, &o), 5);
	cr_assert_eq(lseek(fd, 0, SEEK_CUR), 5);
	START(&o, ur_write_start(l, &o.f, fd, "world", 5, UR_OFF_CURRENT));
	ASSERT_RES(op_wait(l, &o), 5);
	cr_assert_eq(lseek(fd, 0, SEEK_CUR), 10);
	memset(buf, 0, sizeof(buf));
	cr_assert_eq(pread(fd, buf, sizeof(buf), 0), 10);
	cr_assert_str_eq(buf, "helloworld");

	cr_assert_eq(lseek(fd, 2, SEEK_SET), 2);
	memset(buf, 0, sizeof(buf));
	START(&o, ur_read_start(l, &o.f, fd, buf, 3, UR_OFF_CURRENT));
	ASSERT_RES(op_wait(l, &o), 3);
	cr_assert_arr_eq(buf, "llo", 3);
	cr_assert_eq(lseek(fd, 0, SEEK_CUR), 5);
	START(&o, ur_read_start(l, &o.f, fd, buf, 3, UR_OFF_CURRENT));
	ASSERT_RES(op_wait(l, &o), 3);
	cr_assert_arr_eq(buf, "wor", 3);
	cr_assert_eq(lseek(fd, 0, SEEK_CUR), 8);

	/* Offset 0 is a position, not "current": reads from the start, position unchanged. */
	START(&o, ur_read_start(l, &o.f, fd, buf, 2, 0));
	ASSERT_RES(op_wait(l, &o), 2);
	cr_assert_arr_eq(buf, "he", 2);
	cr_assert_eq(lseek(fd, 0, SEEK_CUR), 8);

	/* readv at the current position moves it by what was read, up to EOF. */
	char a[1] = {0}, b[8];
	memset(b, 0, sizeof(b));
	struct iovec iov[2] = {{a, 1}, {b, sizeof(b)}};
	START(&o, ur_readv_start(l, &o.f, fd, iov, 2, UR_OFF_CURRENT));
	ASSERT_RES(op_wait(l, &o), 2);
	cr_assert_eq(a[0], 'l');
	cr_assert_eq(b[0], 'd');
	cr_assert_eq(lseek(fd, 0, SEEK_CUR), 10);

	close(fd);
	t_loop_done(&l);
}

Test(io, readv_writev_three_iovecs, .init = dir_setup, .fini = dir_teardown)
{
	struct ur_loop *l = t_loop();
	struct op o;
	int fd = make_file("v", NULL, 0);

	struct iovec out[3] = {
	    {(void *)"abc", 3},
	    {(void *)"defgh", 5},
	    {(void *)"ijklmnop", 8},
	};
	START(&o, ur_writev_start(l, &o.f, fd, out, 3, 0));
	ASSERT_RES(op_wait(l, &o), 16);
	char all[32];
	memset(all, 0, sizeof(all));
	cr_assert_eq(pread(fd, all, sizeof(all), 0), 16);
	cr_assert_str_eq(all, "abcdefghijklmnop");

	/* Read from offset 2 into buffers split differently: the last one is only partly filled. */
	char a[4], b[4], c[20];
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	memset(c, '#', sizeof(c));
	struct iovec in[3] = {{a, sizeof(a)}, {b, sizeof(b)}, {c, sizeof(c)}};
	START(&o, ur_readv_start(l, &o.f, fd, in, 3, 2));
	ASSERT_RES(op_wait(l, &o), 14);
	cr_assert_arr_eq(a, "cdef", 4);
	cr_assert_arr_eq(b, "ghij", 4);
	cr_assert_arr_eq(c, "klmnop######", 12);

	/* writev at an offset past the end. */
	START(&o, ur_writev_start(l, &o.f, fd, out, 3, 100));
	ASSERT_RES(op_wait(l, &o), 16);
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_eq(st.st_size, 116);
	memset(all, 0, sizeof(all));
	cr_assert_eq(pread(fd, all, sizeof(all), 100), 16);
	cr_assert_str_eq(all, "abcdefghijklmnop");

	close(fd);
	t_loop_done(&l);
}

Test(io, fsync_and_datasync, .init = dir_setup, .fini = dir_teardown)
{
	struct ur_loop *l = t_loop();
	struct op o;
	int fd = make_file("s", "durable", 7);

	START(&o, ur_fsync_start(l, &o.f, fd, 0));
	ASSERT_RES(op_wait(l, &o), 0);
	START(&o, ur_fsync_start(l, &o.f, fd, 1));
	ASSERT_RES(op_wait(l, &o), 0);
	cr_assert_not(t_fd_is_open(9999));
	START(&o, ur_fsync_start(l, &o.f, 9999, 0));
	ASSERT_RES(op_wait(l, &o), -EBADF);
	START(&o, ur_fsync_start(l, &o.f, 9999, 1));
	ASSERT_RES(op_wait(l, &o), -EBADF);

	close(fd);
	t_loop_done(&l);
}

Test(io, statx_reports_size, .init = dir_setup, .fini = dir_teardown)
{
	struct ur_loop *l = t_loop();
	struct op o;
	uint8_t data[1234];
	fill_pattern(data, sizeof(data), 3);
	int fd = make_file("st", data, sizeof(data));
	struct statx sx;

	memset(&sx, 0, sizeof(sx));
	START(&o, ur_statx_start(l, &o.f, g_dir.dfd, "st", 0, STATX_BASIC_STATS, &sx));
	ASSERT_RES(op_wait(l, &o), 0);
	cr_assert_eq(sx.stx_mask & STATX_SIZE, STATX_SIZE);
	cr_assert_eq(sx.stx_size, 1234);
	cr_assert(S_ISREG(sx.stx_mode));
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_eq(sx.stx_ino, (uint64_t)st.st_ino);

	/* By descriptor: AT_EMPTY_PATH and "". */
	memset(&sx, 0, sizeof(sx));
	START(&o, ur_statx_start(l, &o.f, fd, "", AT_EMPTY_PATH, STATX_SIZE, &sx));
	ASSERT_RES(op_wait(l, &o), 0);
	cr_assert_eq(sx.stx_size, 1234);

	memset(&sx, 0, sizeof(sx));
	START(&o, ur_statx_start(l, &o.f, g_dir.dfd, "absent", 0, STATX_SIZE, &sx));
	ASSERT_RES(op_wait(l, &o), -ENOENT);

	close(fd);
	t_loop_done(&l);
}

Test(io, fallocate_grows_the_file, .init = dir_setup, .fini = dir_teardown)
{
	struct ur_loop *l = t_loop();
	struct op o;
	struct stat st;
	int fd = make_file("fa", NULL, 0);

	START(&o, ur_fallocate_start(l, &o.f, fd, 0, 0, 1u << 20));
	int r = op_wait(l, &o);
	if (r == -EOPNOTSUPP) {
		close(fd);
		t_loop_done(&l);
		cr_skip_test("the file system of /tmp has no fallocate");
	}
	ASSERT_RES(r, 0);
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_eq(st.st_size, 1 << 20);
	cr_assert_geq((uint64_t)st.st_blocks * 512, 1u << 20);

	/* KEEP_SIZE allocates beyond the end without growing the size. */
	START(&o, ur_fallocate_start(l, &o.f, fd, FALLOC_FL_KEEP_SIZE, 1u << 20, 65536));
	ASSERT_RES(op_wait(l, &o), 0);
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_eq(st.st_size, 1 << 20);

	/* 64-bit offset: the size becomes 5 GiB + 4 KiB, sparse. */
	uint64_t big = UINT64_C(5) << 30;
	START(&o, ur_fallocate_start(l, &o.f, fd, 0, big, 4096));
	ASSERT_RES(op_wait(l, &o), 0);
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_eq((uint64_t)st.st_size, big + 4096);

	/*
	 * 64-bit length: punch a 6 GiB hole from offset 4096. A length cut to 32 bits (2 GiB) would
	 * leave the allocation at 5 GiB in place.
	 */
	START(&o, ur_fallocate_start(l, &o.f, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096,
	                             UINT64_C(6) << 30));
	r = op_wait(l, &o);
	if (r != -EOPNOTSUPP) {
		ASSERT_RES(r, 0);
		cr_assert_eq(fstat(fd, &st), 0);
		cr_assert_eq((uint64_t)st.st_size, big + 4096);
		cr_assert_leq((uint64_t)st.st_blocks * 512, 8192, "%llu bytes still allocated",
		              (unsigned long long)st.st_blocks * 512);
	}

	START(&o, ur_fallocate_start(l, &o.f, 9999, 0, 0, 4096));
	ASSERT_RES(op_wait(l, &o), -EBADF);

	close(fd);
	t_loop_done(&l);
}

Test(io, mkdirat_renameat_unlinkat, .init = dir_setup, .fini = dir_teardown)
{
	struct ur_loop *l = t_loop();
	struct op o;
	struct stat st;

	START(&o, ur_mkdirat_start(l, &o.f, g_dir.dfd, "sub", 0750));
	ASSERT_RES(op_wait(l, &o), 0);
	cr_assert_eq(fstatat(g_dir.dfd, "sub", &st, 0), 0);
	cr_assert(S_ISDIR(st.st_mode));
	START(&o, ur_mkdirat_start(l, &o.f, g_dir.dfd, "sub", 0750));
	ASSERT_RES(op_wait(l, &o), -EEXIST);
	START(&o, ur_mkdirat_start(l, &o.f, g_dir.dfd, "no/such", 0750));
	ASSERT_RES(op_wait(l, &o), -ENOENT);

	close(make_file("a", "12345", 5));
	START(&o, ur_renameat_start(l, &o.f, g_dir.dfd, "a", g_dir.dfd, "sub/b", 0));
	ASSERT_RES(op_wait(l, &o), 0);
	errno = 0;
	cr_assert_eq(fstatat(g_dir.dfd, "a", &st, 0), -1);
	cr_assert_eq(errno, ENOENT);
	cr_assert_eq(fstatat(g_dir.dfd, "sub/b", &st, 0), 0);
	cr_assert_eq(st.st_size, 5);

	START(&o, ur_renameat_start(l, &o.f, g_dir.dfd, "a", g_dir.dfd, "c", 0));
	ASSERT_RES(op_wait(l, &o), -ENOENT);

	/* renameat2 flags pass through: NOREPLACE refuses an existing target. */
	close(make_file("c", "x", 1));
	START(&o, ur_renameat_start(l, &o.f, g_dir.dfd, "c", g_dir.dfd, "sub/b", RENAME_NOREPLACE));
	ASSERT_RES(op_wait(l, &o), -EEXIST);
	cr_assert_eq(fstatat(g_dir.dfd, "sub/b", &st, 0), 0);
	cr_assert_eq(st.st_size, 5);

	/* A non-empty directory cannot be removed. */
	START(&o, ur_unlinkat_start(l, &o.f, g_dir.dfd, "sub", AT_REMOVEDIR));
	ASSERT_RES(op_wait(l, &o), -ENOTEMPTY);
	START(&o, ur_unlinkat_start(l, &o.f, g_dir.dfd, "sub/b", 0));
	ASSERT_RES(op_wait(l, &o), 0);
	errno = 0;
	cr_assert_eq(fstatat(g_dir.dfd, "sub/b", &st, 0), -1);
	cr_assert_eq(errno, ENOENT);
	START(&o, ur_unlinkat_start(l, &o.f, g_dir.dfd, "sub/b", 0));
	ASSERT_RES(op_wait(l, &o), -ENOENT);
	START(&o, ur_unlinkat_start(l, &o.f, g_dir.dfd, "sub", 0));
	ASSERT_RES(op_wait(l, &o), -EISDIR);
	START(&o, ur_unlinkat_start(l, &o.f, g_dir.dfd, "sub", AT_REMOVEDIR));
	ASSERT_RES(op_wait(l, &o), 0);
	errno = 0;
	cr_assert_eq(fstatat(g_dir.dfd, "sub", &st, 0), -1);
	cr_assert_eq(errno, ENOENT);
	START(&o, ur_unlinkat_start(l, &o.f, g_dir.dfd, "c", 0));
	ASSERT_RES(op_wait(l, &o), 0);

	t_loop_done(&l);
}

/* ==== sockets ==== */

Test(io, socket_gives_cloexec_fd)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	need_op(l, IORING_OP_SOCKET, "IORING_OP_SOCKET (5.19)");
	struct op o;
	static const int kinds[][2] = {
	    {AF_INET, SOCK_STREAM},
	    {AF_INET, SOCK_DGRAM},
	    {AF_INET6, SOCK_STREAM},
	    {AF_UNIX, SOCK_SEQPACKET},
	};

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		START(&o, ur_socket_start(l, &o.f, kinds[i][0], kinds[i][1], 0));
		int fd = op_wait(l, &o);
		if (fd == -EAFNOSUPPORT && kinds[i][0] == AF_INET6)
			continue; /* a kernel without IPv6 */
		cr_assert_geq(fd, 0, "socket(%d, %d): %s", kinds[i][0], kinds[i][1],
		              ur_strerror(fd));
		cr_assert_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
		int v = -1;
		socklen_t len = sizeof(v);
		cr_assert_eq(getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len), 0);
		cr_assert_eq(v, kinds[i][0]);
		cr_assert_eq(getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len), 0);
		cr_assert_eq(v, kinds[i][1]);
		close(fd);
	}

	/* Flags in @type are honoured next to the implicit SOCK_CLOEXEC. */
	START(&o, ur_socket_start(l, &o.f, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
	int fd = op_wait(l, &o);
	cr_assert_geq(fd, 0);
	cr_assert_eq(fcntl(fd, F_GETFL) & O_NONBLOCK, O_NONBLOCK);
	cr_assert_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	close(fd);

	START(&o, ur_socket_start(l, &o.f, 4242, SOCK_STREAM, 0));
	ASSERT_RES(op_wait(l, &o), -EAFNOSUPPORT);

	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

Test(io, connect_and_accept_fill_addresses)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	need_op(l, IORING_OP_SOCKET, "IORING_OP_SOCKET (5.19)");
	uint16_t port;
	int lfd = t_listen_tcp(&port);
	struct sockaddr_in to = t_loopback(port);
	struct op so, co, ao;

	START(&so, ur_socket_start(l, &so.f, AF_INET, SOCK_STREAM, 0));
	int cfd = op_wait(l, &so);
	cr_assert_geq(cfd, 0);

	struct sockaddr_in peer;
	memset(&peer, 0xff, sizeof(peer));
	socklen_t peerlen = sizeof(peer);
	START(&ao, ur_accept_start(l, &ao.f, lfd, (struct sockaddr *)&peer, &peerlen, 0));
	START(&co, ur_connect_start(l, &co.f, cfd, (struct sockaddr *)&to, sizeof(to)));
	ASSERT_RES(op_wait(l, &co), 0);
	int sfd = op_wait(l, &ao);
	cr_assert_geq(sfd, 0, "accept: %s", ur_strerror(sfd));
	cr_assert_eq(fcntl(sfd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	cr_assert_eq(peerlen, sizeof(struct sockaddr_in));
	cr_assert_eq(peer.sin_family, AF_INET);
	cr_assert_eq(peer.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	cr_assert_eq(ntohs(peer.sin_port), local_port(cfd));

	/* accept with no address, and accept4 flags honoured. */
	int c2 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(connect(c2, (struct sockaddr *)&to, sizeof(to)), 0);
	START(&ao, ur_accept_start(l, &ao.f, lfd, NULL, NULL, SOCK_NONBLOCK));
	int s2 = op_wait(l, &ao);
	cr_assert_geq(s2, 0);
	cr_assert_eq(fcntl(s2, F_GETFL) & O_NONBLOCK, O_NONBLOCK);
	cr_assert_eq(fcntl(s2, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);

	/* The connection works both ways. */
	char buf[8];
	cr_assert_eq(write(cfd, "ping", 4), 4);
	memset(buf, 0, sizeof(buf));
	cr_assert_eq(read(sfd, buf, sizeof(buf)), 4);
	cr_assert_str_eq(buf, "ping");

	/* accept on something that is not a listener. */
	START(&ao, ur_accept_start(l, &ao.f, cfd, NULL, NULL, 0));
	ASSERT_RES(op_wait(l, &ao), -EINVAL);

	close(s2);
	close(c2);
	close(sfd);
	close(cfd);
	close(lfd);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

Test(io, connect_to_closed_port_is_refused)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	/* A socket bound and never listening holds the port: nobody else can take it meanwhile. */
	int holder = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = t_loopback(0);
	cr_assert_eq(bind(holder, (struct sockaddr *)&a, sizeof(a)), 0);
	a = t_loopback(local_port(holder));

	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	struct op o;
	START(&o, ur_connect_start(l, &o.f, fd, (struct sockaddr *)&a, sizeof(a)));
	ASSERT_RES(op_wait(l, &o), -ECONNREFUSED);

	close(fd);
	close(holder);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

Test(io, send_recv_exact_bytes_and_eof)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	int c, s;
	t_tcp_pair(&c, &s);
	struct op so, ro;
	char buf[64];

	START(&so, ur_send_start(l, &so.f, c, "hello, world!", 13, 0));
	ASSERT_RES(op_wait(l, &so), 13);
	memset(buf, 0, sizeof(buf));
	START(&ro, ur_recv_start(l, &ro.f, s, buf, sizeof(buf), 0));
	ASSERT_RES(op_wait(l, &ro), 13);
	cr_assert_str_eq(buf, "hello, world!");

	/* A recv started before the data arrives waits for it. */
	memset(buf, 0, sizeof(buf));
	START(&ro, ur_recv_start(l, &ro.f, c, buf, sizeof(buf), 0));
	settle(l);
	cr_assert_eq(ro.calls, 0, "recv completed with no data: %d", ro.res);
	START(&so, ur_send_start(l, &so.f, s, "back", 4, 0));
	ASSERT_RES(op_wait(l, &so), 4);
	ASSERT_RES(op_wait(l, &ro), 4);
	cr_assert_str_eq(buf, "back");

	/* MSG_PEEK leaves the data for the next recv. */
	cr_assert_eq(write(c, "peek", 4), 4);
	memset(buf, 0, sizeof(buf));
	START(&ro, ur_recv_start(l, &ro.f, s, buf, sizeof(buf), MSG_PEEK));
	ASSERT_RES(op_wait(l, &ro), 4);
	memset(buf, 0, sizeof(buf));
	START(&ro, ur_recv_start(l, &ro.f, s, buf, 2, 0));
	ASSERT_RES(op_wait(l, &ro), 2);
	cr_assert_str_eq(buf, "pe");
	START(&ro, ur_recv_start(l, &ro.f, s, buf, sizeof(buf), 0));
	ASSERT_RES(op_wait(l, &ro), 2);
	cr_assert_arr_eq(buf, "ek", 2);

	/* recv pending while the peer closes: 0, end of stream. */
	START(&ro, ur_recv_start(l, &ro.f, s, buf, sizeof(buf), 0));
	settle(l);
	cr_assert_eq(ro.calls, 0);
	close(c);
	ASSERT_RES(op_wait(l, &ro), 0);
	START(&ro, ur_recv_start(l, &ro.f, s, buf, sizeof(buf), 0));
	ASSERT_RES(op_wait(l, &ro), 0);

	close(s);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

Test(io, sendmsg_recvmsg_two_iovecs)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	int c, s;
	t_tcp_pair(&c, &s);
	struct op so, ro;

	struct iovec out[2] = {{(void *)"hello, ", 7}, {(void *)"world", 5}};
	struct msghdr smsg = {.msg_iov = out, .msg_iovlen = 2};
	char a[5], b[20];
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	struct iovec in[2] = {{a, sizeof(a)}, {b, sizeof(b)}};
	struct msghdr rmsg = {.msg_iov = in, .msg_iovlen = 2};

	START(&ro, ur_recvmsg_start(l, &ro.f, s, &rmsg, 0));
	START(&so, ur_sendmsg_start(l, &so.f, c, &smsg, 0));
	ASSERT_RES(op_wait(l, &so), 12);
	ASSERT_RES(op_wait(l, &ro), 12);
	cr_assert_arr_eq(a, "hello", 5);
	cr_assert_str_eq(b, ", world");
	cr_assert_eq(rmsg.msg_flags, 0);

	close(c);
	close(s);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

Test(io, shutdown_wr_gives_peer_eof)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	need_op(l, IORING_OP_SHUTDOWN, "IORING_OP_SHUTDOWN (5.11)");
	int c, s;
	t_tcp_pair(&c, &s);
	struct op o, ro;
	char buf[8];

	START(&ro, ur_recv_start(l, &ro.f, s, buf, sizeof(buf), 0));
	settle(l);
	cr_assert_eq(ro.calls, 0);
	START(&o, ur_shutdown_start(l, &o.f, c, SHUT_WR));
	ASSERT_RES(op_wait(l, &o), 0);
	ASSERT_RES(op_wait(l, &ro), 0);

	/* Only the write side is shut: c still receives. */
	cr_assert_eq(write(s, "rd", 2), 2);
	memset(buf, 0, sizeof(buf));
	START(&ro, ur_recv_start(l, &ro.f, c, buf, sizeof(buf), 0));
	ASSERT_RES(op_wait(l, &ro), 2);
	cr_assert_str_eq(buf, "rd");
	START(&o, ur_send_start(l, &o.f, c, "x", 1, MSG_NOSIGNAL));
	ASSERT_RES(op_wait(l, &o), -EPIPE);

	/* shutdown of a descriptor that is not a socket. */
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	START(&o, ur_shutdown_start(l, &o.f, p[0], SHUT_RDWR));
	ASSERT_RES(op_wait(l, &o), -ENOTSOCK);
	close(p[0]);
	close(p[1]);

	close(c);
	close(s);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

Test(io, poll_reports_pollin_after_peer_writes)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	int c, s;
	t_tcp_pair(&c, &s);
	struct op o;

	START(&o, ur_poll_start(l, &o.f, s, POLLIN));
	settle(l);
	cr_assert_eq(o.calls, 0, "POLLIN reported with nothing to read: %#x", o.res);
	cr_assert_eq(write(c, "x", 1), 1);
	ASSERT_RES(op_wait(l, &o), POLLIN);

	/* The data is still there: poll does not consume. */
	char ch = 0;
	cr_assert_eq(recv(s, &ch, 1, MSG_DONTWAIT), 1);
	cr_assert_eq(ch, 'x');

	/* A connected socket is writable at once. */
	START(&o, ur_poll_start(l, &o.f, s, POLLOUT));
	ASSERT_RES(op_wait(l, &o), POLLOUT);

	/* The peer's close wakes a POLLIN waiter with POLLIN (the EOF is readable). */
	START(&o, ur_poll_start(l, &o.f, s, POLLIN));
	settle(l);
	cr_assert_eq(o.calls, 0);
	close(c);
	int r = op_wait(l, &o);
	cr_assert_eq(r & POLLIN, POLLIN, "events %#x", r);

	close(s);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

static int udp_bound(struct sockaddr_in *addr)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	*addr = t_loopback(0);
	cr_assert_eq(bind(fd, (struct sockaddr *)addr, sizeof(*addr)), 0);
	*addr = t_loopback(local_port(fd));
	return fd;
}

Test(io, udp_send_recv_keeps_datagrams)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	struct sockaddr_in aa, ba;
	int a = udp_bound(&aa), b = udp_bound(&ba);
	struct op so, ro;
	char buf[64];

	/* Unconnected: sendmsg with a destination, recvmsg learns the source. */
	struct iovec out = {(void *)"datagram", 8};
	struct msghdr smsg = {
	    .msg_name = &ba, .msg_namelen = sizeof(ba), .msg_iov = &out, .msg_iovlen = 1};
	struct sockaddr_in from;
	memset(&from, 0, sizeof(from));
	memset(buf, 0, sizeof(buf));
	struct iovec in = {buf, sizeof(buf)};
	struct msghdr rmsg = {
	    .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &in, .msg_iovlen = 1};
	START(&ro, ur_recvmsg_start(l, &ro.f, b, &rmsg, 0));
	START(&so, ur_sendmsg_start(l, &so.f, a, &smsg, 0));
	ASSERT_RES(op_wait(l, &so), 8);
	ASSERT_RES(op_wait(l, &ro), 8);
	cr_assert_str_eq(buf, "datagram");
	cr_assert_eq(rmsg.msg_namelen, sizeof(struct sockaddr_in));
	cr_assert_eq(from.sin_family, AF_INET);
	cr_assert_eq(from.sin_port, aa.sin_port);
	cr_assert_eq(from.sin_addr.s_addr, htonl(INADDR_LOOPBACK));

	/* Connected: send/recv, one datagram per recv, boundaries kept. */
	cr_assert_eq(connect(a, (struct sockaddr *)&ba, sizeof(ba)), 0);
	START(&so, ur_send_start(l, &so.f, a, "one", 3, 0));
	ASSERT_RES(op_wait(l, &so), 3);
	START(&so, ur_send_start(l, &so.f, a, "three", 5, 0));
	ASSERT_RES(op_wait(l, &so), 5);
	memset(buf, 0, sizeof(buf));
	START(&ro, ur_recv_start(l, &ro.f, b, buf, sizeof(buf), 0));
	ASSERT_RES(op_wait(l, &ro), 3);
	cr_assert_str_eq(buf, "one");
	memset(buf, 0, sizeof(buf));
	START(&ro, ur_recv_start(l, &ro.f, b, buf, sizeof(buf), 0));
	ASSERT_RES(op_wait(l, &ro), 5);
	cr_assert_str_eq(buf, "three");

	/* A datagram longer than the buffer is truncated to it; MSG_TRUNC says so. */
	START(&so, ur_send_start(l, &so.f, a, "0123456789", 10, 0));
	ASSERT_RES(op_wait(l, &so), 10);
	memset(buf, 0, sizeof(buf));
	in.iov_len = 4;
	rmsg.msg_namelen = sizeof(from);
	rmsg.msg_flags = 0;
	START(&ro, ur_recvmsg_start(l, &ro.f, b, &rmsg, 0));
	ASSERT_RES(op_wait(l, &ro), 4);
	cr_assert_str_eq(buf, "0123");
	cr_assert_eq(rmsg.msg_flags & MSG_TRUNC, MSG_TRUNC);

	close(a);
	close(b);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

Test(io, unix_socketpair_send_recv)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	struct op so, ro;
	char buf[32];

	memset(buf, 0, sizeof(buf));
	START(&ro, ur_recv_start(l, &ro.f, sv[1], buf, sizeof(buf), 0));
	START(&so, ur_send_start(l, &so.f, sv[0], "unix stream", 11, 0));
	ASSERT_RES(op_wait(l, &so), 11);
	ASSERT_RES(op_wait(l, &ro), 11);
	cr_assert_str_eq(buf, "unix stream");

	memset(buf, 0, sizeof(buf));
	START(&ro, ur_recv_start(l, &ro.f, sv[0], buf, sizeof(buf), 0));
	START(&so, ur_send_start(l, &so.f, sv[1], "reply", 5, 0));
	ASSERT_RES(op_wait(l, &so), 5);
	ASSERT_RES(op_wait(l, &ro), 5);
	cr_assert_str_eq(buf, "reply");

	close(sv[1]);
	START(&ro, ur_recv_start(l, &ro.f, sv[0], buf, sizeof(buf), 0));
	ASSERT_RES(op_wait(l, &ro), 0);
	close(sv[0]);

	/* Datagram-flavoured pair: boundaries kept. */
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	cr_assert_eq(write(sv[0], "ab", 2), 2);
	cr_assert_eq(write(sv[0], "cde", 3), 3);
	memset(buf, 0, sizeof(buf));
	START(&ro, ur_recv_start(l, &ro.f, sv[1], buf, sizeof(buf), 0));
	ASSERT_RES(op_wait(l, &ro), 2);
	cr_assert_str_eq(buf, "ab");
	close(sv[0]);
	close(sv[1]);

	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

/* ---- multishot accept ---- */

struct accepts {
	struct ur_future f;
	int calls;
	int fds[8];
	int nfds;
	int more_false;
	int final_res;
	int bad_buffer;
};

static void accepts_cb(struct ur_future *f, void *arg)
{
	struct accepts *a = arg;
	a->calls++;
	if (ur_future_buffer(f) != -1)
		a->bad_buffer++;
	if (ur_future_more(f)) {
		if (f->res >= 0 && a->nfds < 8)
			a->fds[a->nfds++] = f->res;
		else
			a->final_res = f->res; /* an error flagged more: recorded to fail below */
		return;
	}
	a->more_false++;
	a->final_res = f->res;
}

Test(io, accept_multishot_three_clients_then_cancel)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	uint16_t port;
	int lfd = t_listen_tcp(&port);
	struct sockaddr_in to = t_loopback(port);
	struct accepts a;
	memset(&a, 0, sizeof(a));
	a.final_res = 1;
	ur_future_init(&a.f, accepts_cb, &a);

	int r = ur_accept_multishot_start(l, &a.f, lfd, 0);
	if (r == -EOPNOTSUPP || r == -EINVAL) {
		close(lfd);
		t_loop_done(&l);
		cr_skip_test("multishot accept unsupported (5.19): %s", ur_strerror(r));
	}
	ASSERT_RES(r, 0);
	cr_assert_eq(a.calls, 0);
	settle(l);
	cr_assert_eq(a.calls, 0, "accept completed with no client: %d", a.final_res);

	int cl[3];
	uint16_t cports[3];
	for (int i = 0; i < 3; i++) {
		cl[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		cr_assert_eq(connect(cl[i], (struct sockaddr *)&to, sizeof(to)), 0);
		cports[i] = local_port(cl[i]);
	}
	while (a.nfds < 3 && a.calls < 8)
		cr_assert_geq(ur_loop_run(l, UR_RUN_ONCE), 0);
	cr_assert_eq(a.calls, 3, "completions: %d (last res %d)", a.calls, a.final_res);
	cr_assert_eq(a.nfds, 3);
	cr_assert_eq(a.more_false, 0, "multishot ended early: %d", a.final_res);
	cr_assert_eq(a.bad_buffer, 0);
	cr_assert_eq(ur_future_state(&a.f), UR_FUTURE_PENDING);

	bool seen[3] = {false, false, false};
	for (int i = 0; i < 3; i++) {
		for (int j = 0; j < i; j++)
			cr_assert_neq(a.fds[i], a.fds[j], "fd %d delivered twice", a.fds[i]);
		cr_assert_eq(fcntl(a.fds[i], F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
		struct sockaddr_in p;
		socklen_t len = sizeof(p);
		cr_assert_eq(getpeername(a.fds[i], (struct sockaddr *)&p, &len), 0);
		int k = 0;
		while (k < 3 && cports[k] != ntohs(p.sin_port))
			k++;
		cr_assert_lt(k, 3, "accepted a connection from an unknown port");
		cr_assert_not(seen[k]);
		seen[k] = true;
	}

	ASSERT_RES(ur_cancel(&a.f), 0);
	cr_assert_eq(a.calls, 3, "ur_cancel completed the future inline");
	t_run_until(l, &a.f);
	cr_assert_eq(a.calls, 4);
	cr_assert_eq(a.more_false, 1);
	ASSERT_RES(a.final_res, -ECANCELED);
	cr_assert_not(ur_future_more(&a.f));
	settle(l);
	cr_assert_eq(a.calls, 4, "completion after the final one");

	for (int i = 0; i < 3; i++) {
		close(a.fds[i]);
		close(cl[i]);
	}
	close(lfd);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

/* ---- close while a recv is pending, then reuse of the number ---- */

Test(io, close_cancels_pending_recv_and_fd_number_is_reused_safely)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	int c, s;
	t_tcp_pair(&c, &s);
	struct op ro, co;
	char buf[16];
	memset(buf, 'Z', sizeof(buf));

	START(&ro, ur_recv_start(l, &ro.f, s, buf, sizeof(buf), 0));
	settle(l);
	cr_assert_eq(ro.calls, 0);
	START(&co, ur_close_start(l, &co.f, s));
	ASSERT_RES(op_wait(l, &co), 0);
	ASSERT_RES(op_wait(l, &ro), -ECANCELED);
	cr_assert_not(t_fd_is_open(s));
	for (size_t i = 0; i < sizeof(buf); i++)
		cr_assert_eq(buf[i], 'Z', "cancelled recv wrote into its buffer");

	/* Take the lowest free numbers until s comes back (holes below it are filled first). */
	int fill[16], nfill = 0, sv[2] = {-1, -1};
	for (;;) {
		cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		if (sv[0] == s || sv[1] == s)
			break;
		cr_assert_lt(sv[0], s, "fd %d was not released by the close", s);
		cr_assert_lt(nfill + 2, 16);
		fill[nfill++] = sv[0];
		fill[nfill++] = sv[1];
	}
	for (int i = 0; i < nfill; i++)
		close(fill[i]);
	int fresh = s, other = sv[0] == s ? sv[1] : sv[0];

	/* The old peer's bytes go nowhere near the new descriptor. */
	(void)send(c, "stale", 5, MSG_NOSIGNAL);
	START(&ro, ur_poll_start(l, &ro.f, fresh, POLLIN));
	struct op to;
	START(&to, ur_timeout_start(l, &to.f, 20 * UR_MSEC, 0));
	ASSERT_RES(op_wait(l, &to), 0);
	cr_assert_eq(ro.calls, 0, "the reused fd became readable: %#x", ro.res);
	ASSERT_RES(ur_cancel(&ro.f), 0);
	ASSERT_RES(op_wait(l, &ro), -ECANCELED);
	char ch;
	errno = 0;
	cr_assert_eq(recv(fresh, &ch, 1, MSG_DONTWAIT), -1);
	cr_assert_eq(errno, EAGAIN);

	/* And the new descriptor works normally. */
	memset(buf, 0, sizeof(buf));
	START(&ro, ur_recv_start(l, &ro.f, fresh, buf, sizeof(buf), 0));
	cr_assert_eq(write(other, "fresh", 5), 5);
	ASSERT_RES(op_wait(l, &ro), 5);
	cr_assert_str_eq(buf, "fresh");
	START(&co, ur_send_start(l, &co.f, fresh, "back", 4, 0));
	ASSERT_RES(op_wait(l, &co), 4);
	memset(buf, 0, sizeof(buf));
	cr_assert_eq(read(other, buf, sizeof(buf)), 4);
	cr_assert_str_eq(buf, "back");

	close(fresh);
	close(other);
	close(c);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

/* ---- multishot recv over a buffer ring ---- */

static struct ur_bufring *t_bufring(struct ur_loop **l, unsigned count, size_t size)
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

#define STREAM_LEN (1u << 20)

/*
 * The writer is a forked child, not a thread: valgrind keeps its big lock across
 * io_uring_enter(2), so a writer thread would never run while the loop waits.
 * Writes the whole pattern in pieces of varying size, blocking, then exits (closing the socket).
 * Exit status: 0, or the errno of the failed write.
 */
static pid_t start_writer(int fd, const uint8_t *data, size_t len)
{
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid > 0)
		return pid;
	uint32_t x = 12345;
	size_t off = 0;
	while (off < len) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		size_t n = 1 + x % 20000;
		if (n > len - off)
			n = len - off;
		ssize_t r = write(fd, data + off, n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			_exit(errno);
		}
		off += (size_t)r;
	}
	_exit(0);
}

struct stream {
	struct ur_loop *l;
	struct ur_bufring *br;
	struct ur_future f;
	const uint8_t *expect;
	size_t got;
	unsigned calls, chunks, finals;
	int final_res, final_buf;
	long first_bad; /* offset of the first byte that did not match, -1 if none */
	unsigned bad_bid, bad_res, oversize, dry;
	uint32_t rng;
	/* buffers held back and recycled on a later loop turn */
	unsigned held[4], nheld, held_overflow;
	struct ur_future later;
	unsigned later_starts;
};

static uint32_t stream_rand(struct stream *s)
{
	s->rng ^= s->rng << 13;
	s->rng ^= s->rng >> 17;
	s->rng ^= s->rng << 5;
	return s->rng;
}

static void stream_later_cb(struct ur_future *f, void *arg)
{
	struct stream *s = arg;
	(void)f;
	for (unsigned i = 0; i < s->nheld; i++)
		ur_bufring_recycle(s->br, s->held[i]);
	s->nheld = 0;
}

static void stream_cb(struct ur_future *f, void *arg)
{
	struct stream *s = arg;
	s->calls++;
	if (!ur_future_more(f)) {
		s->finals++;
		s->final_res = f->res;
		s->final_buf = ur_future_buffer(f);
		return;
	}
	int bid = ur_future_buffer(f);
	if (f->res <= 0) {
		s->bad_res++;
		if (bid >= 0)
			ur_bufring_recycle(s->br, (unsigned)bid);
		return;
	}
	if (bid < 0 || bid >= 2) {
		s->bad_bid++;
		return;
	}
	size_t n = (size_t)f->res;
	if (n > ur_bufring_size(s->br) || s->got + n > STREAM_LEN) {
		s->oversize++;
		n = s->got < STREAM_LEN ? STREAM_LEN - s->got : 0;
	}
	const uint8_t *p = ur_bufring_buf(s->br, (unsigned)bid);
	if (s->first_bad < 0 && memcmp(p, s->expect + s->got, n) != 0) {
		size_t i = 0;
		while (p[i] == s->expect[s->got + i])
			i++;
		s->first_bad = (long)(s->got + i);
	}
	s->got += n;
	s->chunks++;
	if (ur_bufring_available(s->br) == 0)
		s->dry++;

	/*
	 * One buffer in four goes back at once; the others wait for a later loop turn (a nop, or a
	 * short timeout), so the two-buffer ring runs dry while the writer still has data queued.
	 */
	uint32_t r = stream_rand(s) % 4;
	if (r == 0) {
		ur_bufring_recycle(s->br, (unsigned)bid);
		return;
	}
	if (s->nheld == 4) {
		s->held_overflow++;
		ur_bufring_recycle(s->br, (unsigned)bid);
		return;
	}
	s->held[s->nheld++] = (unsigned)bid;
	if (ur_future_state(&s->later) != UR_FUTURE_PENDING) {
		int ret = r == 1 ? ur_nop_start(s->l, &s->later)
		                 : ur_timeout_start(s->l, &s->later, 200 * UR_USEC, 0);
		if (ret == 0)
			s->later_starts++;
		else
			stream_later_cb(&s->later, s); /* recorded as a shortfall below */
	}
}

Test(io, recv_multishot_two_buffers_rearms_and_loses_nothing_of_1mib)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	struct ur_bufring *br = t_bufring(&l, 2, 4096);
	int c, s;
	t_tcp_pair(&c, &s);

	uint8_t *data = malloc(STREAM_LEN);
	cr_assert_not_null(data);
	fill_pattern(data, STREAM_LEN, 0xC0FFEE);

	static struct stream st;
	memset(&st, 0, sizeof(st));
	st.l = l;
	st.br = br;
	st.expect = data;
	st.first_bad = -1;
	st.final_res = 1;
	st.rng = 99;
	ur_future_init(&st.f, stream_cb, &st);
	ur_future_init(&st.later, stream_later_cb, &st);

	int r = ur_recv_multishot_start(l, &st.f, s, br, 0);
	if (r == -EOPNOTSUPP || r == -EINVAL) {
		close(c);
		close(s);
		free(data);
		ur_bufring_free(&br);
		t_loop_done(&l);
		cr_skip_test("multishot recv unsupported (6.0): %s", ur_strerror(r));
	}
	ASSERT_RES(r, 0);
	cr_assert_eq(st.calls, 0);

	pid_t writer = start_writer(c, data, STREAM_LEN);
	close(c); /* the child's copy is the only writer: its exit ends the stream */
	t_run_until(l, &st.f);
	drain(l); /* the last deferred recycle */
	int status = 0;
	cr_assert_eq(waitpid(writer, &status, 0), writer);
	cr_assert(WIFEXITED(status), "writer died: status %#x", status);
	cr_assert_eq(WEXITSTATUS(status), 0, "writer: %s", strerror(WEXITSTATUS(status)));

	cr_assert_eq(st.bad_res, 0, "%u chunks flagged more with res <= 0", st.bad_res);
	cr_assert_eq(st.bad_bid, 0, "%u chunks with no valid buffer id", st.bad_bid);
	cr_assert_eq(st.oversize, 0, "%u chunks larger than a buffer or past the end", st.oversize);
	cr_assert_eq(st.first_bad, -1, "stream corrupt from byte %ld", st.first_bad);
	cr_assert_eq(st.got, STREAM_LEN, "received %zu of %u bytes", st.got, STREAM_LEN);
	cr_assert_geq(st.chunks, STREAM_LEN / 4096);
	cr_assert_eq(st.finals, 1);
	ASSERT_RES(st.final_res, 0);
	cr_assert_eq(st.final_buf, -1, "the end-of-stream completion names buffer %d",
	             st.final_buf);
	cr_assert_not(ur_future_more(&st.f));
	cr_assert_eq(st.calls, st.chunks + 1);
	cr_assert_eq(st.held_overflow, 0);
	cr_assert_eq(st.nheld, 0);
	cr_assert_eq(ur_bufring_available(br), 2, "buffers lost: %u of 2 in the ring",
	             ur_bufring_available(br));

	/*
	 * The test must have made the ring run dry. Every SQE but the wake-up read, the recv and
	 * the deferrals is a re-arm of the recv.
	 */
	cr_assert_gt(st.dry, 0, "the ring never ran dry: re-arming was not exercised");
	struct ur_loop_stats ls;
	ur_loop_stats(l, &ls);
	cr_assert_gt(ls.submitted, 2 + (uint64_t)st.later_starts,
	             "no re-arm was submitted: the ring never stopped the multishot");

	ASSERT_RES(ur_bufring_free(&br), 0);
	cr_assert_null(br);
	close(s);
	free(data);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

struct chunks {
	struct ur_future f;
	int calls, finals;
	int res[8], bid[8];
	bool more[8];
};

static void chunks_cb(struct ur_future *f, void *arg)
{
	struct chunks *k = arg;
	if (k->calls < 8) {
		k->res[k->calls] = f->res;
		k->bid[k->calls] = ur_future_buffer(f);
		k->more[k->calls] = ur_future_more(f);
	}
	k->calls++;
	if (!ur_future_more(f))
		k->finals++;
}

Test(io, recv_multishot_starved_ring_resumes_on_recycle)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	struct ur_bufring *br = t_bufring(&l, 1, 4096);
	int c, s;
	t_tcp_pair(&c, &s);
	struct chunks k;
	memset(&k, 0, sizeof(k));
	ur_future_init(&k.f, chunks_cb, &k);

	ASSERT_RES(ur_recv_multishot_start(l, &k.f, s, br, 0), 0);
	cr_assert_eq(write(c, "first", 5), 5);
	while (k.calls < 1)
		cr_assert_geq(ur_loop_run(l, UR_RUN_ONCE), 0);
	cr_assert_eq(k.calls, 1);
	ASSERT_RES(k.res[0], 5);
	cr_assert(k.more[0]);
	cr_assert_eq(k.bid[0], 0);
	cr_assert_arr_eq(ur_bufring_buf(br, 0), "first", 5);
	cr_assert_eq(ur_bufring_available(br), 0);

	/* More data with the only buffer held: the kernel stops the multishot (ENOBUFS). */
	cr_assert_eq(write(c, "second!", 7), 7);
	struct op to;
	START(&to, ur_timeout_start(l, &to.f, 20 * UR_MSEC, 0));
	ASSERT_RES(op_wait(l, &to), 0);
	cr_assert_eq(k.calls, 1, "a completion with no buffer to carry it: res %d", k.res[1]);
	cr_assert_eq(ur_future_state(&k.f), UR_FUTURE_PENDING);

	/* Recycling re-arms it: the waiting bytes arrive, none lost. */
	ur_bufring_recycle(br, 0);
	while (k.calls < 2)
		cr_assert_geq(ur_loop_run(l, UR_RUN_ONCE), 0);
	cr_assert_eq(k.calls, 2);
	ASSERT_RES(k.res[1], 7);
	cr_assert(k.more[1]);
	cr_assert_eq(k.bid[1], 0);
	cr_assert_arr_eq(ur_bufring_buf(br, 0), "second!", 7);
	ur_bufring_recycle(br, 0);

	/* Starved again, then cancelled: one final -ECANCELED, no data. */
	cr_assert_eq(write(c, "3", 1), 1);
	while (k.calls < 3)
		cr_assert_geq(ur_loop_run(l, UR_RUN_ONCE), 0);
	ASSERT_RES(k.res[2], 1);
	cr_assert_eq(write(c, "4", 1), 1);
	START(&to, ur_timeout_start(l, &to.f, 20 * UR_MSEC, 0));
	ASSERT_RES(op_wait(l, &to), 0);
	cr_assert_eq(k.calls, 3);
	ASSERT_RES(ur_cancel(&k.f), 0);
	cr_assert_eq(k.calls, 3, "ur_cancel completed the future inline");
	t_run_until(l, &k.f);
	cr_assert_eq(k.calls, 4);
	cr_assert_eq(k.finals, 1);
	ASSERT_RES(k.res[3], -ECANCELED);
	cr_assert_not(k.more[3]);
	cr_assert_eq(k.bid[3], -1);
	ur_bufring_recycle(br, 0);
	cr_assert_eq(ur_bufring_available(br), 1);

	ASSERT_RES(ur_bufring_free(&br), 0);
	close(c);
	close(s);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

Test(io, bufring_free_while_multishot_active_is_ebusy_then_cancel)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	struct ur_bufring *br = t_bufring(&l, 4, 1024);
	int c, s;
	t_tcp_pair(&c, &s);
	struct chunks k;
	memset(&k, 0, sizeof(k));
	ur_future_init(&k.f, chunks_cb, &k);

	ASSERT_RES(ur_recv_multishot_start(l, &k.f, s, br, 0), 0);
	settle(l);
	cr_assert_eq(k.calls, 0);
	/* A second start of a pending future is refused. */
	ASSERT_RES(ur_recv_multishot_start(l, &k.f, s, br, 0), -EBUSY);
	ASSERT_RES(ur_bufring_free(&br), -EBUSY);
	cr_assert_not_null(br);

	/* Still alive and working after the refused free. */
	cr_assert_eq(write(c, "live", 4), 4);
	while (k.calls < 1)
		cr_assert_geq(ur_loop_run(l, UR_RUN_ONCE), 0);
	ASSERT_RES(k.res[0], 4);
	cr_assert(k.more[0]);
	cr_assert_geq(k.bid[0], 0);
	cr_assert_arr_eq(ur_bufring_buf(br, (unsigned)k.bid[0]), "live", 4);
	ur_bufring_recycle(br, (unsigned)k.bid[0]);

	ASSERT_RES(ur_cancel(&k.f), 0);
	ASSERT_RES(ur_cancel(&k.f), -EALREADY);
	ASSERT_RES(ur_bufring_free(&br), -EBUSY); /* cancel requested, not yet completed */
	t_run_until(l, &k.f);
	cr_assert_eq(k.calls, 2);
	cr_assert_eq(k.finals, 1);
	ASSERT_RES(k.res[1], -ECANCELED);
	cr_assert_not(k.more[1]);
	cr_assert_eq(ur_bufring_available(br), 4);

	ASSERT_RES(ur_bufring_free(&br), 0);
	cr_assert_null(br);
	ASSERT_RES(ur_bufring_free(&br), 0); /* NULL is accepted */
	close(c);
	close(s);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

Test(io, bufring_new_rejects_bad_sizes)
{
	struct ur_loop *l = t_loop();
	struct ur_bufring *br = (struct ur_bufring *)1;
	ASSERT_RES(ur_bufring_new(l, &br, 0, 4096), -EINVAL);
	cr_assert_null(br);
	ASSERT_RES(ur_bufring_new(l, &br, 3, 4096), -EINVAL);
	ASSERT_RES(ur_bufring_new(l, &br, 65536, 16), -EINVAL);
	ASSERT_RES(ur_bufring_new(l, &br, 2, 0), -EINVAL);
	cr_assert_null(br);
	t_loop_done(&l);
}

Test(io, close_ends_an_active_multishot_recv)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	struct ur_bufring *br = t_bufring(&l, 2, 1024);
	int c, s;
	t_tcp_pair(&c, &s);
	struct chunks k;
	memset(&k, 0, sizeof(k));
	ur_future_init(&k.f, chunks_cb, &k);
	struct op co;

	ASSERT_RES(ur_recv_multishot_start(l, &k.f, s, br, 0), 0);
	settle(l);
	cr_assert_eq(k.calls, 0);
	START(&co, ur_close_start(l, &co.f, s));
	ASSERT_RES(op_wait(l, &co), 0);
	t_run_until(l, &k.f);
	cr_assert_eq(k.calls, 1);
	ASSERT_RES(k.res[0], -ECANCELED);
	cr_assert_not(k.more[0]);
	cr_assert_not(t_fd_is_open(s));
	ASSERT_RES(ur_bufring_free(&br), 0);

	close(c);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

/*
 * A multishot recv stopped because its ring ran dry waits inside urio, not in the kernel, so the
 * kernel's cancel-by-fd cannot see it; ur_close_start() must end it all the same (io.h), or the
 * next recycle re-arms it on whatever the fd number has become by then.
 */
Test(io, close_ends_a_starved_multishot_recv)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	struct ur_bufring *br = t_bufring(&l, 1, 1024);
	int c, s;
	t_tcp_pair(&c, &s);
	struct chunks k;
	memset(&k, 0, sizeof(k));
	ur_future_init(&k.f, chunks_cb, &k);
	struct op co, to;

	ASSERT_RES(ur_recv_multishot_start(l, &k.f, s, br, 0), 0);
	cr_assert_eq(write(c, "one", 3), 3);
	while (k.calls < 1)
		cr_assert_geq(ur_loop_run(l, UR_RUN_ONCE), 0);
	ASSERT_RES(k.res[0], 3);
	cr_assert(k.more[0]);
	/* The only buffer is held: more data stops the multishot inside urio. */
	cr_assert_eq(write(c, "two", 3), 3);
	START(&to, ur_timeout_start(l, &to.f, 20 * UR_MSEC, 0));
	ASSERT_RES(op_wait(l, &to), 0);
	cr_assert_eq(k.calls, 1);

	START(&co, ur_close_start(l, &co.f, s));
	ASSERT_RES(op_wait(l, &co), 0);
	cr_assert_not(t_fd_is_open(s));
	START(&to, ur_timeout_start(l, &to.f, 20 * UR_MSEC, 0));
	ASSERT_RES(op_wait(l, &to), 0);
	cr_assert_eq(k.calls, 2, "the multishot recv on the closed fd %d is still pending", s);
	ASSERT_RES(k.res[1], -ECANCELED);
	cr_assert_not(k.more[1]);
	cr_assert_eq(k.finals, 1);

	ur_bufring_recycle(br, (unsigned)k.bid[0]);
	ASSERT_RES(ur_bufring_free(&br), 0);
	close(c);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

/*
 * BUG CANDIDATE (core/future.c recv_multi_continues + core/io.c ur_close_start): the same, when
 * the kernel's -ENOBUFS completion is already in the CQ but not yet reaped at ur_close_start():
 * the close finds nothing to cancel, then the loop reaps the -ENOBUFS and parks the recv as
 * starved on a descriptor that is gone. A plain-setup ring posts that completion as soon as the
 * peer's write() returns (task work runs on the way back to user space), which makes the order
 * certain; the loop is forced to plain setup for that reason.
 */
Test(io, close_ends_a_multishot_recv_whose_enobufs_is_not_yet_reaped)
{
	int fds = t_count_fds();
	struct ur_loop_opts lo = {.flags = UR_LOOP_PLAIN_SETUP};
	struct ur_loop *l = t_loop_opts(&lo);
	struct ur_bufring *br = t_bufring(&l, 1, 1024);
	int c, s;
	t_tcp_pair(&c, &s);
	struct chunks k;
	memset(&k, 0, sizeof(k));
	ur_future_init(&k.f, chunks_cb, &k);
	struct op co, to;

	ASSERT_RES(ur_recv_multishot_start(l, &k.f, s, br, 0), 0);
	cr_assert_eq(write(c, "one", 3), 3);
	while (k.calls < 1)
		cr_assert_geq(ur_loop_run(l, UR_RUN_ONCE), 0);
	ASSERT_RES(k.res[0], 3);
	cr_assert(k.more[0]);

	/* The only buffer is held; this write makes the kernel end the multishot (-ENOBUFS). */
	cr_assert_eq(write(c, "two", 3), 3);
	START(&co, ur_close_start(l, &co.f, s));
	ASSERT_RES(op_wait(l, &co), 0);
	cr_assert_not(t_fd_is_open(s));
	START(&to, ur_timeout_start(l, &to.f, 20 * UR_MSEC, 0));
	ASSERT_RES(op_wait(l, &to), 0);
	cr_assert_eq(k.calls, 2, "the multishot recv on the closed fd %d is still pending", s);
	ASSERT_RES(k.res[1], -ECANCELED);
	cr_assert_not(k.more[1]);

	ur_bufring_recycle(br, (unsigned)k.bid[0]);
	ASSERT_RES(ur_bufring_free(&br), 0);
	close(c);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

/*
 * BUG CANDIDATE (core/io.c ur_cancel_fd_start): io.h says it cancels the operations on @fd and
 * each one completes with -ECANCELED. A multishot recv parked by urio for want of a buffer is one
 * of them, but the kernel's cancel-by-fd cannot see it.
 */
Test(io, cancel_fd_ends_a_starved_multishot_recv)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	struct ur_bufring *br = t_bufring(&l, 1, 1024);
	int c, s;
	t_tcp_pair(&c, &s);
	struct chunks k;
	memset(&k, 0, sizeof(k));
	ur_future_init(&k.f, chunks_cb, &k);
	struct op co, to;

	ASSERT_RES(ur_recv_multishot_start(l, &k.f, s, br, 0), 0);
	cr_assert_eq(write(c, "one", 3), 3);
	while (k.calls < 1)
		cr_assert_geq(ur_loop_run(l, UR_RUN_ONCE), 0);
	ASSERT_RES(k.res[0], 3);
	cr_assert_eq(write(c, "two", 3), 3);
	START(&to, ur_timeout_start(l, &to.f, 20 * UR_MSEC, 0));
	ASSERT_RES(op_wait(l, &to), 0);
	cr_assert_eq(k.calls, 1);

	START(&co, ur_cancel_fd_start(l, &co.f, s, 1));
	ASSERT_RES(op_wait(l, &co), 1);
	t_run_until(l, &k.f);
	cr_assert_eq(k.calls, 2);
	ASSERT_RES(k.res[1], -ECANCELED);
	cr_assert_not(k.more[1]);

	ur_bufring_recycle(br, (unsigned)k.bid[0]);
	ASSERT_RES(ur_bufring_free(&br), 0);
	close(c);
	close(s);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

/*
 * An operation that creates a descriptor, cancelled before the kernel could refuse it: it
 * completes with -ECANCELED whichever way the race went, and a descriptor it may have created is
 * closed by urio.
 */
Test(io, cancelled_fd_creating_ops_complete_ecanceled_without_leak, .init = dir_setup,
     .fini = dir_teardown)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	need_op(l, IORING_OP_SOCKET, "IORING_OP_SOCKET (5.19)");
	struct op o;
	close(make_file("f", "x", 1));
	uint16_t port;
	int lfd = t_listen_tcp(&port);
	struct sockaddr_in to = t_loopback(port);

	for (int i = 0; i < 10; i++) {
		START(&o, ur_openat_start(l, &o.f, g_dir.dfd, "f", O_RDONLY, 0));
		ASSERT_RES(ur_cancel(&o.f), 0);
		ASSERT_RES(op_wait(l, &o), -ECANCELED);

		START(&o, ur_socket_start(l, &o.f, AF_INET, SOCK_STREAM, 0));
		ASSERT_RES(ur_cancel(&o.f), 0);
		ASSERT_RES(op_wait(l, &o), -ECANCELED);

		/* A connection is already waiting: accept can succeed at once. */
		int cl = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		cr_assert_eq(connect(cl, (struct sockaddr *)&to, sizeof(to)), 0);
		START(&o, ur_accept_start(l, &o.f, lfd, NULL, NULL, 0));
		ASSERT_RES(ur_cancel(&o.f), 0);
		ASSERT_RES(op_wait(l, &o), -ECANCELED);
		close(cl);
	}
	drain(l);

	close(lfd);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds, "descriptors leaked: %d", t_count_fds() - fds);
}

/* ---- cancel by descriptor ---- */

Test(io, cancel_fd_all_and_none)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	int c, s;
	t_tcp_pair(&c, &s);
	struct op r1, r2, co;
	char b1[8], b2[8];
	memset(b1, 0, sizeof(b1));
	memset(b2, 0, sizeof(b2));

	START(&r1, ur_recv_start(l, &r1.f, s, b1, sizeof(b1), 0));
	START(&r2, ur_recv_start(l, &r2.f, s, b2, sizeof(b2), 0));
	settle(l);
	cr_assert_eq(r1.calls + r2.calls, 0);
	START(&co, ur_cancel_fd_start(l, &co.f, s, 1));
	ASSERT_RES(op_wait(l, &co), 2);
	ASSERT_RES(op_wait(l, &r1), -ECANCELED);
	ASSERT_RES(op_wait(l, &r2), -ECANCELED);

	/* Nothing left on s. */
	START(&co, ur_cancel_fd_start(l, &co.f, s, 1));
	ASSERT_RES(op_wait(l, &co), -ENOENT);
	START(&co, ur_cancel_fd_start(l, &co.f, s, 0));
	ASSERT_RES(op_wait(l, &co), -ENOENT);

	/* all = 0 cancels one of two; the other still gets its data. */
	START(&r1, ur_recv_start(l, &r1.f, s, b1, sizeof(b1), 0));
	START(&r2, ur_recv_start(l, &r2.f, s, b2, sizeof(b2), 0));
	settle(l);
	START(&co, ur_cancel_fd_start(l, &co.f, s, 0));
	ASSERT_RES(op_wait(l, &co), 1);
	settle(l);
	cr_assert_eq(r1.calls + r2.calls, 1, "cancelled %d recvs", r1.calls + r2.calls);
	struct op *gone = r1.calls ? &r1 : &r2, *live = r1.calls ? &r2 : &r1;
	ASSERT_RES(gone->res, -ECANCELED);
	cr_assert_eq(write(c, "data", 4), 4);
	ASSERT_RES(op_wait(l, live), 4);
	cr_assert_arr_eq(live == &r1 ? b1 : b2, "data", 4);
	cr_assert_eq(gone->calls, 1);

	/* Operations on another descriptor are not touched. */
	START(&r1, ur_recv_start(l, &r1.f, c, b1, sizeof(b1), 0));
	settle(l);
	START(&co, ur_cancel_fd_start(l, &co.f, s, 1));
	ASSERT_RES(op_wait(l, &co), -ENOENT);
	settle(l);
	cr_assert_eq(r1.calls, 0);
	cr_assert_eq(write(s, "ok", 2), 2);
	ASSERT_RES(op_wait(l, &r1), 2);

	close(c);
	close(s);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

/* ---- per-operation deadlines ---- */

Test(io, deadline_expires_with_etimedout)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	need_op(l, IORING_OP_LINK_TIMEOUT, "IORING_OP_LINK_TIMEOUT");
	int c, s;
	t_tcp_pair(&c, &s);
	struct op o;
	char buf[8];
	memset(buf, 0, sizeof(buf));

	op_init(&o);
	ASSERT_RES(ur_future_set_deadline(&o.f, 50 * UR_MSEC), 0);
	uint64_t t0 = ur_now_ns();
	ASSERT_RES(ur_recv_start(l, &o.f, s, buf, sizeof(buf), 0), 0);
	cr_assert_eq(o.calls, 0);
	ASSERT_RES(op_wait(l, &o), -ETIMEDOUT);
	uint64_t el = o.at - t0;
	cr_assert_geq(el, 45 * UR_MSEC, "timed out after %llu ns", (unsigned long long)el);
	cr_assert_lt(el, 10 * UR_SEC, "timed out after %llu ns", (unsigned long long)el);

	/* The socket is unharmed: data sent now is there for the next recv. */
	cr_assert_eq(write(c, "late", 4), 4);
	START(&o, ur_recv_start(l, &o.f, s, buf, sizeof(buf), 0));
	ASSERT_RES(op_wait(l, &o), 4);
	cr_assert_arr_eq(buf, "late", 4);

	close(c);
	close(s);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

Test(io, deadline_met_delivers_data_and_applies_to_one_start)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	need_op(l, IORING_OP_LINK_TIMEOUT, "IORING_OP_LINK_TIMEOUT");
	int c, s;
	t_tcp_pair(&c, &s);
	struct op o, to;
	char buf[8];
	memset(buf, 0, sizeof(buf));

	/* Data arrives while the recv waits under a 10 s deadline. */
	op_init(&o);
	ASSERT_RES(ur_future_set_deadline(&o.f, 10 * UR_SEC), 0);
	uint64_t t0 = ur_now_ns();
	ASSERT_RES(ur_recv_start(l, &o.f, s, buf, sizeof(buf), 0), 0);
	ASSERT_RES(ur_future_set_deadline(&o.f, UR_SEC), -EBUSY);
	settle(l);
	cr_assert_eq(o.calls, 0);
	cr_assert_eq(write(c, "intime", 6), 6);
	ASSERT_RES(op_wait(l, &o), 6);
	cr_assert_arr_eq(buf, "intime", 6);
	cr_assert_lt(o.at - t0, 5 * UR_SEC, "waited for the deadline despite the data");

	/* A 50 ms deadline on a recv whose data is already there. */
	cr_assert_eq(write(c, "ready", 5), 5);
	ASSERT_RES(ur_future_set_deadline(&o.f, 50 * UR_MSEC), 0);
	o.calls = 0;
	ASSERT_RES(ur_recv_start(l, &o.f, s, buf, sizeof(buf), 0), 0);
	ASSERT_RES(op_wait(l, &o), 5);
	cr_assert_arr_eq(buf, "ready", 5);

	/* The next start of the same future has no deadline: still waiting well after 50 ms. */
	o.calls = 0;
	ASSERT_RES(ur_recv_start(l, &o.f, s, buf, sizeof(buf), 0), 0);
	START(&to, ur_timeout_start(l, &to.f, 150 * UR_MSEC, 0));
	ASSERT_RES(op_wait(l, &to), 0);
	cr_assert_eq(o.calls, 0, "deadline carried over to a later start: res %d (%s)", o.res,
	             ur_strerror_name(o.res));
	cr_assert_eq(write(c, "after", 5), 5);
	ASSERT_RES(op_wait(l, &o), 5);
	cr_assert_arr_eq(buf, "after", 5);

	/* Deadlines on file operations too: a read that completes at once. */
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_eq(write(p[1], "pipe", 4), 4);
	ASSERT_RES(ur_future_set_deadline(&o.f, UR_SEC), 0);
	o.calls = 0;
	ASSERT_RES(ur_read_start(l, &o.f, p[0], buf, sizeof(buf), UR_OFF_CURRENT), 0);
	ASSERT_RES(op_wait(l, &o), 4);
	cr_assert_arr_eq(buf, "pipe", 4);
	/* ...and one on an empty pipe that times out. */
	ASSERT_RES(ur_future_set_deadline(&o.f, 30 * UR_MSEC), 0);
	o.calls = 0;
	ASSERT_RES(ur_read_start(l, &o.f, p[0], buf, sizeof(buf), UR_OFF_CURRENT), 0);
	ASSERT_RES(op_wait(l, &o), -ETIMEDOUT);
	close(p[0]);
	close(p[1]);

	close(c);
	close(s);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

Test(io, deadline_refused_on_timeout_and_multishot)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	struct ur_bufring *br = t_bufring(&l, 2, 1024);
	int c, s;
	t_tcp_pair(&c, &s);
	uint16_t port;
	int lfd = t_listen_tcp(&port);
	struct op o;

	op_init(&o);
	ASSERT_RES(ur_future_set_deadline(&o.f, 50 * UR_MSEC), 0);
	ASSERT_RES(ur_timeout_start(l, &o.f, UR_MSEC, 0), -EINVAL);
	cr_assert_eq(ur_future_state(&o.f), UR_FUTURE_IDLE);
	ASSERT_RES(ur_accept_multishot_start(l, &o.f, lfd, 0), -EINVAL);
	cr_assert_eq(ur_future_state(&o.f), UR_FUTURE_IDLE);
	ASSERT_RES(ur_recv_multishot_start(l, &o.f, s, br, 0), -EINVAL);
	cr_assert_eq(ur_future_state(&o.f), UR_FUTURE_IDLE);
	ASSERT_RES(ur_cancel(&o.f), -ENOENT);

	/* A failed start never completes, and holds nothing. */
	struct op to;
	START(&to, ur_timeout_start(l, &to.f, 10 * UR_MSEC, 0));
	ASSERT_RES(op_wait(l, &to), 0);
	cr_assert_eq(o.calls, 0);
	cr_assert_eq(ur_loop_pending(l), 0);

	ASSERT_RES(ur_bufring_free(&br), 0);
	close(lfd);
	close(c);
	close(s);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}
