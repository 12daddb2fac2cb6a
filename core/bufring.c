/* SPDX-License-Identifier: MIT */
/*
 * core/bufring.c - provided buffer rings (IORING_REGISTER_PBUF_RING, 5.19) and the multishot recv
 * that feeds from them.
 *
 * One mmap holds the ring of buffer descriptors (page aligned, as the kernel requires) followed by
 * the buffers. The kernel consumes descriptors from the ring's head; ur_bufring_recycle() appends
 * at the tail. @avail counts what the kernel can still pick: it tells whether a multishot recv
 * that stopped with -ENOBUFS can be re-armed now or must wait for a recycle.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

struct ur_bufring {
	struct ur_loop *loop;
	struct io_uring_buf_ring *ring;
	unsigned char *bufs;
	size_t map_len;
	size_t size;
	unsigned count;
	unsigned avail;
	unsigned users; /* multishot recvs started on it and not finally completed */
	uint16_t bgid;
	struct ur_future *starved; /* recvs stopped by -ENOBUFS, waiting for a recycle */
	struct ur_bufring *next;   /* the loop's list */
};

int ur_bufring_new(struct ur_loop *l, struct ur_bufring **brp, unsigned count, size_t size)
{
	*brp = NULL;
	if (count == 0 || count > 32768 || (count & (count - 1)) || size == 0 || size > UINT32_MAX)
		return -EINVAL;
	UR__ASSERT_OWNER(l);
	if (l->closing)
		return UR_ELOOPCLOSED;

	struct ur_bufring *br = calloc(1, sizeof(*br));
	if (!br)
		return -ENOMEM;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t ring_len = (count * sizeof(struct io_uring_buf) + page - 1) & ~(page - 1);
	br->map_len = ring_len + (size_t)count * size;
	void *mem =
	    mmap(NULL, br->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		free(br);
		return -ENOMEM;
	}
	br->loop = l;
	br->ring = mem;
	br->bufs = (unsigned char *)mem + ring_len;
	br->size = size;
	br->count = count;
	br->bgid = l->next_bgid++;

	struct io_uring_buf_reg reg = {
	    .ring_addr = (uint64_t)(uintptr_t)mem,
	    .ring_entries = count,
	    .bgid = br->bgid,
	};
	int ret = io_uring_register_buf_ring(&l->ring, &reg, 0);
	if (ret < 0) {
		munmap(mem, br->map_len);
		free(br);
		return ret == -EINVAL ? -EOPNOTSUPP : ret;
	}
	io_uring_buf_ring_init(br->ring);
	for (unsigned i = 0; i < count; i++)
		io_uring_buf_ring_add(br->ring, br->bufs + (size_t)i * size, (unsigned)size,
		                      (unsigned short)i, io_uring_buf_ring_mask(count), (int)i);
	io_uring_buf_ring_advance(br->ring, (int)count);
	br->avail = count;
	br->next = l->bufrings;
	l->bufrings = br;
	*brp = br;
	return 0;
}

/* Takes @br off its loop and out of the kernel; its memory stays the program's. */
static void detach(struct ur_bufring *br)
{
	struct ur_loop *l = br->loop;
	for (struct ur_bufring **pp = &l->bufrings; *pp; pp = &(*pp)->next) {
		if (*pp == br) {
			*pp = br->next;
			break;
		}
	}
	io_uring_unregister_buf_ring(&l->ring, br->bgid);
	br->loop = NULL;
}

int ur_bufring_free(struct ur_bufring **brp)
{
	struct ur_bufring *br = brp ? *brp : NULL;
	if (!br)
		return 0;
	if (br->users)
		return -EBUSY;
	if (br->loop)
		detach(br);
	munmap(br->ring, br->map_len);
	free(br);
	*brp = NULL;
	return 0;
}

void *ur_bufring_buf(const struct ur_bufring *br, int bid)
{
	return bid >= 0 && (unsigned)bid < br->count ? br->bufs + (size_t)bid * br->size : NULL;
}

size_t ur_bufring_size(const struct ur_bufring *br)
{
	return br->size;
}

