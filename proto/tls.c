/* SPDX-License-Identifier: MIT */
/*
 * proto/tls.c - TLS over a stream: OpenSSL driven through a memory BIO, urio moving the bytes.
 *
 * OpenSSL never sees the descriptor. Its BIO reads ciphertext from t->in (filled by ur_recv) and
 * appends what it writes to t->out, which drive() sends after every SSL call, whatever the call
 * (a read may have produced a key update answer, a failed handshake an alert). Each SSL call
 * starts with an empty error queue, so the reason read after a failure is that call's own. A read
 * that could only ask for more input (nothing buffered anywhere) is not made: the recv is.
 *
 * Two tasks may use a stream at once, one reading and one writing. SSL calls never suspend (the
 * BIO never blocks), so OpenSSL's state is consistent between them; what needs care is the bytes:
 * only one task sends at a time (the others append to t->out and wait for the sender, which sends
 * until t->out is empty), the buffer in flight is never the one being appended to, and only one
 * task receives at a time, into the free end of t->in, which nobody moves meanwhile.
 *
 * Memory: an idle connection should cost little (docs/tls.md). The 32 KiB receive buffer is
 * released while the connection waits for the peer: when it runs dry, a non-blocking recv finds
 * out whether more is there; if not, the buffer is freed and a poll waits for readability.
 * SSL_MODE_RELEASE_BUFFERS does the same for OpenSSL's record buffers.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <urio.h>

#define TLS_IN_CAP      ((size_t)32 * 1024) /* ciphertext received at most per recv */
#define TLS_WRITE_CHUNK ((size_t)64 * 1024) /* plaintext per SSL_write: four records, one send */
#define TLS_SMALL_IOV   ((size_t)4096)      /* smaller iovecs are coalesced into one record */
#define TLS_ERR_MAX     256
#define TLS_HOST_MAX    253
#define SESS_CACHE_MAX  256

/* Private result: the stream was closed (and the state freed) while this call waited. */
#define TLS_GONE (UR_ERANGE_MIN)

struct sess_entry {
	char *key; /* "host:port" */
	SSL_SESSION *sess;
	uint64_t used;
};

struct ur_tls_ctx {
	SSL_CTX *ssl;
	enum ur_tls_role role;
	unsigned flags;
	atomic_int refs;
	unsigned char alpn[256]; /* server: its protocols in wire format */
	size_t alpn_len;
	pthread_mutex_t lock; /* the session cache, shared by every thread using the context */
	struct sess_entry *cache;
	size_t n_cache;
	uint64_t tick;
};

struct flush_waiter {
	struct ur_future f;
	struct flush_waiter *next;
};

struct tls {
	SSL *ssl;
	struct ur_tls_ctx *ctx;
	struct ur_stream *s;
	int fd;
	char *in; /* ciphertext received, in[in_pos..in_len) not yet given to OpenSSL */
	size_t in_pos, in_len;
	char *out; /* ciphertext OpenSSL wrote, out[0..out_len) not yet handed to the sender */
	size_t out_len, out_cap;
	struct flush_waiter *waiters;
	int fatal;     /* sticky error, 0 if none */
	unsigned busy; /* operations in flight on this state: release waits for them */
	bool in_eof, established, sent_close, got_close, flushing, receiving, released, oom;
	char *cache_key;
	char err[TLS_ERR_MAX];
};

static const struct ur_stream_ops tls_ops;

/* --- errors ----------------------------------------------------------------------------------- */

static void set_text(struct tls *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_text(struct tls *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->err, sizeof(t->err), fmt, ap);
	va_end(ap);
}

static bool version_reason(int reason)
{
	switch (reason) {
	case SSL_R_UNSUPPORTED_PROTOCOL:
	case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
	case SSL_R_NO_PROTOCOLS_AVAILABLE:
	case SSL_R_VERSION_TOO_LOW:
	case SSL_R_VERSION_TOO_HIGH:
	case SSL_R_UNSUPPORTED_SSL_VERSION:
	case SSL_R_WRONG_SSL_VERSION:
		return true;
	default:
		return false;
	}
}

/*
 * Names a failed SSL call: its class as a code, OpenSSL's reason in t->err. Must run before any
 * other OpenSSL call could touch the error queue.
 */
