/* SPDX-License-Identifier: MIT */
/*
 * tests/core/test_ctx.c - the machinery under stackful tasks: the context switch (core/arch),
 * its ASan bookkeeping (core/ctx.h) and the stack pool (core/stack.c).
 *
 * Code running inside a made context never calls cr_assert: a failed assertion longjmps out of
 * the test, across stacks. Contexts record what they saw; the test's own stack asserts.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../core/ctx.h"
#include "../../core/stack.h"

TestSuite(ctx, .timeout = 60);
TestSuite(stack, .timeout = 120);

static struct ur__ctx t_main; /* the test's own context */
static struct ur__stack_pool t_pool;

static void t_pool_init(size_t size)
{
	cr_assert_eq(ur__stack_pool_init(&t_pool, size), 0);
}

static struct ur__stack t_stack(size_t size)
{
	struct ur__stack s;
	int ret = ur__stack_get(&t_pool, size, &s);
	cr_assert_eq(ret, 0, "ur__stack_get: %s", strerror(-ret));
	return s;
}

static long t_map_count(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	cr_assert_not_null(f);
	long n = 0;
	int c;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static long t_rss_kib(void)
{
	long size = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	cr_assert_not_null(f);
	cr_assert_eq(fscanf(f, "%ld %ld", &size, &rss), 2);
	fclose(f);
	return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* A "Vm...:" line of /proc/self/status, in KiB. */
static long t_status_kib(const char *key)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/self/status", "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, strlen(key)) == 0)
			v = atol(line + strlen(key));
	fclose(f);
	return v;
}

/* Skips the test unless the pool's first stack got its guard from MADV_GUARD_INSTALL. */
static void t_need_guard_madvise(void)
{
	struct ur__stack s = t_stack(0);
	enum ur__stack_guard g = t_pool.guard;
	ur__stack_put(&t_pool, &s);
	if (g != UR__GUARD_MADVISE)
		cr_skip_test("kernel lacks MADV_GUARD_INSTALL (6.13+); pool uses mprotect guards");
}

/* ---- ping-pong -------------------------------------------------------------------------- */

struct pp {
	struct ur__ctx ctx;
	long req, rep;
	char text[32];
};

static void pp_fn(void *arg)
{
	struct pp *pp = arg;
	ur__ctx_landed_san(&pp->ctx);
	while (pp->req >= 0) {
		pp->rep = pp->req * 3 + 1;
		/* printf's SSE code faults on a misaligned stack: this checks the ABI alignment. */
		snprintf(pp->text, sizeof(pp->text), "%.1f", (double)pp->req / 2);
		ur__ctx_switch_san(&pp->ctx, &t_main, false);
	}
	pp->rep = -7;
	ur__ctx_switch_san(&pp->ctx, &t_main, true);
}

Test(ctx, ping_pong)
{
	t_pool_init(0);
	struct ur__stack s = t_stack(0);
	struct pp pp = {.req = 0};
	ur__ctx_make_san(&pp.ctx, s.base, s.size, pp_fn, &pp);
	for (long i = 0; i < 10000; i++) {
		char want[32];
		pp.req = i;
		ur__ctx_switch_san(&t_main, &pp.ctx, false);
		cr_assert_eq(pp.rep, i * 3 + 1);
		snprintf(want, sizeof(want), "%.1f", (double)i / 2);
		cr_assert_str_eq(pp.text, want);
	}
	pp.req = -1;
	ur__ctx_switch_san(&t_main, &pp.ctx, false);
	cr_assert_eq(pp.rep, -7);
	ur__stack_put(&t_pool, &s);
	ur__stack_pool_destroy(&t_pool);
}

/* ---- round robin ------------------------------------------------------------------------ */

#define RR_N      1000
#define RR_ROUNDS 20

struct rr {
	struct ur__ctx ctx[RR_N];
	struct ur__stack st[RR_N];
	int order[RR_N * RR_ROUNDS];
	int n;
	int bad_locals;
};
static struct rr *rr;

static void rr_fn(void *arg)
{
	int i = (int)(intptr_t)arg;
	ur__ctx_landed_san(&rr->ctx[i]);
	volatile uint64_t mine = (uint64_t)i * 0x9e3779b97f4a7c15u; /* lives on this stack */
	for (int r = 0; r < RR_ROUNDS; r++) {
		rr->order[rr->n++] = i;
		bool last = r == RR_ROUNDS - 1;
		struct ur__ctx *next =
		    i == RR_N - 1 ? (last ? &t_main : &rr->ctx[0]) : &rr->ctx[i + 1];
		ur__ctx_switch_san(&rr->ctx[i], next, last);
		rr->bad_locals += mine != (uint64_t)i * 0x9e3779b97f4a7c15u;
	}
}

