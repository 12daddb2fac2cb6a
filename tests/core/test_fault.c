/* SPDX-License-Identifier: MIT */
/*
 * tests/core/test_fault.c - the fault injector itself (fault builds only: meson
 * -Dfault_injection=true): each class does what docs/reliability.md says and nothing the kernel
 * could not, and a mixed workload of tasks under every class at once moves every byte or ends
 * with a clear error, never hangs, leaks nothing.
 *
 * Each test sets its own UR_FAULT_* before making its loop (Criterion gives every test a
 * process of its own). The chaos test takes the run's seed when a fault pass sets one.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include "../helpers.h"

TestSuite(fault, .timeout = 60);

static void faults(const char *seed, const char *rate, const char *spec)
{
	setenv("UR_FAULT_SEED", seed, 1);
	setenv("UR_FAULT_RATE", rate, 1);
	setenv("UR_FAULT_SPEC", spec, 1);
}

static int run_op(struct ur_loop *l, struct ur_future *f)
{
	t_run_until(l, f);
	return f->res;
}

static void pattern(char *buf, size_t len, unsigned salt)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)((i * 131 + salt) >> 3);
}

Test(fault, short_read_reports_a_prefix_of_what_arrived)
{
	faults("1", "1", "short");
	struct ur_loop *l = t_loop();
	int p[2];
	char data[100], got[100] = {0};
	pattern(data, sizeof(data), 1);
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_eq(write(p[1], data, sizeof(data)), 100);

	size_t have = 0;
	int shorts = 0;
	while (have < sizeof(data)) {
		struct ur_future f;
		ur_future_init(&f, NULL, NULL);
		ASSERT_RES(
		    ur_read_start(l, &f, p[0], got + have, sizeof(got) - have, UR_OFF_CURRENT), 0);
		int n = run_op(l, &f);
		cr_assert_gt(n, 0);
		shorts += (size_t)n < sizeof(got) - have;
		have += (size_t)n;
	}
	cr_assert_gt(shorts, 0, "rate 1 made no read short");
	cr_assert_arr_eq(got, data, sizeof(data));
	close(p[0]);
	close(p[1]);
	t_loop_done(&l);
}

Test(fault, short_send_is_split_before_submission)
{
	faults("2", "1", "short");
	struct ur_loop *l = t_loop();
	int c, s;
	t_tcp_pair(&c, &s);
	char data[1000], got[1000];
	pattern(data, sizeof(data), 2);

	struct ur_future f;
	ur_future_init(&f, NULL, NULL);
	ASSERT_RES(ur_send_start(l, &f, c, data, sizeof(data), 0), 0);
	int n = run_op(l, &f);
	cr_assert(n > 0 && n < 1000, "send of 1000 gave %d", n);
	/* The peer gets exactly the bytes reported, not one more: nothing was sent and hidden. */
	cr_assert_eq(recv(s, got, (size_t)n, MSG_WAITALL), n);
	cr_assert_arr_eq(got, data, (size_t)n);
	cr_assert_eq(recv(s, got, sizeof(got), MSG_DONTWAIT), -1);
	cr_assert_eq(errno, EAGAIN);
	close(c);
	close(s);
	t_loop_done(&l);
}

Test(fault, eintr_moves_nothing_and_spares_regular_files)
{
	faults("3", "1", "eintr");
	struct ur_loop *l = t_loop();
	int p[2];
	char buf[16];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_eq(write(p[1], "0123456789", 10), 10);
	struct ur_future f;
	ur_future_init(&f, NULL, NULL);
	ASSERT_RES(ur_read_start(l, &f, p[0], buf, sizeof(buf), UR_OFF_CURRENT), 0);
	ASSERT_RES(run_op(l, &f), -EINTR);
	cr_assert_eq(read(p[0], buf, sizeof(buf)), 10, "the interrupted read took data");

	/* A regular file's read is not interrupted: not eligible. */
	char path[] = "/tmp/urio-fault-XXXXXX";
	int fd = mkostemp(path, O_CLOEXEC);
	cr_assert_geq(fd, 0);
	unlink(path);
	cr_assert_eq(write(fd, "abcdef", 6), 6);
	ASSERT_RES(ur_read_start(l, &f, fd, buf, sizeof(buf), 0), 0);
	ASSERT_RES(run_op(l, &f), 6);
	close(fd);
	close(p[0]);
	close(p[1]);
	t_loop_done(&l);
}

