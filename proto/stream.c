/* SPDX-License-Identifier: MIT */
/*
 * proto/stream.c - the buffered byte stream over a transport, and the plain socket transport.
 *
 * The read buffer is one heap block that doubles from STREAM_MIN_BUF up to the stream's limit.
 * Unread bytes are buf_[head_..tail_); they are moved to the front only when the free space at the
 * end runs out, so a parser's pointers stay valid until its next call on the stream.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <urio.h>

#define STREAM_MIN_BUF   ((size_t)4096)
#define STREAM_MAX_DELIM 64
/* iovecs handed to one sendmsg: more are written in further rounds */
#define STREAM_IOV_BATCH 64

enum {
	STREAM_EOF = 1u << 0,     /* the transport reported end of stream */
	STREAM_READING = 1u << 1, /* a transport read is in flight */
	STREAM_WRITING = 1u << 2, /* a transport write or shutdown is in flight */
	STREAM_CLOSING = 1u << 3, /* closed under one of those: the last to return finishes */
	/* bit 31 is proto/server.c's: it marks the streams of the server's connections */
};

/* --- the plain socket transport --------------------------------------------------------------- */

/* Arms the stream's deadline on the next task-style call; -ETIMEDOUT if it has passed. The
 * deadline is absolute already: no clock read (the loop's turn time says whether it passed). */
static int arm_deadline(const struct ur_stream *s)
{
	if (s->deadline_ == UR_NO_DEADLINE)
		return 0;
	if (s->deadline_ <= ur_loop_time_ns())
		return -ETIMEDOUT;
	ur_deadline_at(s->deadline_);
	return 0;
}

/* -EINTR moved nothing (io-wq's interrupted wait): retried here, as PEP 475 does, so that no
 * stream call hands it to its caller with part of a transfer done. */
static ssize_t plain_read(struct ur_stream *s, void *buf, size_t len)
{
	ssize_t n;
	do {
		int r = arm_deadline(s);
		if (r < 0)
			return r;
		n = ur_recv(s->fd, buf, len, 0);
	} while (n == -EINTR);
	return n;
}

static ssize_t plain_writev(struct ur_stream *s, const struct iovec *iov, unsigned iovcnt)
{
	struct iovec batch[STREAM_IOV_BATCH];
	size_t total = 0;
	unsigned i = 0;

	if (iovcnt == 1) {
		/* the common case (write_all): a plain send, which spares the kernel a msghdr copy
		 */
		const char *p = iov->iov_base;
		size_t left = iov->iov_len;
		while (left > 0) {
			int r = arm_deadline(s);
			ssize_t sent = r < 0 ? r : ur_send(s->fd, p, left, MSG_NOSIGNAL);
			if (sent == -EINTR)
				continue; /* nothing moved: retried, as plain_read does */
			if (sent < 0)
				return sent;
			if (sent == 0)
				return -EIO;
			p += sent;
			left -= (size_t)sent;
		}
		return (ssize_t)iov->iov_len;
	}
	while (i < iovcnt) {
		unsigned n = iovcnt - i < STREAM_IOV_BATCH ? iovcnt - i : STREAM_IOV_BATCH;
		memcpy(batch, iov + i, n * sizeof(*batch));
		i += n;
		/* send batch[0..n) completely, advancing over short sends */
		struct iovec *v = batch;
		while (n > 0 && v->iov_len == 0) {
			v++;
			n--;
		}
		while (n > 0) {
			struct msghdr msg = {.msg_iov = v, .msg_iovlen = n};
			int r = arm_deadline(s);
			ssize_t sent = r < 0 ? r : ur_sendmsg(s->fd, &msg, MSG_NOSIGNAL);
			if (sent == -EINTR)
				continue; /* nothing left: retried, as plain_read does */
			if (sent < 0)
				return sent;
			if (sent == 0)
				return -EIO; /* a send that moves nothing would loop forever */
			total += (size_t)sent;
			while (n > 0 && (size_t)sent >= v->iov_len) {
				sent -= (ssize_t)v->iov_len;
				v++;
				n--;
			}
			if (n > 0) {
				v->iov_base = (char *)v->iov_base + sent;
				v->iov_len -= (size_t)sent;
			}
		}
	}
	return (ssize_t)total;
}