unsigned ur_bufring_available(const struct ur_bufring *br)
{
	return br->avail;
}

int ur_future_buffer(const struct ur_future *f)
{
	if (!(f->cqe_flags & IORING_CQE_F_BUFFER))
		return -1;
	return (int)(f->cqe_flags >> IORING_CQE_BUFFER_SHIFT);
}

void ur_bufring_recycle(struct ur_bufring *br, int bid)
{
	if (bid < 0 || (unsigned)bid >= br->count || !br->loop)
		return; /* no such buffer, or the loop is gone and no kernel reads the ring */
	UR__ASSERT_OWNER(br->loop);
	io_uring_buf_ring_add(br->ring, br->bufs + (size_t)bid * br->size, (unsigned)br->size,
	                      (unsigned short)bid, io_uring_buf_ring_mask(br->count), 0);
	/* Publishes the descriptor with a release store of the tail: the kernel may use it now. */
	io_uring_buf_ring_advance(br->ring, 1);
	br->avail++;
	while (br->starved && !br->loop->closing) {
		struct ur_future *f = br->starved;
		br->starved = f->next_;
		f->flags_ &= (uint16_t)~UR__F_STARVED;
		ur__recv_multi_rearm(br->loop, f);
	}
}

void ur__bufring_took(struct ur_bufring *br, uint32_t cqe_flags)
{
	(void)cqe_flags;
	if (br->avail)
		br->avail--;
}

void ur__bufring_starve(struct ur_bufring *br, struct ur_future *f)
{
	f->flags_ |= UR__F_STARVED;
	f->next_ = br->starved;
	br->starved = f;
}

bool ur__bufring_unstarve(struct ur_bufring *br, struct ur_future *f)
{
	for (struct ur_future **pp = &br->starved; *pp; pp = &(*pp)->next_) {
		if (*pp == f) {
			*pp = f->next_;
			f->flags_ &= (uint16_t)~UR__F_STARVED;
			return true;
		}
	}
	return false;
}

/* The inode of @fd's file, or 0 if @fd is not open. Sockets' inodes are unique while open. */
static int64_t fd_identity(int fd)
{
	struct stat st;
	int saved = errno;
	int r = fstat(fd, &st);
	errno = saved;
	return r == 0 ? (int64_t)st.st_ino : 0;
}

/* A multishot recv keeps what it needs to re-arm in its scratch (recv_multi). */
static void prep_recv_multi(struct io_uring_sqe *sqe, struct ur_future *f)
{
	const union ur__scratch *sc = ur__csc(f);
	io_uring_prep_recv_multishot(sqe, sc->recv_multi.fd, NULL, 0, sc->recv_multi.flags);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = sc->recv_multi.br->bgid;
}

int ur_recv_multishot_start(struct ur_loop *l, struct ur_future *f, int fd, struct ur_bufring *br,
                            int flags)
{
	struct ur__op op;
	if (!br || br->loop != l)
		return -EINVAL;
	int ret = ur__op_begin(l, f, UR__OP_RECV_MULTI, &op);
	if (ret)
		return ret;
	ur__sc(f)->recv_multi.fd = fd;
	ur__sc(f)->recv_multi.flags = flags;
	ur__sc(f)->recv_multi.ino = fd_identity(fd);
	ur__sc(f)->recv_multi.br = br;
	prep_recv_multi(op.sqe, f);
	br->users++;
	return ur__op_end(l, f, &op);
}

/*
 * Arms a multishot recv again after the kernel stopped it; the future stays pending.
 *
 * The descriptor may have been closed meanwhile: ur_close_start()'s cancel-by-fd cannot see a
 * recv the kernel had already ended, whose -ENOBUFS was still on its way to us, and by now the
 * number may even name a new socket. Re-arming then would read someone else's data, so the
 * socket's identity (its inode, unique while open) is checked first; if it changed, the recv
 * ends as cancelled, as close promises. One fstat(2), on this slow path only. The close may also
 * be started but not yet submitted (a callback of this very batch closed the socket, before
 * its -ENOBUFS was reaped): the descriptor is still open, but re-arming would start a recv
 * behind the close. So the queues are searched for such a close too.
 */
