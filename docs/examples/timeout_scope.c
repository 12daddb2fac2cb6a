/* SPDX-License-Identifier: MIT */
/*
 * timeout_scope.c - asyncio.timeout(): a deadline over a whole block of task code. A "request"
 * reads a header and then a body from a peer that stalls after the header: the scope bounds
 * both reads together (and anything else the block waits on), the nested scope shows that the
 * earliest deadline wins, and reschedule() moves a deadline once the block knows more.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include <urio.h>

/* Reads a 4-byte header, then a body of 8 bytes; the peer sends only the header. */
static int read_request(int fd)
{
	char head[4], body[8];
	ssize_t n = ur_read_all(fd, head, sizeof(head), UR_OFF_CURRENT);
	if (n < 0)
		return (int)n;
	n = ur_read_all(fd, body, sizeof(body), UR_OFF_CURRENT);
	return n < 0 ? (int)n : 0;
}

static int main_task(void *arg)
{
	int *sv = arg, ok = 1;
	struct ur_timeout to, inner;

	/* async with asyncio.timeout(0.05): both reads share one 50 ms budget. */
	if (write(sv[1], "HEAD", 4) != 4)
		return -1;
	uint64_t t0 = ur_now_ns();
	ur_timeout_begin(&to, 50 * UR_MSEC);
	int r = read_request(sv[0]);
	int end = ur_timeout_end(&to);
	printf("request: %s, scope: %s, after %.0f ms\n", ur_strerror_name(r),
	       ur_strerror_name(end), (double)(ur_now_ns() - t0) / 1e6);
	ok &= r == -ETIMEDOUT && end == -ETIMEDOUT;

	/* Nested: the outer 20 ms deadline bounds the inner block, whose own is 10 s. */
	ur_timeout_begin(&to, 20 * UR_MSEC);
	ur_timeout_begin(&inner, 10 * UR_SEC);
	r = ur_sleep(UR_SEC);
	int inner_end = ur_timeout_end(&inner);
	end = ur_timeout_end(&to);
	printf("nested: sleep %s, inner scope %s, outer scope %s\n", ur_strerror_name(r),
	       ur_strerror_name(inner_end), ur_strerror_name(end));
	ok &= r == -ETIMEDOUT && inner_end == 0 && end == -ETIMEDOUT;

	/* reschedule(): start with no deadline, set one once known (timeout(None) + reschedule). */
	ur_timeout_begin(&to, UR_NO_DEADLINE);
	ur_timeout_reschedule(&to, ur_now_ns() + 10 * UR_MSEC);
	r = ur_sleep(UR_SEC);
	end = ur_timeout_end(&to);
	printf("rescheduled: sleep %s, scope %s\n", ur_strerror_name(r), ur_strerror_name(end));
	ok &= r == -ETIMEDOUT && end == -ETIMEDOUT;

	/* After the blocks, waits work again. */
	r = ur_sleep(UR_MSEC);
	printf("after: sleep %s\n", ur_strerror_name(r));
	return ok && r == 0 ? 0 : -1;
}

int main(void)
{
	int sv[2], result = -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 1;
	int r = ur_run(NULL, main_task, sv, &result);
	close(sv[0]);
	close(sv[1]);
	return r < 0 || result < 0;
}