static int plain_shutdown(struct ur_stream *s)
{
	int r = arm_deadline(s);
	return r < 0 ? r : ur_shutdown(s->fd, SHUT_WR);
}

static void plain_release(struct ur_stream *s)
{
	(void)s;
}

static const struct ur_stream_ops plain_ops = {
    .read = plain_read,
    .writev = plain_writev,
    .shutdown = plain_shutdown,
    .release = plain_release,
};

/* --- the buffer-ring transport ---------------------------------------------------------------- */

/*
 * A stream made by ur_stream_init_rxring() receives with one multishot recv into the loop's
 * buffer ring, armed on its first read: the kernel hands over each chunk as it arrives, so a
 * message costs one completion and no submission, and no buffer is held for a connection with
 * nothing to read. Chunks the reader has not taken yet are queued per stream as a list of buffer
 * ids threaded through the ring's next[] array (a buffer belongs to one stream at a time). The
 * reader waits on a program-completed future that the recv's callback resolves.
 *
 * The per-stream state (struct rx) outlives the stream when the recv is still in flight at close:
 * it is orphaned, the recv cancelled, and the final completion returns it to the ring's free list.
 * The ring itself is freed once its last rx has come back (ur_stream_rxring_free() defers it).
 */
struct rx {
	struct ur_future recv, wake;
	struct ur_stream_rxring *rr;
	struct rx *next_free;
	int head, tail; /* queued buffer ids, -1 for none */
	uint32_t off;   /* bytes of the head buffer already read */
	int end;        /* the recv's final result once it ended: 0 end of stream, or an error */
	bool armed, ended, orphan, reading;
};

struct ur_stream_rxring {
	struct ur_loop *loop;
	struct ur_bufring *br;
	struct rx *free_rx;
	unsigned live; /* rx states handed out and not yet back */
	bool closing;
	uint32_t *len; /* per buffer id: bytes the kernel put there */
	int32_t *next; /* per buffer id: the next buffer queued on the same stream */
};

static void rxring_destroy(struct ur_stream_rxring *rr)
{
	while (rr->free_rx) {
		struct rx *rx = rr->free_rx;
		rr->free_rx = rx->next_free;
		free(rx);
	}
	ur_bufring_free(&rr->br);
	free(rr->len);
	free(rr->next);
	free(rr);
}

int ur_stream_rxring_new(struct ur_loop *loop, struct ur_stream_rxring **out, unsigned count,
                         size_t size)
{
	struct ur_stream_rxring *rr = calloc(1, sizeof(*rr));
	if (!rr)
		return -ENOMEM;
	rr->loop = loop;
	int r = ur_bufring_new(loop, &rr->br, count, size);
	if (r == 0 && (!(rr->len = calloc(count, sizeof(*rr->len))) ||
	               !(rr->next = calloc(count, sizeof(*rr->next)))))
		r = -ENOMEM;
	if (r < 0) {
		rxring_destroy(rr);
		return r;
	}
	*out = rr;
	return 0;
}

void ur_stream_rxring_free(struct ur_stream_rxring **rrp)
{
	struct ur_stream_rxring *rr = *rrp;
	*rrp = NULL;
	if (!rr)
		return;
	rr->closing = true;
	if (rr->live == 0)
		rxring_destroy(rr);
}

/* Returns a state no recv and no reader uses any more to the free list. */
static void rx_maybe_free(struct rx *rx)
{
	struct ur_stream_rxring *rr = rx->rr;
	if (!rx->orphan || rx->armed || rx->reading)
		return;
	rx->next_free = rr->free_rx;
	rr->free_rx = rx;
	if (--rr->live == 0 && rr->closing)
		rxring_destroy(rr);
}

