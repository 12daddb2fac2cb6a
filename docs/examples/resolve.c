/* SPDX-License-Identifier: MIT */
/*
 * resolve.c - asyncio.to_thread() for a call with a pointer result: getaddrinfo() on the worker
 * pool with ur_to_thread_ptr(). Its result is handed back apart from the call's status, so an
 * EAI_* code never reads as a -errno; and when the caller gives up (here a timeout scope ends
 * the wait while a slow lookup still runs), the release function frees the query once the
 * lookup has returned, so nobody keeps a reference count by hand.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <urio.h>

struct query {
	const char *host;
	unsigned delay_ms; /* a slow resolver, for the demonstration */
	int eai;           /* getaddrinfo's own result */
	struct addrinfo *ai;
};

static int released;

/* On a worker thread: blocking is fine here. */
static void *lookup(void *arg)
{
	struct query *q = arg;
	struct addrinfo hints = {
	    .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST};
	usleep(q->delay_ms * 1000u);
	q->eai = getaddrinfo(q->host, "80", &hints, &q->ai);
	return q;
}

/*
 * On the loop's thread, only if the caller left before lookup() returned. @result is NULL if
 * lookup() never ran (the caller left while the job was still queued): free through @arg.
 */
static void drop(void *arg, void *result)
{
	struct query *q = arg;
	(void)result;
	if (q->ai)
		freeaddrinfo(q->ai);
	free(q);
	released++;
}

static int resolve(const char *host, unsigned delay_ms, uint64_t budget)
{
	struct query *q = calloc(1, sizeof(*q));
	struct ur_timeout to;
	void *res;
	if (!q)
		return -ENOMEM;
	*q = (struct query){.host = host, .delay_ms = delay_ms};
	ur_timeout_begin(&to, budget);
	int r = ur_to_thread_ptr(lookup, q, drop, &res);
	ur_timeout_end(&to);
	if (r < 0) {
		/* -ETIMEDOUT / -ECANCELED: drop() frees q later; anything else: q is still ours. */
		if (r != -ETIMEDOUT && r != -ECANCELED)
			free(q);
		printf("%-12s %s\n", host, ur_strerror_name(r));
		return r;
	}
	q = res;
	if (q->eai)
		printf("%-12s getaddrinfo: %s\n", host, gai_strerror(q->eai));
	else
		printf("%-12s %s address\n", host, q->ai->ai_family == AF_INET6 ? "IPv6" : "IPv4");
	int eai = q->eai;
	if (q->ai)
		freeaddrinfo(q->ai);
	free(q);
	return eai;
}

static int main_task(void *arg)
{
	(void)arg;
	int ok = resolve("127.0.0.1", 0, UR_SEC) == 0;
	ok &= resolve("::1", 0, UR_SEC) == 0;
	ok &= resolve("not-numeric", 0, UR_SEC) == EAI_NONAME; /* an EAI_* code, not a -errno */
	ok &= resolve("127.0.0.2", 200, 10 * UR_MSEC) == -ETIMEDOUT;
	return ok ? 0 : -1;
}

int main(void)
{
	int result = -1;
	int r = ur_run(NULL, main_task, NULL, &result); /* the loop's end waits for the lookup */
	printf("released after the caller left: %d\n", released);
	return r < 0 || result < 0 || released != 1;
}
