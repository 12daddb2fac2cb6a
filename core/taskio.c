/* SPDX-License-Identifier: MIT */
/*
 * core/taskio.c - the task-style operations: start on the current task's loop, then await.
 *
 * The future lives on the task's stack; ur_await keeps the task suspended until its final
 * completion, so the kernel never writes to a stack that has moved on.
 */
#include <errno.h>
#include <unistd.h>

#include "internal.h"

/*
 * Checks we are in a live task (not cancelled, no timeout scope expired) and prepares @f for a
 * start on its loop, with the task's wake-up as the continuation; *@tp is the task.
 */
static inline int prologue(struct ur_future *f, struct ur_task **tp)
{
	struct ur_task *t = ur__task_self();
	if (!t)
		return UR_ENOTASK;
	if (ur__task_interrupted(t))
		return ur__task_stop_code(t);
	/* What ur_future_init does, minus the memset: the start fills in the rest. */
	f->state_ = UR_FUTURE_IDLE;
	f->flags_ = 0;
	f->cb_ = ur__task_wake_cb;
	f->arg_ = t;
	*tp = t;
	return 0;
}

/*
 * Awaits @f, which task @t has just started on its own loop (prologue, then a start that
 * succeeded). None of ur_await's checks can fail here: the future is the task's own, pending, on
 * the task's loop, its continuation is the task's wake-up, and nothing could interrupt the task
 * between the prologue's check and now. So they are skipped; a cancellation or an expired scope
 * from here on cancels @f through t->awaiting, as in ur_await.
 */
static inline int await_own(struct ur_task *t, struct ur_future *f)
{
	ur__task_set_awaiting(t, f);
	/* in a task, without @stop, the wait only ends with @f settled: it returns 0 */
	(void)ur__wait_until(t, ur__task_loop(t), ur__future_settled, f, false);
	ur__task_set_awaiting(t, NULL);
	return ur__task_result(t, f->res);
}

/* Body of every task-style call: start with the given arguments, then await the result. */
#define AWAIT_OP(start, ...)                                                                       \
	do {                                                                                       \
		struct ur_future f_;                                                               \
		struct ur_task *t_;                                                                \
		struct ur__call c_;                                                                \
		ur__call_begin(&c_);                                                               \
		int r_ = prologue(&f_, &t_);                                                       \
		if (r_ == 0)                                                                       \
			r_ = start(ur__task_loop(t_), &f_, __VA_ARGS__);                           \
		return ur__call_end(&c_, r_ < 0 ? r_ : await_own(t_, &f_));                        \
	} while (0)

static int nop_call(void)
{
	struct ur_future f;
	struct ur_task *t;
	int r = prologue(&f, &t);
	if (r == 0)
		r = ur_nop_start(ur__task_loop(t), &f);
	return r < 0 ? r : await_own(t, &f);
}

int ur_nop(void)
{
	UR__DEADLINE_CALL(int, nop_call());
}

ssize_t ur_read(int fd, void *buf, size_t len, uint64_t off)
{
	AWAIT_OP(ur_read_start, fd, buf, len, off);
}

ssize_t ur_write(int fd, const void *buf, size_t len, uint64_t off)
{
	AWAIT_OP(ur_write_start, fd, buf, len, off);
}

ssize_t ur_readv(int fd, const struct iovec *iov, unsigned iovcnt, uint64_t off)
{
	AWAIT_OP(ur_readv_start, fd, iov, iovcnt, off);
}

ssize_t ur_writev(int fd, const struct iovec *iov, unsigned iovcnt, uint64_t off)
{
	AWAIT_OP(ur_writev_start, fd, iov, iovcnt, off);
}

int ur_openat(int dfd, const char *path, int flags, mode_t mode)
{
	AWAIT_OP(ur_openat_start, dfd, path, flags, mode);
}

/*
 * Closing is how a cancelled task cleans up, so cancellation does not stop it: the close is
 * started and awaited to its end even in a cancelled task, and a cancellation that arrives
 * while it waits (in urio's local queue, say) cannot take it back (UR__F_NOCANCEL). If it
 * cannot be started at all (no memory for the local queue), close(2) does it here.
 */
static int close_call(int fd)
{
	struct ur_task *t = ur__task_self();
	struct ur_future f;
	if (!t)
		return UR_ENOTASK;
	ur_future_init(&f, NULL, NULL);
	int r = ur_close_start(ur__task_loop(t), &f, fd);
	if (r < 0) {
		int saved = errno;
		r = close(fd) == 0 ? 0 : -errno;
		errno = saved;
		return r;
	}
	f.flags_ |= UR__F_NOCANCEL;
	return ur__await_uninterrupted(&f);
}

int ur_close(int fd)
{
	UR__DEADLINE_CALL(int, close_call(fd));
}

int ur_fsync(int fd, int datasync)
{
	AWAIT_OP(ur_fsync_start, fd, datasync);
}