static void rx_drop_queue(struct rx *rx)
{
	while (rx->head >= 0) {
		int bid = rx->head;
		rx->head = rx->rr->next[bid];
		ur_bufring_recycle(rx->rr->br, bid);
	}
	rx->tail = -1;
	rx->off = 0;
}

static void rx_on_recv(struct ur_future *f, void *arg)
{
	struct rx *rx = arg;
	struct ur_stream_rxring *rr = rx->rr;
	int bid = ur_future_buffer(f);

	if (bid >= 0) {
		if (f->res > 0 && !rx->orphan) {
			rr->len[bid] = (uint32_t)f->res;
			rr->next[bid] = -1;
			if (rx->tail >= 0)
				rr->next[rx->tail] = bid;
			else
				rx->head = bid;
			rx->tail = bid;
		} else {
			ur_bufring_recycle(rr->br, bid);
		}
	}
	if (!ur_future_more(f)) {
		rx->armed = false;
		/* core re-arms a recv the ring starved, so a final completion with data is not
		 * the end: the next read arms it again */
		if (f->res <= 0) {
			rx->ended = true;
			rx->end = f->res;
		}
	}
	if (ur_future_state(&rx->wake) == UR_FUTURE_PENDING)
		ur_future_resolve(&rx->wake, 0);
	if (!ur_future_more(f))
		rx_maybe_free(rx);
}

/* Copies what is queued into @buf, recycling every buffer emptied. */
static size_t rx_take(struct rx *rx, char *buf, size_t len)
{
	struct ur_stream_rxring *rr = rx->rr;
	size_t done = 0;
	while (done < len && rx->head >= 0) {
		int bid = rx->head;
		const char *p = (const char *)ur_bufring_buf(rr->br, bid) + rx->off;
		size_t have = rr->len[bid] - rx->off, n = len - done < have ? len - done : have;
		memcpy(buf + done, p, n);
		done += n;
		rx->off += (uint32_t)n;
		if (rx->off == rr->len[bid]) {
			rx->head = rr->next[bid];
			if (rx->head < 0)
				rx->tail = -1;
			rx->off = 0;
			ur_bufring_recycle(rr->br, bid);
		}
	}
	return done;
}

static ssize_t rx_read(struct ur_stream *s, void *buf, size_t len)
{
	struct rx *rx = s->transport_;
	for (;;) {
		size_t n = rx_take(rx, buf, len);
		if (n > 0)
			return (ssize_t)n;
		if (rx->ended)
			return rx->end;
		if (!rx->armed) {
			ur_future_init(&rx->recv, rx_on_recv, rx);
			int r =
			    ur_recv_multishot_start(rx->rr->loop, &rx->recv, s->fd, rx->rr->br, 0);
			if (r < 0)
				return r;
			rx->armed = true;
		}
		int r = arm_deadline(s);
		if (r < 0)
			return r;
		if (ur_future_state(&rx->wake) != UR_FUTURE_PENDING) {
			ur_future_init(&rx->wake, NULL, NULL);
			r = ur_future_begin(rx->rr->loop, &rx->wake);
			if (r < 0) {
				ur_deadline(UR_NO_DEADLINE);
				return r;
			}
		}
		rx->reading = true;
		r = ur_await(&rx->wake);
		rx->reading = false;
		if (rx->orphan) {
			rx_maybe_free(rx); /* released (closed) while this read waited */
			return -EBADF;
		}
		if (r < 0)
			return r;
	}
}

/* The stream lets go of its state: what is queued goes back, an armed recv is cancelled. */
static void rx_release(struct ur_stream *s)
{
	struct rx *rx = s->transport_;
	s->transport_ = NULL;
	rx->orphan = true;
	rx_drop_queue(rx);
	if (rx->armed)
		ur_cancel(&rx->recv); /* its final completion frees rx */
	if (rx->reading && ur_future_state(&rx->wake) == UR_FUTURE_PENDING)
		ur_future_resolve(&rx->wake, -EBADF);
	rx_maybe_free(rx);
}

static const struct ur_stream_ops rx_ops = {
    .read = rx_read,
    .writev = plain_writev,
    .shutdown = plain_shutdown,
    .release = rx_release,
};

