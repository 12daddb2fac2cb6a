/* SPDX-License-Identifier: MIT */
/*
 * core/io.c - file and socket operations: one start call per io_uring opcode.
 *
 * Each call reserves its SQEs (ur__op_begin), lets liburing's prep helper describe the operation,
 * and commits (ur__op_end). None of them allocates or enters the kernel, except to make room in a
 * full SQ.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "internal.h"
#include "valgrind.h"

/* The kernel caps one transfer at MAX_RW_COUNT; asking for more would only wrap the 32-bit len. */
#define MAX_RW 0x7ffff000u

static unsigned rw_len(size_t len)
{
	return len > MAX_RW ? MAX_RW : (unsigned)len;
}

int ur_nop_start(struct ur_loop *l, struct ur_future *f)
{
	struct ur__op op;
	int ret = ur__op_begin(l, f, UR__OP_NOP, &op);
	if (ret)
		return ret;
	io_uring_prep_nop(op.sqe);
	return ur__op_end(l, f, &op);
}

int ur_read_start(struct ur_loop *l, struct ur_future *f, int fd, void *buf, size_t len,
                  uint64_t off)
{
	struct ur__op op;
	int ret = ur__op_begin(l, f, UR__OP_READ, &op);
	if (ret)
		return ret;
	io_uring_prep_read(op.sqe, fd, buf, rw_len(len), off);
	UR__VG_DEFINED(buf, rw_len(len));
	return ur__op_end(l, f, &op);
}

int ur_write_start(struct ur_loop *l, struct ur_future *f, int fd, const void *buf, size_t len,
                   uint64_t off)
{
	struct ur__op op;
	int ret = ur__op_begin(l, f, UR__OP_WRITE, &op);
	if (ret)
		return ret;
	io_uring_prep_write(op.sqe, fd, buf, rw_len(len), off);
	return ur__op_end(l, f, &op);
}

int ur_readv_start(struct ur_loop *l, struct ur_future *f, int fd, const struct iovec *iov,
                   unsigned iovcnt, uint64_t off)
{
	struct ur__op op;
	int ret = ur__op_begin(l, f, UR__OP_READV, &op);
	if (ret)
		return ret;
	io_uring_prep_readv(op.sqe, fd, iov, iovcnt, off);
	for (unsigned i = 0; i < iovcnt; i++)
		UR__VG_DEFINED(iov[i].iov_base, iov[i].iov_len);
	return ur__op_end(l, f, &op);
}

int ur_writev_start(struct ur_loop *l, struct ur_future *f, int fd, const struct iovec *iov,
                    unsigned iovcnt, uint64_t off)
{
	struct ur__op op;
	int ret = ur__op_begin(l, f, UR__OP_WRITEV, &op);
	if (ret)
		return ret;
	io_uring_prep_writev(op.sqe, fd, iov, iovcnt, off);
	return ur__op_end(l, f, &op);
}

int ur_openat_start(struct ur_loop *l, struct ur_future *f, int dfd, const char *path, int flags,
                    mode_t mode)
{
	struct ur__op op;
	int ret = ur__op_begin(l, f, UR__OP_OPENAT, &op);
	if (ret)
		return ret;
	io_uring_prep_openat(op.sqe, dfd, path, flags | O_CLOEXEC, mode);
	return ur__op_end(l, f, &op);
}

int ur_close_start(struct ur_loop *l, struct ur_future *f, int fd)
{
	struct ur__op op;
	int ret = ur__op_begin(l, f, UR__OP_CLOSE, &op);
	if (ret)
		return ret;
	/* Hard-linked before the close, so pending operations cannot pin the file open. */
	io_uring_prep_cancel_fd(op.aux, fd, IORING_ASYNC_CANCEL_ALL);
	io_uring_prep_close(op.sqe, fd);
	ur__bufring_cancel_fd(l, fd, false);
	return ur__op_end(l, f, &op);
}

int ur_fsync_start(struct ur_loop *l, struct ur_future *f, int fd, int datasync)
{
	struct ur__op op;
	int ret = ur__op_begin(l, f, UR__OP_FSYNC, &op);
	if (ret)
		return ret;
	io_uring_prep_fsync(op.sqe, fd, datasync ? IORING_FSYNC_DATASYNC : 0);
	return ur__op_end(l, f, &op);
}

int ur_statx_start(struct ur_loop *l, struct ur_future *f, int dfd, const char *path, int flags,
                   unsigned mask, struct statx *out)
{
	struct ur__op op;
	int ret = ur__op_begin(l, f, UR__OP_STATX, &op);
	if (ret)
		return ret;
	io_uring_prep_statx(op.sqe, dfd, path, flags, mask, out);
	UR__VG_DEFINED(out, sizeof(*out));
	return ur__op_end(l, f, &op);
}

