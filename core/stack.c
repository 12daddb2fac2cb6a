/* SPDX-License-Identifier: MIT */
/*
 * core/stack.c - the stack pool: arenas of stacks with guard pages, free lists, lazy commit.
 *
 * An arena is one mmap of UR__STACK_ARENA_SLOTS slots, each a guard page then the usable stack:
 *
 *   map: [guard][stack 0 ........][guard][stack 1 ........] ... [guard][stack 63 .......]
 *
 * A stack grows down into its own guard, never into its neighbour. Why arenas: vm.max_map_count
 * is 65530 by default, and a PROT_NONE guard splits its mapping, so 100,000 separately protected
 * stacks need 200,000 VMAs and mmap/mprotect fail with ENOMEM far earlier. MADV_GUARD_INSTALL
 * (6.13) puts the guard in the page tables instead: an arena stays one VMA (adjacent arenas may
 * even merge), and 100,000 stacks cost ~1,600 VMAs at most. Older kernels say EINVAL, and the
 * pool falls back to mprotect, two VMAs per stack.
 *
 * Nothing here touches stack memory: the mapping is MAP_NORESERVE, so a stack costs address
 * space until its task touches pages, and the bookkeeping lives in malloc'd memory beside it.
 * One guard page catches frames smaller than a page; a bigger frame can step over it unless
 * compiled with -fstack-clash-protection.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "stack.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13; glibc headers before 2.42 lack it */
#endif

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
/* Without it valgrind takes a switch between stacks closer than 2 MB for a huge frame. */
#include <valgrind/valgrind.h>
#define HAVE_VALGRIND 1
#endif
#endif

struct ur__stack_slot {
	struct ur__stack_slot *next; /* on a free list */
	struct ur__stack_arena *arena;
};

struct ur__stack_arena {
	struct ur__stack_arena *next, *prev;
	char *map;
	size_t len;
	size_t stride;                        /* guard page + usable size */
	unsigned n;                           /* slots; 1 for a stack of a non-default size */
	unsigned carved;                      /* slots handed out at least once, guard installed */
	uint64_t pending;                     /* slots put lazily, memory not yet released */
	struct ur__stack_arena *pending_next; /* on the pool's list of arenas with pending slots */
	bool pending_listed;
	struct ur__stack_slot slot[];
};

int ur__stack_pool_init(struct ur__stack_pool *p, size_t default_size)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t size = default_size ? default_size : UR__STACK_DEFAULT_SIZE;
	*p = (struct ur__stack_pool){0};
	p->page = page > 0 ? (size_t)page : 4096;
	if (size > UR__STACK_MAX_SIZE)
		return -EINVAL;
	p->size = (size + p->page - 1) & ~(p->page - 1);
	p->warm_max = UR__STACK_WARM_MAX;
	return 0;
}

/* Fault builds: a mapping or a guard refused as the kernel refuses them when out of memory. */
static bool refused(const struct ur__stack_pool *p)
{
#if defined(UR_FAULT_INJECTION) && UR_FAULT_INJECTION
	return p->nomem && p->nomem(p->nomem_arg);
#else
	(void)p;
	return false;
#endif
}