/* --- the stream ------------------------------------------------------------------------------- */

int ur_stream_init(struct ur_stream *s, int fd, size_t limit)
{
	if (fd < 0 || limit > UR_STREAM_LIMIT_MAX)
		return -EINVAL;
	*s = (struct ur_stream){
	    .fd = fd,
	    .ops_ = &plain_ops,
	    .limit_ = limit ? limit : UR_STREAM_LIMIT_DEFAULT,
	    .deadline_ = UR_NO_DEADLINE,
	    .closing_fd_ = -1,
	};
	return 0;
}

/*
 * For TLS: a socket stream nothing has been read from beyond its buffer (plain, or over a ring
 * with nothing received and unread), which a transport may take over.
 */
bool ur__stream_plain(const struct ur_stream *s);
bool ur__stream_plain(const struct ur_stream *s)
{
	if (s->ops_ == &plain_ops)
		return true;
	return s->ops_ == &rx_ops && ((const struct rx *)s->transport_)->head < 0;
}

int ur_stream_init_rxring(struct ur_stream *s, int fd, size_t limit, struct ur_stream_rxring *rr)
{
	int r = ur_stream_init(s, fd, limit);
	if (r < 0 || !rr || rr->closing)
		return r < 0 ? r : -EINVAL;
	struct rx *rx = rr->free_rx;
	if (rx)
		rr->free_rx = rx->next_free;
	else if (!(rx = malloc(sizeof(*rx))))
		return 0; /* no memory for the state: the stream receives with plain recvs */
	*rx = (struct rx){.rr = rr, .head = -1, .tail = -1};
	ur_future_init(&rx->recv, rx_on_recv, rx);
	ur_future_init(&rx->wake, NULL, NULL);
	rr->live++;
	s->ops_ = &rx_ops;
	s->transport_ = rx;
	return 0;
}

void ur_stream_set_transport(struct ur_stream *s, const struct ur_stream_ops *ops, void *state)
{
	if (s->ops_ == &rx_ops && ops != &rx_ops)
		rx_release(s); /* TLS over it reads the socket itself: the ring's recv must stop */
	s->ops_ = ops;
	s->transport_ = state;
}

void ur_stream_set_deadline(struct ur_stream *s, uint64_t abs_ns)
{
	s->deadline_ = abs_ns;
}

void ur_stream_set_timeout(struct ur_stream *s, uint64_t ns)
{
	if (ns == UR_NO_DEADLINE) {
		s->deadline_ = UR_NO_DEADLINE;
		return;
	}
	uint64_t now =
	    ur_loop_time_ns(); /* a deadline armed, mostly never reached: no clock read */
	s->deadline_ = ns >= UR_NO_DEADLINE - now ? UR_NO_DEADLINE - 1 : now + ns;
}

uint64_t ur_stream_timeout_ns(const struct ur_stream *s)
{
	if (s->deadline_ == UR_NO_DEADLINE)
		return UR_NO_DEADLINE;
	uint64_t now = ur_now_ns();
	return s->deadline_ > now ? s->deadline_ - now : 0;
}

const char *ur_stream_buffered(const struct ur_stream *s, size_t *len)
{
	*len = s->tail_ - s->head_;
	return s->buf_ ? s->buf_ + s->head_ : "";
}

void ur_stream_consume(struct ur_stream *s, size_t n)
{
	size_t have = s->tail_ - s->head_;
	s->head_ += n < have ? n : have;
	if (s->head_ == s->tail_)
		s->head_ = s->tail_ = 0;
}

/* Makes room at the end of the buffer: compacts, then grows up to the limit. */
static int make_room(struct ur_stream *s)
{
	size_t used = s->tail_ - s->head_;
	if (used >= s->limit_)
		return UR_ELIMIT;
	if (s->tail_ < s->cap_)
		return 0;
	if (s->head_ > 0) {
		memmove(s->buf_, s->buf_ + s->head_, used);
		s->head_ = 0;
		s->tail_ = used;
		return 0;
	}
	size_t cap = s->cap_ ? s->cap_ * 2 : STREAM_MIN_BUF;
	if (cap > s->limit_)
		cap = s->limit_;
	char *b = realloc(s->buf_, cap);
	if (!b)
		return -ENOMEM;
	s->buf_ = b;
	s->cap_ = cap;
	return 0;
}

