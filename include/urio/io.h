/* SPDX-License-Identifier: MIT */
/*
 * urio/io.h - file and socket operations, one start call each.
 *
 * Every *_start call describes one operation to the kernel and returns at once:
 *   0            the operation is queued; @f is pending and will complete from ur_loop_run()
 *                with f->res = what the matching system call would return (-errno on failure);
 *   -EBUSY       @f is still pending from an earlier start;
 *   -EOPNOTSUPP  the running kernel lacks the opcode (probed once at loop setup);
 *   -EINVAL      a deadline was set on an operation that takes none;
 *   UR_ELOOPCLOSED the loop is being torn down.
 * After a failed start the future never completes. A full submission queue is never an error: the
 * operation waits in urio's local queue.
 *
 * Every pointer argument (buffers, iovec arrays, paths, sockaddrs, msghdrs, statx results) must
 * stay valid and untouched until @f's final completion, whatever happens in between, cancellation
 * included. Reads and writes may transfer fewer bytes than asked: the raw API reports what the
 * kernel did and does not loop.
 */
#ifndef URIO_IO_H
#define URIO_IO_H

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct statx;
struct ur_bufring;

/* Offset meaning "the file's current position" for read/write/readv/writev. */
#define UR_OFF_CURRENT ((uint64_t)-1)

/* Does nothing in the kernel; completes with 0. The cheapest way through the whole machine. */
UR_EXPORT int ur_nop_start(struct ur_loop *loop, struct ur_future *f);

/* read(2)/pread(2) of up to @len bytes at @off; res = bytes read, 0 at end of file. */
UR_EXPORT int ur_read_start(struct ur_loop *loop, struct ur_future *f, int fd, void *buf,
                            size_t len, uint64_t off);
/* write(2)/pwrite(2); res = bytes written, possibly fewer than @len. */
UR_EXPORT int ur_write_start(struct ur_loop *loop, struct ur_future *f, int fd, const void *buf,
                             size_t len, uint64_t off);
/* preadv(2) / pwritev(2) over @iovcnt buffers. */
UR_EXPORT int ur_readv_start(struct ur_loop *loop, struct ur_future *f, int fd,
                             const struct iovec *iov, unsigned iovcnt, uint64_t off);
UR_EXPORT int ur_writev_start(struct ur_loop *loop, struct ur_future *f, int fd,
                              const struct iovec *iov, unsigned iovcnt, uint64_t off);

/* openat(2); res = the new file descriptor (O_CLOEXEC is always added). */
UR_EXPORT int ur_openat_start(struct ur_loop *loop, struct ur_future *f, int dfd, const char *path,
                              int flags, mode_t mode);

/*
 * Closes @fd. Operations still pending on @fd are cancelled first (they complete with
 * -ECANCELED), so a recv blocked on a socket cannot keep it open; then the descriptor is closed.
 * res = 0 or -errno from close(2). The number @fd may be reused as soon as @f completes.
 */
UR_EXPORT int ur_close_start(struct ur_loop *loop, struct ur_future *f, int fd);

/* fsync(2), or fdatasync(2) when @datasync is non-zero. */
UR_EXPORT int ur_fsync_start(struct ur_loop *loop, struct ur_future *f, int fd, int datasync);

/* statx(2) into *@out. */
UR_EXPORT int ur_statx_start(struct ur_loop *loop, struct ur_future *f, int dfd, const char *path,
                             int flags, unsigned mask, struct statx *out);

/* fallocate(2), unlinkat(2), renameat2(2), mkdirat(2). */
UR_EXPORT int ur_fallocate_start(struct ur_loop *loop, struct ur_future *f, int fd, int mode,
                                 uint64_t off, uint64_t len);
UR_EXPORT int ur_unlinkat_start(struct ur_loop *loop, struct ur_future *f, int dfd,
                                const char *path, int flags);
UR_EXPORT int ur_renameat_start(struct ur_loop *loop, struct ur_future *f, int olddfd,
                                const char *oldpath, int newdfd, const char *newpath,
                                unsigned flags);
UR_EXPORT int ur_mkdirat_start(struct ur_loop *loop, struct ur_future *f, int dfd, const char *path,
                               mode_t mode);

/* socket(2); res = the new descriptor (SOCK_CLOEXEC is always added). */
UR_EXPORT int ur_socket_start(struct ur_loop *loop, struct ur_future *f, int domain, int type,
                              int protocol);
/* connect(2) of a socket; *@addr must stay valid until completion. */
UR_EXPORT int ur_connect_start(struct ur_loop *loop, struct ur_future *f, int fd,
                               const struct sockaddr *addr, socklen_t addrlen);
/*
 * accept4(2) of one connection; @addr/@addrlen may be NULL. res = the new descriptor (SOCK_CLOEXEC
 * is always added to @flags).
 */
UR_EXPORT int ur_accept_start(struct ur_loop *loop, struct ur_future *f, int fd,
                              struct sockaddr *addr, socklen_t *addrlen, int flags);
