/* SPDX-License-Identifier: MIT */
/*
 * tools/repro/eventfd_in_eventfd.c - raw liburing reproduction of a kernel behaviour urio works
 * around in ur_loop_wake() (core/loop.c).
 *
 * A ring has eventfd A registered (io_uring_register_eventfd) and a read of eventfd B in flight.
 * Another thread writes B; the read completes from inside B's wake-up, and the ring should then
 * signal A, so a poll(2) on A wakes. Round after round (drain A, reap, re-arm the read, write B
 * again), A should fire every time. On Linux 6.18 with DEFER_TASKRUN it fires the first time
 * only: the signal of A is raised from inside the write of B (eventfd_signal_allowed() is false
 * there), io_uring defers it, and the deferred signal is not raised again on later rounds.
 *
 *   cc -O2 tools/repro/eventfd_in_eventfd.c -o /tmp/repro -luring -lpthread && /tmp/repro
 *
 * Prints one line per setup and kind of B: "rounds woken: N of 20"; exits 1 if any missed a
 * round. Measured on 6.18: 20 of 20 everywhere except DEFER_TASKRUN with B an eventfd, 1 of 20;
 * with B a pipe (the control) DEFER_TASKRUN wakes every round too.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define ROUNDS 20

static void *write_b(void *arg)
{
	uint64_t one = 1;
	if (write(*(int *)arg, &one, sizeof(one)) != sizeof(one))
		perror("write");
	return NULL;
}

/* @pipe_b: B is a pipe instead of an eventfd (the control: then every round wakes). */
static int run(unsigned flags, const char *name, int pipe_b)
{
	struct io_uring ring;
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	p.flags = flags;
	int ret = io_uring_queue_init_params(8, &ring, &p);
	if (ret < 0) {
		printf("%-30s setup refused: %s\n", name, strerror(-ret));
		return 0;
	}
	int a = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int b = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), rb = b, pp[2];
	if (pipe_b && pipe2(pp, O_CLOEXEC) == 0) {
		close(b);
		rb = pp[0];
		b = pp[1];
	}
	io_uring_register_eventfd(&ring, a);
	uint64_t buf, drain;
	int woken = 0;
	for (int round = 0; round < ROUNDS; round++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
		io_uring_prep_read(sqe, rb, &buf, sizeof(buf), 0);
		io_uring_submit(&ring);
		/* Make sure the read is armed (it found B empty) before the other thread writes. */
		io_uring_submit_and_get_events(&ring);
		if (read(a, &drain, sizeof(drain)) < 0) {
			/* nothing to drain: expected */
		}
		pthread_t th;
		pthread_create(&th, NULL, write_b, &b);
		struct pollfd pfd = {.fd = a, .events = POLLIN};
		int n = poll(&pfd, 1, 1000);
		pthread_join(th, NULL);
		woken += n == 1;
		struct io_uring_cqe *cqe;
		io_uring_wait_cqe(&ring, &cqe); /* the read's completion, woken or not */
		io_uring_cqe_seen(&ring, cqe);
		if (read(a, &drain, sizeof(drain)) < 0) {
			/* poll did not fire: A was never signalled */
		}
	}
	printf("%-30s B = %-7s rounds woken: %2d of %d\n", name, pipe_b ? "pipe" : "eventfd", woken,
	       ROUNDS);
	io_uring_queue_exit(&ring);
	close(a);
	close(b);
	if (rb != b)
		close(rb);
	return woken == ROUNDS ? 0 : 1;
}

int main(void)
{
	int bad = 0;
	for (int pipe_b = 0; pipe_b < 2; pipe_b++) {
		bad |= run(0, "plain setup", pipe_b);
		bad |= run(IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN", pipe_b);
		bad |= run(IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		           "SINGLE_ISSUER | DEFER_TASKRUN", pipe_b);
	}
	return bad;
}
