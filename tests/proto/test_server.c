/* SPDX-License-Identifier: MIT */
/*
 * tests/proto/test_server.c - the server helper: many clients echoed, graceful stop with
 * connections open, the connection limit, accept failures (EMFILE) backed off, the caller's own
 * loops, Unix sockets. Clients are urio tasks on the test's loop (ur_tcp_connect).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>

#define T_FAULT_UNSAFE_FILE "enomem,reset"
#define T_FAULT_UNSAFE_WHY                                                                         \
	"each test asserts every client is served; a refused start or a reset connection ends a "  \
	"client with ENOMEM or ECONNRESET instead"
#include "../helpers.h"
#include <urio/tls.h>

/* Echo until the peer ends; counts finished connections. */
static atomic_int echo_done;
static int echo(struct ur_stream *s, void *arg)
{
	(void)arg;
	char buf[4096];
	ssize_t n;
	while ((n = ur_stream_read(s, buf, sizeof(buf))) > 0)
		if (ur_stream_write_all(s, buf, (size_t)n) < 0)
			break;
	atomic_fetch_add(&echo_done, 1);
	return 0;
}

struct clients {
	uint16_t port;
	struct ur_tls_ctx *tls; /* clients speak TLS with this context */
	const char *unix_path;
	unsigned n, rounds;
	bool keep_open; /* leave the connections open, for the stop tests */
	struct ur_stream *s;
	atomic_int ok, connected;
	int first_err;
	struct ur_server *stop_sv; /* stop this server from the client loop when all are done */
};

struct client {
	struct clients *cs;
	unsigned i;
};

static int client_main(void *arg)
{
	struct client *c = arg;
	struct clients *cs = c->cs;
	struct ur_stream *s = &cs->s[c->i];
	char msg[64], got[64];
	int r = cs->unix_path ? ur_unix_connect(s, cs->unix_path, NULL)
	                      : ur_tcp_connect(s, "127.0.0.1", cs->port, NULL);
	if (r == 0 && cs->tls && (r = ur_tls_client(s, cs->tls, "127.0.0.1")) < 0)
		ur_stream_close(s);
	if (r < 0) {
		cs->first_err = cs->first_err ? cs->first_err : r;
		return r;
	}
	atomic_fetch_add(&cs->connected, 1);
	for (unsigned k = 0; k < cs->rounds; k++) {
		memset(msg, 'a' + (int)((c->i + k) % 26), sizeof(msg));
		if (ur_stream_write_all(s, msg, sizeof(msg)) != sizeof(msg) ||
		    ur_stream_read_exactly(s, got, sizeof(got)) != sizeof(got) ||
		    memcmp(msg, got, sizeof(msg)) != 0) {
			ur_stream_close(s);
			return -EIO;
		}
	}
	atomic_fetch_add(&cs->ok, 1);
	if (cs->keep_open) {
		/* wait for the server to end the connection: EOF, or a reset */
		r = (int)ur_stream_read(s, got, sizeof(got));
		cr_assert_leq(r, 0);
	}
	ur_stream_close(s);
	return 0;
}

static int run_clients(void *arg)
{
	struct clients *cs = arg;
	struct ur_task **t = calloc(cs->n, sizeof(*t));
	struct client *c = calloc(cs->n, sizeof(*c));
	struct ur_future **fs = calloc(cs->n, sizeof(*fs));
	for (unsigned i = 0; i < cs->n; i++) {
		c[i] = (struct client){cs, i};
		ASSERT_RES(ur_spawn(ur_current_loop(), &t[i], client_main, &c[i], NULL), 0);
		fs[i] = ur_task_future(t[i]);
	}
	ur_gather(fs, cs->n, 0);
	for (unsigned i = 0; i < cs->n; i++)
		ur_join(t[i]);
	if (cs->stop_sv)
		ur_server_stop(cs->stop_sv, 0);
	free(fs);
	free(c);
	free(t);
	return 0;
}