static int arena_new(struct ur__stack_pool *p, size_t size, unsigned n,
                     struct ur__stack_arena **out)
{
	size_t stride = p->page + size;
	if (refused(p))
		return -ENOMEM;
	struct ur__stack_arena *a = malloc(sizeof(*a) + n * sizeof(a->slot[0]));
	if (!a)
		return -ENOMEM;
	void *map = mmap(NULL, stride * n, PROT_READ | PROT_WRITE,
	                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (map == MAP_FAILED) {
		int err = -errno;
		free(a);
		return err;
	}
	/*
	 * With THP "always", touching one byte of a stack could fault in 2 MB. MAP_STACK implies
	 * no huge pages since 6.7; say it for older kernels. Failure (no THP support) is harmless.
	 */
	madvise(map, stride * n, MADV_NOHUGEPAGE);
	*a = (struct ur__stack_arena){.map = map, .len = stride * n, .stride = stride, .n = n};
	a->next = p->arenas;
	if (a->next)
		a->next->prev = a;
	p->arenas = a;
	*out = a;
	return 0;
}

static void arena_free(struct ur__stack_pool *p, struct ur__stack_arena *a)
{
	if (a->prev)
		a->prev->next = a->next;
	else
		p->arenas = a->next;
	if (a->next)
		a->next->prev = a->prev;
	if (p->fresh == a)
		p->fresh = NULL;
	munmap(a->map, a->len);
	free(a);
}

static int guard_install(struct ur__stack_pool *p, void *addr)
{
	if (p->guard != UR__GUARD_MPROTECT) {
		if (madvise(addr, p->page, MADV_GUARD_INSTALL) == 0) {
			p->guard = UR__GUARD_MADVISE;
			return 0;
		}
		/* EINVAL: a kernel before 6.13, or a VMA it refuses (mlock'd): fall back. */
		if (errno != EINVAL)
			return -errno;
		if (p->guard == UR__GUARD_AUTO)
			p->guard = UR__GUARD_MPROTECT;
	}
	return mprotect(addr, p->page, PROT_NONE) ? -errno : 0;
}

/* The next never-used slot of @a, its guard installed. */
static int carve(struct ur__stack_pool *p, struct ur__stack_arena *a, struct ur__stack_slot **out)
{
	unsigned i = a->carved;
	if (refused(p))
		return -ENOMEM; /* mprotect's ENOMEM: the split would pass vm.max_map_count */
	int ret = guard_install(p, a->map + (size_t)i * a->stride);
	if (ret)
		return ret;
	a->carved++;
	if (a->carved == a->n && p->fresh == a)
		p->fresh = NULL;
	a->slot[i].arena = a;
	*out = &a->slot[i];
	return 0;
}

/* A slot put lazily and not yet released: its memory is still committed, so it beats cold. */
static bool take_pending(struct ur__stack_pool *p, struct ur__stack_slot **out)
{
	while (p->pending) {
		struct ur__stack_arena *a = p->pending;
		if (a->pending) {
			unsigned i = (unsigned)__builtin_ctzll(a->pending);
			a->pending &= a->pending - 1;
			p->pending_n--;
			*out = &a->slot[i];
			return true;
		}
		p->pending = a->pending_next;
		a->pending_listed = false;
	}
	return false;
}

static int get_default(struct ur__stack_pool *p, struct ur__stack_slot **out)
{
	if (!p->warm && take_pending(p, out))
		return 0;
	struct ur__stack_slot **list = p->warm ? &p->warm : p->cold ? &p->cold : NULL;
	if (list) {
		*out = *list;
		*list = (*list)->next;
		if (list == &p->warm)
			p->warm_n--;
		return 0;
	}
	if (!p->fresh) {
		int ret = arena_new(p, p->size, UR__STACK_ARENA_SLOTS, &p->fresh);
		if (ret)
			return ret;
	}
	return carve(p, p->fresh, out);
}

static int get_single(struct ur__stack_pool *p, size_t size, struct ur__stack_slot **out)
{
	struct ur__stack_arena *a;
	int ret = arena_new(p, size, 1, &a);
	if (ret)
		return ret;
	ret = carve(p, a, out);
	if (ret)
		arena_free(p, a);
	return ret;
}

int ur__stack_get(struct ur__stack_pool *p, size_t size, struct ur__stack *out)
{
	int saved = errno;
	if (size > UR__STACK_MAX_SIZE)
		return -EINVAL;
	size = size ? (size + p->page - 1) & ~(p->page - 1) : p->size;

	struct ur__stack_slot *s;
	int ret = size == p->size ? get_default(p, &s) : get_single(p, size, &s);
	errno = saved;
	if (ret)
		return ret;

	struct ur__stack_arena *a = s->arena;
	out->base = a->map + (size_t)(s - a->slot) * a->stride + p->page;
	out->size = a->stride - p->page;
	out->slot_ = s;
#ifdef HAVE_VALGRIND
	out->vg_id_ = VALGRIND_STACK_REGISTER(out->base, (char *)out->base + out->size - 1);
#else
	out->vg_id_ = 0;
#endif
	p->live++;
	return 0;
}

static void put(struct ur__stack_pool *p, struct ur__stack *s, bool lazy)
{
	int saved = errno;
	struct ur__stack_slot *slot = s->slot_;
	struct ur__stack_arena *a = slot->arena;
#ifdef HAVE_VALGRIND
	VALGRIND_STACK_DEREGISTER(s->vg_id_);
#endif
	p->live--;
	if (a->n == 1) {
		arena_free(p, a);
	} else if (p->warm_n < p->warm_max) {
		slot->next = p->warm;
		p->warm = slot;
		p->warm_n++;
	} else if (lazy && a->n <= 64) {
		a->pending |= UINT64_C(1) << (slot - a->slot);
		p->pending_n++;
		if (!a->pending_listed) {
			a->pending_listed = true;
			a->pending_next = p->pending;
			p->pending = a;
		}
	} else {
		/*
		 * Costs the call and a refault per page on reuse (~4 us for one page, ~37 us for
		 * 16 on the development VM), against keeping what the deepest call ever touched
		 * (a TLS handshake: tens of KiB) for every idle stack, forever. The guard page is
		 * outside the range. Numbers and the MADV_FREE alternative: docs/design-tasks.md.
		 */
		madvise(s->base, s->size, MADV_DONTNEED);
		slot->next = p->cold;
		p->cold = slot;
	}
	*s = (struct ur__stack){0};
	errno = saved;
}

void ur__stack_put(struct ur__stack_pool *p, struct ur__stack *s)
{
	put(p, s, false);
}

void ur__stack_put_lazy(struct ur__stack_pool *p, struct ur__stack *s)
{
	put(p, s, true);
}

/*
 * Releases the lazily put slots: one madvise per run of adjacent slots of an arena, where
 * releasing them one by one cost a call and a TLB flush each (the flush was most of the time
 * of 100,000 tasks ending in one turn). A run spans the guard pages between its stacks:
 * MADV_DONTNEED leaves guard markers (MADV_GUARD_INSTALL) in place; PROT_NONE guards are VMAs of
 * their own, so with those each stack is released alone.
 */
void ur__stack_flush(struct ur__stack_pool *p)
{
	int saved = errno;
	while (p->pending) {
		struct ur__stack_arena *a = p->pending;
		p->pending = a->pending_next;
		a->pending_listed = false;
		uint64_t bits = a->pending;
		a->pending = 0;
		while (bits) {
			unsigned i = (unsigned)__builtin_ctzll(bits), j = i;
			if (p->guard == UR__GUARD_MADVISE)
				while (j + 1 < a->n && (bits >> (j + 1) & 1))
					j++;
			char *base = a->map + (size_t)i * a->stride + p->page;
			madvise(base, (size_t)(j - i + 1) * a->stride - p->page, MADV_DONTNEED);
			for (unsigned k = i; k <= j; k++) {
				bits &= ~(UINT64_C(1) << k);
				a->slot[k].next = p->cold;
				p->cold = &a->slot[k];
				p->pending_n--;
			}
		}
	}
	errno = saved;
}

void ur__stack_pool_destroy(struct ur__stack_pool *p)
{
	int saved = errno;
	while (p->arenas)
		arena_free(p, p->arenas);
	*p = (struct ur__stack_pool){0};
	errno = saved;
}
