/* SPDX-License-Identifier: MIT */
/*
 * tests/core/test_file.c - files: open, close, read, write, vectors, fsync, statx, fallocate,
 * directories.
 */
#include "io_fixtures.h"

TestSuite(file, .timeout = 30);

/* ==== files ==== */

Test(file, openat_gives_cloexec_fd_and_close_closes_it, .init = dir_setup, .fini = dir_teardown)
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

Test(file, openat_missing_file_is_enoent_once, .init = dir_setup, .fini = dir_teardown)
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

Test(file, write_then_read_back_exact_bytes, .init = dir_setup, .fini = dir_teardown)
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

Test(file, short_read_at_end_of_file, .init = dir_setup, .fini = dir_teardown)
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

Test(file, off_current_uses_and_moves_the_file_position, .init = dir_setup, .fini = dir_teardown)
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

Test(file, readv_writev_three_iovecs, .init = dir_setup, .fini = dir_teardown)
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

Test(file, fsync_and_datasync, .init = dir_setup, .fini = dir_teardown)
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

Test(file, statx_reports_size, .init = dir_setup, .fini = dir_teardown)
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

Test(file, fallocate_grows_the_file, .init = dir_setup, .fini = dir_teardown)
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

Test(file, mkdirat_renameat_unlinkat, .init = dir_setup, .fini = dir_teardown)
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