Test(ctx, round_robin_1000)
{
	t_pool_init(64 * 1024);
	rr = calloc(1, sizeof(*rr));
	cr_assert_not_null(rr);
	for (int i = 0; i < RR_N; i++) {
		rr->st[i] = t_stack(0);
		ur__ctx_make_san(&rr->ctx[i], rr->st[i].base, rr->st[i].size, rr_fn,
		                 (void *)(intptr_t)i);
	}
	ur__ctx_switch_san(&t_main, &rr->ctx[0], false);
	cr_assert_eq(rr->n, RR_N * RR_ROUNDS);
	for (int k = 0; k < rr->n; k++)
		cr_assert_eq(rr->order[k], k % RR_N, "switch %d ran context %d", k, rr->order[k]);
	cr_assert_eq(rr->bad_locals, 0);
	for (int i = 0; i < RR_N; i++)
		ur__stack_put(&t_pool, &rr->st[i]);
	ur__stack_pool_destroy(&t_pool);
	free(rr);
}

/* ---- FP control words ------------------------------------------------------------------- */

/*
 * A context's FP mode, packed: bits 0-1 the SSE rounding mode (MXCSR.RC) and bits 2-3 the x87
 * one on x86_64; bits 0-1 FPCR.RMode and bit 2 FPCR.FZ on aarch64.
 */
#if defined(__x86_64__)
static unsigned t_fp_get(void)
{
	uint32_t csr;
	uint16_t cw;
	__asm__ volatile("stmxcsr %0" : "=m"(csr));
	__asm__ volatile("fnstcw %0" : "=m"(cw));
	return ((csr >> 13) & 3) | (((unsigned)(cw >> 10) & 3) << 2);
}

static void t_fp_set(unsigned mode)
{
	uint32_t csr;
	uint16_t cw;
	__asm__ volatile("stmxcsr %0" : "=m"(csr));
	__asm__ volatile("fnstcw %0" : "=m"(cw));
	csr = (csr & ~(3u << 13)) | (mode & 3) << 13;
	cw = (uint16_t)((cw & ~(3u << 10)) | ((mode >> 2) & 3) << 10);
	__asm__ volatile("ldmxcsr %0" : : "m"(csr));
	__asm__ volatile("fldcw %0" : : "m"(cw));
}
#define T_FP_MODES 16u
#elif defined(__aarch64__)
static unsigned t_fp_get(void)
{
	uint64_t fpcr;
	__asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
	return ((fpcr >> 22) & 3) | ((fpcr >> 24) & 1) << 2;
}

static void t_fp_set(unsigned mode)
{
	uint64_t fpcr;
	__asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
	fpcr =
	    (fpcr & ~(7ull << 22)) | (uint64_t)(mode & 3) << 22 | (uint64_t)(mode >> 2 & 1) << 24;
	__asm__ volatile("msr fpcr, %0" : : "r"(fpcr));
}
#define T_FP_MODES 8u
#endif

/* What the hardware computes in the current mode: 1/3 and -1/3 round differently per mode. */
struct fp_result {
	double q, nq;
	long double lq;
};

static struct fp_result t_fp_compute(void)
{
	volatile double one = 1, three = 3;
	volatile long double lone = 1, lthree = 3;
	return (struct fp_result){one / three, -one / three, lone / lthree};
}

static bool t_fp_same(struct fp_result a, struct fp_result b)
{
	return memcmp(&a.q, &b.q, sizeof(a.q)) == 0 && memcmp(&a.nq, &b.nq, sizeof(a.nq)) == 0 &&
	       a.lq == b.lq;
}

static struct fp_result fp_ref[T_FP_MODES];
static bool fp_arith; /* false where rounding modes change nothing (valgrind: nearest only) */

struct fpc {
	struct ur__ctx ctx;
	struct ur__ctx *next;
	unsigned mode;
	unsigned start_mode; /* what the context saw on entry */
	int bad;
};

static void fp_fn(void *arg)
{
	struct fpc *c = arg;
	ur__ctx_landed_san(&c->ctx);
	c->start_mode = t_fp_get();
	t_fp_set(c->mode);
	for (int i = 0; i < 100; i++) {
		ur__ctx_switch_san(&c->ctx, c->next, false);
		c->bad += t_fp_get() != c->mode ||
		          (fp_arith && !t_fp_same(t_fp_compute(), fp_ref[c->mode]));
	}
	t_fp_set(0);
	ur__ctx_switch_san(&c->ctx, &t_main, true);
}

Test(ctx, fp_control_per_context)
{
	unsigned init = t_fp_get();
	for (unsigned m = 0; m < T_FP_MODES; m++) {
		t_fp_set(m);
		fp_ref[m] = t_fp_compute();
	}
	t_fp_set(init);
	fp_arith = !t_fp_same(fp_ref[1], fp_ref[2]);
	if (!fp_arith)
		cr_log_info(
		    "rounding modes change no result here: checking the control words only");

	t_pool_init(0);
	struct ur__stack sa = t_stack(0), sb = t_stack(0);
	struct fpc a = {.mode = T_FP_MODES - 1}, b = {.mode = 2};
	a.next = &b.ctx;
	b.next = &a.ctx;
	ur__ctx_make_san(&a.ctx, sa.base, sa.size, fp_fn, &a);
	ur__ctx_make_san(&b.ctx, sb.base, sb.size, fp_fn, &b);
	ur__ctx_switch_san(&t_main, &a.ctx, false);
	cr_assert_eq(t_fp_get(), init, "the main context's mode leaked: %#x", t_fp_get());
	cr_assert_eq(a.start_mode, init);
	cr_assert_eq(b.start_mode, init);
	cr_assert_eq(a.bad + b.bad, 0, "a: %d, b: %d wrong modes or results", a.bad, b.bad);
	ur__ctx_switch_san(&t_main, &b.ctx, false);
	ur__stack_put(&t_pool, &sa);
	ur__stack_put(&t_pool, &sb);
	ur__stack_pool_destroy(&t_pool);
}

