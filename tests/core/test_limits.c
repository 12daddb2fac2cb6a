/* SPDX-License-Identifier: MIT */
/*
 * tests/core/test_limits.c - urio at the edge of the process's limits: descriptors (EMFILE on
 * accept), io_uring refused (kernel.io_uring_disabled, seccomp) or short of locked memory, and
 * address space for task stacks. Each case runs in a forked child, so that a lowered rlimit or a
 * seccomp filter never reaches another test; the child reports the first failed check through a
 * pipe and its exit status.
 */
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "helpers.h"

TestSuite(limits, .timeout = 60);

#if defined(__SANITIZE_ADDRESS__)
#define T_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define T_ASAN 1
#endif
#endif
#ifndef T_ASAN
#define T_ASAN 0
#endif

static int c_err = -1; /* the child's end of the report pipe */

/* In the child: the first check that fails is reported with its line, and the child exits 1. */
#define C_CHECK(cond, ...)                                                                         \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			dprintf(c_err, "line %d: %s: ", __LINE__, #cond);                          \
			dprintf(c_err, __VA_ARGS__);                                               \
			_exit(1);                                                                  \
		}                                                                                  \
	} while (0)

/* Runs @fn in a child; asserts it exited 0, else fails with what it reported. */
static void in_child(void (*fn)(void *), void *arg)
{
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(p[0]);
		c_err = p[1];
		fn(arg);
		_exit(0);
	}
	close(p[1]);
	char msg[512] = "";
	size_t have = 0;
	ssize_t n;
	while (have < sizeof(msg) - 1 && (n = read(p[0], msg + have, sizeof(msg) - 1 - have)) > 0)
		have += (size_t)n;
	close(p[0]);
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
		cr_skip_test("%s", msg);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %s %d: %s",
	          WIFEXITED(st) ? "exited" : "killed by signal",
	          WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), msg);
}

__attribute__((unused)) static void c_skip(const char *why)
{
	dprintf(c_err, "%s", why);
	_exit(77);
}

/* --- RLIMIT_NOFILE: accept hits EMFILE, then serves once descriptors are free ---------------- */

enum {
	NCLIENTS = 8,
	ROOM = 3
};

struct acc {
	struct ur_loop *l;
	int lfd;
	int held[NCLIENTS];
	int nheld, accepted, emfile, other;
	bool multishot;
	struct ur_future f;
};

static void acc_arm(struct acc *a);

static void acc_cb(struct ur_future *f, void *arg)
{
	struct acc *a = arg;
	if (f->res >= 0) {
		a->held[a->nheld++] = f->res;
		a->accepted++;
	} else if (f->res == -EMFILE || f->res == -ENFILE) {
		/* The server's answer to EMFILE: let descriptors go, then accept again. */
		a->emfile++;
		while (a->nheld > 0)
			close(a->held[--a->nheld]);
	} else {
		a->other = f->res;
	}
	bool more = a->multishot && (f->cqe_flags & IORING_CQE_F_MORE);
	if (!more && a->accepted < NCLIENTS && !a->other)
		acc_arm(a);
}

static void acc_arm(struct acc *a)
{
	int r = a->multishot ? ur_accept_multishot_start(a->l, &a->f, a->lfd, 0)
	                     : ur_accept_start(a->l, &a->f, a->lfd, NULL, NULL, 0);
	C_CHECK(r == 0, "accept start: %s\n", ur_strerror(r));
}