/* Closes @fd (through the ring in a task) and frees the read buffer. */
static int close_fd(struct ur_stream *s, int fd)
{
	int r = 0;
	if (ur_task_current())
		r = ur_close(fd);
	else if (close(fd) < 0)
		r = -errno;
	free(s->buf_);
	s->buf_ = NULL;
	s->cap_ = s->head_ = s->tail_ = 0;
	return r;
}

/*
 * Brackets a transport call. The kernel may write into the read buffer until the call returns, so
 * a close under it only wakes it (ur_stream_close); the last call to return closes the descriptor
 * and frees the buffer, and reports -EBADF.
 */
static void busy_enter(struct ur_stream *s, uint32_t bit)
{
	s->flags_ |= bit;
}

static int busy_leave(struct ur_stream *s, uint32_t bit)
{
	s->flags_ &= ~bit;
	if (!(s->flags_ & STREAM_CLOSING))
		return 0;
	if (!(s->flags_ & (STREAM_READING | STREAM_WRITING))) {
		s->flags_ &= ~STREAM_CLOSING;
		close_fd(s, s->closing_fd_);
		s->closing_fd_ = -1;
	}
	return -EBADF;
}

/* One read from the transport, sticky at end of stream and on errors other than time-outs. */
static ssize_t transport_read(struct ur_stream *s, void *buf, size_t len)
{
	if (s->fd < 0)
		return -EBADF;
	if (s->err_)
		return s->err_;
	if (s->flags_ & STREAM_EOF)
		return 0;
	if (!ur_task_current())
		return UR_ENOTASK; /* refused before the transport could make it sticky */
	busy_enter(s, STREAM_READING);
	ssize_t n = s->ops_->read(s, buf, len);
	if (busy_leave(s, STREAM_READING) < 0)
		return -EBADF;
	if (n == 0)
		s->flags_ |= STREAM_EOF;
	else if (n < 0 && n != -ETIMEDOUT && n != -ECANCELED && n != -EINTR && n != -ENOMEM)
		s->err_ = (int)n; /* the connection's own errors; not the caller's situation */
	return n;
}

ssize_t ur_stream_fill(struct ur_stream *s)
{
	int r = make_room(s);
	if (r < 0)
		return r;
	ssize_t n = transport_read(s, s->buf_ + s->tail_, s->cap_ - s->tail_);
	if (n > 0)
		s->tail_ += (size_t)n;
	return n;
}

ssize_t ur_stream_read(struct ur_stream *s, void *buf, size_t len)
{
	size_t have = s->tail_ - s->head_;
	if (len == 0)
		return 0;
	if (have == 0) {
		/* a large read goes straight to the caller's buffer, a small one through ours */
		if (len >= STREAM_MIN_BUF || len >= s->limit_)
			return transport_read(s, buf, len);
		ssize_t n = ur_stream_fill(s);
		if (n <= 0)
			return n;
		have = (size_t)n;
	}
	size_t n = have < len ? have : len;
	memcpy(buf, s->buf_ + s->head_, n);
	ur_stream_consume(s, n);
	return (ssize_t)n;
}

ssize_t ur_stream_read_exactly(struct ur_stream *s, void *buf, size_t len)
{
	if (len > s->limit_) {
		/* too large to hold back: what arrives is the caller's as it comes */
		size_t done = 0;
		while (done < len) {
			ssize_t n = ur_stream_read(s, (char *)buf + done, len - done);
			if (n < 0)
				return n;
			if (n == 0)
				return UR_EINCOMPLETE;
			done += (size_t)n;
		}
		return (ssize_t)len;
	}
	while (s->tail_ - s->head_ < len) {
		ssize_t n = ur_stream_fill(s);
		if (n < 0)
			return n;
		if (n == 0)
			return UR_EINCOMPLETE;
	}
	memcpy(buf, s->buf_ + s->head_, len);
	ur_stream_consume(s, len);
	return (ssize_t)len;
}