static int classify(struct tls *t, int sslerr)
{
	unsigned long e = ERR_peek_last_error();
	int reason = ERR_GET_LIB(e) == ERR_LIB_SSL ? ERR_GET_REASON(e) : 0;
	const char *why = e ? ERR_reason_error_string(e) : NULL;
	const char *stage = t->established ? "TLS error" : "handshake failed";
	char num[32];

	if (t->oom || (e && ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE)) {
		set_text(t, "%s: out of memory", stage);
		return -ENOMEM;
	}
	if (reason == SSL_R_UNEXPECTED_EOF_WHILE_READING ||
	    (sslerr == SSL_ERROR_SYSCALL && t->in_eof)) {
		if (!t->established) {
			set_text(t, "handshake failed: the peer closed the connection");
			return UR_ETLSHANDSHAKE;
		}
		set_text(t, "the peer closed the connection without close_notify");
		return UR_ETLSTRUNCATED;
	}
	if (!why) {
		snprintf(num, sizeof(num), "error %lu (SSL_get_error %d)", e, sslerr);
		why = num;
	}
	long v = SSL_get_verify_result(t->ssl);
	if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED && v != X509_V_OK) {
		bool name =
		    v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH;
		const char *host = t->cache_key ? t->cache_key : "";
		if (name) {
			int hl = (int)strcspn(host, "|");
			set_text(
			    t, "certificate verify failed: %s (the certificate does not name %.*s)",
			    X509_verify_cert_error_string(v), hl, host);
		} else {
			set_text(t, "certificate verify failed: %s",
			         X509_verify_cert_error_string(v));
		}
		return name ? UR_ETLSHOSTNAME : UR_ETLSVERIFY;
	}
	if (version_reason(reason)) {
		set_text(t, "%s: %s", stage, why);
		return UR_ETLSVERSION;
	}
	set_text(t, "%s: %s", stage, why);
	return t->established ? UR_ETLS : UR_ETLSHANDSHAKE;
}

/* --- the BIO: OpenSSL's side of t->in and t->out ---------------------------------------------- */

static int bio_write(BIO *b, const char *data, int len)
{
	struct tls *t = BIO_get_data(b);
	size_t need = t->out_len + (size_t)len;

	BIO_clear_retry_flags(b);
	if (need > t->out_cap) {
		size_t cap = t->out_cap ? t->out_cap : 4096;
		while (cap < need)
			cap *= 2;
		char *p = realloc(t->out, cap);
		if (!p) {
			t->oom = true;
			return -1;
		}
		t->out = p;
		t->out_cap = cap;
	}
	memcpy(t->out + t->out_len, data, (size_t)len);
	t->out_len = need;
	return len;
}

static int bio_read(BIO *b, char *buf, int len)
{
	struct tls *t = BIO_get_data(b);
	size_t have = t->in_len - t->in_pos;

	BIO_clear_retry_flags(b);
	if (have == 0) {
		if (t->in_eof)
			return 0;
		BIO_set_retry_read(b);
		return -1;
	}
	size_t n = have < (size_t)len ? have : (size_t)len;
	memcpy(buf, t->in + t->in_pos, n);
	t->in_pos += n;
	return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct tls *t = BIO_get_data(b);
	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_EOF:
		return t->in_eof && t->in_pos == t->in_len;
	case BIO_CTRL_PENDING:
		return (long)(t->in_len - t->in_pos);
	default:
		return 0;
	}
}

static int bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static void bio_method_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "urio");
	if (m && BIO_meth_set_write(m, bio_write) && BIO_meth_set_read(m, bio_read) &&
	    BIO_meth_set_ctrl(m, bio_ctrl) && BIO_meth_set_create(m, bio_create)) {
		bio_method = m;
		return;
	}
	BIO_meth_free(m);
}

/* --- moving ciphertext ------------------------------------------------------------------------ */

/* Arms the stream's deadline on the next operation; -ETIMEDOUT if it has passed (as stream.c). */
static int arm_deadline(struct tls *t)
{
	uint64_t d = t->s->deadline_;
	if (d == UR_NO_DEADLINE)
		return 0;
	if (d <= ur_loop_time_ns())
		return -ETIMEDOUT;
	ur_deadline_at(d);
	return 0;
}

static void tls_destroy(struct tls *t);

/* After an await: true if the stream was closed meanwhile (and @t freed by this call). */
static bool unpin(struct tls *t)
{
	if (--t->busy == 0 && t->released) {
		tls_destroy(t);
		return true;
	}
	return t->released;
}

static int send_all(struct tls *t, const char *buf, size_t len)
{
	size_t off = 0;
	while (off < len) {
		int r = arm_deadline(t);
		if (r < 0)
			return r;
		t->busy++;
		ssize_t n = ur_send(t->fd, buf + off, len - off, MSG_NOSIGNAL);
		if (unpin(t))
			return TLS_GONE;
		if (n == -EINTR)
			continue; /* nothing was sent (PEP 475): send it again */
		if (n < 0)
			return (int)n;
		if (n == 0)
			return -EIO;
		off += (size_t)n;
	}
	return 0;
}

static void wake_waiters(struct tls *t, int res)
{
	struct flush_waiter *w = t->waiters;
	t->waiters = NULL;
	while (w) {
		struct flush_waiter *next = w->next;
		w->next = NULL;
		ur_future_resolve(&w->f, res);
		w = next;
	}
}