static void fp_first_fn(void *arg)
{
	struct fpc *c = arg;
	ur__ctx_landed_san(&c->ctx);
	c->start_mode = t_fp_get();
	ur__ctx_switch_san(&c->ctx, &t_main, true);
}

/* A context starts with the FP modes in force when it was made, not when first entered. */
Test(ctx, fp_mode_from_maker)
{
	unsigned init = t_fp_get();
	t_pool_init(0);
	struct ur__stack s = t_stack(0);
	struct fpc c = {0};
	t_fp_set(1);
	ur__ctx_make_san(&c.ctx, s.base, s.size, fp_first_fn, &c);
	t_fp_set(init);
	ur__ctx_switch_san(&t_main, &c.ctx, false);
	cr_assert_eq(c.start_mode, 1u);
	cr_assert_eq(t_fp_get(), init);
	ur__stack_put(&t_pool, &s);
	ur__stack_pool_destroy(&t_pool);
}

/* ---- callee-saved registers ------------------------------------------------------------- */

/*
 * int t_probe_regs(from, to, seed): loads every callee-saved register with seed + k, switches
 * from -> to, and returns a bit mask of the registers that did not come back intact. Assembly,
 * because only assembly can say which register holds what across the call.
 */
int t_probe_regs(struct ur__ctx *from, struct ur__ctx *to, uint64_t seed);

#if defined(__x86_64__)
__asm__(".text\n"
        ".globl t_probe_regs\n"
        ".hidden t_probe_regs\n"
        ".type t_probe_regs, @function\n"
        ".macro t_chk reg, off, bit\n"
        "	leaq \\off(%rdx), %rcx\n"
        "	cmpq %rcx, \\reg\n"
        "	setne %cl\n"
        "	movzbl %cl, %ecx\n"
        "	shll $\\bit, %ecx\n"
        "	orl %ecx, %eax\n"
        ".endm\n"
        "t_probe_regs:\n"
        "	pushq %rbx\n"
        "	pushq %rbp\n"
        "	pushq %r12\n"
        "	pushq %r13\n"
        "	pushq %r14\n"
        "	pushq %r15\n"
        "	pushq %rdx\n"
        "	leaq 1(%rdx), %rbx\n"
        "	leaq 2(%rdx), %rbp\n"
        "	leaq 3(%rdx), %r12\n"
        "	leaq 4(%rdx), %r13\n"
        "	leaq 5(%rdx), %r14\n"
        "	leaq 6(%rdx), %r15\n"
        "	call ur__ctx_switch\n"
        "	movq (%rsp), %rdx\n"
        "	xorl %eax, %eax\n"
        "	t_chk %rbx, 1, 0\n"
        "	t_chk %rbp, 2, 1\n"
        "	t_chk %r12, 3, 2\n"
        "	t_chk %r13, 4, 3\n"
        "	t_chk %r14, 5, 4\n"
        "	t_chk %r15, 6, 5\n"
        "	popq %rdx\n"
        "	popq %r15\n"
        "	popq %r14\n"
        "	popq %r13\n"
        "	popq %r12\n"
        "	popq %rbp\n"
        "	popq %rbx\n"
        "	ret\n"
        ".size t_probe_regs, .-t_probe_regs\n");