static void emfile_server(void *arg)
{
	struct acc a = {.multishot = (bool)(uintptr_t)arg};
	uint16_t port;
	int r = t_loop_new(&a.l);
	C_CHECK(r == 0, "%s\n", ur_strerror(r));
	a.lfd = t_listen_tcp(&port);
	/* The clients connect now (the listen backlog holds them); they live in this process too,
	 * opened before the limit drops. */
	int cl[NCLIENTS];
	for (int i = 0; i < NCLIENTS; i++) {
		struct sockaddr_in sa = t_loopback(port);
		cl[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		C_CHECK(cl[i] >= 0 && connect(cl[i], (struct sockaddr *)&sa, sizeof(sa)) == 0,
		        "connect: %d\n", errno);
	}
	/* Room for ROOM more descriptors: the ROOM+1st accept fails with EMFILE. */
	int open_now = 0;
	for (int fd = 0; fd < 4096; fd++)
		open_now += fcntl(fd, F_GETFD) >= 0;
	int highest = 0;
	for (int fd = 0; fd < 4096; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			highest = fd;
	(void)open_now;
	struct rlimit rl = {.rlim_cur = (rlim_t)highest + 1 + ROOM, .rlim_max = 4096};
	C_CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0, "setrlimit: %d\n", errno);

	ur_future_init(&a.f, acc_cb, &a);
	acc_arm(&a);
	while (a.accepted < NCLIENTS && !a.other) {
		r = ur_loop_run(a.l, UR_RUN_ONCE);
		C_CHECK(r >= 0, "run: %s\n", ur_strerror(r));
	}
	C_CHECK(a.other == 0, "accept failed: %s\n", ur_strerror(a.other));
	C_CHECK(a.accepted == NCLIENTS, "accepted %d\n", a.accepted);
	/* One EMFILE per exhaustion, not a busy loop of them: 8 clients, 3 at a time. */
	C_CHECK(a.emfile >= 1 && a.emfile <= NCLIENTS / ROOM + 1, "%d EMFILEs\n", a.emfile);
	if (a.multishot && !ur_future_done(&a.f)) {
		ur_cancel(&a.f);
		while (!ur_future_done(&a.f))
			ur_loop_run(a.l, UR_RUN_ONCE);
	}
	while (a.nheld > 0)
		close(a.held[--a.nheld]);
	for (int i = 0; i < NCLIENTS; i++)
		close(cl[i]);
	close(a.lfd);
	C_CHECK(ur_loop_pending(a.l) == 0, "pending %u\n", ur_loop_pending(a.l));
	ur_loop_free(&a.l);
}

Test(limits, accept_hits_emfile_and_serves_once_descriptors_free)
{
	if (T_UNDER_VALGRIND())
		cr_skip_test(
		    "valgrind keeps descriptors of its own and refuses to lower RLIMIT_NOFILE");
	t_fault_unsafe("eintr,enomem", "counts every accept and asserts its start succeeds");
	in_child(emfile_server, (void *)0);
}

Test(limits, multishot_accept_hits_emfile_and_serves_once_descriptors_free)
{
	if (T_UNDER_VALGRIND())
		cr_skip_test(
		    "valgrind keeps descriptors of its own and refuses to lower RLIMIT_NOFILE");
	t_fault_unsafe("eintr,enomem", "counts every accept and asserts its start succeeds");
	in_child(emfile_server, (void *)1);
}

/* --- io_uring refused: kernel.io_uring_disabled, seccomp, old kernels' RLIMIT_MEMLOCK --------- */

#if defined(__x86_64__)
#define T_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define T_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

/*
 * What the kernel does when io_uring is switched off for us (io_uring_disabled=2, or =1 outside
 * io_uring_group: EPERM), absent (ENOSYS), or short of locked memory (ENOMEM before 5.12):
 * io_uring_setup(2) fails with that errno. A seccomp filter makes it so without touching the
 * machine's setting.
 */
static void refuse_io_uring(int err)
{
#ifdef T_AUDIT_ARCH
	struct sock_filter f[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, T_AUDIT_ARCH, 1, 0),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA)),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};
	C_CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, "no_new_privs: %d\n", errno);
	C_CHECK(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0, "seccomp: %d\n", errno);
#else
	(void)err;
	c_skip("no seccomp arch constant for this CPU");
#endif
}

static void refused(void *arg)
{
	int err = (int)(intptr_t)arg;
	int want = err == ENOMEM ? UR_ERINGMEM : UR_ENOURING;
	refuse_io_uring(err);
	for (int plain = 0; plain < 2; plain++) {
		struct ur_loop *l = (void *)1;
		struct ur_loop_opts o = {.flags = plain ? UR_LOOP_PLAIN_SETUP : 0};
		int r = ur_loop_new(&l, &o);
		C_CHECK(r == want, "ur_loop_new gave %d (%s)\n", r, ur_strerror_name(r));
		C_CHECK(l == NULL, "loop not NULL on failure\n");
		const char *text = ur_strerror(r);
		C_CHECK(strstr(text, "io_uring") != NULL, "message does not say so: %s\n", text);
	}
}

Test(limits, io_uring_disabled_is_named_by_loop_new)
{
	if (T_UNDER_VALGRIND())
		cr_skip_test(
		    "valgrind does not apply seccomp filters to the client's system calls");
	in_child(refused, (void *)(intptr_t)EPERM);
	in_child(refused, (void *)(intptr_t)ENOSYS);
	in_child(refused, (void *)(intptr_t)ENOMEM);
}