Test(fault, eagain_only_where_the_descriptor_is_non_blocking)
{
	faults("4", "1", "eagain");
	struct ur_loop *l = t_loop();
	int p[2];
	char buf[16];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_eq(write(p[1], "abc", 3), 3);
	struct ur_future f;
	ur_future_init(&f, NULL, NULL);
	ASSERT_RES(ur_read_start(l, &f, p[0], buf, 1, UR_OFF_CURRENT), 0);
	ASSERT_RES(run_op(l, &f), 1); /* blocking: io_uring waits, it never says EAGAIN */
	cr_assert_eq(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
	ASSERT_RES(ur_read_start(l, &f, p[0], buf, sizeof(buf), UR_OFF_CURRENT), 0);
	ASSERT_RES(run_op(l, &f), -EAGAIN);
	cr_assert_eq(read(p[0], buf, sizeof(buf)), 2, "the EAGAIN read took data");
	close(p[0]);
	close(p[1]);
	t_loop_done(&l);
}

Test(fault, reset_really_ends_the_connection)
{
	faults("5", "1", "reset");
	struct ur_loop *l = t_loop();
	int c, s;
	char buf[16];
	t_tcp_pair(&c, &s);
	struct ur_future f;
	ur_future_init(&f, NULL, NULL);
	ASSERT_RES(ur_recv_start(l, &f, s, buf, sizeof(buf), 0), 0);
	ASSERT_RES(run_op(l, &f), -ECONNRESET);
	/* What follows a reset: end of stream on our side, and the peer sees the end too. */
	cr_assert_eq(recv(s, buf, sizeof(buf), 0), 0);
	cr_assert_eq(recv(c, buf, sizeof(buf), 0), 0);
	close(c);
	close(s);
	t_loop_done(&l);
}

struct ms {
	struct ur_bufring *br;
	char got[64];
	size_t have;
	int last;
};

static void ms_cb(struct ur_future *f, void *arg)
{
	struct ms *m = arg;
	int bid = ur_future_buffer(f);
	if (f->res > 0 && bid >= 0) {
		memcpy(m->got + m->have, ur_bufring_buf(m->br, (unsigned)bid), (size_t)f->res);
		m->have += (size_t)f->res;
		ur_bufring_recycle(m->br, (unsigned)bid);
	}
	if (!(f->cqe_flags & IORING_CQE_F_MORE))
		m->last = f->res;
}

Test(fault, enobufs_rearms_a_multishot_recv_and_loses_nothing)
{
	faults("6", "1", "enobufs");
	struct ur_loop *l = t_loop();
	int c, s;
	t_tcp_pair(&c, &s);
	struct ms m = {0};
	int ret = ur_bufring_new(l, &m.br, 4, 16);
	if (ret == -EOPNOTSUPP)
		cr_skip_test("no buffer rings (Linux 5.19)");
	ASSERT_RES(ret, 0);
	struct ur_future f;
	ur_future_init(&f, ms_cb, &m);
	ASSERT_RES(ur_recv_multishot_start(l, &f, s, m.br, 0), 0);
	cr_assert_eq(send(c, "stopped, re-armed", 17, 0), 17);
	while (m.have < 17)
		cr_assert_geq(ur_loop_run(l, UR_RUN_ONCE), 0);
	cr_assert_arr_eq(m.got, "stopped, re-armed", 17);
	cr_assert_eq(ur_future_done(&f), false, "ENOBUFS ended the multishot");
	close(c); /* end of stream ends it */
	t_run_until(l, &f);
	ASSERT_RES(m.last, 0);
	ASSERT_RES(ur_bufring_free(&m.br), 0);
	close(s);
	t_loop_done(&l);
}

Test(fault, enomem_fails_the_start_and_the_future_never_completes)
{
	faults("7", "1", "enomem");
	struct ur_loop *l = t_loop();
	int calls = 0;
	struct ur_future f;
	ur_future_init(&f, t_count_cb, &calls);
	ASSERT_RES(ur_nop_start(l, &f), -ENOMEM);
	cr_assert_eq(ur_future_done(&f), false);
	cr_assert_eq(ur_loop_pending(l), 0);
	ASSERT_RES(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	cr_assert_eq(calls, 0);
	t_loop_done(&l);
}

/*
 * The enomem class at the core's own allocations and re-arms (core/fault.h, enum ur__fault_site).
 * Each test logs its loop's counts to a file and checks the site it is about really fired.
 */
static char site_log[] = "/tmp/urio-fault-site-XXXXXX";

static void site_faults(const char *seed, const char *rate)
{
	int fd = mkstemp(site_log);
	cr_assert_geq(fd, 0);
	close(fd);
	faults(seed, rate, "enomem");
	setenv("UR_FAULT_LOG", site_log, 1);
}

/* How often the loops logged so far refused at @site ("rearm" etc.); removes the log. */
static unsigned long site_fired(const char *site)
{
	FILE *fp = fopen(site_log, "r");
	cr_assert_not_null(fp);
	char line[512], key[32];
	unsigned long n = 0;
	snprintf(key, sizeof(key), " %s:", site);
	while (fgets(line, sizeof(line), fp)) {
		const char *q = strstr(line, key);
		if (q)
			n += strtoul(q + strlen(key), NULL, 10);
	}
	fclose(fp);
	unlink(site_log);
	return n;
}

enum {
	SP_TASKS = 300
};
static int sp_ran[SP_TASKS + 32];

/* Holds its stack across two yields, so that the next task needs a fresh one. */
static int sp_task(void *arg)
{
	int i = (int)(intptr_t)arg;
	ur_yield();
	ur_yield();
	sp_ran[i]++;
	return i;
}

Test(fault, enomem_at_spawn_fails_the_spawn_or_the_task_never_runs)
{
	site_faults("21", "0.3");
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	static struct ur_task *t[SP_TASKS];
	int refused = 0, unrun = 0, ran = 0;
	for (int i = 0; i < SP_TASKS; i++) {
		int r = ur_spawn(l, &t[i], sp_task, (void *)(intptr_t)i, NULL);
		cr_assert(r == 0 || r == -ENOMEM, "ur_spawn: %s", ur_strerror(r));
		if (r < 0) {
			cr_assert_null(t[i]);
			refused++;
		}
	}
	/* Large stacks are mapped one by one: each its own chance to be refused. */
	struct ur_task_opts big = {.stack_size = 1 << 20};
	static struct ur_task *tb[32];
	for (int i = 0; i < 32; i++)
		if (ur_spawn(l, &tb[i], sp_task, (void *)(intptr_t)(SP_TASKS + i), &big) < 0)
			tb[i] = NULL;
	ASSERT_RES(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	for (int i = 0; i < SP_TASKS; i++) {
		if (!t[i])
			continue;
		int r = ur_join(t[i]);
		if (r == -ENOMEM) {
			cr_assert_eq(sp_ran[i], 0, "task %d failed for want of a stack, yet ran",
			             i);
			unrun++;
		} else {
			ASSERT_RES(r, i);
			cr_assert_eq(sp_ran[i], 1);
			ran++;
		}
	}
	for (int i = 0; i < 32; i++)
		if (tb[i]) {
			int r = ur_join(tb[i]);
			cr_assert(r == SP_TASKS + i || r == -ENOMEM, "%s", ur_strerror(r));
		}
	cr_assert_gt(refused, 0, "no spawn was refused");
	cr_assert_gt(unrun, 0, "no task was refused its stack");
	cr_assert_gt(ran, 0, "no task ran");
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
	cr_assert_gt(site_fired("task"), 0);
	cr_log_info("spawn: %d refused, %d without a stack, %d ran", refused, unrun, ran);
}

static int run_main(void *arg)
{
	(void)arg;
	return 7;
}

Test(fault, enomem_at_spawn_makes_ur_run_fail_cleanly)
{
	site_faults("22", "1");
	int result = -1;
	/* ur_run's own loop, then a caller's: the main task is refused, nothing is left behind */
	ASSERT_RES(ur_run(NULL, run_main, NULL, &result), -ENOMEM);
	struct ur_loop *l = t_loop();
	ASSERT_RES(ur_run(l, run_main, NULL, &result), -ENOMEM);
	cr_assert_eq(result, -1);
	t_loop_done(&l);
	cr_assert_gt(site_fired("task"), 0);
}

/*
 * A multishot recv on a one-buffer ring whose buffer the test holds while the next chunk
 * arrives: the kernel stops the recv (ENOBUFS), and the recycle arms it again.
 */
struct rearm {
	struct ur_bufring *br;
	char got[4096];
	size_t have;
	unsigned chunks;
	int held;
};

static void rearm_cb(struct ur_future *f, void *arg)
{
	struct rearm *m = arg;
	int bid = ur_future_buffer(f);
	if (f->res > 0 && bid >= 0) {
		cr_assert_leq(m->have + (size_t)f->res, sizeof(m->got));
		memcpy(m->got + m->have, ur_bufring_buf(m->br, bid), (size_t)f->res);
		m->have += (size_t)f->res;
		m->chunks++;
		m->held = bid;
	}
}

Test(fault, enomem_at_rearm_ends_the_multishot_recv_with_the_error)
{
	site_faults("23", "0.3");
	struct ur_loop *l = t_loop();
	int c, s;
	t_tcp_pair(&c, &s);
	struct rearm m = {.held = -1};
	int ret = ur_bufring_new(l, &m.br, 1, 64);
	if (ret == -EOPNOTSUPP)
		cr_skip_test("no buffer rings (Linux 5.19)");
	ASSERT_RES(ret, 0);
	struct ur_future f;
	ur_future_init(&f, rearm_cb, &m);
	/* the start itself may be refused too (the same class): then nothing began, try again */
	int tries = 0;
	while ((ret = ur_recv_multishot_start(l, &f, s, m.br, 0)) == -ENOMEM)
		cr_assert_lt(++tries, 100);
	ASSERT_RES(ret, 0);
	char sent[4096];
	pattern(sent, sizeof(sent), 23);
	size_t out = 0;
	while (!ur_future_done(&f)) {
		cr_assert_lt(out, sizeof(sent), "no re-arm was refused in %zu bytes", out);
		cr_assert_eq(send(c, sent + out, 16, 0), 16);
		out += 16;
		if (m.held >= 0) {
			/* the chunk finds no buffer: wait for the recv's ENOBUFS, then recycle */
			struct ur_loop_stats a, b;
			ur_loop_stats(l, &a);
			do {
				cr_assert_geq(ur_loop_run(l, UR_RUN_ONCE), 0);
				ur_loop_stats(l, &b);
			} while (b.reaped == a.reaped);
			ur_bufring_recycle(m.br, m.held);
			m.held = -1;
		}
		while (m.have < out && !ur_future_done(&f))
			cr_assert_geq(ur_loop_run(l, UR_RUN_ONCE), 0);
	}
	if (m.held >= 0)
		ur_bufring_recycle(m.br, m.held);
	ASSERT_RES(f.res, -ENOMEM);
	/* What was delivered is the stream's prefix; the rest is still in the socket, not lost. */
	cr_assert_arr_eq(m.got, sent, m.have);
	char rest[4096];
	ssize_t n = recv(s, rest, sizeof(rest), MSG_DONTWAIT);
	size_t left = n > 0 ? (size_t)n : 0;
	cr_assert_eq(m.have + left, out, "%zu delivered + %zu left != %zu sent", m.have, left, out);
	cr_assert_arr_eq(rest, sent + m.have, left);
	/* The ended recv let go of its ring. */
	ASSERT_RES(ur_bufring_free(&m.br), 0);
	close(c);
	close(s);
	t_loop_done(&l);
	cr_assert_gt(site_fired("rearm"), 0);
	cr_log_info("rearm: ended after %u chunks", m.chunks);
}

Test(fault, enomem_at_send_zc_fallback_fails_the_send_cleanly)
{
	site_faults("24", "0.5");
	int fds = t_count_fds();
	char out[512], in[512];
	pattern(out, sizeof(out), 24);
	int refused = 0, sent = 0;
	/* The fallback happens once per loop (the loop remembers): a loop per try. */
	for (int round = 0; round < 64 && !(refused && sent); round++) {
		struct ur_loop *l = t_loop();
		if (!ur_loop_supports(l, IORING_OP_SEND_ZC)) {
			ur_loop_free(&l);
			cr_skip_test("no IORING_OP_SEND_ZC (6.0)");
		}
		int sv[2];
		cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		struct ur_future f;
		ur_future_init(&f, NULL, NULL);
		int ret;
		while ((ret = ur_send_zc_start(l, &f, sv[0], out, sizeof(out), 0)) == -ENOMEM)
			;
		ASSERT_RES(ret, 0);
		t_run_until(l, &f);
		if (f.res == -ENOMEM) {
			/* nothing was sent */
			cr_assert_eq(recv(sv[1], in, sizeof(in), MSG_DONTWAIT), -1);
			refused++;
		} else {
			ASSERT_RES(f.res, (int)sizeof(out));
			cr_assert_eq(recv(sv[1], in, sizeof(in), MSG_WAITALL), (ssize_t)sizeof(in));
			cr_assert_arr_eq(in, out, sizeof(in));
			sent++;
		}
		close(sv[0]);
		close(sv[1]);
		t_loop_done(&l);
	}
	unsigned long fired = site_fired("sendzc");
	if (!refused && !sent)
		cr_skip_test("this kernel does zero copy on Unix sockets: no fallback to test");
	cr_assert_gt(refused, 0, "no fallback was refused");
	cr_assert_eq(fired, (unsigned long)refused);
	cr_assert_eq(t_count_fds(), fds);
}

/* A thread posts, each post after the last has run; the loop must wake for every one. */
enum {
	WK_POSTS = 400
};
struct wake_run {
	struct ur_loop *l;
	struct ur_post p[WK_POSTS];
	atomic_int ran;
};

static void wake_post(void *arg)
{
	struct wake_run *w = arg;
	if (atomic_fetch_add(&w->ran, 1) + 1 == WK_POSTS)
		ur_loop_unref(w->l);
}

static void *wake_poster(void *arg)
{
	struct wake_run *w = arg;
	for (int i = 0; i < WK_POSTS; i++) {
		w->p[i] = (struct ur_post){.fn = wake_post, .arg = w};
		cr_assert_eq(ur_loop_post(w->l, &w->p[i]), 0);
		while (atomic_load(&w->ran) <= i)
			usleep(50); /* the loop is asleep again before the next post, most times */
	}
	return NULL;
}

Test(fault, enomem_at_the_wake_up_rearm_loses_no_post, .timeout = 60)
{
	t_skip_under_valgrind();
	site_faults("25", "0.5");
	static struct wake_run w;
	w.l = t_loop();
	atomic_store(&w.ran, 0);
	ur_loop_ref(w.l);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, wake_poster, &w), 0);
	ASSERT_RES(ur_loop_run(w.l, UR_RUN_DEFAULT), 0);
	pthread_join(th, NULL);
	cr_assert_eq(atomic_load(&w.ran), WK_POSTS);
	t_loop_done(&w.l);
	cr_assert_gt(site_fired("wake"), 0);
}

/*
 * A cancellation whose SQE is refused (SQ full and no memory to queue one) is asked through
 * io_uring_register_sync_cancel instead: ur_cancel() and an expiring timeout scope still end
 * receives that would never complete. Lost, the loop's run would hang (the test's timeout).
 */
enum {
	CN_PAIRS = 48
};

static int cancel_waiter(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char b[8];
	struct ur_timeout to;
	ur_timeout_begin(&to, 20 * UR_MSEC);
	ssize_t r = ur_recv(fd, b, sizeof(b), 0);
	int end = ur_timeout_end(&to);
	/* refused at its start (enomem), or cancelled by the scope's expiry */
	cr_assert(r == -ENOMEM || (r == -ETIMEDOUT && end == -ETIMEDOUT), "recv %zd, end %d", r,
	          end);
	return 0;
}

Test(fault, enomem_at_a_cancellation_still_cancels, .timeout = 60)
{
	site_faults("26", "0.5");
	struct ur_loop *l = t_loop();
	int sv[CN_PAIRS][2];
	struct ur_future f[CN_PAIRS];
	char buf[CN_PAIRS][8];
	bool started[CN_PAIRS];
	unsigned n = 0;

	/* the first half reaches the kernel and waits for data; the second stays in the SQ */
	for (int i = 0; i < CN_PAIRS; i++) {
		if (i == CN_PAIRS / 2)
			ASSERT_RES(ur_loop_run(l, UR_RUN_NOWAIT), (int)n);
		cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv[i]), 0);
		ur_future_init(&f[i], NULL, NULL);
		int r = ur_recv_start(l, &f[i], sv[i][0], buf[i], sizeof(buf[i]), 0);
		cr_assert(r == 0 || r == -ENOMEM, "start: %d", r);
		started[i] = r == 0;
		n += started[i];
	}
	cr_assert_gt(n, 0);
	for (int i = 0; i < CN_PAIRS; i++)
		if (started[i])
			ASSERT_RES(ur_cancel(&f[i]), 0);
	ASSERT_RES(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	for (int i = 0; i < CN_PAIRS; i++)
		if (started[i])
			ASSERT_RES(f[i].res, -ECANCELED);

	/* the same through timeout scopes, in tasks */
	for (int i = 0; i < CN_PAIRS; i++) {
		int r = ur_spawn(l, NULL, cancel_waiter, (void *)(intptr_t)sv[i][0], NULL);
		cr_assert(r == 0 || r == -ENOMEM, "spawn: %d", r);
	}
	ASSERT_RES(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	for (int i = 0; i < CN_PAIRS; i++) {
		close(sv[i][0]);
		close(sv[i][1]);
	}
	t_loop_done(&l);
	cr_assert_gt(site_fired("cancel"), 0);
}

Test(fault, delay_keeps_order_and_loses_nothing)
{
	faults("8", "0.5", "delay");
	struct ur_loop *l = t_loop();
	enum {
		N = 2000
	};
	static struct ur_future fs[N];
	static int seen[N];
	int done = 0;
	for (int i = 0; i < N; i++) {
		ur_future_init(&fs[i], t_count_cb, &seen[i]);
		ASSERT_RES(ur_nop_start(l, &fs[i]), 0);
	}
	ASSERT_RES(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	for (int i = 0; i < N; i++)
		done += seen[i] == 1;
	cr_assert_eq(done, N, "some completion was lost or delivered twice");
	t_loop_done(&l);
}

/* The lengths a fixed seed gives the first reads of a fresh loop, in a child process. */
static void replay_child(int out)
{
	faults("99", "0.5", "short");
	struct ur_loop *l = NULL;
	if (t_loop_new(&l) < 0)
		_exit(2);
	int p[2];
	char buf[64];
	if (pipe2(p, O_CLOEXEC))
		_exit(2);
	for (int i = 0; i < 32; i++) {
		struct ur_future f;
		ur_future_init(&f, NULL, NULL);
		if (write(p[1], buf, sizeof(buf)) != sizeof(buf) ||
		    ur_read_start(l, &f, p[0], buf, sizeof(buf), UR_OFF_CURRENT) < 0)
			_exit(2);
		while (!ur_future_done(&f))
			ur_loop_run(l, UR_RUN_ONCE);
		if (write(out, &f.res, sizeof(f.res)) != sizeof(f.res))
			_exit(2);
		char drain[64];
		if (f.res < 64 && read(p[0], drain, 64 - (size_t)f.res) < 0)
			_exit(2);
	}
	ur_loop_free(&l);
	_exit(0);
}

Test(fault, the_same_seed_replays_the_same_faults)
{
	int32_t res[2][32];
	for (int k = 0; k < 2; k++) {
		int p[2];
		cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
		pid_t pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0)
			replay_child(p[1]);
		close(p[1]);
		size_t have = 0;
		ssize_t n;
		while ((n = read(p[0], (char *)res[k] + have, sizeof(res[k]) - have)) > 0)
			have += (size_t)n;
		close(p[0]);
		int st;
		cr_assert_eq(waitpid(pid, &st, 0), pid);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		cr_assert_eq(have, sizeof(res[k]));
	}
	int shorts = 0;
	for (int i = 0; i < 32; i++)
		shorts += res[0][i] < 64;
	cr_assert_gt(shorts, 0);
	cr_assert_arr_eq(res[0], res[1], sizeof(res[0]));
}

/*
 * Chaos: pairs of tasks stream 256 KiB each over a TCP connection, a unix socket pair and a pipe,
 * through ur_write_all / ur_read_all / ur_send / ur_recv, with sleeps and deadlines around them.
 * Under the classes a correct program absorbs (short transfers, EINTR, late completions) every
 * pair must complete byte for byte; under every class at once, whatever arrives must be the
 * stream's prefix, each side must end with success or a clear error, and nothing may hang or
 * leak.
 */
enum {
	CH_PAIRS = 6,
	CH_LEN = 256 * 1024
};

struct chaos_pair {
	int wfd, rfd;
	bool sock, wran, rran;
	char *out, *in;
	ssize_t wres, rres;
	size_t got;
};

static bool clear_error(ssize_t r)
{
	return r == -ENOMEM || r == -ECONNRESET || r == -EPIPE || r == -EINTR || r == -EAGAIN;
}

static int chaos_writer(void *arg)
{
	struct chaos_pair *p = arg;
	size_t done = 0;
	p->wran = true;
	ur_sleep(1000 * 1000); /* 1 ms: the reader is waiting when data comes */
	while (done < CH_LEN) {
		size_t chunk = CH_LEN - done < 10000 ? CH_LEN - done : 10000;
		ssize_t n = p->sock ? ur_send(p->wfd, p->out + done, chunk, MSG_NOSIGNAL)
		                    : ur_write_all(p->wfd, p->out + done, chunk, UR_OFF_CURRENT);
		if (n == -EINTR)
			continue;
		if (n <= 0) {
			p->wres = n;
			break;
		}
		done += (size_t)n;
	}
	if (done == CH_LEN)
		p->wres = (ssize_t)done;
	/* The end of the stream, even after an error: the reader must not wait forever. */
	if (ur_close(p->wfd) < 0)
		close(p->wfd);
	return 0;
}

static int chaos_reader(void *arg)
{
	struct chaos_pair *p = arg;
	p->rran = true;
	for (;;) {
		ssize_t n;
		if (p->sock) {
			ur_deadline(10ull *
			            UR_SEC); /* generous: only a lost wake-up would hit it */
			n = ur_recv(p->rfd, p->in + p->got, CH_LEN - p->got, 0);
			if (n == -EINTR)
				continue;
		} else {
			n = ur_read_all(p->rfd, p->in + p->got, CH_LEN - p->got, UR_OFF_CURRENT);
		}
		if (n <= 0) {
			p->rres = n;
			break;
		}
		p->got += (size_t)n;
		if (p->got == CH_LEN) {
			p->rres = (ssize_t)p->got;
			break;
		}
	}
	if (ur_close(p->rfd) < 0)
		close(p->rfd);
	return 0;
}

static bool chaos_main_ran;

static int chaos_main(void *arg)
{
	struct chaos_pair *ps = arg;
	chaos_main_ran = true;
	struct ur_task *t[2 * CH_PAIRS];
	struct ur_future *fs[2 * CH_PAIRS];
	struct chaos_pair *of[2 * CH_PAIRS];
	int sides[2 * CH_PAIRS];
	size_t n = 0;
	for (int i = 0; i < CH_PAIRS; i++) {
		for (int side = 0; side < 2; side++) {
			int r = ur_spawn(ur_current_loop(), &t[n],
			                 side ? chaos_reader : chaos_writer, &ps[i], NULL);
			if (r < 0) {
				/* enomem refused the spawn: that side ends at once, its end closed
				 */
				cr_assert_eq(r, -ENOMEM, "ur_spawn: %s", ur_strerror(r));
				*(side ? &ps[i].rres : &ps[i].wres) = r;
				close(side ? ps[i].rfd : ps[i].wfd);
				continue;
			}
			fs[n] = ur_task_future(t[n]);
			of[n] = &ps[i];
			sides[n] = side;
			n++;
		}
	}
	/*
	 * As they end. A task refused its stack ends -ENOMEM without having run: its end of the
	 * pair is closed here, or the other side would wait for it forever.
	 */
	struct ur_as_completed it;
	struct ur_future *f;
	int r = ur_as_completed_init(&it, fs, n);
	while (r == 0 && (r = ur_as_completed_next(&it, &f)) == 0) {
		size_t k = 0;
		while (fs[k] != f)
			k++;
		struct chaos_pair *p = of[k];
		if (f->res == -ENOMEM && !(sides[k] ? p->rran : p->wran)) {
			*(sides[k] ? &p->rres : &p->wres) = -ENOMEM;
			close(sides[k] ? p->rfd : p->wfd);
		}
	}
	for (size_t i = 0; i < n; i++)
		ur_join(t[i]);
	return r == -ENOENT ? 0 : r;
}

/* @spec: the classes; @whole: every pair must complete. The run's seed if a fault pass set one. */
static void chaos(const char *spec, bool whole)
{
	char log[] = "/tmp/urio-fault-log-XXXXXX";
	int lfd = mkstemp(log);
	cr_assert_geq(lfd, 0);
	close(lfd);
	faults(t_fault_active() ? getenv("UR_FAULT_SEED") : "12345", whole ? "0.2" : "0.03", spec);
	setenv("UR_FAULT_LOG", log, 1);
	signal(SIGPIPE, SIG_IGN); /* a pipe's writer whose reader failed gets -EPIPE, not killed */
	int fds = t_count_fds();
	static struct chaos_pair ps[CH_PAIRS];
	for (int i = 0; i < CH_PAIRS; i++) {
		int a[2];
		switch (i % 3) {
		case 0:
			t_tcp_pair(&a[0], &a[1]);
			break;
		case 1:
			cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a), 0);
			break;
		default:
			cr_assert_eq(pipe2(a, O_CLOEXEC), 0);
			int t = a[0]; /* pipe2 gives [read, write] */
			a[0] = a[1];
			a[1] = t;
			break;
		}
		ps[i] = (struct chaos_pair){.wfd = a[0], .rfd = a[1], .sock = i % 3 != 2};
		ps[i].out = malloc(CH_LEN);
		ps[i].in = calloc(1, CH_LEN);
		pattern(ps[i].out, CH_LEN, (unsigned)i);
	}
	struct ur_loop *l = t_loop();
	int result = 0;
	int r = ur_run(l, chaos_main, ps, &result);
	cr_assert(r == 0 || clear_error(r), "ur_run: %s", ur_strerror(r));
	if (!chaos_main_ran) {
		/* the main task itself was refused (its spawn or its stack): nothing ran */
		cr_assert(r == -ENOMEM || result == -ENOMEM, "%d %d", r, result);
		for (int i = 0; i < CH_PAIRS; i++) {
			ps[i].wres = ps[i].rres = -ENOMEM;
			close(ps[i].wfd);
			close(ps[i].rfd);
		}
	}
	int complete = 0;
	for (int i = 0; i < CH_PAIRS; i++) {
		struct chaos_pair *p = &ps[i];
		/* Whatever arrived is the stream's prefix, byte for byte. */
		cr_assert_arr_eq(p->in, p->out, p->got, "pair %d: bytes differ", i);
		cr_assert(p->wres == CH_LEN || clear_error(p->wres), "pair %d writer: %zd (%s)", i,
		          p->wres, ur_strerror_name((int)p->wres));
		cr_assert(p->rres == CH_LEN || p->rres >= 0 || clear_error(p->rres),
		          "pair %d reader: %zd (%s)", i, p->rres, ur_strerror_name((int)p->rres));
		if (p->wres == CH_LEN && p->rres == CH_LEN)
			complete++;
		else if (whole)
			cr_assert_fail("pair %d: writer %zd (%s), reader %zd (%s), %zu bytes", i,
			               p->wres, ur_strerror_name((int)p->wres), p->rres,
			               ur_strerror_name((int)p->rres), p->got);
		/* A writer that finished cleanly, unreset, was read to the end. */
		if (p->wres == CH_LEN && p->rres >= 0)
			cr_assert_eq(p->got, (size_t)CH_LEN, "pair %d lost bytes silently", i);
		free(p->out);
		free(p->in);
	}
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds, "descriptors leaked");

	/* The faults happened: a chaos run that injected nothing proves nothing. */
	FILE *fp = fopen(log, "r");
	cr_assert_not_null(fp);
	char line[512];
	unsigned long total = 0;
	while (fgets(line, sizeof(line), fp))
		for (char *q = line; (q = strchr(q, '=')); q++)
			total += strtoul(q + 1, NULL, 10);
	fclose(fp);
	unlink(log);
	cr_assert_gt(total, 0, "no fault was injected");
	cr_log_info("chaos: %d of %d pairs complete, %lu faults", complete, CH_PAIRS, total);
}

Test(fault, chaos_absorbed_faults_lose_no_byte, .timeout = 120)
{
	chaos("short,eintr,eagain,delay", true);
}

Test(fault, chaos_every_byte_arrives_or_the_error_is_clear, .timeout = 120)
{
	chaos("all", false);
}