#elif defined(__aarch64__)
__asm__(".text\n"
        ".globl t_probe_regs\n"
        ".hidden t_probe_regs\n"
        ".type t_probe_regs, %function\n"
        ".macro t_chk reg, off, bit\n"
        "	add x9, x2, #\\off\n"
        "	cmp \\reg, x9\n"
        "	cset w10, ne\n"
        "	orr w0, w0, w10, lsl #\\bit\n"
        ".endm\n"
        ".macro t_chkd reg, off, bit\n"
        "	fmov x11, \\reg\n"
        "	t_chk x11, \\off, \\bit\n"
        ".endm\n"
        ".macro t_setd reg, off\n"
        "	add x9, x2, #\\off\n"
        "	fmov \\reg, x9\n"
        ".endm\n"
        "t_probe_regs:\n"
        "	stp x29, x30, [sp, #-16]!\n"
        "	sub sp, sp, #160\n"
        "	stp x19, x20, [sp, #0]\n"
        "	stp x21, x22, [sp, #16]\n"
        "	stp x23, x24, [sp, #32]\n"
        "	stp x25, x26, [sp, #48]\n"
        "	stp x27, x28, [sp, #64]\n"
        "	stp d8, d9, [sp, #80]\n"
        "	stp d10, d11, [sp, #96]\n"
        "	stp d12, d13, [sp, #112]\n"
        "	stp d14, d15, [sp, #128]\n"
        "	str x2, [sp, #144]\n"
        "	add x19, x2, #1\n"
        "	add x20, x2, #2\n"
        "	add x21, x2, #3\n"
        "	add x22, x2, #4\n"
        "	add x23, x2, #5\n"
        "	add x24, x2, #6\n"
        "	add x25, x2, #7\n"
        "	add x26, x2, #8\n"
        "	add x27, x2, #9\n"
        "	add x28, x2, #10\n"
        "	add x29, x2, #11\n"
        "	t_setd d8, 21\n"
        "	t_setd d9, 22\n"
        "	t_setd d10, 23\n"
        "	t_setd d11, 24\n"
        "	t_setd d12, 25\n"
        "	t_setd d13, 26\n"
        "	t_setd d14, 27\n"
        "	t_setd d15, 28\n"
        "	bl ur__ctx_switch\n"
        "	ldr x2, [sp, #144]\n"
        "	mov w0, #0\n"
        "	t_chk x19, 1, 0\n"
        "	t_chk x20, 2, 1\n"
        "	t_chk x21, 3, 2\n"
        "	t_chk x22, 4, 3\n"
        "	t_chk x23, 5, 4\n"
        "	t_chk x24, 6, 5\n"
        "	t_chk x25, 7, 6\n"
        "	t_chk x26, 8, 7\n"
        "	t_chk x27, 9, 8\n"
        "	t_chk x28, 10, 9\n"
        "	t_chk x29, 11, 10\n"
        "	t_chkd d8, 21, 11\n"
        "	t_chkd d9, 22, 12\n"
        "	t_chkd d10, 23, 13\n"
        "	t_chkd d11, 24, 14\n"
        "	t_chkd d12, 25, 15\n"
        "	t_chkd d13, 26, 16\n"
        "	t_chkd d14, 27, 17\n"
        "	t_chkd d15, 28, 18\n"
        "	ldp x19, x20, [sp, #0]\n"
        "	ldp x21, x22, [sp, #16]\n"
        "	ldp x23, x24, [sp, #32]\n"
        "	ldp x25, x26, [sp, #48]\n"
        "	ldp x27, x28, [sp, #64]\n"
        "	ldp d8, d9, [sp, #80]\n"
        "	ldp d10, d11, [sp, #96]\n"
        "	ldp d12, d13, [sp, #112]\n"
        "	ldp d14, d15, [sp, #128]\n"
        "	add sp, sp, #160\n"
        "	ldp x29, x30, [sp], #16\n"
        "	ret\n"
        ".size t_probe_regs, .-t_probe_regs\n");
#endif

/* t_probe_regs with the ASan halves around it, as ur__ctx_switch_san does. */
static int t_probe(struct ur__ctx *from, struct ur__ctx *to, uint64_t seed, bool from_exits)
{
	ur__ctx_leave_san(from, to, from_exits);
	int mask = t_probe_regs(from, to, seed);
	ur__ctx_landed_san(from);
	return mask;
}

struct probe {
	struct ur__ctx ctx;
	int mask;
};

static void probe_fn(void *arg)
{
	struct probe *pr = arg;
	ur__ctx_landed_san(&pr->ctx);
	pr->mask = t_probe(&pr->ctx, &t_main, 0x5000000000000000u, false);
	t_probe(&pr->ctx, &t_main, 0x6000000000000000u, true);
}

Test(ctx, callee_saved_registers_exact)
{
	t_pool_init(0);
	struct ur__stack s = t_stack(0);
	struct probe pr = {.mask = -1};
	ur__ctx_make_san(&pr.ctx, s.base, s.size, probe_fn, &pr);
	/* main -> ctx (which loads its own values and switches back) -> main checks its values */
	int m1 = t_probe(&t_main, &pr.ctx, 0x1000000000000000u, false);
	/* main loads new values -> ctx checks its values, exits -> main checks again */
	int m2 = t_probe(&t_main, &pr.ctx, 0x2000000000000000u, false);
	cr_assert_eq(m1, 0, "main lost registers (mask %#x) across its first switch", m1);
	cr_assert_eq(pr.mask, 0, "context lost registers (mask %#x)", pr.mask);
	cr_assert_eq(m2, 0, "main lost registers (mask %#x) across its second switch", m2);
	ur__stack_put(&t_pool, &s);
	ur__stack_pool_destroy(&t_pool);
}

/* Many values live across each switch: the compiler keeps some in callee-saved registers. */
struct lv {
	struct ur__ctx ctx;
	struct ur__ctx *peer;
	uint64_t seed, sum;
	double dsum;
};

#define LV_SWITCHES 1000