/* Another task is sending: wait until it has sent our bytes too. */
static int wait_flush(struct tls *t)
{
	struct flush_waiter w = {.next = NULL};
	ur_future_init(&w.f, NULL, NULL);
	int r = ur_future_begin(ur_current_loop(), &w.f);
	if (r < 0)
		return r;
	w.next = t->waiters;
	t->waiters = &w;
	t->busy++;
	r = ur_await(&w.f);
	/* cancelled: still on the list */
	for (struct flush_waiter **p = &t->waiters; *p; p = &(*p)->next) {
		if (*p == &w) {
			*p = w.next;
			break;
		}
	}
	if (unpin(t))
		return TLS_GONE;
	return r;
}

/*
 * Sends everything OpenSSL has written. A send that fails leaves a record half sent, so the
 * connection is broken from then on (t->fatal). If another task is sending already, it sends our
 * bytes too: a writer (@wait) waits for that, a reader does not, since the sender may be waiting
 * for the peer to read, and the peer for us to read.
 */
static int flush(struct tls *t, bool wait)
{
	if (t->out_len == 0)
		return 0;
	if (t->flushing)
		return wait ? wait_flush(t) : 0;
	t->flushing = true;
	int r = 0;
	while (t->out_len > 0 && r == 0) {
		/* new output goes to a fresh buffer while this one is in flight */
		char *buf = t->out;
		size_t len = t->out_len, cap = t->out_cap;
		t->out = NULL;
		t->out_len = t->out_cap = 0;
		r = send_all(t, buf, len);
		if (r == TLS_GONE) {
			free(buf);
			return r; /* tls_release() woke the waiters */
		}
		if (!t->out && (t->ctx->flags & UR_TLS_KEEP_BUFFERS)) {
			t->out = buf; /* sent: the next record goes there, no malloc per request */
			t->out_cap = cap;
		} else {
			free(buf);
		}
	}
	t->flushing = false;
	if (r < 0) {
		t->out_len = 0;
		if (!t->fatal) {
			t->fatal = r;
			set_text(t, "%s: send: %s", t->established ? "TLS" : "handshake failed",
			         ur_strerror(r));
		}
	}
	wake_waiters(t, r);
	return r;
}

/* One recv of ciphertext into t->in (see the file comment for the buffer's release). */
static int recv_more(struct tls *t)
{
	ssize_t n;
	int r;

	if (t->receiving)
		return -EBUSY; /* a write that needs to read while another task reads */
	if (t->in_pos == t->in_len) {
		t->in_pos = t->in_len = 0;
	} else if (t->in_pos > 0) {
		memmove(t->in, t->in + t->in_pos, t->in_len - t->in_pos);
		t->in_len -= t->in_pos;
		t->in_pos = 0;
	}
	t->receiving = true;
	t->busy++;
	if (t->in_len == 0 && !(t->ctx->flags & UR_TLS_KEEP_BUFFERS)) {
		if (t->in) {
			do {
				r = arm_deadline(t);
				n = r < 0 ? r : ur_recv(t->fd, t->in, TLS_IN_CAP, MSG_DONTWAIT);
			} while (n == -EINTR && !t->released);
			if (t->released || n != -EAGAIN)
				goto done;
			free(t->in);
			t->in = NULL;
		}
		do {
			r = arm_deadline(t);
			n = r < 0 ? r : ur_poll(t->fd, POLLIN);
		} while (n == -EINTR && !t->released);
		if (t->released || n < 0)
			goto done;
	}
	if (!t->in && !(t->in = malloc(TLS_IN_CAP))) {
		n = -ENOMEM;
		goto done;
	}
	/* -EINTR moved nothing: retried, so that no TLS call ends with it (PEP 475) */
	do {
		r = arm_deadline(t);
		n = r < 0 ? r : ur_recv(t->fd, t->in + t->in_len, TLS_IN_CAP - t->in_len, 0);
	} while (n == -EINTR && !t->released);
done:
	t->receiving = false;
	if (unpin(t))
		return TLS_GONE;
	if (n == 0)
		t->in_eof = true;
	else if (n > 0)
		t->in_len += (size_t)n;
	return n < 0 ? (int)n : 0;
}

/* --- driving OpenSSL ----------------------------------------------------------------------------
 */

enum tls_op {
	OP_HANDSHAKE,
	OP_READ,
	OP_WRITE,
	OP_SHUTDOWN
};

/*
 * Empties OpenSSL's error queue before a call, so that a failure's reason is the call's own. The
 * queue is nearly always empty already, and finding that out costs a fraction of clearing it.
 */
static void clear_errors(void)
{
	if (ERR_peek_error() != 0)
		ERR_clear_error();
}