int ur_statx(int dfd, const char *path, int flags, unsigned mask, struct statx *out)
{
	AWAIT_OP(ur_statx_start, dfd, path, flags, mask, out);
}

int ur_socket(int domain, int type, int protocol)
{
	AWAIT_OP(ur_socket_start, domain, type, protocol);
}

int ur_connect(int fd, const struct sockaddr *addr, socklen_t addrlen)
{
	AWAIT_OP(ur_connect_start, fd, addr, addrlen);
}

int ur_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags)
{
	AWAIT_OP(ur_accept_start, fd, addr, addrlen, flags);
}

ssize_t ur_send(int fd, const void *buf, size_t len, int flags)
{
	AWAIT_OP(ur_send_start, fd, buf, len, flags);
}

ssize_t ur_send_zc(int fd, const void *buf, size_t len, int flags)
{
	AWAIT_OP(ur_send_zc_start, fd, buf, len, flags);
}

ssize_t ur_splice(int fd_in, uint64_t off_in, int fd_out, uint64_t off_out, size_t len,
                  unsigned flags)
{
	AWAIT_OP(ur_splice_start, fd_in, off_in, fd_out, off_out, len, flags);
}

ssize_t ur_tee(int fd_in, int fd_out, size_t len, unsigned flags)
{
	AWAIT_OP(ur_tee_start, fd_in, fd_out, len, flags);
}

ssize_t ur_recv(int fd, void *buf, size_t len, int flags)
{
	AWAIT_OP(ur_recv_start, fd, buf, len, flags);
}

ssize_t ur_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	AWAIT_OP(ur_sendmsg_start, fd, msg, flags);
}

ssize_t ur_recvmsg(int fd, struct msghdr *msg, int flags)
{
	AWAIT_OP(ur_recvmsg_start, fd, msg, flags);
}

int ur_shutdown(int fd, int how)
{
	AWAIT_OP(ur_shutdown_start, fd, how);
}

int ur_poll(int fd, unsigned events)
{
	AWAIT_OP(ur_poll_start, fd, events);
}

/*
 * One loop for both directions: @op moves at most @len - done bytes. A timeout scope around the
 * call bounds every transfer.
 */
static ssize_t transfer_all(ssize_t (*op)(int, void *, size_t, uint64_t), int fd, char *buf,
                            size_t len, uint64_t off, bool is_read)
{
	size_t done = 0;
	while (done < len) {
		uint64_t at = off == UR_OFF_CURRENT ? off : off + done;
		ssize_t n = op(fd, buf + done, len - done, at);
		if (n == -EINTR)
			continue; /* interrupted before moving anything: returning would lose `done`
			           */
		if (n < 0)
			return n;
		if (n == 0) {
			if (is_read)
				break; /* end of file */
			return -EIO;   /* a write that moves nothing would loop forever */
		}
		done += (size_t)n;
	}
	return (ssize_t)done;
}

static ssize_t write_op(int fd, void *buf, size_t len, uint64_t off)
{
	return ur_write(fd, buf, len, off);
}

static ssize_t read_all_call(int fd, void *buf, size_t len, uint64_t off)
{
	return transfer_all(ur_read, fd, buf, len, off, true);
}

ssize_t ur_read_all(int fd, void *buf, size_t len, uint64_t off)
{
	UR__DEADLINE_CALL(ssize_t, read_all_call(fd, buf, len, off));
}

static ssize_t write_all_call(int fd, const void *buf, size_t len, uint64_t off)
{
	return transfer_all(write_op, fd, (char *)buf, len, off, false);
}

ssize_t ur_write_all(int fd, const void *buf, size_t len, uint64_t off)
{
	UR__DEADLINE_CALL(ssize_t, write_all_call(fd, buf, len, off));
}

static ssize_t send_all_call(int fd, const void *buf, size_t len, int flags)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = ur_send(fd, (const char *)buf + done, len - done, flags);
		if (n < 0)
			return n;
		if (n == 0)
			return -EIO; /* a send that moves nothing would loop forever */
		done += (size_t)n;
	}
	return (ssize_t)done;
}

ssize_t ur_send_all(int fd, const void *buf, size_t len, int flags)
{
	UR__DEADLINE_CALL(ssize_t, send_all_call(fd, buf, len, flags));
}

static ssize_t send_buffer_call(int fd, struct ur_bufring *br, int bid, size_t len, int flags)
{
	struct ur_future f;
	struct ur_task *t;
	int r = prologue(&f, &t);
	if (r == 0)
		r = ur_send_buffer_start(ur__task_loop(t), &f, fd, br, bid, len, flags);
	if (r < 0) {
		if (r != -EINVAL && br)
			ur_bufring_recycle(br, bid); /* the promise holds on every path */
		return r;
	}
	return await_own(t, &f);
}

ssize_t ur_send_buffer(int fd, struct ur_bufring *br, int bid, size_t len, int flags)
{
	UR__DEADLINE_CALL(ssize_t, send_buffer_call(fd, br, bid, len, flags));
}