__attribute__((noinline)) static void lv_work(struct lv *v)
{
	uint64_t a = v->seed, b = a * 3, c = a ^ 0x55, d = a + 7, e = ~a, f = a >> 3;
	uint64_t g = a * a, h = a | 1, i = a << 5, j = a - 11, k = a ^ 0xabcdef;
	double x = (double)(a & 0xff), y = x * 0.5, z = x + 1.25, w = y - z, u = 3.5, t = 0.125;
	double s = 1.0, r = -2.0;
	for (int n = 0; n < LV_SWITCHES; n++) {
		a += b ^ (uint64_t)n, b += c * 3, c ^= d + a, d += e >> 1, e -= f, f += g;
		g ^= h << 1, h += i, i ^= j, j += k, k ^= a;
		x = x * 0.999 + y, y = y * 0.5 + z, z = z - w * 0.25, w = w + u, u = u * 0.9 + t;
		t = t + s * 0.001, s = s * 1.001 - r * 0.0001, r = r + x * 1e-6;
		if (v->peer)
			ur__ctx_switch_san(&v->ctx, v->peer, false);
	}
	v->sum = a ^ b ^ c ^ d ^ e ^ f ^ g ^ h ^ i ^ j ^ k;
	v->dsum = x + y + z + w + u + t + s + r;
}

static void lv_fn(void *arg)
{
	struct lv *v = arg;
	ur__ctx_landed_san(&v->ctx);
	lv_work(v);
	ur__ctx_switch_san(&v->ctx, &t_main, true);
}

Test(ctx, callee_saved_live_values)
{
	struct lv ref_a = {.seed = 12345}, ref_b = {.seed = 987654321};
	lv_work(&ref_a);
	lv_work(&ref_b);

	t_pool_init(0);
	struct ur__stack sa = t_stack(0), sb = t_stack(0);
	struct lv a = {.seed = ref_a.seed}, b = {.seed = ref_b.seed};
	a.peer = &b.ctx;
	b.peer = &a.ctx;
	ur__ctx_make_san(&a.ctx, sa.base, sa.size, lv_fn, &a);
	ur__ctx_make_san(&b.ctx, sb.base, sb.size, lv_fn, &b);
	ur__ctx_switch_san(&t_main, &a.ctx,
	                   false); /* a finishes first, b is left at its last switch */
	ur__ctx_switch_san(&t_main, &b.ctx, false);
	cr_assert_eq(a.sum, ref_a.sum);
	cr_assert_eq(b.sum, ref_b.sum);
	cr_assert(memcmp(&a.dsum, &ref_a.dsum, sizeof(double)) == 0);
	cr_assert(memcmp(&b.dsum, &ref_b.dsum, sizeof(double)) == 0);
	ur__stack_put(&t_pool, &sa);
	ur__stack_put(&t_pool, &sb);
	ur__stack_pool_destroy(&t_pool);
}

/* ---- stack frame and unwinding ---------------------------------------------------------- */

struct frame {
	struct ur__ctx ctx;
	uintptr_t fp, caller_fp, lo, hi;
	int depth;
};

__attribute__((noinline)) static void frame_fn(void *arg)
{
	struct frame *fr = arg;
	ur__ctx_landed_san(&fr->ctx);
	void **fp = __builtin_frame_address(0);
	void *bt[64];
	fr->fp = (uintptr_t)fp;
	fr->caller_fp = (uintptr_t)fp[0];
	fr->depth = backtrace(bt, 64);
	ur__ctx_switch_san(&fr->ctx, &t_main, true);
}

/* fn runs on its own stack, 16-aligned, with nothing above it for a debugger to walk into. */
Test(ctx, entry_frame)
{
	t_pool_init(0);
	struct ur__stack s = t_stack(0);
	struct frame fr = {0};
	ur__ctx_make_san(&fr.ctx, s.base, s.size, frame_fn, &fr);
	ur__ctx_switch_san(&t_main, &fr.ctx, false);
	uintptr_t lo = (uintptr_t)s.base, hi = lo + s.size;
	cr_assert(fr.fp > lo && fr.fp < hi, "frame %#lx outside the stack", (unsigned long)fr.fp);
	cr_assert(hi - fr.fp < 1024, "frame %lu bytes below the top", (unsigned long)(hi - fr.fp));
	cr_assert_eq(fr.fp % 16, 0, "frame pointer %#lx misaligned", (unsigned long)fr.fp);
	cr_assert_eq(fr.caller_fp, 0, "frame chain not terminated");
	cr_assert(fr.depth >= 1 && fr.depth <= 3, "backtrace walked %d frames", fr.depth);
	ur__stack_put(&t_pool, &s);
	ur__stack_pool_destroy(&t_pool);
}

/* ---- guard pages ------------------------------------------------------------------------ */

static struct {
	char *guard;    /* the overflowing stack's guard page */
	char *neighbor; /* the top page of the stack below it */
	size_t page;
} t_ovf;