/*
 * Whether an SSL read could only ask for more input: the session is established, OpenSSL holds
 * no record bytes, processed or not, and no ciphertext or end of stream waits in t->in. Then the
 * call is skipped, for the recv it would ask for: each response's last read is such a call.
 */
static bool nothing_to_read(struct tls *t)
{
	return t->established && t->in_pos == t->in_len && !t->in_eof && !SSL_has_pending(t->ssl);
}

/*
 * Runs one SSL operation to completion: the call, then its output sent, then as much input as it
 * asks for, until it succeeds or fails. Returns 0 (*@done = bytes moved) or an error, which is
 * sticky (t->fatal) unless it came from the socket while reading (time-out, cancellation).
 */
static int drive(struct tls *t, enum tls_op op, void *buf, size_t len, size_t *done)
{
	for (;;) {
		int ret = 0, sslerr, code = 0;

		if (t->fatal)
			return t->fatal;
		if (op == OP_READ && nothing_to_read(t)) {
			sslerr = SSL_ERROR_WANT_READ; /* all the call could say */
			goto want;
		}
		clear_errors();
		switch (op) {
		case OP_HANDSHAKE:
			ret = SSL_do_handshake(t->ssl);
			break;
		case OP_READ:
			ret = SSL_read_ex(t->ssl, buf, len, done);
			break;
		case OP_WRITE:
			ret = SSL_write_ex(t->ssl, buf, len, done);
			break;
		case OP_SHUTDOWN:
			ret = SSL_shutdown(t->ssl);
			if (ret == 0)
				ret = 1; /* close_notify sent; the peer's comes with reads */
			break;
		}
		sslerr = ret > 0 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, ret);
	want:
		if (sslerr == SSL_ERROR_ZERO_RETURN) {
			t->got_close = true;
			*done = 0;
			sslerr = SSL_ERROR_NONE;
		} else if (sslerr != SSL_ERROR_NONE && sslerr != SSL_ERROR_WANT_READ &&
		           sslerr != SSL_ERROR_WANT_WRITE) {
			code = classify(t, sslerr);
		}
		/*
		 * The call's own failure is the connection's error, recorded before its alert is
		 * sent: that send is best effort and may fail too (the peer that closed without
		 * close_notify answers the alert's first bytes with a reset, so a send split in two
		 * meets EPIPE), and flush() must not rename the error after it.
		 */
		if (code)
			t->fatal = code;
		int r = flush(t, op != OP_READ);
		if (r == TLS_GONE)
			return r;
		if (code)
			return code;
		if (r < 0)
			return r;
		if (sslerr == SSL_ERROR_NONE)
			return 0;
		if (sslerr == SSL_ERROR_WANT_READ) {
			r = recv_more(t);
			if (r == TLS_GONE)
				return r;
			if (r < 0) {
				set_text(t, "%s: recv: %s",
				         t->established ? "TLS" : "handshake failed",
				         ur_strerror(r));
				if (r != -ETIMEDOUT && r != -ECANCELED && r != -EINTR &&
				    r != -EBUSY)
					t->fatal = r;
				return r;
			}
		}
		/* SSL_ERROR_WANT_WRITE cannot happen (the BIO takes everything): just call again */
	}
}

static int gone_to_errno(int r)
{
	return r == TLS_GONE ? -EBADF : r;
}

static ssize_t tls_read(struct ur_stream *s, void *buf, size_t len)
{
	struct tls *t = s->transport_;
	size_t n = 0;

	if (t->fatal)
		return t->fatal;
	if (t->got_close)
		return 0;
	if (len > INT_MAX)
		len = INT_MAX;
	int r = drive(t, OP_READ, buf, len, &n);
	return r < 0 ? gone_to_errno(r) : (ssize_t)n;
}

static ssize_t write_chunks(struct tls *t, const char *p, size_t len)
{
	size_t total = 0;
	while (total < len) {
		size_t n = len - total < TLS_WRITE_CHUNK ? len - total : TLS_WRITE_CHUNK, done = 0;
		int r = drive(t, OP_WRITE, (void *)(p + total), n, &done);
		if (r < 0)
			return r;
		total += done;
	}
	return (ssize_t)total;
}

