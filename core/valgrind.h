/* SPDX-License-Identifier: MIT */
/*
 * core/valgrind.h - telling memcheck what io_uring does behind its back.
 *
 * valgrind does not see the kernel write into buffers through io_uring, so bytes a read or recv
 * delivered look uninitialised and every program that looks at them gets false reports. urio
 * marks the memory an operation may fill as defined when the operation starts (the kernel is
 * about to own it; what it does not fill keeps whatever the program put there). And valgrind
 * runs one thread at a time, holding its lock while a thread sleeps in io_uring_enter(2): a
 * loop waiting for a ur_to_thread worker or a post would never let that thread run, so on
 * valgrind the loop's kernel waits are bounded (UR__VALGRIND_WAIT_NS) and simply repeated.
 *
 * Header-only: valgrind/memcheck.h (the valgrind package) where it exists, nothing otherwise.
 * Outside valgrind a client request is a few no-op instructions.
 */
#ifndef UR_CORE_VALGRIND_H
#define UR_CORE_VALGRIND_H

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define UR__HAVE_VALGRIND 1
#endif
#endif

#ifdef UR__HAVE_VALGRIND
#define UR__VG_DEFINED(p, n) ((void)VALGRIND_MAKE_MEM_DEFINED((p), (n)))
#define UR__ON_VALGRIND()    (RUNNING_ON_VALGRIND != 0)
#else
#define UR__VG_DEFINED(p, n) ((void)(p), (void)(n))
#define UR__ON_VALGRIND()    0
#endif

/* The longest a kernel wait lasts under valgrind before other threads get a turn. */
#define UR__VALGRIND_WAIT_NS (10 * 1000 * 1000)

#endif
