/* SPDX-License-Identifier: MIT */
/*
 * tools/bench/switch.c - what a task switch and a task stack cost: urio's ur__ctx_switch against
 * ucontext's swapcontext in the same run (the anchor; it also saves and restores the signal
 * mask, one rt_sigprocmask syscall per switch), then the stack pool's paths.
 *
 * usage: bench_switch [ROUND_TRIPS]    default 10,000,000; each round trip is two switches
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>

#include "ctx.h"
#include "stack.h"

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "bench_switch: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

/*
 * Each side switches either straight from its loop or from two calls down (the shape of a task
 * in ur_await and of the loop running it): after a switch the return-stack predictor still holds
 * the other side's call chain, so every frame the resumed side returns through mispredicts.
 * The empty asm after each call keeps the compiler from turning it into a tail jump.
 */
static int depth;

/* ---- ur__ctx_switch --------------------------------------------------------------------- */

static struct ur__ctx ur_main, ur_peer;

__attribute__((noinline)) static void ur_hop2(struct ur__ctx *from, struct ur__ctx *to)
{
	ur__ctx_switch_san(from, to, false);
	__asm__ volatile("");
}

__attribute__((noinline)) static void ur_hop1(struct ur__ctx *from, struct ur__ctx *to)
{
	ur_hop2(from, to);
	__asm__ volatile("");
}

static inline void ur_swap(struct ur__ctx *from, struct ur__ctx *to)
{
	if (depth)
		ur_hop1(from, to);
	else
		ur__ctx_switch_san(from, to, false);
}

static void ur_peer_fn(void *arg)
{
	(void)arg;
	ur__ctx_landed_san(&ur_peer);
	for (;;)
		ur_swap(&ur_peer, &ur_main);
}

static double bench_ur(struct ur__stack *s, long n)
{
	ur__ctx_discard_san(&ur_peer); /* a previous run's peer, left suspended on @s */
	ur__ctx_make_san(&ur_peer, s->base, s->size, ur_peer_fn, NULL);
	ur_swap(&ur_main, &ur_peer); /* first entry, out of the timing */
	uint64_t t0 = now_ns();
	for (long i = 0; i < n; i++)
		ur_swap(&ur_main, &ur_peer);
	return (double)(now_ns() - t0) / (2.0 * (double)n);
}

/* ---- swapcontext ------------------------------------------------------------------------ */

static ucontext_t uc_main, uc_peer;

__attribute__((noinline)) static void uc_hop2(ucontext_t *from, ucontext_t *to)
{
	swapcontext(from, to);
	__asm__ volatile("");
}

__attribute__((noinline)) static void uc_hop1(ucontext_t *from, ucontext_t *to)
{
	uc_hop2(from, to);
	__asm__ volatile("");
}

static inline void uc_swap(ucontext_t *from, ucontext_t *to)
{
	if (depth)
		uc_hop1(from, to);
	else
		swapcontext(from, to);
}

static void uc_peer_fn(void)
{
	for (;;)
		uc_swap(&uc_peer, &uc_main);
}

static double bench_uc(struct ur__stack *s, long n)
{
	if (getcontext(&uc_peer))
		die("getcontext", -1);
	uc_peer.uc_stack.ss_sp = s->base;
	uc_peer.uc_stack.ss_size = s->size;
	uc_peer.uc_link = NULL;
	makecontext(&uc_peer, uc_peer_fn, 0);
	uc_swap(&uc_main, &uc_peer);
	uint64_t t0 = now_ns();
	for (long i = 0; i < n; i++)
		uc_swap(&uc_main, &uc_peer);
	return (double)(now_ns() - t0) / (2.0 * (double)n);
}

/* ---- stack pool ------------------------------------------------------------------------- */

/* get + put of a warm stack: the path of every task spawned in steady state. */
static double bench_pool_warm(long n)
{
	struct ur__stack_pool p;
	struct ur__stack s;
	ur__stack_pool_init(&p, 0);
	uint64_t t0 = now_ns();
	for (long i = 0; i < n; i++) {
		int ret = ur__stack_get(&p, 0, &s);
		if (ret)
			die("ur__stack_get", ret);
		ur__stack_put(&p, &s);
	}
	double ns = (double)(now_ns() - t0) / (double)n;
	ur__stack_pool_destroy(&p);
	return ns;
}