static ssize_t tls_writev(struct ur_stream *s, const struct iovec *iov, unsigned iovcnt)
{
	struct tls *t = s->transport_;
	size_t total = 0;
	char *stage = NULL; /* small iovecs gathered into one record */
	size_t staged = 0;
	ssize_t r = 0;

	if (t->fatal)
		return t->fatal;
	if (t->sent_close)
		return UR_ETLSCLOSED;
	for (unsigned i = 0; i < iovcnt && r >= 0; i++) {
		const char *p = iov[i].iov_base;
		size_t len = iov[i].iov_len;
		if (len < TLS_SMALL_IOV && iovcnt > 1) {
			if (!stage && !(stage = malloc(TLS_SMALL_IOV * 4))) {
				r = -ENOMEM;
				break;
			}
			if (staged + len > TLS_SMALL_IOV * 4) {
				r = write_chunks(t, stage, staged);
				staged = 0;
				if (r < 0)
					break;
			}
			memcpy(stage + staged, p, len);
			staged += len;
			total += len;
			continue;
		}
		if (staged) {
			r = write_chunks(t, stage, staged);
			staged = 0;
			if (r < 0)
				break;
		}
		r = write_chunks(t, p, len);
		if (r >= 0)
			total += len;
	}
	if (r >= 0 && staged)
		r = write_chunks(t, stage, staged);
	free(stage);
	return r < 0 ? gone_to_errno((int)r) : (ssize_t)total;
}

static int tls_shutdown(struct ur_stream *s)
{
	struct tls *t = s->transport_;
	size_t n;

	if (t->fatal)
		return t->fatal;
	if (!t->sent_close) {
		int r = drive(t, OP_SHUTDOWN, NULL, 0, &n);
		if (r < 0)
			return gone_to_errno(r);
		t->sent_close = true;
	}
	int r = arm_deadline(t);
	return r < 0 ? r : ur_shutdown(s->fd, SHUT_WR);
}

static void tls_destroy(struct tls *t)
{
	SSL_free(t->ssl); /* frees the BIO too */
	ur_tls_ctx_free(t->ctx);
	free(t->in);
	free(t->out);
	free(t->cache_key);
	free(t);
}

/*
 * Closing: a close_notify is sent if it can be without waiting (an established, healthy session
 * whose socket has room), so peers see a clean end; ur_stream_shutdown() is the way to be sure.
 * If an operation is still in flight on the state (another task, closing under it), the state is
 * freed when that operation returns.
 */
static void tls_release(struct ur_stream *s)
{
	struct tls *t = s->transport_;
	if (t->established && !t->fatal && !t->sent_close && !t->flushing && t->busy == 0) {
		clear_errors();
		if (SSL_shutdown(t->ssl) >= 0 && t->out_len > 0)
			(void)!send(t->fd, t->out, t->out_len, MSG_DONTWAIT | MSG_NOSIGNAL);
	}
	t->released = true;
	t->s = NULL;
	wake_waiters(t, -EBADF);
	if (t->busy == 0)
		tls_destroy(t);
}

static const struct ur_stream_ops tls_ops = {
    .read = tls_read,
    .writev = tls_writev,
    .shutdown = tls_shutdown,
    .release = tls_release,
};

/* --- the client session cache -------------------------------------------------------------------
 */

/* Takes the caller's reference to @sess. */
static void cache_put(struct ur_tls_ctx *c, const char *key, SSL_SESSION *sess)
{
	struct sess_entry *e = NULL;

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->n_cache; i++)
		if (strcmp(c->cache[i].key, key) == 0)
			e = &c->cache[i];
	if (!e && c->n_cache < SESS_CACHE_MAX) {
		char *k = strdup(key);
		if (k) {
			e = &c->cache[c->n_cache++];
			*e = (struct sess_entry){.key = k};
		}
	}
	if (!e) { /* full: the least recently used goes */
		e = &c->cache[0];
		for (size_t i = 1; i < c->n_cache; i++)
			if (c->cache[i].used < e->used)
				e = &c->cache[i];
		char *k = strdup(key);
		if (k) {
			free(e->key);
			e->key = k;
		} else {
			e = NULL;
		}
	}
	if (e) {
		SSL_SESSION_free(e->sess);
		e->sess = sess;
		e->used = ++c->tick;
	} else {
		SSL_SESSION_free(sess);
	}
	pthread_mutex_unlock(&c->lock);
}

/* A new reference to the session cached for @key, or NULL. */
static SSL_SESSION *cache_get(struct ur_tls_ctx *c, const char *key)
{
	SSL_SESSION *s = NULL;
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->n_cache; i++) {
		if (c->cache[i].sess && strcmp(c->cache[i].key, key) == 0) {
			s = c->cache[i].sess;
			SSL_SESSION_up_ref(s);
			c->cache[i].used = ++c->tick;
			break;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return s;
}

/* OpenSSL hands over each new session (TLS 1.3: each ticket, arriving during reads). */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct tls *t = SSL_get_app_data(ssl);
	if (!t || !t->cache_key || !SSL_SESSION_is_resumable(sess))
		return 0;
	cache_put(t->ctx, t->cache_key, sess);
	return 1; /* we keep the reference */
}

/* --- contexts --------------------------------------------------------------------------------- */

