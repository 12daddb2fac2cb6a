/* SPDX-License-Identifier: MIT */
/*
 * core/fault.c - deterministic fault injection at the completion boundary (fault builds only).
 *
 * A fault must be one the kernel could really produce for that operation, and must never hide
 * data the kernel really moved. So nothing here rewrites a real result after the fact:
 *  - short:  the length is shrunk before submission; the kernel really moves fewer bytes.
 *  - eintr, eagain, reset, enobufs: the operation is replaced, before submission, by a NOP
 *            carrying a stand-in tag; its completion is turned into the fault's result. The
 *            kernel did nothing, which is what those results mean. reset first shuts the TCP
 *            connection down for real, so every later operation sees what follows a reset.
 *  - enomem: the start call fails, as when urio's local queue cannot grow.
 *  - delay:  the tail of a reaped batch stays in the CQ until the next turn, order kept.
 * Which operation and descriptor each class applies to, and why: docs/reliability.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault.h"
#include "internal.h"

/* Stand-in NOPs' user_data tags, above the real ones (UR__TAG_*): one per injected result. */
enum {
	TAG_EINTR = 4,
	TAG_EAGAIN = 5,
	TAG_RESET = 6,
	TAG_ENOBUFS = 7,
};
_Static_assert((int)UR__TAG_SKIP < (int)TAG_EINTR && (int)TAG_ENOBUFS <= (int)UR__TAG_MASK,
               "stand-in tags overlap the real ones");

struct ur__fault {
	uint64_t seed; /* the run's seed mixed with this loop's ordinal */
	uint64_t starts, reaps;
	uint64_t at[UR__FAULT_NSITES]; /* decisions drawn per internal site */
	double rate;
	unsigned classes;
	unsigned ordinal;
	bool cut_last; /* the previous reap left CQEs behind: this one takes everything */
	unsigned long count[UR__FAULT_NCLASSES];
	unsigned long at_count[UR__FAULT_NSITES]; /* of count[enomem], those at internal sites */
};

static atomic_uint loops_made;

/* splitmix64: a good 64-bit mix of a counter, so decision n does not depend on decision n-1. */
static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static bool fires(const struct ur__fault *ft, uint64_t x)
{
	return (double)(x >> 11) * 0x1.0p-53 < ft->rate;
}

static unsigned parse_spec(const char *spec)
{
	static const char *const names[] = {UR__FAULT_NAMES};
	unsigned m = 0;
	if (!spec || !*spec || !strcmp(spec, "all"))
		return (1u << UR__FAULT_NCLASSES) - 1;
	for (const char *p = spec; *p;) {
		size_t n = strcspn(p, ",");
		for (unsigned i = 0; i < UR__FAULT_NCLASSES; i++)
			if (strlen(names[i]) == n && !strncmp(p, names[i], n))
				m |= 1u << i;
		p += n + (p[n] == ',');
	}
	return m;
}

void ur__fault_init(struct ur_loop *l)
{
	const char *seed = getenv("UR_FAULT_SEED");
	const char *rate = getenv("UR_FAULT_RATE");
	l->fault = NULL;
	if (!seed || !*seed)
		return;
	struct ur__fault *ft = calloc(1, sizeof(*ft));
	if (!ft)
		return; /* no faults then: the test harness notices nothing was injected */
	ft->ordinal = atomic_fetch_add(&loops_made, 1);
	ft->seed = mix(strtoull(seed, NULL, 0) ^ mix(ft->ordinal));
	ft->rate = rate && *rate ? strtod(rate, NULL) : 0.1;
	ft->classes = parse_spec(getenv("UR_FAULT_SPEC"));
	l->fault = ft;
}

/* Appends the loop's counts to UR_FAULT_LOG, if set: how a pass shows it injected anything. */
void ur__fault_free(struct ur_loop *l)
{
	static const char *const names[] = {UR__FAULT_NAMES};
	struct ur__fault *ft = l->fault;
	const char *path = getenv("UR_FAULT_LOG");
	if (!ft)
		return;
	l->fault = NULL;
	if (path && *path) {
		char line[256];
		int len = snprintf(line, sizeof(line), "loop %u:", ft->ordinal);
		static const char *const sites[] = {UR__FAULT_SITE_NAMES};
		for (unsigned i = 0; i < UR__FAULT_NCLASSES; i++)
			len += snprintf(line + len, sizeof(line) - (size_t)len, " %s=%lu", names[i],
			                ft->count[i]);
		/* of enomem, those at the internal sites (counted once above, not again) */
		len += snprintf(line + len, sizeof(line) - (size_t)len, " (enomem at");
		for (unsigned i = 0; i < UR__FAULT_NSITES; i++)
			len += snprintf(line + len, sizeof(line) - (size_t)len, " %s:%lu", sites[i],
			                ft->at_count[i]);
		len += snprintf(line + len, sizeof(line) - (size_t)len, ")");
		line[len++] = '\n';
		int saved = errno;
		int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (fd >= 0) {
			ssize_t w = write(fd, line, (size_t)len); /* O_APPEND: one line, whole */
			(void)w;
			close(fd);
		}
		errno = saved;
	}
	free(ft);
}