/*
 * get, dirty @pages pages from the top, put - with no warm cache, so every put releases the
 * memory with MADV_DONTNEED and every get faults it in again.
 */
static double bench_pool_cold(long n, unsigned warm_max, size_t pages)
{
	struct ur__stack_pool p;
	struct ur__stack s;
	ur__stack_pool_init(&p, 0);
	p.warm_max = warm_max;
	uint64_t t0 = now_ns();
	for (long i = 0; i < n; i++) {
		int ret = ur__stack_get(&p, 0, &s);
		if (ret)
			die("ur__stack_get", ret);
		for (size_t k = 1; k <= pages; k++)
			((volatile char *)s.base)[s.size - k * p.page] = 1;
		ur__stack_put(&p, &s);
	}
	double ns = (double)(now_ns() - t0) / (double)n;
	ur__stack_pool_destroy(&p);
	return ns;
}

/* n fresh stacks: arena mmaps and one guard install per stack, amortized. */
static double bench_pool_fresh(long n, enum ur__stack_guard mode, const char **guard)
{
	struct ur__stack_pool p;
	struct ur__stack *s = calloc((size_t)n, sizeof(*s));
	if (!s)
		die("calloc", -12);
	ur__stack_pool_init(&p, 0);
	p.guard = mode;
	uint64_t t0 = now_ns();
	for (long i = 0; i < n; i++) {
		int ret = ur__stack_get(&p, 0, &s[i]);
		if (ret)
			die("ur__stack_get", ret);
	}
	double ns = (double)(now_ns() - t0) / (double)n;
	*guard = p.guard == UR__GUARD_MADVISE ? "MADV_GUARD_INSTALL" : "mprotect";
	ur__stack_pool_destroy(&p);
	free(s);
	return ns;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 10000000;
	if (n <= 0) {
		fprintf(stderr, "usage: bench_switch [ROUND_TRIPS]\n");
		return 2;
	}
	struct ur__stack_pool pool;
	struct ur__stack s;
	ur__stack_pool_init(&pool, 0);
	int ret = ur__stack_get(&pool, 0, &s);
	if (ret)
		die("ur__stack_get", ret);

	printf("context switch, %ld round trips (%ld switches), ns per switch:\n", n, 2 * n);
	for (depth = 0; depth < 2; depth++) {
		/* Each measured twice, interleaved: clock ramp-up must not favour the second. */
		double ur = bench_ur(&s, n / 4), uc = bench_uc(&s, n / 4);
		ur = bench_ur(&s, n);
		uc = bench_uc(&s, n);
		const char *how = depth ? "2 calls deep" : "direct";
		printf("  ur__ctx_switch, %-24s %10.2f %8s\n", how, ur, "1.0x");
		printf("  swapcontext,    %-24s %10.2f %7.1fx\n", how, uc, uc / ur);
	}

	long m = n / 10 > 0 ? n / 10 : 1;
	const char *guard = "", *guard_mp = "";
	double warm = bench_pool_warm(m);
	double cold1 = bench_pool_cold(m / 10 + 1, 0, 1);
	double cold16 = bench_pool_cold(m / 10 + 1, 0, 16);
	double warm16 = bench_pool_cold(m / 10 + 1, UR__STACK_WARM_MAX, 16);
	double fresh = bench_pool_fresh(100000, UR__GUARD_AUTO, &guard);
	double fresh_mp = bench_pool_fresh(10000, UR__GUARD_MPROTECT, &guard_mp);
	printf("stack pool (%u KiB stacks), ns per operation:\n", UR__STACK_DEFAULT_SIZE / 1024);
	printf("  %-40s %10.1f\n", "get + put, warm", warm);
	printf("  %-40s %10.1f\n", "get + touch 1 page + put, released", cold1);
	printf("  %-40s %10.1f\n", "get + touch 16 pages + put, released", cold16);
	printf("  %-40s %10.1f\n", "get + touch 16 pages + put, warm", warm16);
	printf("  %-40s %10.1f  (%s guards)\n", "get, fresh (100,000 stacks)", fresh, guard);
	printf("  %-40s %10.1f  (%s guards)\n", "get, fresh (10,000 stacks)", fresh_mp, guard_mp);

	ur__stack_put(&pool, &s);
	ur__stack_pool_destroy(&pool);
	return 0;
}