static void ovf_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	char *a = si->si_addr;
	if (a < t_ovf.guard || a >= t_ovf.guard + t_ovf.page)
		_exit(3);
	for (size_t i = 0; i < t_ovf.page; i++)
		if (t_ovf.neighbor[i] != (char)0xa5)
			_exit(4);
	/* Returning re-runs the faulting access, now with the default action: death by SIGSEGV. */
	signal(SIGSEGV, SIG_DFL);
}

static volatile int t_never = -1;

__attribute__((noinline)) static int recurse(int depth)
{
	volatile char buf[200];
	buf[0] = (char)depth;
	if (depth == t_never)
		return 0;
	return recurse(depth + 1) + buf[0];
}

struct ovf {
	struct ur__ctx ctx;
};

static void ovf_fn(void *arg)
{
	struct ovf *o = arg;
	ur__ctx_landed_san(&o->ctx);
	recurse(0);
	_exit(2);
}

/* In a child: overflows the middle of three neighbouring 64 KiB stacks. */
static void ovf_child(enum ur__stack_guard mode)
{
	static char alt[64 * 1024];
	stack_t ss = {.ss_sp = alt, .ss_size = sizeof(alt)};
	struct sigaction sa = {.sa_sigaction = ovf_handler, .sa_flags = SA_SIGINFO | SA_ONSTACK};
	struct rlimit no_core = {0, 0};
	if (ur__stack_pool_init(&t_pool, 64 * 1024) || sigaltstack(&ss, NULL) ||
	    sigaction(SIGSEGV, &sa, NULL) || setrlimit(RLIMIT_CORE, &no_core))
		_exit(5);
	t_pool.guard = mode;
	struct ur__stack s[3];
	for (int i = 0; i < 3; i++)
		if (ur__stack_get(&t_pool, 0, &s[i]))
			_exit(6);
	/* Slots of one arena are carved upwards: s[0] sits right below s[1]'s guard. */
	t_ovf.page = t_pool.page;
	t_ovf.guard = (char *)s[1].base - t_pool.page;
	t_ovf.neighbor = (char *)s[0].base + s[0].size - t_pool.page;
	if (t_ovf.neighbor + t_ovf.page != t_ovf.guard || t_pool.guard != mode)
		_exit(7);
	memset(t_ovf.neighbor, 0xa5, t_ovf.page);
	struct ovf o;
	ur__ctx_make_san(&o.ctx, s[1].base, s[1].size, ovf_fn, &o);
	ur__ctx_switch_san(&t_main, &o.ctx, false);
	_exit(8);
}

static void t_overflow(enum ur__stack_guard mode)
{
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0)
		ovf_child(mode);
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(!WIFEXITED(status), "child exited with %d, not by SIGSEGV", WEXITSTATUS(status));
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV, "child died by signal %d",
	          WTERMSIG(status));
}

Test(stack, overflow_hits_guard_madvise)
{
	t_pool_init(0);
	t_need_guard_madvise();
	ur__stack_pool_destroy(&t_pool);
	t_overflow(UR__GUARD_MADVISE);
}

Test(stack, overflow_hits_guard_mprotect)
{
	t_overflow(UR__GUARD_MPROTECT);
}

/* ---- VMAs and memory -------------------------------------------------------------------- */

#define MANY 100000

Test(stack, hundred_thousand_stacks)
{
	t_pool_init(0);
	t_need_guard_madvise();
	size_t kib = t_pool.size / 1024;
	struct ur__stack *st = calloc(MANY, sizeof(*st));
	cr_assert_not_null(st);
	long maps0 = t_map_count(), rss0 = t_rss_kib(), pte0 = t_status_kib("VmPTE:");
	for (int i = 0; i < MANY; i++) {
		int ret = ur__stack_get(&t_pool, 0, &st[i]);
		cr_assert_eq(ret, 0, "stack %d: %s", i, strerror(-ret));
	}
	long maps1 = t_map_count(), rss1 = t_rss_kib(), pte1 = t_status_kib("VmPTE:");
	for (int i = 0; i < MANY; i++)
		((volatile char *)st[i].base)[st[i].size - 1] = 1;
	long rss2 = t_rss_kib(), pte2 = t_status_kib("VmPTE:");
	for (int i = 0; i < MANY; i++)
		ur__stack_put(&t_pool, &st[i]);
	long maps3 = t_map_count(), rss3 = t_rss_kib();
	ur__stack_pool_destroy(&t_pool);
	long maps4 = t_map_count(), rss4 = t_rss_kib();
	free(st);

	fprintf(stderr,
	        "%d stacks of %zu KiB, MADV_GUARD_INSTALL guards:\n"
	        "  VMAs: %ld before, %ld allocated (+%ld), %ld put back, %ld destroyed\n"
	        "  RSS KiB: %ld before, %ld allocated, %ld touched (one page each), %ld put back "
	        "(%u kept warm), %ld destroyed\n"
	        "  page tables KiB: %ld before, %ld allocated, %ld touched\n",
	        MANY, kib, maps0, maps1, maps1 - maps0, maps3, maps4, rss0, rss1, rss2, rss3,
	        UR__STACK_WARM_MAX, rss4, pte0, pte1, pte2);
	/* At most one VMA per arena, however many stacks; mprotect guards would need 200,000. */
	cr_assert_leq(maps1 - maps0, MANY / UR__STACK_ARENA_SLOTS + 8);
	cr_assert_leq(maps4, maps0 + 8);
}

