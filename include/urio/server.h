/* SPDX-License-Identifier: MIT */
/*
 * urio/server.h - a stream server: one loop per core, a task per connection (asyncio's
 * start_server(), with thread-per-core underneath).
 *
 * The server accepts on every loop it runs on (multishot accept: one SQE, a completion per
 * connection) and spawns a task per connection that is handed the connection's stream. It runs
 * either on threads of its own (one loop each, one SO_REUSEPORT listening socket each, so the
 * kernel spreads connections across them) or on loops the caller runs. Stopping is graceful:
 * accepting stops at once, connections marked idle (ur_server_conn_idle) are ended at once,
 * busy ones get until a deadline to finish, then they are cancelled; when the server says it has
 * stopped, nothing of it is left (sockets, tasks, memory).
 *
 *	static int echo(struct ur_stream *s, void *arg)
 *	{
 *		char buf[4096];
 *		ssize_t n;
 *		while ((n = ur_stream_read(s, buf, sizeof(buf))) > 0)
 *			if (ur_stream_write_all(s, buf, (size_t)n) < 0)
 *				break;
 *		return 0;
 *	}
 *	struct ur_server_opts o = {.port = 7000, .threads = 4, .on_conn = echo};
 *	struct ur_server *sv;
 *	ur_server_start(&sv, &o);
 *	...                                  // any thread (not a signal handler: for
 *	                                     // Ctrl-C, see docs/examples/status_server.c)
 *	ur_server_stop(sv, 5 * UR_SEC);      // stop accepting; 5 s for connections to end
 *	ur_server_join(sv);                  // wait until every loop has finished
 *	ur_server_free(&sv);
 */
#ifndef URIO_SERVER_H
#define URIO_SERVER_H

#include <stdbool.h>
#include "common.h"
#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ur_server;

/*
 * A connection's task body. @s is open and owned by the server: the function reads and writes
 * it and returns (the return value is ignored); the server closes the stream afterwards (closing
 * it here is allowed too). Runs on the loop that accepted the connection. When the server is
 * stopped past its grace period, the task is cancelled: its waits return -ECANCELED.
 */
typedef int ur_conn_fn(struct ur_stream *s, void *arg);

enum ur_server_flags {
	UR_SERVER_PIN_CPUS = 1u << 0,   /* own threads: pin thread i to CPU i (mod the CPU count) */
	UR_SERVER_NO_NODELAY = 1u << 1, /* leave Nagle on for accepted connections */
	/* plain streams receive with one multishot recv into a per-loop buffer ring
	 * (ur_stream_init_rxring) instead of a recv per read; see docs/benchmarks.md (TCP echo)
	 * for what it costs and saves */
	UR_SERVER_RXRING = 1u << 2,
};

/* Default receive buffers per loop (urio/stream.h, ur_stream_rxring_new) and their size. */
#define UR_SERVER_RX_BUFFERS     512
#define UR_SERVER_RX_BUFFER_SIZE 4096

struct ur_server_opts {
	/* Where to listen: @unix_path if set (a Unix socket, "@name" abstract), else @host:@port
	 * (numeric host, NULL for every address; port 0 lets the kernel choose: ur_server_port()).
	 * Or @listen_fd >= 1: the caller's listening socket, shared by every loop, not closed by
	 * the server. (0 is "not set", so that a zeroed struct means "listen".) */
	const char *host;
	uint16_t port;
	const char *unix_path;
	int listen_fd;
	int backlog; /* 0: SOMAXCONN */

	/* Loops: @nloops caller's loops in @loops (each must be run by its owner's thread until
	 * the server has stopped on it), or else @threads own threads, one loop each (0: one per
	 * online CPU). */
	struct ur_loop **loops;
	unsigned nloops;
	unsigned threads;

	unsigned max_conns; /* per loop; 0: no limit. At the limit, accepting pauses. */
	size_t stack_size;  /* connection tasks' stacks; 0: the loop's default */
	size_t limit;       /* streams' read buffer limit; 0: UR_STREAM_LIMIT_DEFAULT */
	uint32_t flags;     /* enum ur_server_flags */

	ur_conn_fn *on_conn; /* required */
	void *arg;
	/* With UR_SERVER_RXRING, each loop's receive buffer ring: @rx_buffers buffers (a power of
	 * two up to 32768; 0: UR_SERVER_RX_BUFFERS) of @rx_buffer_size bytes (0:
	 * UR_SERVER_RX_BUFFER_SIZE). Plain connections receive with one multishot recv into it;
	 * where the kernel has no buffer rings they fall back to a recv per read. */
	uint32_t rx_buffers;
	uint32_t rx_buffer_size;
	uint32_t reserved[2]; /* must be zero */
};

