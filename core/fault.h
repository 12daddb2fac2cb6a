/* SPDX-License-Identifier: MIT */
/*
 * core/fault.h - deterministic fault injection, compiled in only with meson -Dfault_injection=true
 * (which defines UR_FAULT_INJECTION=1 for the library and the tests). Without it nothing here
 * exists and the hooks in core/internal.h and core/loop.c compile to nothing.
 *
 * Configured per loop at ur_loop_new() from the environment:
 *   UR_FAULT_SEED  any 64-bit number; unset or empty = no faults (the build behaves as a normal
 * one) UR_FAULT_RATE  the fraction of eligible starts (and of reaps, for delay) that get a fault;
 *                  default 0.1
 *   UR_FAULT_SPEC  comma-separated classes below, or "all" (the default)
 *   UR_FAULT_LOG   a file to which each loop appends one line of counts when it is freed
 * Every decision is a pure function of the seed, the loop's creation ordinal in the process and
 * the ordinal of the start (or reap) in that loop, so a single-threaded run replays exactly.
 * What each class does and why it is one the kernel could really produce: docs/reliability.md.
 */
#ifndef UR_CORE_FAULT_H
#define UR_CORE_FAULT_H

/* The classes, as UR_FAULT_SPEC names them (tests/helpers.h parses the same list). */
#define UR__FAULT_NAMES "short", "eintr", "eagain", "reset", "enobufs", "enomem", "delay"
#define UR__FAULT_ALL   "short,eintr,eagain,reset,enobufs,enomem,delay"

enum ur__fault_class {
	UR__FAULT_SHORT = 1u << 0,   /* the transfer's length is shrunk before submission */
	UR__FAULT_EINTR = 1u << 1,   /* a slow-device operation is interrupted before it ran */
	UR__FAULT_EAGAIN = 1u << 2,  /* a non-blocking operation finds nothing ready */
	UR__FAULT_RESET = 1u << 3,   /* the TCP connection is really shut down: -ECONNRESET */
	UR__FAULT_ENOBUFS = 1u << 4, /* a multishot recv stops at once, as on an empty ring */
	UR__FAULT_ENOMEM = 1u << 5,  /* the start call fails; the future never completes */
	UR__FAULT_DELAY = 1u << 6,   /* the tail of a reap is left in the CQ for the next turn */
	UR__FAULT_NCLASSES = 7,
};

/*
 * Where the core allocates or submits on its own, outside a start call: the enomem class also
 * fails these (ur__fault_enomem). Each site draws from a sequence of its own, so adding one
 * leaves the faults of the others, and of the starts, as they were for a given seed.
 */
enum ur__fault_site {
	UR__FAULT_AT_TASK,   /* ur_spawn's task: ur_spawn returns -ENOMEM */
	UR__FAULT_AT_STACK,  /* a task's stack mapped or its guard installed, when the task first
	                      * runs: the task ends with -ENOMEM, its function never called */
	UR__FAULT_AT_REARM,  /* a stopped multishot recv armed again: it completes with -ENOMEM */
	UR__FAULT_AT_SENDZC, /* a refused zero-copy send made again plainly: it completes -ENOMEM */
	UR__FAULT_AT_WAKE,   /* the loop's wake-up read armed again: retried each turn, unseen */
	UR__FAULT_AT_CANCEL, /* the SQE of a cancellation (ur_cancel, a deadline, teardown): asked
	                      * through io_uring_register_sync_cancel instead */
	UR__FAULT_NSITES = 6,
};
#define UR__FAULT_SITE_NAMES "task", "stack", "rearm", "sendzc", "wake", "cancel"

#endif
