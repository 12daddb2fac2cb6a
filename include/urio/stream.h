/* SPDX-License-Identifier: MIT */
/*
 * urio/stream.h - a byte stream over a connected socket, plain or TLS (asyncio's StreamReader and
 * StreamWriter in one caller-owned struct).
 *
 * A stream owns a read buffer that grows up to a limit, so parsers can look at what has arrived
 * without copying (ur_stream_buffered, ur_stream_fill, ur_stream_consume) and line-oriented code
 * can read up to a delimiter (ur_stream_read_until). What moves the bytes is a transport: the plain
 * socket transport of ur_stream_init(), or TLS (urio/tls.h) installed over it. HTTP and services
 * are written once against this interface.
 *
 * Every call that waits is a task-style call: it suspends the calling task (UR_ENOTASK outside
 * one) and honours the stream's deadline (ur_stream_set_deadline): past it, the operation in
 * flight is cancelled and the call returns -ETIMEDOUT. A stream is used by one task at a time for
 * reading and one for writing.
 */
#ifndef URIO_STREAM_H
#define URIO_STREAM_H

#include <stdbool.h>
#include <sys/types.h>
#include <sys/uio.h>
#include "common.h"
#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ur_stream;

/*
 * A transport: how a stream's bytes reach the peer. Every function runs in a task. read returns
 * the bytes read (> 0), 0 at a clean end of stream, or an error; writev writes everything or
 * fails; shutdown ends the write side (TLS: close_notify first); release frees the transport's
 * state and must not fail (the stream closes the descriptor itself afterwards). Each honours the
 * stream's deadline (ur_stream_timeout_ns()).
 */
struct ur_stream_ops {
	ssize_t (*read)(struct ur_stream *s, void *buf, size_t len);
	ssize_t (*writev)(struct ur_stream *s, const struct iovec *iov, unsigned iovcnt);
	int (*shutdown)(struct ur_stream *s);
	void (*release)(struct ur_stream *s);
};

/* Default and hard maximum of a stream's read buffer limit. */
#define UR_STREAM_LIMIT_DEFAULT ((size_t)64 * 1024)
#define UR_STREAM_LIMIT_MAX     ((size_t)1 << 30)

/* "No deadline", for ur_stream_set_deadline(), is UR_NO_DEADLINE (urio/common.h). */

struct ur_stream {
	/* public, read-only */
	int fd; /* the socket; -1 once closed */

	/* private: urio's bookkeeping, do not touch */
	const struct ur_stream_ops *ops_;
	void *transport_; /* the transport's state (a TLS session), or NULL */
	char *buf_;       /* read buffer, buf_[head_..tail_) unread */
	size_t cap_, head_, tail_, limit_;
	uint64_t deadline_; /* absolute CLOCK_MONOTONIC ns, UR_NO_DEADLINE for none */
	uint32_t flags_;
	int err_;        /* sticky error of the read side, 0 if none */
	int closing_fd_; /* closed under a call in flight: the descriptor that call closes */
};

/*
 * Makes @s a plain stream over the connected socket @fd, which it then owns (ur_stream_close
 * closes it). @limit is the read buffer's maximum (0 for UR_STREAM_LIMIT_DEFAULT, at most
 * UR_STREAM_LIMIT_MAX); no memory is allocated until the first read. Never fails for a valid
 * descriptor: returns 0, or -EINVAL (@fd < 0 or @limit too large).
 */
UR_EXPORT int ur_stream_init(struct ur_stream *s, int fd, size_t limit);

/*
 * A loop's shared receive buffers for plain streams (a provided-buffer ring, urio/bufring.h),
 * what servers use: a stream made with ur_stream_init_rxring() receives with one multishot recv
 * into the ring, armed on its first read, instead of one recv into its own buffer per read. A
 * message then costs one completion and no submission, and an idle connection holds no receive
 * buffer. Loop thread only; every stream on it must belong to that loop.
 *
 * ur_stream_rxring_new() makes a ring of @count buffers (a power of two, 1..32768) of @size
 * bytes on @loop. Returns 0 with *@rr set, -EINVAL, -ENOMEM, or the kernel's error (-EOPNOTSUPP
 * before Linux 5.19: use ur_stream_init()). ur_stream_rxring_free() sets *@rr to NULL and frees
 * the ring once the receives of the streams made over it have ended (streams closed meanwhile
 * have their receive cancelled: it is freed from the loop when the last final completion
 * arrives, or at once if none is pending). Streams still open must be closed first; NULL is
 * accepted.
 */