/*
 * Multishot accept: @f completes once per accepted connection (res = its descriptor, with
 * ur_future_more() true) until an error or ur_cancel() ends it with a final completion. Every
 * descriptor delivered belongs to the callback; after cancellation, connections the kernel still
 * hands over are closed by urio.
 */
UR_EXPORT int ur_accept_multishot_start(struct ur_loop *loop, struct ur_future *f, int fd,
                                        int flags);

/* send(2) / recv(2). */
UR_EXPORT int ur_send_start(struct ur_loop *loop, struct ur_future *f, int fd, const void *buf,
                            size_t len, int flags);
UR_EXPORT int ur_recv_start(struct ur_loop *loop, struct ur_future *f, int fd, void *buf,
                            size_t len, int flags);
/*
 * Multishot recv into the buffers of @br (urio/bufring.h). @f completes once per chunk received:
 * res = bytes, the data in ur_bufring_buf(br, ur_future_buffer(f)); hand each buffer back with
 * ur_bufring_recycle() when done with it. When the ring runs dry the kernel stops the multishot;
 * urio re-arms it as soon as a buffer is recycled, without a final completion and without losing a
 * byte. The final completion is res = 0 (peer closed), an error, or -ECANCELED.
 */
UR_EXPORT int ur_recv_multishot_start(struct ur_loop *loop, struct ur_future *f, int fd,
                                      struct ur_bufring *br, int flags);
/* sendmsg(2) / recvmsg(2); *@msg and everything it points to stay valid until completion. */
UR_EXPORT int ur_sendmsg_start(struct ur_loop *loop, struct ur_future *f, int fd,
                               const struct msghdr *msg, int flags);
UR_EXPORT int ur_recvmsg_start(struct ur_loop *loop, struct ur_future *f, int fd,
                               struct msghdr *msg, int flags);
/* shutdown(2). */
UR_EXPORT int ur_shutdown_start(struct ur_loop *loop, struct ur_future *f, int fd, int how);
/* Waits until @fd is ready for @events (POLLIN, POLLOUT...); res = the ready events. */
UR_EXPORT int ur_poll_start(struct ur_loop *loop, struct ur_future *f, int fd, unsigned events);

/*
 * Zero-copy send(2) (IORING_OP_SEND_ZC, 6.0): the kernel sends from @buf without copying it, and
 * @buf stays the kernel's until the kernel says it is done with it, which may be after the bytes
 * were sent. @f completes once, after that, with res = bytes sent (possibly fewer than @len) or
 * -errno; only then may @buf be reused or freed. Worth it for large buffers (tens of KiB and
 * more); small sends are cheaper copied.
 * Where zero copy is not to be had, the same send is made plainly, with the same result: a
 * kernel without the opcode; and a socket or kernel that refuses it when it runs (-EOPNOTSUPP:
 * a Unix socket, say; -EINVAL), after which this loop sends every later ur_send_zc_start
 * plainly too (remembered per loop: one refusal, not one per call). Takes no deadline
 * (ur_future_set_deadline: -EINVAL at start); bound it with ur_wait_for or a timeout scope.
 * Returns as the other start calls; cancellation completes @f with -ECANCELED, still only
 * after the kernel let go of @buf.
 */
UR_EXPORT int ur_send_zc_start(struct ur_loop *loop, struct ur_future *f, int fd, const void *buf,
                               size_t len, int flags);

/*
 * splice(2): moves up to @len bytes from @fd_in to @fd_out, one of which must be a pipe, without
 * copying through user space. @off_in / @off_out: the offset in a file, or UR_OFF_CURRENT (a
 * pipe, a socket, or the file's current position). @flags: SPLICE_F_MOVE, SPLICE_F_NONBLOCK,
 * SPLICE_F_MORE. res = bytes moved, 0 at end of input. -EINVAL at start for
 * SPLICE_F_FD_IN_FIXED (urio registers no files).
 */
UR_EXPORT int ur_splice_start(struct ur_loop *loop, struct ur_future *f, int fd_in, uint64_t off_in,
                              int fd_out, uint64_t off_out, size_t len, unsigned flags);

/*
 * tee(2): duplicates up to @len bytes from pipe @fd_in into pipe @fd_out without consuming them.
 * res = bytes duplicated, 0 when @fd_in is empty and has no writers. @flags as for splice.
 */
UR_EXPORT int ur_tee_start(struct ur_loop *loop, struct ur_future *f, int fd_in, int fd_out,
                           size_t len, unsigned flags);

/*
 * Cancels operations on @fd: the first one found, or every one if @all is non-zero. @f completes
 * with the number cancelled (1 without @all), -ENOENT if none matched, or -EALREADY (without
 * @all) if the one found was already running and could not be stopped. Each cancelled
 * operation's own future completes with -ECANCELED.
 */
UR_EXPORT int ur_cancel_fd_start(struct ur_loop *loop, struct ur_future *f, int fd, int all);

#ifdef __cplusplus
}
#endif

#endif