void ur__recv_multi_rearm(struct ur_loop *l, struct ur_future *f)
{
	union ur__scratch *sc = ur__sc(f);
	struct ur_bufring *br = sc->recv_multi.br;
	struct io_uring_sqe *sqe;

	if (sc->recv_multi.ino == 0 || fd_identity(sc->recv_multi.fd) != sc->recv_multi.ino ||
	    ur__close_queued(l, sc->recv_multi.fd)) {
		f->flags_ |= UR__F_CANCEL;
		ur__complete_local(l, f, -ECANCELED);
		return;
	}
	if (br->avail == 0) {
		ur__bufring_starve(br, f);
		return;
	}
	/* No room to arm it again: the recv ends here, with the error, like a refused start. */
	int ret = UR__FAULT_ENOMEM(l, UR__FAULT_AT_REARM) ? -ENOMEM : ur__reserve(l, 1, &sqe);
	if (ret < 0) {
		ur__complete_local(l, f, ret);
		return;
	}
	if (ret == 1)
		f->flags_ |= UR__F_QUEUED;
	prep_recv_multi(sqe, f);
	io_uring_sqe_set_data64(sqe, ur__ud(f, UR__TAG_MAIN));
	f->owed_ = 1;
	l->inflight++;
}

void ur__bufring_done(struct ur_future *f)
{
	struct ur_bufring *br = ur__sc(f)->recv_multi.br;
	if (br && br->users)
		br->users--;
}

/*
 * A recv waiting for a recycled buffer is in no kernel queue, so a cancel-by-fd cannot find it:
 * ur_close_start() and ur_cancel_fd_start() end those here (all of them, or the first with
 * @one). Returns how many.
 */
unsigned ur__bufring_cancel_fd(struct ur_loop *l, int fd, bool one)
{
	unsigned n = 0;
	for (struct ur_bufring *br = l->bufrings; br; br = br->next) {
		struct ur_future **pp = &br->starved;
		while (*pp) {
			struct ur_future *f = *pp;
			if (ur__sc(f)->recv_multi.fd != fd) {
				pp = &f->next_;
				continue;
			}
			*pp = f->next_;
			f->flags_ |= UR__F_CANCEL;
			ur__complete_local(l, f, -ECANCELED);
			if (++n && one)
				return n;
		}
	}
	return n;
}

void ur__bufring_teardown(struct ur_loop *l)
{
	for (struct ur_bufring *br = l->bufrings; br; br = br->next) {
		while (br->starved) {
			struct ur_future *f = br->starved;
			br->starved = f->next_;
			ur__complete_local(l, f, -ECANCELED);
		}
	}
}

/*
 * The loop goes; its rings stay until ur_bufring_free(), in either order: the program may still
 * hold buffers a completion gave it, and the ring pointer it keeps must not dangle.
 */
void ur__bufring_detach_all(struct ur_loop *l)
{
	while (l->bufrings)
		detach(l->bufrings);
}

/* A ring buffer's send keeps the ring and the buffer id in its scratch; ur__op_fix recycles it. */
int ur_send_buffer_start(struct ur_loop *l, struct ur_future *f, int fd, struct ur_bufring *br,
                         int bid, size_t len, int flags)
{
	struct ur__op op;
	if (!br || br->loop != l || !ur_bufring_buf(br, bid) || len > br->size)
		return -EINVAL;
	int ret = ur__op_begin(l, f, UR__OP_SEND_BUFFER, &op);
	if (ret)
		return ret;
	io_uring_prep_send(op.sqe, fd, ur_bufring_buf(br, bid), len, flags | MSG_WAITALL);
	ur__sc(f)->send_buffer.br = br;
	ur__sc(f)->send_buffer.bid = bid;
	return ur__op_end(l, f, &op);
}

void ur__send_buffer_done(struct ur_future *f)
{
	struct ur_bufring *br = ur__sc(f)->send_buffer.br;
	ur__sc(f)->send_buffer.br = NULL;
	ur_bufring_recycle(br, ur__sc(f)->send_buffer.bid);
}
