/* SPDX-License-Identifier: MIT */
/*
 * urio/bufring.h - provided buffer rings for multishot receives.
 *
 * A buffer ring is a set of equal-sized buffers that the kernel picks from when data arrives, so a
 * multishot recv needs no buffer of its own until there is something to put in it. liburing 2.3
 * has no setup helper; this is it. The kernel owns a buffer from the moment it is in the ring
 * until a completion names it; the program owns it from then until ur_bufring_recycle().
 */
#ifndef URIO_BUFRING_H
#define URIO_BUFRING_H

#include <stddef.h>
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ur_bufring;

/*
 * Creates a ring of @count buffers of @size bytes each (@count a power of two, 1..32768) and
 * registers it with @loop's io_uring under a group id urio picks. Every buffer starts in the ring.
 * Returns 0 and stores the ring in *@br, or -EINVAL, -ENOMEM, or the kernel's error
 * (-EOPNOTSUPP where the kernel has no buffer rings, before 5.19).
 */
UR_EXPORT int ur_bufring_new(struct ur_loop *loop, struct ur_bufring **br, unsigned count,
                             size_t size);

/*
 * Unregisters and frees the ring and its buffers; sets *@br to NULL. No operation may still be
 * using it (cancel them and wait for their final completions first): returns -EBUSY otherwise.
 * The ring is the program's to free, before or after its loop: ur_loop_free() only unregisters
 * it (its buffers stay readable; recycling then does nothing), and never frees it.
 */
UR_EXPORT int ur_bufring_free(struct ur_bufring **br);

/*
 * A buffer id is an int everywhere: ur_future_buffer() gives one (or -1), the calls below take
 * one. The buffer with id @bid (from ur_future_buffer()), or NULL if there is no such buffer.
 */
UR_EXPORT void *ur_bufring_buf(const struct ur_bufring *br, int bid);

/* Size of each buffer. */
UR_EXPORT size_t ur_bufring_size(const struct ur_bufring *br);

/* Buffers currently in the ring, available to the kernel. */
UR_EXPORT unsigned ur_bufring_available(const struct ur_bufring *br);

/*
 * Gives buffer @bid back to the kernel. A multishot recv stopped because the ring ran dry is
 * re-armed here. Must be called once per buffer a completion delivered (ur_send_buffer_start()
 * and ur_send_buffer() do it for you). An id out of range (-1 included) is ignored.
 */
UR_EXPORT void ur_bufring_recycle(struct ur_bufring *br, int bid);

/*
 * Sends the first @len bytes of buffer @bid of @br on socket @fd, all of them (MSG_WAITALL is
 * added to @flags: the kernel retries short sends), then recycles the buffer: it is back in the
 * ring by the time @f's callback runs, whatever the result. This is the echo/proxy step of a
 * multishot-recv server, without a FIFO of buffer ids per connection: each send future keeps its
 * own. res = the bytes sent, or -errno. No deadline on such a start (-EINVAL).
 * Returns as the other start calls (urio/io.h), and -EINVAL for a bad @bid or @len; on failure
 * the buffer is still the caller's.
 */
UR_EXPORT int ur_send_buffer_start(struct ur_loop *loop, struct ur_future *f, int fd,
                                   struct ur_bufring *br, int bid, size_t len, int flags);

/* The buffer id a completion of @f delivered, or -1 if it carries no buffer. */
UR_EXPORT int ur_future_buffer(const struct ur_future *f);

#ifdef __cplusplus
}
#endif

#endif