static void memlock_zero(void *arg)
{
	(void)arg;
	struct rlimit rl = {0, 0};
	C_CHECK(setrlimit(RLIMIT_MEMLOCK, &rl) == 0, "setrlimit: %d\n", errno);
	struct ur_loop *l = NULL;
	int r = t_loop_new(&l);
	/* Since 5.12 rings are charged to the memory cgroup, not RLIMIT_MEMLOCK: both are right. */
	C_CHECK(r == 0 || r == UR_ERINGMEM, "ur_loop_new gave %d (%s)\n", r, ur_strerror_name(r));
	if (r == 0) {
		struct ur_future f;
		ur_future_init(&f, NULL, NULL);
		C_CHECK(ur_nop_start(l, &f) == 0, "nop\n");
		while (!ur_future_done(&f))
			ur_loop_run(l, UR_RUN_ONCE);
		C_CHECK(f.res == 0, "nop gave %d\n", f.res);
		ur_loop_free(&l);
	}
}

Test(limits, memlock_zero_works_or_says_so)
{
	t_fault_unsafe("enomem", "asserts its start succeeds");
	in_child(memlock_zero, NULL);
}

/* Reports what /proc says, for the log: a machine with io_uring disabled fails every suite. */
Test(limits, io_uring_disabled_setting_is_readable)
{
	FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
	if (!f)
		cr_skip_test("no /proc/sys/kernel/io_uring_disabled (before Linux 6.6)");
	int v = -1;
	cr_assert_eq(fscanf(f, "%d", &v), 1);
	fclose(f);
	cr_assert(v >= 0 && v <= 2);
	cr_log_info("kernel.io_uring_disabled = %d", v);
}

/* --- RLIMIT_AS: no address space for a task's stack ------------------------------------------ */

static int ran_fn(void *arg)
{
	(*(int *)arg)++;
	return 7;
}

static size_t vm_size(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long pages = 0;
	if (f) {
		if (fscanf(f, "%lu", &pages) != 1)
			pages = 0;
		fclose(f);
	}
	return pages * (size_t)sysconf(_SC_PAGESIZE);
}

static void stack_nomem(void *arg)
{
	(void)arg;
	struct ur_loop *l = NULL;
	int r = t_loop_new(&l);
	C_CHECK(r == 0, "%s\n", ur_strerror(r));
	struct rlimit old;
	C_CHECK(getrlimit(RLIMIT_AS, &old) == 0, "getrlimit\n");
	/* 1 MiB more than mapped now: malloc still works, a 16 MiB stack arena cannot be had. */
	struct rlimit rl = {.rlim_cur = vm_size() + (1u << 20), .rlim_max = old.rlim_max};
	C_CHECK(setrlimit(RLIMIT_AS, &rl) == 0, "setrlimit: %d\n", errno);

	int ran = 0;
	struct ur_task *t = NULL;
	r = ur_spawn(l, &t, ran_fn, &ran, NULL);
	if (r == 0) {
		/* Stacks are taken when a task first runs: the task ends with the error instead. */
		r = ur_join(t);
	}
	C_CHECK(r == -ENOMEM, "spawn/join gave %d (%s)\n", r, ur_strerror_name(r));
	C_CHECK(ran == 0, "the function ran without a stack\n");

	/* With the address space back, the same loop runs tasks again. */
	C_CHECK(setrlimit(RLIMIT_AS, &old) == 0, "setrlimit back\n");
	r = ur_spawn(l, &t, ran_fn, &ran, NULL);
	C_CHECK(r == 0, "spawn: %s\n", ur_strerror(r));
	r = ur_join(t);
	C_CHECK(r == 7 && ran == 1, "join gave %d, ran %d\n", r, ran);
	C_CHECK(ur_loop_pending(l) == 0, "pending\n");
	ur_loop_free(&l);
}

Test(limits, no_address_space_for_a_stack_is_enomem)
{
	if (T_ASAN)
		cr_skip_test(
		    "ASan reserves terabytes of shadow: RLIMIT_AS cannot be lowered under it");
	if (T_UNDER_VALGRIND())
		cr_skip_test("valgrind manages the address space itself");
	t_fault_unsafe("enomem",
	               "its own ENOMEM is the point: an injected one would be taken for it");
	in_child(stack_nomem, NULL);
}