static int alpn_select_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                          const unsigned char *in, unsigned inlen, void *arg)
{
	struct ur_tls_ctx *c = arg;
	unsigned char *sel = NULL;
	(void)ssl;
	if (SSL_select_next_proto(&sel, outlen, c->alpn, (unsigned)c->alpn_len, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

/* "h2,http/1.1" into ALPN's wire format. Returns the length, or -1 if malformed. */
static int alpn_wire(const char *list, unsigned char *out, size_t cap)
{
	size_t n = 0;
	while (*list) {
		size_t len = strcspn(list, ",");
		if (len == 0 || len > 255 || n + 1 + len > cap)
			return -1;
		out[n++] = (unsigned char)len;
		memcpy(out + n, list, len);
		n += len;
		list += len;
		if (*list == ',')
			list++;
	}
	return (int)n;
}

static int config_error(const struct ur_tls_opts *o, const char *what, const char *arg)
{
	if (o && o->errbuf && o->errlen) {
		unsigned long e = ERR_peek_last_error();
		const char *why = e ? ERR_reason_error_string(e) : NULL;
		snprintf(o->errbuf, o->errlen, "%s%s%s%s%s", what, arg ? " " : "", arg ? arg : "",
		         why ? ": " : "", why ? why : "");
	}
	ERR_clear_error();
	return UR_ETLSCONFIG;
}

/* Every certificate of a PEM text into the trust store. */
static int load_ca_pem(SSL_CTX *ssl, const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509_STORE *st = SSL_CTX_get_cert_store(ssl);
	X509 *x;
	int n = 0;
	if (!b)
		return -1;
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
		if (X509_STORE_add_cert(st, x))
			n++;
		X509_free(x);
	}
	BIO_free(b);
	if (n == 0)
		return -1;
	ERR_clear_error(); /* the end of the text reads as "no start line" */
	return 0;
}

/* The leaf, then its chain, from a PEM text. */
static int load_cert_pem(SSL_CTX *ssl, const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x;
	int r = -1;
	if (!b)
		return -1;
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	if (x && SSL_CTX_use_certificate(ssl, x) == 1) {
		r = 0;
		X509 *c;
		while (r == 0 && (c = PEM_read_bio_X509(b, NULL, NULL, NULL)))
			if (SSL_CTX_add0_chain_cert(ssl, c) != 1) {
				X509_free(c);
				r = -1;
			}
		if (r == 0)
			ERR_clear_error();
	}
	X509_free(x);
	BIO_free(b);
	return r;
}

static int load_key_pem(SSL_CTX *ssl, const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	int r = k && SSL_CTX_use_PrivateKey(ssl, k) == 1 ? 0 : -1;
	EVP_PKEY_free(k);
	BIO_free(b);
	return r;
}

static int ctx_configure(struct ur_tls_ctx *c, const struct ur_tls_opts *o)
{
	SSL_CTX *ssl = c->ssl;
	bool server = c->role == UR_TLS_SERVER;
	int minv = o->min_version ? o->min_version : UR_TLS_V1_2;

	if (SSL_CTX_set_min_proto_version(ssl, minv) != 1 ||
	    (o->max_version && SSL_CTX_set_max_proto_version(ssl, o->max_version) != 1))
		return config_error(o, "unsupported protocol version", NULL);
	SSL_CTX_set_options(ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	/* OpenSSL's record buffers follow ours: released while idle unless asked to keep them
	   (a busy connection then pays a malloc and free of each per record otherwise) */
	if (!(o->flags & UR_TLS_KEEP_BUFFERS))
		SSL_CTX_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
	if (o->ciphers && SSL_CTX_set_cipher_list(ssl, o->ciphers) != 1)
		return config_error(o, "cipher list", o->ciphers);

	/* trust */
	bool verify =
	    server ? (o->flags & UR_TLS_REQUIRE_CLIENT_CERT) : !(o->flags & UR_TLS_INSECURE);
	bool own_ca = o->ca_file || o->ca_dir || o->ca_pem;
	if ((o->ca_file || o->ca_dir) &&
	    SSL_CTX_load_verify_locations(ssl, o->ca_file, o->ca_dir) != 1)
		return config_error(o, "CA", o->ca_file ? o->ca_file : o->ca_dir);
	if (o->ca_pem && load_ca_pem(ssl, o->ca_pem) < 0)
		return config_error(o, "CA PEM text", NULL);
	if (verify && (!own_ca || (o->flags & UR_TLS_SYSTEM_TRUST_TOO)) &&
	    SSL_CTX_set_default_verify_paths(ssl) != 1)
		return config_error(o, "system trust store", NULL);
	if (verify)
		SSL_CTX_set_verify(
		    ssl, SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), NULL);
	else
		SSL_CTX_set_verify(ssl, SSL_VERIFY_NONE, NULL);

	/* own certificate */
	if (o->cert_file && SSL_CTX_use_certificate_chain_file(ssl, o->cert_file) != 1)
		return config_error(o, "certificate", o->cert_file);
	if (o->cert_pem && load_cert_pem(ssl, o->cert_pem) < 0)
		return config_error(o, "certificate PEM text", NULL);
	if (o->key_file && SSL_CTX_use_PrivateKey_file(ssl, o->key_file, SSL_FILETYPE_PEM) != 1)
		return config_error(o, "private key", o->key_file);
	if (o->key_pem && load_key_pem(ssl, o->key_pem) < 0)
		return config_error(o, "private key PEM text", NULL);
	bool has_cert = o->cert_file || o->cert_pem, has_key = o->key_file || o->key_pem;
	if (has_cert != has_key || (server && !has_cert))
		return config_error(o,
		                    server ? "a server needs a certificate and its key"
		                           : "a client certificate needs its key",
		                    NULL);
	if (has_cert && SSL_CTX_check_private_key(ssl) != 1)
		return config_error(o, "the private key does not match the certificate", NULL);

	/* ALPN */
	const char *alpn = o->alpn ? o->alpn : (server ? "" : "http/1.1");
	int n = alpn_wire(alpn, c->alpn, sizeof(c->alpn));
	if (n < 0)
		return config_error(o, "ALPN list", alpn);
	c->alpn_len = (size_t)n;
	if (n > 0 && !server && SSL_CTX_set_alpn_protos(ssl, c->alpn, (unsigned)n) != 0)
		return config_error(o, "ALPN list", alpn);
	if (n > 0 && server)
		SSL_CTX_set_alpn_select_cb(ssl, alpn_select_cb, c);

	/* sessions: clients keep them per host in c->cache, servers in OpenSSL's cache + tickets */
	if (server) {
		static const unsigned char sid_ctx[] = "urio";
		SSL_CTX_set_session_id_context(ssl, sid_ctx, sizeof(sid_ctx) - 1);
	} else if (!(o->flags & UR_TLS_NO_RESUME)) {
		SSL_CTX_set_session_cache_mode(ssl, SSL_SESS_CACHE_CLIENT |
		                                        SSL_SESS_CACHE_NO_INTERNAL_STORE);
		SSL_CTX_sess_set_new_cb(ssl, new_session_cb);
		c->cache = calloc(SESS_CACHE_MAX, sizeof(*c->cache));
		if (!c->cache)
			return -ENOMEM;
	} else {
		SSL_CTX_set_session_cache_mode(ssl, SSL_SESS_CACHE_OFF);
	}
	return 0;
}

int ur_tls_ctx_new(struct ur_tls_ctx **ctx, enum ur_tls_role role, const struct ur_tls_opts *o)
{
	static const struct ur_tls_opts defaults;
	struct ur_tls_ctx *c;
	int r;

	if (!ctx || (role != UR_TLS_CLIENT && role != UR_TLS_SERVER))
		return -EINVAL;
	*ctx = NULL;
	if (!o)
		o = &defaults;
	pthread_once(&bio_once, bio_method_init);
	if (!bio_method)
		return -ENOMEM;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->role = role;
	c->flags = o->flags;
	atomic_init(&c->refs, 1);
	pthread_mutex_init(&c->lock, NULL);
	ERR_clear_error();
	c->ssl = SSL_CTX_new(role == UR_TLS_SERVER ? TLS_server_method() : TLS_client_method());
	if (!c->ssl) {
		ur_tls_ctx_free(c);
		return -ENOMEM;
	}
	r = ctx_configure(c, o);
	if (r < 0) {
		ur_tls_ctx_free(c);
		return r;
	}
	*ctx = c;
	return 0;
}

void ur_tls_ctx_free(struct ur_tls_ctx *c)
{
	if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	for (size_t i = 0; i < c->n_cache; i++) {
		free(c->cache[i].key);
		SSL_SESSION_free(c->cache[i].sess);
	}
	free(c->cache);
	SSL_CTX_free(c->ssl);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* --- sessions --------------------------------------------------------------------------------- */

static int tls_new(struct ur_stream *s, struct ur_tls_ctx *ctx, struct tls **out)
{
	struct tls *t = calloc(1, sizeof(*t));
	BIO *bio = NULL;
	if (!t)
		return -ENOMEM;
	ERR_clear_error();
	t->ssl = SSL_new(ctx->ssl);
	bio = t->ssl ? BIO_new(bio_method) : NULL;
	if (!bio) {
		SSL_free(t->ssl);
		free(t);
		return -ENOMEM;
	}
	BIO_set_data(bio, t);
	SSL_set_bio(t->ssl, bio, bio); /* one reference, owned by the SSL */
	SSL_set_app_data(t->ssl, t);
	atomic_fetch_add(&ctx->refs, 1);
	t->ctx = ctx;
	t->s = s;
	t->fd = s->fd;
	*out = t;
	return 0;
}

static int handshake(struct ur_stream *s, struct tls *t)
{
	size_t n;
	ur_stream_set_transport(s, &tls_ops, t);
	int r = drive(t, OP_HANDSHAKE, NULL, 0, &n);
	if (r == TLS_GONE)
		return -EBADF;
	if (r < 0) {
		if (!t->fatal)
			t->fatal = r;
		if (!t->err[0])
			set_text(t, "handshake failed: %s", ur_strerror(r));
		return r;
	}
	t->established = true;
	return 0;
}

bool ur__stream_plain(const struct ur_stream *s); /* proto/stream.c */

static bool stream_ready(const struct ur_stream *s)
{
	size_t buffered;
	ur_stream_buffered(s, &buffered);
	return s && s->fd >= 0 && ur__stream_plain(s) && buffered == 0;
}

int ur_tls_client(struct ur_stream *s, struct ur_tls_ctx *ctx, const char *host)
{
	char name[TLS_HOST_MAX + 1];
	unsigned char ip[16];
	struct tls *t;
	int r;

	if (!ur_task_current())
		return UR_ENOTASK;
	if (!s || !stream_ready(s) || !ctx || ctx->role != UR_TLS_CLIENT || !host)
		return -EINVAL;
	/* "[::1]" -> "::1"; "example.com." -> "example.com" */
	size_t len = strlen(host);
	if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
		host++;
		len -= 2;
	}
	if (len > 1 && host[len - 1] == '.')
		len--;
	if (len == 0 || len > TLS_HOST_MAX)
		return -EINVAL;
	memcpy(name, host, len);
	name[len] = '\0';
	bool is_ip = inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1;

	r = tls_new(s, ctx, &t);
	if (r < 0)
		return r;

	/* the session cache key: host and port ("|" cannot occur in either) */
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	unsigned port = 0;
	if (getpeername(s->fd, (struct sockaddr *)&ss, &sl) == 0)
		port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
		                                      : ((struct sockaddr_in *)&ss)->sin_port);
	size_t klen = len + 8;
	t->cache_key = malloc(klen);
	if (!t->cache_key) {
		tls_destroy(t);
		return -ENOMEM;
	}
	snprintf(t->cache_key, klen, "%s|%u", name, port);

	ERR_clear_error();
	bool ok = true;
	if (!is_ip)
		ok = SSL_set_tlsext_host_name(t->ssl, name) == 1;
	if (ok && !(ctx->flags & UR_TLS_INSECURE)) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
		X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT |
		                                        X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, name) == 1
		           : SSL_set1_host(t->ssl, name) == 1;
	}
	if (!ok) {
		tls_destroy(t);
		return -ENOMEM;
	}
	if (ctx->cache) {
		SSL_SESSION *sess = cache_get(ctx, t->cache_key);
		if (sess) {
			SSL_set_session(t->ssl, sess);
			SSL_SESSION_free(sess);
		}
	}
	SSL_set_connect_state(t->ssl);
	return handshake(s, t);
}

