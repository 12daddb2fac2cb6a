/* SPDX-License-Identifier: MIT */
/*
 * core/ops.h - every operation urio starts, described once.
 *
 * A future's op_ is one of these kinds, not an io_uring opcode: one opcode may be several
 * operations (IORING_OP_RECV is a recv, a multishot recv; IORING_OP_SEND a send, a send of a ring
 * buffer), and some futures have no SQE at all (tasks, groups, program-completed futures). The
 * row says what the rest of core needs to know about the operation; the start call (core/io.c and
 * friends) says how to prepare its SQE. The recipe for adding one: docs/design.md, "Adding an
 * operation".
 *
 * Traits:
 *   FD     creates a descriptor: one that arrives after cancellation was requested is closed and
 *          the future completes with -ECANCELED (multishot: each such descriptor is closed)
 *   NODL   takes no deadline (ur_future_set_deadline): its scratch uses the deadline's bytes,
 *          or a linked timeout has no clear meaning for it; the start returns -EINVAL
 *   AUX    one helper SQE is hard-linked before it (close's cancel-by-fd)
 *   MULTI  multishot: CQEs flagged MORE are results delivered to the callback (ur__op_cqe)
 *   NOTIF  a result CQE flagged MORE, then a notification CQE (F_NOTIF); the future completes
 *          once, after both, with the result (ur__op_cqe)
 *   FIX    its final result is translated, or its completion releases something (ur__op_fix)
 *   LOCAL  no SQE: completed by urio or by the program (ur__future_begin_local)
 *
 * MULTI, NOTIF and FIX have a case in the switch named beside them, in core/future.c; the other
 * traits are handled generically.
 */
#ifndef UR_CORE_OPS_H
#define UR_CORE_OPS_H

#include <liburing.h>

#define UR__OP_NONE 0xffu /* opcode of the LOCAL kinds: never probed, never prepped */

/* X(kind, io_uring opcode, traits) */
#define UR__OPS(X)                                                                                 \
	X(NOP, IORING_OP_NOP, 0)                                                                   \
	X(READ, IORING_OP_READ, 0)                                                                 \
	X(WRITE, IORING_OP_WRITE, 0)                                                               \
	X(READV, IORING_OP_READV, 0)                                                               \
	X(WRITEV, IORING_OP_WRITEV, 0)                                                             \
	X(OPENAT, IORING_OP_OPENAT, UR__OPF_FD)                                                    \
	X(CLOSE, IORING_OP_CLOSE, UR__OPF_AUX)                                                     \
	X(FSYNC, IORING_OP_FSYNC, 0)                                                               \
	X(STATX, IORING_OP_STATX, 0)                                                               \
	X(FALLOCATE, IORING_OP_FALLOCATE, 0)                                                       \
	X(UNLINKAT, IORING_OP_UNLINKAT, 0)                                                         \
	X(RENAMEAT, IORING_OP_RENAMEAT, 0)                                                         \
	X(MKDIRAT, IORING_OP_MKDIRAT, 0)                                                           \
	X(SOCKET, IORING_OP_SOCKET, UR__OPF_FD)                                                    \
	X(CONNECT, IORING_OP_CONNECT, 0)                                                           \
	X(ACCEPT, IORING_OP_ACCEPT, UR__OPF_FD)                                                    \
	X(ACCEPT_MULTI, IORING_OP_ACCEPT, UR__OPF_FD | UR__OPF_MULTI | UR__OPF_NODL)               \
	X(SEND, IORING_OP_SEND, 0)                                                                 \
	X(RECV, IORING_OP_RECV, 0)                                                                 \
	X(RECV_MULTI, IORING_OP_RECV, UR__OPF_MULTI | UR__OPF_NODL | UR__OPF_FIX)                  \
	X(SEND_BUFFER, IORING_OP_SEND, UR__OPF_NODL | UR__OPF_FIX)                                 \
	X(SEND_ZC, IORING_OP_SEND_ZC, UR__OPF_NOTIF | UR__OPF_NODL)                                \
	X(SENDMSG, IORING_OP_SENDMSG, 0)                                                           \
	X(RECVMSG, IORING_OP_RECVMSG, 0)                                                           \
	X(SHUTDOWN, IORING_OP_SHUTDOWN, 0)                                                         \
	X(POLL, IORING_OP_POLL_ADD, 0)                                                             \
	X(SPLICE, IORING_OP_SPLICE, 0)                                                             \
	X(TEE, IORING_OP_TEE, 0)                                                                   \
	X(CANCEL_FD, IORING_OP_ASYNC_CANCEL, UR__OPF_FIX)                                          \
	X(TIMEOUT, IORING_OP_TIMEOUT, UR__OPF_NODL | UR__OPF_FIX)                                  \
	X(LOCAL, UR__OP_NONE, UR__OPF_LOCAL) /* ur_future_begin: the program completes it */       \
	X(TASK, UR__OP_NONE, UR__OPF_LOCAL)  /* a task's own future (core/task.c) */               \
	X(GROUP, UR__OP_NONE, UR__OPF_LOCAL) /* a task group's future (core/group.c) */

enum {
	UR__OPF_FD = 1u << 0,
	UR__OPF_NODL = 1u << 1,
	UR__OPF_AUX = 1u << 2,
	UR__OPF_MULTI = 1u << 3,
	UR__OPF_NOTIF = 1u << 4,
	UR__OPF_FIX = 1u << 5,
	UR__OPF_LOCAL = 1u << 6,
};

enum ur__op_kind {
#define UR__OP_ENUM(kind, opcode, traits) UR__OP_##kind,
	UR__OPS(UR__OP_ENUM)
#undef UR__OP_ENUM
	UR__OP_COUNT
};
_Static_assert(UR__OP_COUNT <= 256, "a future's op_ is one byte");

struct ur__op_desc {
	uint8_t opcode; /* IORING_OP_*, or UR__OP_NONE */
	uint8_t traits; /* UR__OPF_* */
};

/*
 * The table. static const in a header so that a start call's lookups of its own constant kind
 * fold to immediates; the completion side indexes it with the future's op_.
 */
static const struct ur__op_desc ur__ops[UR__OP_COUNT] = {
#define UR__OP_ROW(kind, op, tr)                                                                   \
	[UR__OP_##kind] = {.opcode = (uint8_t)(op), .traits = (uint8_t)(tr)},
    UR__OPS(UR__OP_ROW)
#undef UR__OP_ROW
};

static inline unsigned ur__op_traits(unsigned kind)
{
	return ur__ops[kind].traits;
}

#endif