/* What a descriptor is, as far as the honesty of each fault goes. */
enum fd_kind {
	FD_OTHER,  /* eventfd, timerfd, directory, O_DIRECT file...: only enomem and delay */
	FD_FILE,   /* regular file: short transfers only (a disk read is not interrupted) */
	FD_SLOW,   /* pipe, FIFO, character device: short, eintr, eagain */
	FD_STREAM, /* stream socket (not TCP): short, eintr, eagain */
	FD_TCP,    /* connected TCP socket: everything */
	FD_DGRAM,  /* other sockets: eintr, eagain; never short (a datagram would be cut) */
};

static enum fd_kind fd_kind(int fd, bool *nonblock)
{
	struct stat st;
	int fl = fcntl(fd, F_GETFL);
	*nonblock = fl >= 0 && (fl & O_NONBLOCK);
	if (fl < 0 || fstat(fd, &st) < 0)
		return FD_OTHER;
	if (S_ISREG(st.st_mode))
		return (fl & O_DIRECT) ? FD_OTHER
		                       : FD_FILE; /* O_DIRECT lengths must stay aligned */
	if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode))
		return FD_SLOW;
	if (!S_ISSOCK(st.st_mode))
		return FD_OTHER;
	int type = 0, domain = 0;
	socklen_t len = sizeof(type);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM)
		return FD_DGRAM;
	len = sizeof(domain);
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 &&
	    (domain == AF_INET || domain == AF_INET6) &&
	    getpeername(fd, (struct sockaddr *)&peer, &plen) == 0)
		return FD_TCP;
	return FD_STREAM;
}

/* The classes that may honestly hit this operation. */
static unsigned eligible(const struct ur__op *o, const struct io_uring_sqe *s, bool *shrink_ok)
{
	unsigned op = s->opcode, m = UR__FAULT_ENOMEM;
	bool multi = ur__op_traits(o->kind) & UR__OPF_MULTI, nonblock = false;
	bool rw = op == IORING_OP_READ || op == IORING_OP_WRITE || op == IORING_OP_READV ||
	          op == IORING_OP_WRITEV;
	bool sr = op == IORING_OP_RECV || op == IORING_OP_SEND || op == IORING_OP_RECVMSG ||
	          op == IORING_OP_SENDMSG;

	*shrink_ok = false;
	/*
	 * A real -ENOMEM comes from ur__op_begin, before a start call has done anything; here the
	 * call has already acted where it does before ur__op_end (close and cancel-by-fd end
	 * starved recvs, a multishot recv counts itself on its ring), so those are left alone.
	 * A close that fails would also leave the descriptor open, which no caller can recover.
	 */
	if (op == IORING_OP_CLOSE || op == IORING_OP_ASYNC_CANCEL)
		return 0;
	if (multi)
		return op == IORING_OP_RECV ? UR__FAULT_ENOBUFS : m;
	if (!rw && !sr && op != IORING_OP_ACCEPT)
		return m;

	enum fd_kind k = fd_kind(s->fd, &nonblock);
	bool sock = k == FD_TCP || k == FD_STREAM || k == FD_DGRAM;
	if (sr && !sock)
		return m;
	if (op == IORING_OP_ACCEPT)
		return m | UR__FAULT_EINTR | (nonblock ? UR__FAULT_EAGAIN : 0);
	if (sr && (s->msg_flags & MSG_DONTWAIT))
		nonblock = true;
	if (k != FD_OTHER && k != FD_FILE) {
		m |= UR__FAULT_EINTR;
		if (nonblock)
			m |= UR__FAULT_EAGAIN;
	}
	if (k == FD_TCP)
		m |= UR__FAULT_RESET;
	/* MSG_WAITALL promises the whole length; recvmsg/sendmsg's iovecs are the caller's. */
	bool vec_ok = (op != IORING_OP_READV && op != IORING_OP_WRITEV) || s->len > 1;
	if ((k == FD_FILE || k == FD_SLOW || k == FD_STREAM || k == FD_TCP) && vec_ok &&
	    op != IORING_OP_RECVMSG && op != IORING_OP_SENDMSG && s->len > 1 &&
	    !(op == IORING_OP_RECV && (s->msg_flags & MSG_WAITALL))) {
		m |= UR__FAULT_SHORT;
		*shrink_ok = true;
	}
	return m;
}

