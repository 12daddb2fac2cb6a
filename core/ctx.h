/* SPDX-License-Identifier: MIT */
/*
 * core/ctx.h - machine contexts: the register switch under stackful tasks (core/arch/), and the
 * AddressSanitizer / ThreadSanitizer bookkeeping every switch needs in a sanitized build.
 *
 * The task layer uses the _san calls only; they compile to the bare switch without sanitizers. The
 * bare ur__ctx_switch / ur__ctx_make are for code that does its own bookkeeping (tests,
 * benchmarks).
 */
#ifndef UR_CORE_CTX_H
#define UR_CORE_CTX_H

#include <stdbool.h>
#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__)
#define UR__CTX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UR__CTX_ASAN 1
#endif
#endif
#ifndef UR__CTX_ASAN
#define UR__CTX_ASAN 0
#endif

#if UR__CTX_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if defined(__SANITIZE_THREAD__)
#define UR__CTX_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UR__CTX_TSAN 1
#endif
#endif
#ifndef UR__CTX_TSAN
#define UR__CTX_TSAN 0
#endif

#if UR__CTX_TSAN
/*
 * ThreadSanitizer keeps a shadow call stack and a clock per thread; a stack switch it is not
 * told about corrupts both (false races, wild reports). Each made context is a TSan fiber; the
 * thread's own context is the thread's fiber, learned on its first switch away. Declared here
 * rather than taken from <sanitizer/tsan_interface.h>, which gcc 12 does not ship.
 */
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
#endif

/*
 * A switched-out context. The thread's own context (the loop's) needs no setup: a zeroed
 * struct ur__ctx is filled by the first switch away from it.
 */
struct ur__ctx {
	void *sp; /* saved frame, on the context's own stack; meaningless while it runs */
#if UR__CTX_ASAN
	void *asan_fake;           /* ASan's fake stack, parked while the context is out */
	const void *asan_bottom;   /* its stack, for ASan's switch into it ... */
	size_t asan_size;          /* ... learned on the first switch away if not made here */
	struct ur__ctx *asan_from; /* who switched into it, told its bounds on landing */
#endif
#if UR__CTX_TSAN
	void *
	    tsan_fiber; /* TSan's fiber for this context; NULL for a thread's own until it leaves */
	void
	    *tsan_dead; /* the fiber of a context that exited into this one, destroyed on landing */
#endif
};

/*
 * Saves the callee-saved registers and FP control words (x86_64: rbx rbp r12-r15, MXCSR, x87
 * control word; aarch64: x19-x29, lr, d8-d15, FPCR) on the current stack, stores the stack
 * pointer in from->sp, loads to->sp, restores and returns into `to`. Returns when some context
 * switches back to @from. No syscall, no signal-mask change: about 20 instructions.
 * @from and @to must differ; @to must have been switched out or made, never running.
 */
void ur__ctx_switch(struct ur__ctx *from, struct ur__ctx *to);

/*
 * Prepares @ctx so that the first ur__ctx_switch into it calls fn(arg) on the stack
 * [base, base + size), aligned per the ABI, with a terminated frame chain (debuggers and
 * unwinders stop at the trampoline), and with the FP control words of the calling thread at the
 * time of this call. Writes one frame at the top of the stack, nothing else. @fn must never
 * return: it ends by switching away for the last time.
 */
void ur__ctx_make(struct ur__ctx *ctx, void *base, size_t size, void (*fn)(void *), void *arg);

/* ur__ctx_make, plus telling ASan where the new context's stack is. */
static inline void ur__ctx_make_san(struct ur__ctx *ctx, void *base, size_t size,
                                    void (*fn)(void *), void *arg)
{
	ur__ctx_make(ctx, base, size, fn, arg);
#if UR__CTX_ASAN
	ctx->asan_fake = NULL;
	ctx->asan_bottom = base;
	ctx->asan_size = size;
	ctx->asan_from = NULL;
#endif
#if UR__CTX_TSAN
	ctx->tsan_fiber = __tsan_create_fiber(0);
	ctx->tsan_dead = NULL;
#endif
}

/*
 * First half of a switch: tells ASan the stack changes to @to's. With @from_exits, @from will
 * never run again: its fake stack is freed and the shadow of its live frames is cleared, since
 * their redzones would otherwise stay poisoned and fault the next user of the same stack memory.
 * Nothing instrumented may run between this and the switch.
 */
static inline void ur__ctx_leave_san(struct ur__ctx *from, struct ur__ctx *to, bool from_exits)
{
#if UR__CTX_ASAN
	to->asan_from = from_exits ? NULL : from;
	if (from_exits)
		__asan_handle_no_return();
	__sanitizer_start_switch_fiber(from_exits ? NULL : &from->asan_fake, to->asan_bottom,
	                               to->asan_size);
#endif
#if UR__CTX_TSAN
	if (!from->tsan_fiber)
		from->tsan_fiber = __tsan_get_current_fiber();
	if (from_exits) {
		/* A fiber cannot be destroyed while it runs: the context switched into does it. */
		to->tsan_dead = from->tsan_fiber;
		from->tsan_fiber = NULL;
	}
	/* flags 0: the switch synchronizes, as the hand-off between tasks on one thread does. */
	__tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
	(void)from, (void)to, (void)from_exits;
}

/*
 * Second half: @self has just been switched into. Call it first thing in a made context's fn,
 * before any instrumented access; ur__ctx_switch_san calls it after its switch returns.
 */
static inline void ur__ctx_landed_san(struct ur__ctx *self)
{
#if UR__CTX_ASAN
	const void *bottom;
	size_t size;
	__sanitizer_finish_switch_fiber(self->asan_fake, &bottom, &size);
	if (self->asan_from) {
		self->asan_from->asan_bottom = bottom;
		self->asan_from->asan_size = size;
	}
#endif
#if UR__CTX_TSAN
	if (self->tsan_dead) {
		__tsan_destroy_fiber(self->tsan_dead);
		self->tsan_dead = NULL;
	}
#endif
	(void)self;
}

/*
 * ur__ctx_switch with the sanitizer bookkeeping on both sides. Pass @from_exits for the last
 * switch out of a context (it does not return then).
 */
static inline void ur__ctx_switch_san(struct ur__ctx *from, struct ur__ctx *to, bool from_exits)
{
	ur__ctx_leave_san(from, to, from_exits);
	ur__ctx_switch(from, to);
	ur__ctx_landed_san(from);
}

/*
 * For a made context dropped while switched out (a task freed before it finished): clears the
 * shadow of its live frames so its stack can be reused. Its ASan fake stack, if ASan keeps one
 * (detect_stack_use_after_return), cannot be reclaimed and leaks; sanitized builds only.
 */
static inline void ur__ctx_discard_san(struct ur__ctx *ctx)
{
#if UR__CTX_ASAN
	const char *top = (const char *)ctx->asan_bottom + ctx->asan_size;
	if (ctx->asan_bottom && (const char *)ctx->sp < top)
		__asan_unpoison_memory_region(ctx->sp, (size_t)(top - (const char *)ctx->sp));
#endif
#if UR__CTX_TSAN
	if (ctx->tsan_fiber) {
		__tsan_destroy_fiber(ctx->tsan_fiber);
		ctx->tsan_fiber = NULL;
	}
#endif
	(void)ctx;
}

#endif