int ur_fallocate_start(struct ur_loop *l, struct ur_future *f, int fd, int mode, uint64_t off,
                       uint64_t len)
{
	struct ur__op op;
	int ret = ur__op_begin(l, f, UR__OP_FALLOCATE, &op);
	if (ret)
		return ret;
	/* liburing 2.3 squeezes the length through an int; describe the SQE directly instead. */
	io_uring_prep_rw(IORING_OP_FALLOCATE, op.sqe, fd, NULL, (unsigned)mode, off);
	op.sqe->addr = len;
	return ur__op_end(l, f, &op);
}

int ur_unlinkat_start(struct ur_loop *l, struct ur_future *f, int dfd, const char *path, int flags)
{
	struct ur__op op;
	int ret = ur__op_begin(l, f, UR__OP_UNLINKAT, &op);
	if (ret)
		return ret;
	io_uring_prep_unlinkat(op.sqe, dfd, path, flags);
	return ur__op_end(l, f, &op);
}

int ur_renameat_start(struct ur_loop *l, struct ur_future *f, int olddfd, const char *oldpath,
                      int newdfd, const char *newpath, unsigned flags)
{
	struct ur__op op;
	int ret = ur__op_begin(l, f, UR__OP_RENAMEAT, &op);
	if (ret)
		return ret;
	io_uring_prep_renameat(op.sqe, olddfd, oldpath, newdfd, newpath, flags);
	return ur__op_end(l, f, &op);
}

int ur_mkdirat_start(struct ur_loop *l, struct ur_future *f, int dfd, const char *path, mode_t mode)
{
	struct ur__op op;
	int ret = ur__op_begin(l, f, UR__OP_MKDIRAT, &op);
	if (ret)
		return ret;
	io_uring_prep_mkdirat(op.sqe, dfd, path, mode);
	return ur__op_end(l, f, &op);
}

int ur_socket_start(struct ur_loop *l, struct ur_future *f, int domain, int type, int protocol)
{
	struct ur__op op;
	int ret = ur__op_begin(l, f, UR__OP_SOCKET, &op);
	if (ret)
		return ret;
	io_uring_prep_socket(op.sqe, domain, type | SOCK_CLOEXEC, protocol, 0);
	return ur__op_end(l, f, &op);
}

int ur_connect_start(struct ur_loop *l, struct ur_future *f, int fd, const struct sockaddr *addr,
                     socklen_t addrlen)
{
	struct ur__op op;
	int ret = ur__op_begin(l, f, UR__OP_CONNECT, &op);
	if (ret)
		return ret;
	io_uring_prep_connect(op.sqe, fd, addr, addrlen);
	return ur__op_end(l, f, &op);
}

int ur_accept_start(struct ur_loop *l, struct ur_future *f, int fd, struct sockaddr *addr,
                    socklen_t *addrlen, int flags)
{
	struct ur__op op;
	int ret = ur__op_begin(l, f, UR__OP_ACCEPT, &op);
	if (ret)
		return ret;
	io_uring_prep_accept(op.sqe, fd, addr, addrlen, flags | SOCK_CLOEXEC);
	if (addr && addrlen)
		UR__VG_DEFINED(addr, *addrlen);
	return ur__op_end(l, f, &op);
}

int ur_accept_multishot_start(struct ur_loop *l, struct ur_future *f, int fd, int flags)
{
	struct ur__op op;
	int ret = ur__op_begin(l, f, UR__OP_ACCEPT_MULTI, &op);
	if (ret)
		return ret;
	io_uring_prep_multishot_accept(op.sqe, fd, NULL, NULL, flags | SOCK_CLOEXEC);
	return ur__op_end(l, f, &op);
}

int ur_send_start(struct ur_loop *l, struct ur_future *f, int fd, const void *buf, size_t len,
                  int flags)
{
	struct ur__op op;
	int ret = ur__op_begin(l, f, UR__OP_SEND, &op);
	if (ret)
		return ret;
	io_uring_prep_send(op.sqe, fd, buf, rw_len(len), flags);
	return ur__op_end(l, f, &op);
}

int ur_recv_start(struct ur_loop *l, struct ur_future *f, int fd, void *buf, size_t len, int flags)
{
	struct ur__op op;
	int ret = ur__op_begin(l, f, UR__OP_RECV, &op);
	if (ret)
		return ret;
	io_uring_prep_recv(op.sqe, fd, buf, rw_len(len), flags);
	UR__VG_DEFINED(buf, rw_len(len));
	return ur__op_end(l, f, &op);
}

int ur_sendmsg_start(struct ur_loop *l, struct ur_future *f, int fd, const struct msghdr *msg,
                     int flags)
{
	struct ur__op op;
	int ret = ur__op_begin(l, f, UR__OP_SENDMSG, &op);
	if (ret)
		return ret;
	io_uring_prep_sendmsg(op.sqe, fd, msg, (unsigned)flags);
	return ur__op_end(l, f, &op);
}