Test(stack, mprotect_fallback_two_vmas_per_stack)
{
	enum {
		N = 1000
	};
	static struct ur__stack st[N];
	t_pool_init(0);
	t_pool.guard = UR__GUARD_MPROTECT;
	long maps0 = t_map_count();
	for (int i = 0; i < N; i++)
		st[i] = t_stack(0);
	long delta = t_map_count() - maps0;
	fprintf(stderr, "%d stacks, mprotect guards: +%ld VMAs\n", N, delta);
	/* 15 full arenas of 64 (guard, stack) pairs, and 40 pairs whose last stack merges with the
	 * arena's unused tail: 2 * N exactly, give or take a neighbour mapping merging. */
	cr_assert(delta >= 2 * N - 2 && delta <= 2 * N + 2, "+%ld VMAs", delta);
	for (int i = 0; i < N; i++)
		ur__stack_put(&t_pool, &st[i]);
	ur__stack_pool_destroy(&t_pool);
	cr_assert_leq(t_map_count(), maps0 + 2);
}

static bool t_resident(const void *addr)
{
	unsigned char v = 0;
	cr_assert_eq(mincore((void *)addr, 1, &v), 0);
	return v & 1;
}

/* Free stacks: the newest warm one first, then the released (cold) ones, then fresh ones. */
Test(stack, reuse_warm_then_cold)
{
	t_pool_init(0);
	t_pool.warm_max = 1;
	struct ur__stack s[3];
	char *top[3];
	for (int i = 0; i < 3; i++) {
		s[i] = t_stack(0);
		top[i] = (char *)s[i].base + s[i].size - t_pool.page;
		memset(top[i], 0x5a, t_pool.page);
	}
	for (int i = 0; i < 3; i++)
		ur__stack_put(&t_pool, &s[i]);
	cr_assert(t_resident(top[0]), "the warm stack lost its memory");
	cr_assert(!t_resident(top[1]) && !t_resident(top[2]), "a cold stack kept its memory");

	struct ur__stack r[4];
	for (int i = 0; i < 4; i++)
		r[i] = t_stack(0);
	cr_assert_eq((char *)r[0].base + r[0].size - t_pool.page, top[0]);
	cr_assert_eq((char *)r[1].base + r[1].size - t_pool.page, top[2]);
	cr_assert_eq((char *)r[2].base + r[2].size - t_pool.page, top[1]);
	cr_assert_eq(top[0][0], 0x5a, "warm stack content changed");
	cr_assert_eq(top[2][0], 0, "a released page did not come back zeroed");
	cr_assert_eq((char *)r[3].base, top[2] + 2 * t_pool.page, "not the next fresh slot");
	for (int i = 0; i < 4; i++)
		ur__stack_put(&t_pool, &r[i]);
	ur__stack_pool_destroy(&t_pool);
}

static int t_cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)((const struct ur__stack *)a)->base;
	uintptr_t y = (uintptr_t)((const struct ur__stack *)b)->base;
	return (x > y) - (x < y);
}

Test(stack, reuse_maps_nothing_new)
{
	enum {
		N = 300
	};
	static struct ur__stack a[N], b[N];
	t_pool_init(0);
	for (int i = 0; i < N; i++)
		a[i] = t_stack(0);
	qsort(a, N, sizeof(a[0]), t_cmp_ptr);
	void *bases[N];
	for (int i = 0; i < N; i++) {
		bases[i] = a[i].base;
		ur__stack_put(&t_pool, &a[i]);
	}
	long maps0 = t_map_count();
	for (int i = 0; i < N; i++)
		b[i] = t_stack(0);
	cr_assert_eq(t_map_count(), maps0);
	qsort(b, N, sizeof(b[0]), t_cmp_ptr);
	for (int i = 0; i < N; i++)
		cr_assert_eq(b[i].base, bases[i]);
	for (int i = 0; i < N; i++)
		ur__stack_put(&t_pool, &b[i]);
	ur__stack_pool_destroy(&t_pool);
}