struct ur_stream_rxring;
UR_EXPORT int ur_stream_rxring_new(struct ur_loop *loop, struct ur_stream_rxring **rr,
                                   unsigned count, size_t size);
UR_EXPORT void ur_stream_rxring_free(struct ur_stream_rxring **rr);

/*
 * ur_stream_init() for a stream that receives through @rr (see above). A chunk the reader has
 * not taken stays in its ring buffer (the ring's buffers are shared: a reader that never reads
 * holds them, and other streams' receives wait for buffers to come back). Installing TLS over
 * the stream before its first read (as servers do) stops nothing; installing it after a read
 * cancels the ring's receive and drops bytes received but not read. Returns 0 or -EINVAL (as
 * ur_stream_init, or @rr NULL or being freed). Without memory for its small state the stream
 * falls back to plain recvs; the call does not fail for that.
 */
UR_EXPORT int ur_stream_init_rxring(struct ur_stream *s, int fd, size_t limit,
                                    struct ur_stream_rxring *rr);

/*
 * Every later call on @s must finish by @abs_ns (CLOCK_MONOTONIC, as ur_now_ns()), or return
 * -ETIMEDOUT; UR_NO_DEADLINE removes it. A call that times out may have moved some bytes: after
 * a write times out the stream should be closed.
 */
UR_EXPORT void ur_stream_set_deadline(struct ur_stream *s, uint64_t abs_ns);
/*
 * The same relative to now: @ns from the loop's turn time (ur_loop_time_ns(): no clock read),
 * or UR_NO_DEADLINE. Still one deadline for every later call (a TLS handshake included), not a
 * time-out per call: renew or lift it after a stage.
 */
UR_EXPORT void ur_stream_set_timeout(struct ur_stream *s, uint64_t ns);

/*
 * For transports: the time left until the deadline in ns (UR_NO_DEADLINE if none); 0 when it has
 * passed, in which case the transport returns -ETIMEDOUT without starting anything.
 */
UR_EXPORT uint64_t ur_stream_timeout_ns(const struct ur_stream *s);

/*
 * Reads up to @len bytes: what is buffered, else one read from the transport. Returns the count
 * (> 0), 0 at end of stream, or an error (-ETIMEDOUT, -ECONNRESET, a TLS code, -ECANCELED...).
 */
UR_EXPORT ssize_t ur_stream_read(struct ur_stream *s, void *buf, size_t len);

/*
 * Reads exactly @len bytes. Returns @len, or UR_EINCOMPLETE if the stream ended first (the
 * bytes that did arrive stay buffered, unconsumed), or another error.
 */
UR_EXPORT ssize_t ur_stream_read_exactly(struct ur_stream *s, void *buf, size_t len);

/*
 * asyncio's readuntil(): reads up to and including the first occurrence of @delim (@dlen bytes,
 * 1..64) and copies it into @buf, whose size @max is also the limit. Returns the bytes copied
 * (delimiter included). UR_ELIMIT: no delimiter within @max bytes, or within the stream's
 * read buffer limit if that is smaller (the buffer holds the line); UR_EINCOMPLETE: the stream
 * ended first. On either error nothing is consumed: the buffered bytes remain for the next call.
 */
UR_EXPORT ssize_t ur_stream_read_until(struct ur_stream *s, const void *delim, size_t dlen,
                                       void *buf, size_t max);

/*
 * Zero-copy reading, for parsers. ur_stream_buffered() points at the unread bytes (valid until
 * the next call on @s) and stores their count in *@len. ur_stream_fill() reads once more from the
 * transport into the buffer: returns the bytes added, 0 at end of stream, UR_ELIMIT if the
 * buffer is full at its limit, or an error. ur_stream_consume() drops the first @n unread bytes.
 */
UR_EXPORT const char *ur_stream_buffered(const struct ur_stream *s, size_t *len);
UR_EXPORT ssize_t ur_stream_fill(struct ur_stream *s);
UR_EXPORT void ur_stream_consume(struct ur_stream *s, size_t n);