static void clients_run(struct clients *cs)
{
	cs->s = calloc(cs->n, sizeof(*cs->s));
	struct ur_loop_opts lo = {.sq_entries = 1024};
	struct ur_loop *l = t_loop_opts(&lo);
	ASSERT_RES(ur_run(l, run_clients, cs, NULL), 0);
	t_loop_done(&l);
	free(cs->s);
}

/* Joins and frees the server; its last counters in *@st (may be NULL). */
static void server_done(struct ur_server **sv, struct ur_server_stats *st)
{
	ASSERT_RES(ur_server_join(*sv), 0);
	cr_assert(ur_server_done(*sv));
	if (st)
		ur_server_stats(*sv, st);
	ASSERT_RES(ur_server_free(sv), 0);
	cr_assert_null(*sv);
}

Test(server, thousand_concurrent_clients_echoed, .timeout = 120)
{
	t_skip_under_valgrind();
	int fds = t_count_fds();
	struct ur_server *sv;
	struct ur_server_opts o = {.host = "127.0.0.1", .threads = 2, .on_conn = echo};
	ASSERT_RES(ur_server_start(&sv, &o), 0);
	cr_assert_neq(ur_server_port(sv), 0);

	struct clients cs = {.port = ur_server_port(sv), .n = 1000, .rounds = 3};
	clients_run(&cs);
	ASSERT_RES(cs.first_err, 0);
	cr_assert_eq(atomic_load(&cs.ok), 1000);

	ASSERT_RES(ur_server_stop(sv, 5 * UR_SEC), 0);
	ASSERT_RES(ur_server_stop(sv, 0), -EALREADY);
	struct ur_server_stats ss;
	server_done(&sv, &ss);
	cr_assert_eq(ss.accepted, 1000);
	cr_assert_eq(ss.active, 0);
	cr_assert_eq(ss.cancelled, 0);
	cr_assert_eq(atomic_load(&echo_done), 1000);
	cr_assert_eq(t_count_fds(), fds);
}

struct stopper {
	struct ur_server *sv;
	struct clients *cs;
	uint64_t grace;
};

/* Waits (polling the condition, not a fixed sleep) until every client is connected and echoed,
 * then stops the server. */
static void *stop_when_served(void *arg)
{
	struct stopper *st = arg;
	while (atomic_load(&st->cs->ok) < (int)st->cs->n)
		usleep(1000);
	ASSERT_RES(ur_server_stop(st->sv, st->grace), 0);
	return NULL;
}

Test(server, graceful_stop_cancels_open_connections_after_the_grace, .timeout = 60)
{
	t_skip_under_valgrind();
	int fds = t_count_fds();
	struct ur_server *sv;
	struct ur_server_opts o = {.host = "127.0.0.1", .threads = 2, .on_conn = echo};
	ASSERT_RES(ur_server_start(&sv, &o), 0);

	struct clients cs = {.port = ur_server_port(sv), .n = 50, .rounds = 1, .keep_open = true};
	struct stopper st = {sv, &cs, 50 * UR_MSEC};
	pthread_t th;
	pthread_create(&th, NULL, stop_when_served, &st);
	clients_run(&cs); /* returns when the server has ended every connection */
	pthread_join(th, NULL);
	cr_assert_eq(atomic_load(&cs.ok), 50);
	struct ur_server_stats ss;
	server_done(&sv, &ss);
	cr_assert_eq(ss.accepted, 50);
	cr_assert_eq(ss.cancelled, 50);
	cr_assert_eq(ss.active, 0);
	cr_assert_eq(atomic_load(&echo_done), 50);
	cr_assert_eq(t_count_fds(), fds);
}

/* One request per connection, slowly: the connection ends by itself within the grace. */
static int answer_once(struct ur_stream *s, void *arg)
{
	(void)arg;
	char buf[64];
	if (ur_stream_read_exactly(s, buf, sizeof(buf)) != sizeof(buf))
		return -1;
	ur_sleep(20 * UR_MSEC);
	ur_stream_write_all(s, buf, sizeof(buf));
	atomic_fetch_add(&echo_done, 1);
	return 0;
}

