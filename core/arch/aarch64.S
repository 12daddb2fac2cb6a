/* SPDX-License-Identifier: MIT */
/*
 * core/arch/aarch64.S - context switch for AArch64, AAPCS64. Contract in core/ctx.h.
 *
 * A switched-out context is a 176-byte frame on its own stack; ctx->sp points at its lowest byte:
 *
 *     0  x19 x20      48  x25 x26      96  d8  d9      144  d14 d15
 *    16  x21 x22      64  x27 x28     112  d10 d11     160  FPCR, 8 bytes unused
 *    32  x23 x24      80  x29 x30     128  d12 d13
 *
 * Only what AAPCS64 says a callee keeps: x19-x29, the return address, the low halves of v8-v15,
 * and FPCR (rounding mode, flush-to-zero); FPSR holds sticky flags, which are not per context.
 *
 * BTI: with -mbranch-protection the compiler defines __ARM_FEATURE_BTI_DEFAULT; the entry points
 * then start with a landing pad (they may be reached through a PLT's `br`) and the object carries
 * the BTI/PAC property note so linking it does not turn protection off for the whole binary. The
 * trampoline is entered by `ret`, which BTI does not check. The x30 saved here is the raw address
 * `bl` wrote: callers compiled with pac-ret sign their own return addresses against their own SP,
 * which is theirs again when they are resumed, so PAC needs nothing from the switch.
 */
#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
#define LANDING_PAD hint #34 /* bti c */
#else
#define LANDING_PAD
#endif

	.text

	.globl	ur__ctx_switch
	.hidden	ur__ctx_switch
	.type	ur__ctx_switch, %function
	.p2align 4
ur__ctx_switch:
	.cfi_startproc
	LANDING_PAD
	sub	sp, sp, #176
	.cfi_adjust_cfa_offset 176
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	.cfi_rel_offset x29, 80
	.cfi_rel_offset x30, 88
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	mrs	x9, fpcr
	str	x9, [sp, #160]

	/* Both frames have the same layout, so the CFI above stays true on the new stack. */
	mov	x10, sp
	str	x10, [x0]
	ldr	x10, [x1]
	mov	sp, x10

	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	/* Writing FPCR can drain the pipeline on some cores; contexts rarely differ, so compare. */
	ldr	x9, [sp, #160]
	mrs	x10, fpcr
	cmp	x9, x10
	b.eq	1f
	msr	fpcr, x9
1:
	add	sp, sp, #176
	.cfi_adjust_cfa_offset -176
	.cfi_restore x29
	.cfi_restore x30
	ret
	.cfi_endproc
	.size	ur__ctx_switch, .-ur__ctx_switch

/*
 * ur__ctx_make(ctx: x0, base: x1, size: x2, fn: x3, arg: x4)
 *
 * Writes a switched-out frame just below the 16-aligned top: fn in x19, arg in x20, the
 * trampoline as x30, x29 0 (the end of the frame-record chain), the caller's FPCR, zeros
 * elsewhere. After the switch pops it, sp is the aligned top. Touches one page.
 */
	.globl	ur__ctx_make
	.hidden	ur__ctx_make
	.type	ur__ctx_make, %function
	.p2align 4
ur__ctx_make:
	.cfi_startproc
	LANDING_PAD
	add	x9, x1, x2
	and	x9, x9, #~15
	sub	x9, x9, #176
	stp	x3, x4, [x9, #0]
	stp	xzr, xzr, [x9, #16]
	stp	xzr, xzr, [x9, #32]
	stp	xzr, xzr, [x9, #48]
	stp	xzr, xzr, [x9, #64]
	adr	x10, trampoline
	stp	xzr, x10, [x9, #80]
	stp	xzr, xzr, [x9, #96]
	stp	xzr, xzr, [x9, #112]
	stp	xzr, xzr, [x9, #128]
	stp	xzr, xzr, [x9, #144]
	mrs	x10, fpcr
	stp	x10, xzr, [x9, #160]
	str	x9, [x0]
	ret
	.cfi_endproc
	.size	ur__ctx_make, .-ur__ctx_make

/*
 * First code of every made context, reached by ur__ctx_switch's `ret`. The undefined return
 * address tells DWARF unwinders the chain ends here. fn must not return; if it does, brk traps
 * rather than running off into the stack.
 */
	.type	trampoline, %function
	.p2align 4
trampoline:
	.cfi_startproc
	.cfi_undefined x30
	mov	x0, x20
	blr	x19
	brk	#1000
	.cfi_endproc
	.size	trampoline, .-trampoline

	.section .note.GNU-stack, "", %progbits

#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
/* GNU_PROPERTY_AARCH64_FEATURE_1_AND: BTI (1), plus PAC (2) when the compiler signs returns. */
#if defined(__ARM_FEATURE_PAC_DEFAULT) && __ARM_FEATURE_PAC_DEFAULT
#define FEATURE_1 3
#else
#define FEATURE_1 1
#endif
	.pushsection .note.gnu.property, "a"
	.balign	8
	.long	4
	.long	16
	.long	5 /* NT_GNU_PROPERTY_TYPE_0 */
	.asciz	"GNU"
	.long	0xc0000000
	.long	4
	.long	FEATURE_1
	.long	0
	.popsection
#endif