Test(stack, sizes)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	cr_assert_eq(ur__stack_pool_init(&t_pool, (size_t)1 << 40), -EINVAL);
	t_pool_init(0);
	cr_assert_eq(t_pool.size, UR__STACK_DEFAULT_SIZE);
	ur__stack_pool_destroy(&t_pool);
	t_pool_init(100000);
	cr_assert_eq(t_pool.size, (100000 + page - 1) / page * page);

	struct ur__stack d = t_stack(0), one = t_stack(1);
	cr_assert_eq(d.size, t_pool.size);
	cr_assert_eq(one.size, page);
	cr_assert_eq((uintptr_t)one.base % page, 0);
	struct ur__stack out = {.base = &out};
	cr_assert_eq(ur__stack_get(&t_pool, (size_t)1 << 40, &out), -EINVAL);
	cr_assert_eq(out.base, &out, "output written on failure");

	/* A stack of another size is its own mapping, gone when put back. */
	long maps0 = t_map_count();
	struct ur__stack big = t_stack(3 * 1024 * 1024 + 1);
	cr_assert_eq(big.size, 3 * 1024 * 1024 + page);
	memset(big.base, 1, big.size);
	ur__stack_put(&t_pool, &big);
	cr_assert_eq(t_map_count(), maps0);
	ur__stack_put(&t_pool, &one);
	ur__stack_put(&t_pool, &d);
	ur__stack_pool_destroy(&t_pool);
}

/*
 * A VMA under mlock refuses MADV_GUARD_INSTALL with EINVAL, as a kernel before 6.13 does: the
 * pool falls back to mprotect, and the caller's errno survives the failed call.
 */
Test(stack, guard_fallback_keeps_errno)
{
	if (UR__CTX_ASAN)
		cr_skip_test("ASan turns mlockall into a no-op");
	if (mlockall(MCL_FUTURE | MCL_ONFAULT))
		cr_skip_test("mlockall: %s", strerror(errno));
	t_pool_init(0);
	struct ur__stack s;
	errno = 1234;
	int ret = ur__stack_get(&t_pool, 0, &s);
	int err = errno;
	munlockall();
	if (ret == -EAGAIN || ret == -ENOMEM)
		cr_skip_test("RLIMIT_MEMLOCK too small to map a locked arena");
	cr_assert_eq(ret, 0, "ur__stack_get: %s", strerror(-ret));
	cr_assert_eq(err, 1234, "errno changed to %d", err);
	cr_assert_eq(t_pool.guard, UR__GUARD_MPROTECT);
	t_pool.warm_max = 0;
	ur__stack_put(&t_pool, &s);
	ur__stack_pool_destroy(&t_pool);
	cr_assert_eq(errno, 1234);
}

/* ---- ASan: a stack reused after its context died deep inside calls ---------------------- */

/*
 * Under ASan, the frames of a context that never returns keep their redzones poisoned. The
 * next context on the same memory then trips over them wherever code that ASan does not
 * instrument (libc, assembly, here a no_sanitize function) hands its stack memory to code that
 * it does. ur__ctx_switch_san(.., true) and ur__ctx_discard_san clear that; without them this
 * test fails under ASan. In other builds it checks plain stack reuse.
 */
struct deep {
	struct ur__ctx ctx;
	bool exits;
	long sum;
};

__attribute__((noinline)) static long t_sum(const char *p, size_t n)
{
	long s = 0;
	for (size_t i = 0; i < n; i++)
		s += p[i];
	return s;
}

__attribute__((noinline)) static void deep_dive(struct deep *d, int depth)
{
	char buf[48];
	memset(buf, depth, sizeof(buf));
	if (depth < 300)
		deep_dive(d, depth + 1);
	else
		ur__ctx_switch_san(&d->ctx, &t_main, d->exits);
	d->sum += t_sum(buf, sizeof(buf));
}

static void deep_fn(void *arg)
{
	struct deep *d = arg;
	ur__ctx_landed_san(&d->ctx);
	deep_dive(d, 0);
}

#if defined(__clang__) || defined(__GNUC__)
__attribute__((no_sanitize_address))
#endif
__attribute__((noinline)) static void
raw_fn(void *arg)
{
	struct deep *d = arg;
	ur__ctx_landed_san(&d->ctx);
	volatile char raw[32 * 1024]; /* not instrumented: no shadow written for it */
	for (size_t i = 0; i < sizeof(raw); i++)
		raw[i] = 1;
	d->sum = t_sum((const char *)raw, sizeof(raw));
	ur__ctx_switch_san(&d->ctx, &t_main, true);
}

static void t_reuse_after_deep(bool exits)
{
	t_pool_init(0);
	struct ur__stack s = t_stack(0);
	void *base = s.base;
	struct deep d = {.exits = exits};
	ur__ctx_make_san(&d.ctx, s.base, s.size, deep_fn, &d);
	ur__ctx_switch_san(&t_main, &d.ctx, false);
	if (!exits)
		ur__ctx_discard_san(&d.ctx);
	ur__stack_put(&t_pool, &s);

	s = t_stack(0);
	cr_assert_eq(s.base, base);
	struct deep r = {0};
	ur__ctx_make_san(&r.ctx, s.base, s.size, raw_fn, &r);
	ur__ctx_switch_san(&t_main, &r.ctx, false);
	cr_assert_eq(r.sum, 32 * 1024);
	ur__stack_put(&t_pool, &s);
	ur__stack_pool_destroy(&t_pool);
}

Test(ctx, stack_reuse_after_exit_deep)
{
	t_reuse_after_deep(true);
}

Test(ctx, stack_reuse_after_discard)
{
	t_reuse_after_deep(false);
}