/*
 * Starts a server. Listening sockets are made here, so an address in use fails this call. With
 * own threads, returns once every loop accepts; with the caller's loops, accepting starts on
 * each loop's next turn (from a ur_loop_post(), so any thread may call this).
 * Returns 0 with *@sv set, or -EINVAL (no on_conn, bad options), the listen error
 * (-EADDRINUSE...), -ENOMEM, or the error of a loop or thread that could not start (in which
 * case everything started is stopped and freed again).
 */
UR_EXPORT int ur_server_start(struct ur_server **sv, const struct ur_server_opts *o);

/*
 * Stops the server gracefully; callable from any thread, including a connection task.
 * Accepting stops now (listening sockets closed; connections still in their accept queues are
 * reset) and idle connections (ur_server_conn_idle) are cancelled; the others may run for
 * @grace_ns more, then their tasks are cancelled. Returns at
 * once: 0, or -EALREADY if it was stopped before (the first grace period stands).
 */
UR_EXPORT int ur_server_stop(struct ur_server *sv, uint64_t grace_ns);

/*
 * Waits until the server has stopped on every loop (after ur_server_stop(): every connection
 * task has returned and every socket is closed). Own threads are joined. Must not be called
 * from one of the server's loops' threads (it would wait for itself): there, run the loop
 * instead, which returns from UR_RUN_DEFAULT once the server is done with it.
 * Returns 0, or -EDEADLK when called from a server loop's thread.
 */
UR_EXPORT int ur_server_join(struct ur_server *sv);

/* True once the server has stopped on every loop (never blocks). */
UR_EXPORT bool ur_server_done(const struct ur_server *sv);

/*
 * Frees a server that is done (stopped and joined, or ur_server_done()); sets *@sv to NULL.
 * Returns 0, or -EBUSY if it is still running (nothing is freed).
 */
UR_EXPORT int ur_server_free(struct ur_server **sv);

/* The TCP port the server listens on (host order), 0 for a Unix socket. */
UR_EXPORT uint16_t ur_server_port(const struct ur_server *sv);

/* True after ur_server_stop(): connection tasks may check it to wind up idle connections. */
UR_EXPORT bool ur_server_stopping(const struct ur_server *sv);

/*
 * The server whose connection @s is (the stream a ur_conn_fn was handed, plain or with TLS over
 * it), or NULL for any other stream. This is how a connection task reaches its server, e.g. for
 * ur_server_stopping(), without keeping the pointer ur_server_start() returns somewhere global:
 * connections may be accepted before that call has returned.
 */
UR_EXPORT struct ur_server *ur_server_of(const struct ur_stream *s);

/*
 * Marks the server connection @s idle (@idle true: its task waits for the peer to begin
 * something, e.g. the next request of a keep-alive connection) or busy again (false). A stop
 * cancels the task of an idle connection at once (the wait in progress returns -ECANCELED)
 * instead of leaving it to the grace period; a busy one keeps its grace period to finish.
 * Call it from the connection's task, and unmark as soon as the wait returns: a connection
 * marked idle may lose bytes that arrived in the same loop turn as the stop (the race every
 * server's idle close has; clients retry idempotent requests on a fresh connection).
 * ur_http_serve_conn() does this by itself around its wait for a request's first byte.
 * Returns 0; -ECANCELED when marking idle a connection whose server is stopping already (end
 * it now); -EINVAL for a stream that is not a server connection.
 */
UR_EXPORT int ur_server_conn_idle(struct ur_stream *s, bool idle);

struct ur_server_stats {
	uint64_t accepted;        /* connections handed to a task */
	uint64_t active;          /* connection tasks running now */
	uint64_t accept_errors;   /* accept failures (EMFILE, ENFILE, ENOBUFS...) */
	uint64_t accept_backoffs; /* pauses taken after an accept failure */
	uint64_t limit_pauses;    /* times accepting paused at max_conns */
	uint64_t cancelled;       /* connection tasks cancelled at the end of a grace period */
	uint64_t idle_ended;      /* idle connections (ur_server_conn_idle) ended by the stop */
};

/* Counters summed over every loop. Thread-safe (relaxed atomic reads). */
UR_EXPORT void ur_server_stats(const struct ur_server *sv, struct ur_server_stats *out);

#ifdef __cplusplus
}
#endif

#endif