int ur_recvmsg_start(struct ur_loop *l, struct ur_future *f, int fd, struct msghdr *msg, int flags)
{
	struct ur__op op;
	int ret = ur__op_begin(l, f, UR__OP_RECVMSG, &op);
	if (ret)
		return ret;
	io_uring_prep_recvmsg(op.sqe, fd, msg, (unsigned)flags);
	for (size_t i = 0; i < msg->msg_iovlen; i++)
		UR__VG_DEFINED(msg->msg_iov[i].iov_base, msg->msg_iov[i].iov_len);
	if (msg->msg_name)
		UR__VG_DEFINED(msg->msg_name, msg->msg_namelen);
	if (msg->msg_control)
		UR__VG_DEFINED(msg->msg_control, msg->msg_controllen);
	return ur__op_end(l, f, &op);
}

int ur_shutdown_start(struct ur_loop *l, struct ur_future *f, int fd, int how)
{
	struct ur__op op;
	int ret = ur__op_begin(l, f, UR__OP_SHUTDOWN, &op);
	if (ret)
		return ret;
	io_uring_prep_shutdown(op.sqe, fd, how);
	return ur__op_end(l, f, &op);
}

int ur_poll_start(struct ur_loop *l, struct ur_future *f, int fd, unsigned events)
{
	struct ur__op op;
	int ret = ur__op_begin(l, f, UR__OP_POLL, &op);
	if (ret)
		return ret;
	io_uring_prep_poll_add(op.sqe, fd, events);
	return ur__op_end(l, f, &op);
}

/*
 * The kernel counts what it cancels; multishot recvs waiting in urio for a buffer are cancelled
 * here and their number, kept in the future's scratch until completion, is added to the kernel's.
 */
int ur_cancel_fd_start(struct ur_loop *l, struct ur_future *f, int fd, int all)
{
	struct ur__op op;
	int ret = ur__op_begin(l, f, UR__OP_CANCEL_FD, &op);
	if (ret)
		return ret;
	unsigned local = ur__bufring_cancel_fd(l, fd, !all);
	/* Without @all, one found here is the one: the kernel is asked about an fd of -1. */
	io_uring_prep_cancel_fd(op.sqe, local && !all ? -1 : fd, all ? IORING_ASYNC_CANCEL_ALL : 0);
	ur__sc(f)->dl.cancel_fd.local = local;
	ur__sc(f)->dl.cancel_fd.all = all != 0;
	return ur__op_end(l, f, &op);
}

/*
 * Zero-copy send: a kernel without IORING_OP_SEND_ZC, or a loop that saw it refused, sends
 * plainly (the same result, one copy more). What a plain send would need if the kernel refuses
 * only at completion is kept in the scratch (ur__op_cqe's SEND_ZC case sends it again).
 */
int ur_send_zc_start(struct ur_loop *l, struct ur_future *f, int fd, const void *buf, size_t len,
                     int flags)
{
	struct ur__op op;
	if (l->send_zc_off || !ur__supports(l, IORING_OP_SEND_ZC)) {
		/* plainly, under SEND_ZC's contract all the same: no deadline */
		if (f->state_ != UR_FUTURE_PENDING && (f->flags_ & UR__F_DEADLINE))
			return -EINVAL;
		return ur_send_start(l, f, fd, buf, len, flags);
	}
	int ret = ur__op_begin(l, f, UR__OP_SEND_ZC, &op);
	if (ret)
		return ret;
	io_uring_prep_send_zc(op.sqe, fd, buf, rw_len(len), flags, 0);
	ur__sc(f)->send_zc.buf = buf;
	ur__sc(f)->send_zc.len = rw_len(len);
	ur__sc(f)->send_zc.fd = fd;
	ur__sc(f)->send_zc.flags = flags;
	return ur__op_end(l, f, &op);
}

/* urio registers no files: a "fixed" input descriptor would name nothing. */
int ur_splice_start(struct ur_loop *l, struct ur_future *f, int fd_in, uint64_t off_in, int fd_out,
                    uint64_t off_out, size_t len, unsigned flags)
{
	struct ur__op op;
	if (flags & SPLICE_F_FD_IN_FIXED)
		return -EINVAL;
	int ret = ur__op_begin(l, f, UR__OP_SPLICE, &op);
	if (ret)
		return ret;
	io_uring_prep_splice(op.sqe, fd_in, (int64_t)off_in, fd_out, (int64_t)off_out, rw_len(len),
	                     flags);
	return ur__op_end(l, f, &op);
}

int ur_tee_start(struct ur_loop *l, struct ur_future *f, int fd_in, int fd_out, size_t len,
                 unsigned flags)
{
	struct ur__op op;
	if (flags & SPLICE_F_FD_IN_FIXED)
		return -EINVAL;
	int ret = ur__op_begin(l, f, UR__OP_TEE, &op);
	if (ret)
		return ret;
	io_uring_prep_tee(op.sqe, fd_in, fd_out, rw_len(len), flags);
	return ur__op_end(l, f, &op);
}
