/* SPDX-License-Identifier: MIT */
/*
 * core/arch/x86_64.S - context switch for x86-64, System V ABI. Contract in core/ctx.h.
 *
 * A switched-out context is a frame on its own stack; ctx->sp points at its lowest byte:
 *
 *    0  MXCSR (4 bytes), x87 control word (2 bytes), 2 bytes unused
 *    8  r15
 *   16  r14
 *   24  r13
 *   32  r12
 *   40  rbx
 *   48  rbp
 *   56  return address
 *
 * Only what the ABI says a callee keeps is saved: the caller of ur__ctx_switch has already spilled
 * everything else. The FP status flags and the x87 register stack are caller-saved (empty at a
 * call), so only the control words move. No red zone is used: the frame lives below the return
 * address like any callee's.
 *
 * No .note.gnu.property: the switch `ret`s onto another stack, which a CET shadow stack would
 * reject. Without the note the linker marks the final binary as not shadow-stack compatible,
 * which is the truth; IBT is not enforced in Linux user space, so endbr64 would buy nothing.
 */
	.text

	.globl	ur__ctx_switch
	.hidden	ur__ctx_switch
	.type	ur__ctx_switch, @function
	.p2align 4
ur__ctx_switch:
	.cfi_startproc
	pushq	%rbp
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %rbp, 0
	pushq	%rbx
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %rbx, 0
	pushq	%r12
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r12, 0
	pushq	%r13
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r13, 0
	pushq	%r14
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r14, 0
	pushq	%r15
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r15, 0
	subq	$8, %rsp
	.cfi_adjust_cfa_offset 8
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)

	/*
	 * The stacks swap here. Both frames have the same layout, so the CFI above stays true on the
	 * new stack and an unwinder stopped below this line still walks the context being resumed.
	 */
	movq	%rsp, (%rdi)
	movq	(%rsi), %rsp

	ldmxcsr	(%rsp)
	fldcw	4(%rsp)
	addq	$8, %rsp
	.cfi_adjust_cfa_offset -8
	popq	%r15
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r15
	popq	%r14
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r14
	popq	%r13
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r13
	popq	%r12
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r12
	popq	%rbx
	.cfi_adjust_cfa_offset -8
	.cfi_restore %rbx
	popq	%rbp
	.cfi_adjust_cfa_offset -8
	.cfi_restore %rbp
	ret
	.cfi_endproc
	.size	ur__ctx_switch, .-ur__ctx_switch

/*
 * ur__ctx_make(ctx: rdi, base: rsi, size: rdx, fn: rcx, arg: r8)
 *
 * Writes a switched-out frame 80 bytes below the 16-aligned top: the trampoline as return
 * address, fn in r12, arg in r13, rbp 0 (the end of the frame-pointer chain) and the caller's
 * current control words, so a context starts with the FP modes of the thread that made it. Two
 * zero words above the return slot leave the trampoline with rsp 16-aligned, as `call` needs.
 * It writes 80 bytes at the top of the stack and nothing else: one page is committed.
 */
	.globl	ur__ctx_make
	.hidden	ur__ctx_make
	.type	ur__ctx_make, @function
	.p2align 4
ur__ctx_make:
	.cfi_startproc
	leaq	(%rsi,%rdx), %rax
	andq	$-16, %rax
	subq	$80, %rax
	movq	$0, (%rax)
	stmxcsr	(%rax)
	fnstcw	4(%rax)
	movq	$0, 8(%rax)
	movq	$0, 16(%rax)
	movq	%r8, 24(%rax)
	movq	%rcx, 32(%rax)
	movq	$0, 40(%rax)
	movq	$0, 48(%rax)
	leaq	trampoline(%rip), %rdx
	movq	%rdx, 56(%rax)
	movq	$0, 64(%rax)
	movq	$0, 72(%rax)
	movq	%rax, (%rdi)
	ret
	.cfi_endproc
	.size	ur__ctx_make, .-ur__ctx_make

/*
 * First code of every made context, reached by ur__ctx_switch's `ret`. The undefined return
 * address tells DWARF unwinders (gdb, libgcc, libunwind, perf) that the chain ends here. fn must
 * not return; if it does, ud2 kills the process rather than running off into the stack.
 */
	.type	trampoline, @function
	.p2align 4
trampoline:
	.cfi_startproc
	.cfi_undefined %rip
	movq	%r13, %rdi
	call	*%r12
	ud2
	.cfi_endproc
	.size	trampoline, .-trampoline

	.section .note.GNU-stack, "", @progbits