int ur_tls_server(struct ur_stream *s, struct ur_tls_ctx *ctx)
{
	struct tls *t;
	if (!ur_task_current())
		return UR_ENOTASK;
	if (!s || !stream_ready(s) || !ctx || ctx->role != UR_TLS_SERVER)
		return -EINVAL;
	int r = tls_new(s, ctx, &t);
	if (r < 0)
		return r;
	SSL_set_accept_state(t->ssl);
	return handshake(s, t);
}

/* --- queries ---------------------------------------------------------------------------------- */

static struct tls *tls_of(const struct ur_stream *s)
{
	return s && s->fd >= 0 && s->ops_ == &tls_ops ? s->transport_ : NULL;
}

const char *ur_tls_error_text(const struct ur_stream *s)
{
	struct tls *t = tls_of(s);
	return t ? t->err : "";
}

int ur_tls_version(const struct ur_stream *s)
{
	struct tls *t = tls_of(s);
	return t ? SSL_version(t->ssl) : -EINVAL;
}

size_t ur_tls_alpn(const struct ur_stream *s, const char **proto)
{
	struct tls *t = tls_of(s);
	const unsigned char *p = NULL;
	unsigned len = 0;
	if (t)
		SSL_get0_alpn_selected(t->ssl, &p, &len);
	*proto = p ? (const char *)p : "";
	return len;
}

bool ur_tls_resumed(const struct ur_stream *s)
{
	struct tls *t = tls_of(s);
	return t && SSL_session_reused(t->ssl) == 1;
}

void *ur_tls_ssl(const struct ur_stream *s)
{
	struct tls *t = tls_of(s);
	return t ? t->ssl : NULL;
}