/* Writes all @len bytes / all of @iov. Returns the bytes written or an error. */
UR_EXPORT ssize_t ur_stream_write_all(struct ur_stream *s, const void *buf, size_t len);
UR_EXPORT ssize_t ur_stream_writev_all(struct ur_stream *s, const struct iovec *iov,
                                       unsigned iovcnt);

/* Ends the write side (the peer reads end of stream); reading goes on. */
UR_EXPORT int ur_stream_shutdown(struct ur_stream *s);

/*
 * Releases the transport, closes the descriptor and frees the buffer. Works in a cancelled task
 * too (it is how one cleans up), and outside any task (then the descriptor is closed with
 * close(2) at once). If another task (or a future-returning operation) waits in a call on @s,
 * that call is woken (the socket is shut down) and returns -EBADF, and it closes the descriptor
 * and frees the buffer as it returns: @s itself must stay valid until then. Returns 0, close's
 * error (the stream is closed either way), or -EBADF if it was closed already.
 */
UR_EXPORT int ur_stream_close(struct ur_stream *s);

/*
 * Heap streams, for callers that do not embed one: ur_stream_new() allocates a stream and
 * ur_stream_init()s it over @fd (which it then owns). Returns 0 with *@s set, -EINVAL (as
 * ur_stream_init), or -ENOMEM (@fd is then still the caller's). ur_stream_free() closes the
 * stream if still open (ur_stream_close()) and frees it; sets *@s to NULL; NULL is accepted.
 */
UR_EXPORT int ur_stream_new(struct ur_stream **s, int fd, size_t limit);
UR_EXPORT void ur_stream_free(struct ur_stream **s);

/*
 * Future-returning forms of the waiting calls, for callback users (and for ur_gather over
 * several streams): each runs the matching task-style call in a task of its own on @loop and
 * completes @f with its result (bytes, or an error; the same values). Caller-owned state:
 * @op, @f, the stream and every buffer must stay valid and untouched until @f completes.
 * ur_cancel(@f) cancels the operation (its task); @f then completes with -ECANCELED (or the
 * result, if it won the race) only once the operation no longer touches the caller's memory.
 *
 * Each start allocates the operation's task (a pooled stack). Returns 0 (@f will complete, never
 * inside this call), -EINVAL (@len or @max above INT32_MAX: the result must fit f->res), -EBUSY
 * (@f pending), -ENOMEM, UR_ELOOPCLOSED; after a failed start @f never completes.
 */
struct ur_stream_op {
	/* private */
	struct ur_future *f_;
	struct ur_stream *s_;
	struct ur_task *task_;
	ssize_t (*run_)(struct ur_stream_op *op);
	void *buf_;
	const void *cbuf_;
	size_t len_, dlen_;
	const void *delim_;
	const void *ext_[2]; /* per-operation extras (connect: host, options) */
	uint16_t port_;
	uint8_t started_, cancel_;
	struct ur_cancel_hook hook_;
};

UR_EXPORT int ur_stream_read_start(struct ur_loop *loop, struct ur_future *f,
                                   struct ur_stream_op *op, struct ur_stream *s, void *buf,
                                   size_t len);
UR_EXPORT int ur_stream_read_exactly_start(struct ur_loop *loop, struct ur_future *f,
                                           struct ur_stream_op *op, struct ur_stream *s, void *buf,
                                           size_t len);
UR_EXPORT int ur_stream_read_until_start(struct ur_loop *loop, struct ur_future *f,
                                         struct ur_stream_op *op, struct ur_stream *s,
                                         const void *delim, size_t dlen, void *buf, size_t max);
UR_EXPORT int ur_stream_write_all_start(struct ur_loop *loop, struct ur_future *f,
                                        struct ur_stream_op *op, struct ur_stream *s,
                                        const void *buf, size_t len);

/* For transports: installs @ops with @state over @s (the TLS layer does this). */
UR_EXPORT void ur_stream_set_transport(struct ur_stream *s, const struct ur_stream_ops *ops,
                                       void *state);

#ifdef __cplusplus
}
#endif

#endif