/*
 * Waits until the server has accepted every client: a client's connect succeeds once the kernel
 * queued it, and a stop drops what still waits in the backlog, so counting connects raced.
 */
static void *stop_when_connected(void *arg)
{
	struct stopper *st = arg;
	struct ur_server_stats ss = {0};
	while (atomic_load(&st->cs->connected) < (int)st->cs->n || ss.accepted < st->cs->n) {
		usleep(1000);
		ur_server_stats(st->sv, &ss);
	}
	ASSERT_RES(ur_server_stop(st->sv, st->grace), 0);
	return NULL;
}

Test(server, graceful_stop_lets_connections_finish, .timeout = 60)
{
	t_skip_under_valgrind();
	int fds = t_count_fds();
	struct ur_server *sv;
	struct ur_server_opts o = {.host = "127.0.0.1", .threads = 1, .on_conn = answer_once};
	ASSERT_RES(ur_server_start(&sv, &o), 0);
	/* stopped while every request is in flight; a 30 s grace they do not need */
	struct clients cs = {.port = ur_server_port(sv), .n = 20, .rounds = 1};
	struct stopper st = {sv, &cs, 30 * UR_SEC};
	pthread_t th;
	pthread_create(&th, NULL, stop_when_connected, &st);
	clients_run(&cs);
	pthread_join(th, NULL);
	cr_assert_eq(atomic_load(&cs.ok), 20);
	struct ur_server_stats ss;
	server_done(&sv, &ss); /* returns as the last connection ends, not after 30 s */
	cr_assert_eq(ss.cancelled, 0);
	cr_assert_eq(atomic_load(&echo_done), 20);
	cr_assert_eq(t_count_fds(), fds);
}