ssize_t ur_stream_read_until(struct ur_stream *s, const void *delim, size_t dlen, void *buf,
                             size_t max)
{
	size_t scanned = 0; /* bytes from head_ already known to hold no delimiter start */

	if (dlen == 0 || dlen > STREAM_MAX_DELIM || max == 0)
		return -EINVAL;
	for (;;) {
		size_t have = s->tail_ - s->head_;
		if (have >= dlen) {
			const char *base = s->buf_ + s->head_;
			const char *p = memmem(base + scanned, have - scanned, delim, dlen);
			if (p) {
				size_t n = (size_t)(p - base) + dlen;
				if (n > max)
					return UR_ELIMIT;
				memcpy(buf, base, n);
				ur_stream_consume(s, n);
				return (ssize_t)n;
			}
			scanned = have - (dlen - 1);
		}
		if (have >= max)
			return UR_ELIMIT;
		ssize_t n = ur_stream_fill(s);
		if (n < 0)
			return n;
		if (n == 0)
			return UR_EINCOMPLETE;
	}
}

ssize_t ur_stream_writev_all(struct ur_stream *s, const struct iovec *iov, unsigned iovcnt)
{
	if (s->fd < 0)
		return -EBADF;
	if (!ur_task_current())
		return UR_ENOTASK; /* a TLS record made outside a task could never be sent */
	busy_enter(s, STREAM_WRITING);
	ssize_t n = s->ops_->writev(s, iov, iovcnt);
	return busy_leave(s, STREAM_WRITING) < 0 ? -EBADF : n;
}

ssize_t ur_stream_write_all(struct ur_stream *s, const void *buf, size_t len)
{
	struct iovec v = {.iov_base = (void *)buf, .iov_len = len};
	return ur_stream_writev_all(s, &v, 1);
}

int ur_stream_shutdown(struct ur_stream *s)
{
	if (s->fd < 0)
		return -EBADF;
	if (!ur_task_current())
		return UR_ENOTASK;
	busy_enter(s, STREAM_WRITING);
	int r = s->ops_->shutdown(s);
	return busy_leave(s, STREAM_WRITING) < 0 ? -EBADF : r;
}

int ur_stream_close(struct ur_stream *s)
{
	if (s->fd < 0)
		return -EBADF;
	if (s->ops_ && s->ops_->release)
		s->ops_->release(s);
	s->ops_ = &plain_ops;
	s->transport_ = NULL;
	int fd = s->fd;
	s->fd = -1;
	if (s->flags_ & (STREAM_READING | STREAM_WRITING)) {
		/*
		 * Closed from another task or a callback under a call that waits: a close(2)
		 * would leave its recv, send or poll pending for good (the ring holds the file).
		 * Shutting the socket down ends them; the call closes when it returns.
		 */
		shutdown(fd, SHUT_RDWR);
		s->closing_fd_ = fd;
		s->flags_ |= STREAM_CLOSING;
		return 0;
	}
	return close_fd(s, fd);
}

/* --- heap streams and future-returning operations --------------------------------------------- */

int ur_stream_new(struct ur_stream **out, int fd, size_t limit)
{
	struct ur_stream *s = malloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
	int r = ur_stream_init(s, fd, limit);
	if (r < 0) {
		free(s);
		return r;
	}
	*out = s;
	return 0;
}

void ur_stream_free(struct ur_stream **s)
{
	if (!*s)
		return;
	if ((*s)->fd >= 0)
		ur_stream_close(*s);
	free(*s);
	*s = NULL;
}

static int op_main(void *arg)
{
	struct ur_stream_op *op = arg;
	op->started_ = 1;
	ssize_t r = op->cancel_ ? -ECANCELED : op->run_(op);
	/* the last touch of the caller's memory: @op may be reused from the future's callback */
	ur_future_resolve(op->f_, (int)r);
	return 0;
}

