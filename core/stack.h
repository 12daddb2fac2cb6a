/* SPDX-License-Identifier: MIT */
/*
 * core/stack.h - a pool of task stacks: mmap'd, committed lazily, a guard page below each, reused.
 *
 * Stacks of the pool's default size are carved out of arenas of UR__STACK_ARENA_SLOTS stacks, one
 * mmap each; any other size gets an mmap of its own, unmapped when put back. A pool belongs to one
 * thread (its loop's): no call locks. Layout and VMA arithmetic: docs/design-tasks.md, "Stacks".
 */
#ifndef UR_CORE_STACK_H
#define UR_CORE_STACK_H

#include <stdbool.h>
#include <stddef.h>

#define UR__STACK_DEFAULT_SIZE (256u * 1024u) /* OpenSSL's deepest handshake path fits */
#define UR__STACK_ARENA_SLOTS  64u
#define UR__STACK_WARM_MAX     64u /* free stacks kept committed; the rest are given back */
/* Largest stack a task may ask for; 64 of them still fit any 64-bit address space. */
#define UR__STACK_MAX_SIZE ((size_t)1 << 30)

struct ur__stack_slot;
struct ur__stack_arena;

/* A stack handed out by ur__stack_get. Fields read-only for the holder. */
struct ur__stack {
	void *base;  /* lowest usable address, page-aligned; the guard page is right below */
	size_t size; /* usable bytes, a multiple of the page size; the top is base + size */
	struct ur__stack_slot *slot_;
	unsigned vg_id_; /* valgrind's id for the stack, when built with valgrind's header */
};

/* How guard pages are made; UR__GUARD_AUTO decides on the first stack carved. */
enum ur__stack_guard {
	UR__GUARD_AUTO = 0,
	UR__GUARD_MADVISE,  /* MADV_GUARD_INSTALL (6.13+): page-table markers, no VMA split */
	UR__GUARD_MPROTECT, /* PROT_NONE: two VMAs per stack */
};

/*
 * Embeddable; every field private. A test may set .guard to UR__GUARD_MPROTECT after init to
 * force the fallback, and .warm_max to change how many free stacks stay committed.
 */
struct ur__stack_pool {
	size_t page;
	size_t size; /* default usable size */
	unsigned warm_max;
	unsigned warm_n;
	enum ur__stack_guard guard;
	struct ur__stack_slot *warm;     /* free, memory kept: LIFO, so the hottest is reused */
	struct ur__stack_slot *cold;     /* free, memory given back with MADV_DONTNEED */
	struct ur__stack_arena *arenas;  /* every mapping, for destroy */
	struct ur__stack_arena *fresh;   /* default-size arena with slots never handed out */
	struct ur__stack_arena *pending; /* arenas with slots put lazily, not yet released */
	unsigned pending_n;
	size_t live; /* stacks handed out and not put back */
#if defined(UR_FAULT_INJECTION) && UR_FAULT_INJECTION
	/* Fault builds: asked before each mapping and guard; true fails it with -ENOMEM. */
	bool (*nomem)(void *arg);
	void *nomem_arg;
#endif
};

/*
 * Sets up an empty pool; maps nothing yet. @default_size 0 means UR__STACK_DEFAULT_SIZE; any
 * other value is rounded up to the page size. Returns 0, or -EINVAL if @default_size is absurd.
 */
int ur__stack_pool_init(struct ur__stack_pool *p, size_t default_size);

/*
 * Hands out a stack of @size usable bytes (0: the pool's default; else rounded up to the page
 * size) in @out: a free one of the default size if any, else a fresh one. Memory is committed
 * on first touch only. Returns 0, -ENOMEM (no memory, or vm.max_map_count reached on the
 * mprotect fallback), -EINVAL (@size absurd), or the -errno of a failed mmap/madvise/mprotect;
 * @out is untouched on failure.
 */
int ur__stack_get(struct ur__stack_pool *p, size_t size, struct ur__stack *out);

/*
 * Gives @s back. Default-size stacks are kept for reuse: the first warm_max free ones with their
 * memory, the rest after MADV_DONTNEED (their address range stays reserved). Other sizes are
 * unmapped. No context may still run on @s, and @s is zeroed.
 */
void ur__stack_put(struct ur__stack_pool *p, struct ur__stack *s);

/*
 * ur__stack_put(), except that a stack beyond the warm ones is released later, together with
 * its neighbours, by ur__stack_flush() (one madvise per run of adjacent free slots). Until then
 * it may be handed out again as it is.
 */
void ur__stack_put_lazy(struct ur__stack_pool *p, struct ur__stack *s);
void ur__stack_flush(struct ur__stack_pool *p);

/* Unmaps every stack of the pool, including any still handed out, and frees its bookkeeping. */
void ur__stack_pool_destroy(struct ur__stack_pool *p);

#endif