Test(server, on_the_callers_loop_stopped_from_a_task)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	struct ur_server *sv;
	struct ur_server_opts o = {.host = "127.0.0.1", .loops = &l, .nloops = 1, .on_conn = echo};
	ASSERT_RES(ur_server_start(&sv, &o), 0);
	struct clients cs = {.port = ur_server_port(sv), .n = 10, .rounds = 5, .stop_sv = sv};
	cs.s = calloc(cs.n, sizeof(*cs.s));
	/* clients and server on one loop; the loop returns once the server is done with it */
	ASSERT_RES(ur_run(l, run_clients, &cs, NULL), 0);
	ASSERT_RES(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	cr_assert(ur_server_done(sv));
	cr_assert_eq(atomic_load(&cs.ok), 10);
	server_done(&sv, NULL);
	free(cs.s);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

static int join_from_loop(void *arg)
{
	ASSERT_RES(ur_server_join(arg), -EDEADLK);
	ASSERT_RES(ur_server_free((struct ur_server **)&arg), -EBUSY);
	ur_server_stop(arg, 0);
	return 0;
}

Test(server, join_from_its_own_loop_refuses)
{
	struct ur_loop *l = t_loop();
	struct ur_server *sv;
	struct ur_server_opts o = {.host = "127.0.0.1", .loops = &l, .nloops = 1, .on_conn = echo};
	ASSERT_RES(ur_server_start(&sv, &o), 0);
	ASSERT_RES(ur_loop_run(l, UR_RUN_ONCE) >= 0,
	           1); /* the start post runs: the thread is known */
	ASSERT_RES(ur_run(l, join_from_loop, sv, NULL), 0);
	ASSERT_RES(ur_loop_run(l, UR_RUN_DEFAULT), 0);
	server_done(&sv, NULL);
	t_loop_done(&l);
}

Test(server, unix_socket_server)
{
	t_skip_under_valgrind();
	int fds = t_count_fds();
	char path[64];
	snprintf(path, sizeof(path), "/tmp/urio-srv-%d.sock", (int)getpid());
	unlink(path);
	struct ur_server *sv;
	struct ur_server_opts o = {.unix_path = path, .threads = 2, .on_conn = echo};
	ASSERT_RES(ur_server_start(&sv, &o), 0);
	cr_assert_eq(ur_server_port(sv), 0);
	struct clients cs = {.unix_path = path, .n = 20, .rounds = 3};
	clients_run(&cs);
	cr_assert_eq(atomic_load(&cs.ok), 20);
	ur_server_stop(sv, UR_SEC);
	server_done(&sv, NULL);
	cr_assert_eq(access(path, F_OK), -1); /* the socket file it made is gone */
	cr_assert_eq(t_count_fds(), fds);
}

Test(server, connection_limit_pauses_accepting, .timeout = 60)
{
	t_skip_under_valgrind();
	int fds = t_count_fds();
	struct ur_server *sv;
	struct ur_server_opts o = {
	    .host = "127.0.0.1", .threads = 1, .max_conns = 2, .on_conn = answer_once};
	ASSERT_RES(ur_server_start(&sv, &o), 0);
	/* 10 clients, at most 2 served at a time: the rest wait in the backlog, none is lost */
	struct clients cs = {.port = ur_server_port(sv), .n = 10, .rounds = 1};
	clients_run(&cs);
	cr_assert_eq(atomic_load(&cs.ok), 10);
	ur_server_stop(sv, UR_SEC);
	struct ur_server_stats ss;
	server_done(&sv, &ss);
	cr_assert_eq(ss.accepted, 10);
	cr_assert_geq(ss.limit_pauses, 1);
	cr_assert_eq(t_count_fds(), fds);
}

Test(server, address_in_use_and_bad_options)
{
	struct ur_server *sv;
	struct ur_server_opts o = {.host = "127.0.0.1", .threads = 1};
	ASSERT_RES(ur_server_start(&sv, &o), -EINVAL); /* no on_conn */
	uint16_t port;
	int lfd = t_listen_tcp(&port);
	o = (struct ur_server_opts){
	    .host = "127.0.0.1", .port = port, .threads = 1, .on_conn = echo};
	ASSERT_RES(ur_server_start(&sv, &o), -EADDRINUSE);
	o.host = "not-numeric";
	ASSERT_RES(ur_server_start(&sv, &o), -EINVAL);
	close(lfd);
}

struct emfile_client {
	uint16_t port;
	int res;
};

static int emfile_connect(void *arg)
{
	struct emfile_client *ec = arg;
	struct ur_stream s;
	ec->res = ur_tcp_connect(&s, "127.0.0.1", ec->port, NULL);
	if (ec->res == 0)
		ur_stream_close(&s);
	return 0;
}

/*
 * EMFILE: the server backs off, keeps its connections, and accepts again once it can. The
 * kernel reads RLIMIT_NOFILE when the accept is prepared, so the limit is lowered before the
 * server starts and the table then filled up to it.
 */
Test(server, accept_emfile_backs_off_and_recovers, .timeout = 60)
{
	t_skip_under_valgrind();
	struct rlimit old, low;
	getrlimit(RLIMIT_NOFILE, &old);
	low = (struct rlimit){.rlim_cur = (rlim_t)t_count_fds() + 64, .rlim_max = old.rlim_max};
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);

	struct ur_server *sv;
	struct ur_server_opts o = {.host = "127.0.0.1", .threads = 1, .on_conn = echo};
	ASSERT_RES(ur_server_start(&sv, &o), 0);
	enum {
		N = 8
	};
	int cfd[N], filler[80], nfill = 0;
	struct sockaddr_in a = t_loopback(ur_server_port(sv));
	for (int i = 0; i < N; i++) {
		cfd[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		cr_assert_geq(cfd[i], 0);
	}
	struct ur_loop *cl = t_loop(); /* made while it can still have its descriptors */
	while ((filler[nfill] = dup(0)) >= 0)
		nfill++;
	cr_assert_lt(nfill, 80);
	for (int i = 0; i < N; i++) /* queued by the kernel; accepting them fails */
		cr_assert_eq(connect(cfd[i], (struct sockaddr *)&a, sizeof(a)), 0);
	struct ur_server_stats ss;
	do {
		usleep(1000);
		ur_server_stats(sv, &ss);
	} while (ss.accept_backoffs < 3); /* several failures, backed off */
	cr_assert_eq(ss.accepted, 0);

	/* A urio client in the full table gets a clear error, at once: EMFILE from its socket. */
	struct emfile_client ec = {.port = ur_server_port(sv)};
	ASSERT_RES(ur_run(cl, emfile_connect, &ec, NULL), 0);
	ASSERT_RES(ec.res, -EMFILE);

	/*
	 * No busy loop: every failed accept is followed by a back-off that doubles (1 ms ... 256
	 * ms), so as many failures as back-offs, and a wait that spans six of them (63 ms at least)
	 * costs six attempts, not thousands.
	 */
	struct ur_server_stats s0;
	ur_server_stats(sv, &s0);
	uint64_t t0 = ur_now_ns();
	do {
		usleep(1000);
		ur_server_stats(sv, &ss);
	} while (ss.accept_backoffs < s0.accept_backoffs + 6);
	/* five whole back-offs passed in the window, each at least twice the one before it */
	cr_assert_geq(ur_now_ns() - t0, 31 * UR_MSEC);
	cr_assert_eq(ss.accept_errors, ss.accept_backoffs, "a failed accept was retried at once");
	cr_assert_eq(ss.accepted, 0);
	for (int i = 0; i < nfill; i++)
		close(filler[i]);

	/* every queued connection is served now */
	for (int i = 0; i < N; i++) {
		char buf[8];
		cr_assert_eq(send(cfd[i], "echo me", 7, 0), 7);
		cr_assert_eq(recv(cfd[i], buf, 7, MSG_WAITALL), 7);
		cr_assert_arr_eq(buf, "echo me", 7);
		close(cfd[i]);
	}
	ur_server_stop(sv, UR_SEC);
	server_done(&sv, &ss);
	cr_assert_eq(ss.accepted, N);
	cr_assert_geq(ss.accept_errors, 9);
	t_loop_done(&cl);
	setrlimit(RLIMIT_NOFILE, &old);
}

/* The same echo behind TLS (what urecho --tls does): the handshake, then the handler. */
static int tls_echo(struct ur_stream *s, void *arg)
{
	int r = ur_tls_server(s, arg);
	return r < 0 ? r : echo(s, NULL);
}

Test(server, thousand_concurrent_tls_clients_echoed, .timeout = 300)
{
	t_skip_under_valgrind();
	int fds = t_count_fds();
	struct ur_tls_cert cert;
	ASSERT_RES(ur_tls_cert_generate(&cert, NULL), 0);
	struct ur_tls_ctx *sctx, *cctx;
	struct ur_tls_opts so = {.cert_pem = cert.cert_pem, .key_pem = cert.key_pem};
	struct ur_tls_opts co = {.ca_pem = cert.ca_pem};
	ASSERT_RES(ur_tls_ctx_new(&sctx, UR_TLS_SERVER, &so), 0);
	ASSERT_RES(ur_tls_ctx_new(&cctx, UR_TLS_CLIENT, &co), 0);

	struct ur_server *sv;
	struct ur_server_opts o = {
	    .host = "127.0.0.1", .threads = 2, .on_conn = tls_echo, .arg = sctx};
	ASSERT_RES(ur_server_start(&sv, &o), 0);
	struct clients cs = {.port = ur_server_port(sv), .n = 1000, .rounds = 2, .tls = cctx};
	clients_run(&cs);
	ASSERT_RES(cs.first_err, 0);
	cr_assert_eq(atomic_load(&cs.ok), 1000);
	ur_server_stop(sv, 5 * UR_SEC);
	struct ur_server_stats ss;
	server_done(&sv, &ss);
	cr_assert_eq(ss.accepted, 1000);
	cr_assert_eq(ss.cancelled, 0);
	ur_tls_ctx_free(sctx);
	ur_tls_ctx_free(cctx);
	ur_tls_cert_free(&cert);
	cr_assert_eq(t_count_fds(), fds);
}

/*
 * UR_SERVER_RXRING: connections receive through a per-loop buffer ring. A ring of four 16-byte
 * buffers shared by 200 connections: every 64-byte message arrives in several chunks, and the
 * ring runs dry over and over (the multishot recvs stop and are re-armed as buffers come back).
 */
Test(server, rxring_tiny_ring_many_clients_echoed, .timeout = 120)
{
	t_skip_under_valgrind();
	int fds = t_count_fds();
	atomic_store(&echo_done, 0);
	struct ur_server *sv;
	struct ur_server_opts o = {.host = "127.0.0.1",
	                           .threads = 2,
	                           .on_conn = echo,
	                           .flags = UR_SERVER_RXRING,
	                           .rx_buffers = 4,
	                           .rx_buffer_size = 16};
	ASSERT_RES(ur_server_start(&sv, &o), 0);
	struct clients cs = {.port = ur_server_port(sv), .n = 200, .rounds = 5};
	clients_run(&cs);
	ASSERT_RES(cs.first_err, 0);
	cr_assert_eq(atomic_load(&cs.ok), 200);
	ASSERT_RES(ur_server_stop(sv, 5 * UR_SEC), 0);
	struct ur_server_stats ss;
	server_done(&sv, &ss);
	cr_assert_eq(ss.accepted, 200);
	cr_assert_eq(ss.cancelled, 0);
	cr_assert_eq(atomic_load(&echo_done), 200);
	cr_assert_eq(t_count_fds(), fds);
}

/* Reads waiting on the ring when the grace ends are cancelled; the ring is freed after them. */
Test(server, rxring_graceful_stop_cancels_waiting_reads, .timeout = 60)
{
	t_skip_under_valgrind();
	int fds = t_count_fds();
	atomic_store(&echo_done, 0);
	struct ur_server *sv;
	struct ur_server_opts o = {
	    .host = "127.0.0.1", .threads = 2, .on_conn = echo, .flags = UR_SERVER_RXRING};
	ASSERT_RES(ur_server_start(&sv, &o), 0);
	struct clients cs = {.port = ur_server_port(sv), .n = 50, .rounds = 1, .keep_open = true};
	struct stopper st = {sv, &cs, 50 * UR_MSEC};
	pthread_t th;
	pthread_create(&th, NULL, stop_when_served, &st);
	clients_run(&cs);
	pthread_join(th, NULL);
	struct ur_server_stats ss;
	server_done(&sv, &ss);
	cr_assert_eq(ss.cancelled, 50);
	cr_assert_eq(atomic_load(&echo_done), 50);
	cr_assert_eq(t_count_fds(), fds);
}

/* TLS installed over a ring stream before its first read: the ring's receive never starts. */
Test(server, rxring_tls_connections_echoed, .timeout = 120)
{
	t_skip_under_valgrind();
	int fds = t_count_fds();
	struct ur_tls_cert cert;
	ASSERT_RES(ur_tls_cert_generate(&cert, NULL), 0);
	struct ur_tls_ctx *sctx, *cctx;
	struct ur_tls_opts so = {.cert_pem = cert.cert_pem, .key_pem = cert.key_pem};
	struct ur_tls_opts co = {.ca_pem = cert.ca_pem};
	ASSERT_RES(ur_tls_ctx_new(&sctx, UR_TLS_SERVER, &so), 0);
	ASSERT_RES(ur_tls_ctx_new(&cctx, UR_TLS_CLIENT, &co), 0);
	struct ur_server *sv;
	struct ur_server_opts o = {.host = "127.0.0.1",
	                           .threads = 1,
	                           .on_conn = tls_echo,
	                           .arg = sctx,
	                           .flags = UR_SERVER_RXRING};
	ASSERT_RES(ur_server_start(&sv, &o), 0);
	struct clients cs = {.port = ur_server_port(sv), .n = 50, .rounds = 2, .tls = cctx};
	clients_run(&cs);
	ASSERT_RES(cs.first_err, 0);
	cr_assert_eq(atomic_load(&cs.ok), 50);
	ur_server_stop(sv, 5 * UR_SEC);
	server_done(&sv, NULL);
	ur_tls_ctx_free(sctx);
	ur_tls_ctx_free(cctx);
	ur_tls_cert_free(&cert);
	cr_assert_eq(t_count_fds(), fds);
}