/* The NOPs that stand for reserved SQEs of a refused start: owned by the loop (user_data 0). */
static void release(struct ur_loop *l, struct io_uring_sqe *s)
{
	if (!s)
		return;
	io_uring_prep_nop(s);
	io_uring_sqe_set_data64(s, 0);
	l->inflight++;
}

int ur__fault_start(struct ur_loop *l, struct ur_future *f, struct ur__op *op)
{
	struct ur__fault *ft = l->fault;
	if (f->flags_ & UR__F_INTERNAL)
		return 0; /* urio's own wake-up read: its failure is not the caller's to see */
	uint64_t x = mix(ft->seed + ++ft->starts);
	if (!fires(ft, x))
		return 0;
	int saved = errno;
	bool shrink_ok;
	unsigned m = eligible(op, op->sqe, &shrink_ok) & ft->classes & ~(unsigned)UR__FAULT_DELAY;
	errno = saved;
	if (!m)
		return 0;
	/* One of the eligible classes, chosen by the same draw. */
	unsigned pick = (unsigned)((x >> 8) & 0xff) % (unsigned)__builtin_popcount(m);
	while (pick--)
		m &= m - 1;
	unsigned cls = m & -m;
	ft->count[__builtin_ctz(cls)]++;
	switch (cls) {
	case UR__FAULT_SHORT:
		op->sqe->len = 1 + (unsigned)((x >> 16) % (op->sqe->len - 1));
		return 0;
	case UR__FAULT_ENOMEM:
		release(l, op->aux);
		release(l, op->sqe);
		release(l, op->lt);
		return -ENOMEM;
	case UR__FAULT_EINTR:
		return TAG_EINTR;
	case UR__FAULT_EAGAIN:
		return TAG_EAGAIN;
	case UR__FAULT_RESET:
		/* Really: later operations see EOF and -EPIPE, as after a reset; the peer sees it.
		 */
		saved = errno;
		shutdown(op->sqe->fd, SHUT_RDWR);
		errno = saved;
		return TAG_RESET;
	default:
		return TAG_ENOBUFS;
	}
}

void ur__fault_commit(struct ur_loop *l, struct ur_future *f, struct ur__op *op, int tag)
{
	struct io_uring_sqe *s = op->sqe;
	uint8_t link = s->flags & (IOSQE_IO_LINK | IOSQE_IO_HARDLINK); /* a deadline's chain */
	(void)l;
	io_uring_prep_nop(s);
	s->flags = link;
	io_uring_sqe_set_data64(s, ur__ud(f, (unsigned)tag));
}

void ur__fault_cqe(uint64_t *ud, int32_t *res, uint32_t *flags)
{
	static const int32_t results[] = {-EINTR, -EAGAIN, -ECONNRESET, -ENOBUFS};
	unsigned tag = ur__ud_tag(*ud);
	if (tag < TAG_EINTR)
		return;
	*ud = ur__ud(ur__ud_future(*ud), UR__TAG_MAIN);
	*res = results[tag - TAG_EINTR];
	*flags = 0;
}

bool ur__fault_enomem(struct ur_loop *l, unsigned site)
{
	struct ur__fault *ft = l->fault;
	if (!(ft->classes & UR__FAULT_ENOMEM) || site >= UR__FAULT_NSITES)
		return false;
	/* A sequence per site, apart from the starts' (seed + n) and the reaps' (~seed + n). */
	uint64_t x = mix(mix(ft->seed ^ (0x5157ull + site)) + ++ft->at[site]);
	if (!fires(ft, x))
		return false;
	ft->count[__builtin_ctz(UR__FAULT_ENOMEM)]++;
	ft->at_count[site]++;
	return true;
}

unsigned ur__fault_cut(struct ur_loop *l, unsigned n)
{
	struct ur__fault *ft = l->fault;
	if (!(ft->classes & UR__FAULT_DELAY) || ft->cut_last) {
		ft->cut_last = false;
		return n;
	}
	uint64_t x = mix(~ft->seed + ++ft->reaps);
	if (!fires(ft, x))
		return n;
	unsigned take = (unsigned)((x >> 8) % n);
	ft->cut_last = true;
	ft->count[__builtin_ctz(UR__FAULT_DELAY)] += n - take;
	if (l->poll_fd >= 0) {
		/* A host polls this eventfd: what stays behind must wake it again, as a later CQE
		 * would. */
		uint64_t one = 1;
		int saved = errno;
		ssize_t w = write(l->poll_fd, &one, sizeof(one));
		(void)w;
		errno = saved;
	}
	return take;
}