static void op_cancel(struct ur_future *f, void *arg)
{
	(void)f;
	struct ur_stream_op *op = arg;
	/* the task is alive: it resolves @f before it returns. One that has not started yet must
	 * still run, to resolve @f: it sees the flag and does nothing else. */
	if (op->started_)
		ur_task_cancel(op->task_);
	else
		op->cancel_ = 1;
}

int ur__stream_op_start(struct ur_loop *loop, struct ur_future *f, struct ur_stream_op *op,
                        ssize_t (*run)(struct ur_stream_op *));
int ur__stream_op_start(struct ur_loop *loop, struct ur_future *f, struct ur_stream_op *op,
                        ssize_t (*run)(struct ur_stream_op *))
{
	if (ur_future_state(f) == UR_FUTURE_PENDING)
		return -EBUSY;
	op->f_ = f;
	op->run_ = run;
	op->hook_ = (struct ur_cancel_hook){.fn = op_cancel, .arg = op};
	/* the task starts on the loop's next turn, so it cannot run before the future is begun */
	int r = ur_spawn(loop, &op->task_, op_main, op, NULL);
	if (r < 0)
		return r;
	r = ur_future_begin_hooked(loop, f, &op->hook_);
	if (r < 0) {
		ur_task_cancel(op->task_); /* not started: it never runs */
		ur_task_detach(op->task_);
		return r;
	}
	ur_task_detach(op->task_);
	return 0;
}

static ssize_t run_read(struct ur_stream_op *op)
{
	return ur_stream_read(op->s_, op->buf_, op->len_);
}

static ssize_t run_read_exactly(struct ur_stream_op *op)
{
	return ur_stream_read_exactly(op->s_, op->buf_, op->len_);
}

static ssize_t run_read_until(struct ur_stream_op *op)
{
	return ur_stream_read_until(op->s_, op->delim_, op->dlen_, op->buf_, op->len_);
}

static ssize_t run_write_all(struct ur_stream_op *op)
{
	return ur_stream_write_all(op->s_, op->cbuf_, op->len_);
}

static int op_prepare(struct ur_future *f, struct ur_stream_op *op, struct ur_stream *s,
                      const void *cbuf, void *buf, size_t len)
{
	if (ur_future_state(f) == UR_FUTURE_PENDING)
		return -EBUSY; /* checked before @op is touched: it may belong to that start */
	if (len > INT32_MAX)
		return -EINVAL;
	*op = (struct ur_stream_op){.s_ = s, .buf_ = buf, .cbuf_ = cbuf, .len_ = len};
	return 0;
}

int ur_stream_read_start(struct ur_loop *loop, struct ur_future *f, struct ur_stream_op *op,
                         struct ur_stream *s, void *buf, size_t len)
{
	int r = op_prepare(f, op, s, NULL, buf, len);
	return r < 0 ? r : ur__stream_op_start(loop, f, op, run_read);
}

int ur_stream_read_exactly_start(struct ur_loop *loop, struct ur_future *f, struct ur_stream_op *op,
                                 struct ur_stream *s, void *buf, size_t len)
{
	int r = op_prepare(f, op, s, NULL, buf, len);
	return r < 0 ? r : ur__stream_op_start(loop, f, op, run_read_exactly);
}

int ur_stream_read_until_start(struct ur_loop *loop, struct ur_future *f, struct ur_stream_op *op,
                               struct ur_stream *s, const void *delim, size_t dlen, void *buf,
                               size_t max)
{
	int r = op_prepare(f, op, s, NULL, buf, max);
	if (r < 0)
		return r;
	op->delim_ = delim;
	op->dlen_ = dlen;
	return ur__stream_op_start(loop, f, op, run_read_until);
}

int ur_stream_write_all_start(struct ur_loop *loop, struct ur_future *f, struct ur_stream_op *op,
                              struct ur_stream *s, const void *buf, size_t len)
{
	int r = op_prepare(f, op, s, buf, NULL, len);
	return r < 0 ? r : ur__stream_op_start(loop, f, op, run_write_all);
}
