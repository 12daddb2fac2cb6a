/* SPDX-License-Identifier: MIT */
/*
 * tools/bench/tls.c - TLS figures (docs/benchmarks.md, "TLS"; docs/tls.md, "Stack"):
 *
 *   bench_tls stack      peak stack a task uses for a TLS 1.3 handshake + a round trip, client
 *                        and server (urio against itself, ECDSA P-256)
 *   bench_tls handshake  new TLS 1.3 connections per second, one at a time, against one
 *                        `openssl s_server -www`: urio's client vs `openssl s_time`, with
 *                        resumption off (-new) and on (-reuse); ratio printed
 *   bench_tls idle [N]   memory per idle TLS connection: N (10000) clients in a child process
 *                        hold connections to a urio TLS server in this one; RSS growth / N
 *
 * No argument runs all three. Needs the `openssl` tool on PATH. BENCH_TLS_KEEP_BUFFERS=1 runs the
 * handshake clients with UR_TLS_KEEP_BUFFERS.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <urio.h>

#include "bench.h"

static void die(const char *what, int r)
{
	fprintf(stderr, "bench_tls: %s: %s\n", what, r < 0 ? ur_strerror(r) : "failed");
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct ur_tls_cert cert;
static char dir[64], ca_path[96], cert_path[96], key_path[96];

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		die(path, -errno);
}

static void make_certs(void)
{
	int r = ur_tls_cert_generate(&cert, NULL);
	if (r < 0)
		die("ur_tls_cert_generate", r);
	strcpy(dir, "/tmp/urio-bench-tls-XXXXXX");
	if (!mkdtemp(dir))
		die("mkdtemp", -errno);
	snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", dir);
	snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", dir);
	snprintf(key_path, sizeof(key_path), "%s/key.pem", dir);
	write_file(ca_path, cert.ca_pem);
	write_file(cert_path, cert.cert_pem);
	write_file(key_path, cert.key_pem);
}

static void drop_certs(void)
{
	unlink(ca_path);
	unlink(cert_path);
	unlink(key_path);
	rmdir(dir);
	ur_tls_cert_free(&cert);
}

static struct ur_tls_ctx *new_ctx(enum ur_tls_role role, unsigned flags)
{
	struct ur_tls_ctx *ctx;
	char err[256] = "";
	struct ur_tls_opts o = {.flags = flags, .errbuf = err, .errlen = sizeof(err)};
	if (role == UR_TLS_SERVER) {
		o.cert_pem = cert.cert_pem;
		o.key_pem = cert.key_pem;
	} else {
		o.ca_pem = cert.ca_pem;
	}
	int r = ur_tls_ctx_new(&ctx, role, &o);
	if (r < 0) {
		fprintf(stderr, "bench_tls: %s\n", err);
		die("ur_tls_ctx_new", r);
	}
	return ctx;
}

static int tcp_listen(uint16_t *port, int backlog)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, backlog) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		die("listen", -errno);
	*port = ntohs(a.sin_port);
	return fd;
}

/* A connected stream to 127.0.0.1:@port, from a task. */
static int task_connect(struct ur_stream *s, uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons(port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = ur_socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fd;
	int one = 1; /* as ur_tcp_connect does */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	int r = ur_connect(fd, (struct sockaddr *)&a, sizeof(a));
	if (r < 0) {
		ur_close(fd);
		return r;
	}
	return ur_stream_init(s, fd, 0);
}

/* --- stack: paint the task's unused stack, work, find the deepest byte touched ------------------
 */

#define PAINT_BYTE  0xa5
#define STACK_SIZE  ((size_t)256 * 1024)
#define PAINT_BYTES ((size_t)224 * 1024) /* below the current frame; the rest is urio's entry */

struct painted {
	volatile unsigned char *low; /* lowest painted byte */
	char *top;                   /* the frame address when painting */
};

/* Paints [top - PAINT_BYTES, top - 512) below the caller's frame. noinline: its own frame is small.
 */
static __attribute__((noinline)) void paint(struct painted *p)
{
	char *top = __builtin_frame_address(0);
	p->top = top;
	p->low = (volatile unsigned char *)(top - PAINT_BYTES);
	for (volatile unsigned char *q = p->low; q < (volatile unsigned char *)(top - 512); q++)
		*q = PAINT_BYTE;
}

static size_t peak(const struct painted *p)
{
	volatile unsigned char *q = p->low;
	while (*q == PAINT_BYTE && q < (volatile unsigned char *)p->top)
		q++;
	return (size_t)(p->top - (char *)q);
}

struct stack_case {
	struct ur_stream c, s;
	struct ur_tls_ctx *cctx, *sctx;
	size_t cpeak, speak;
};

static int stack_client(void *arg)
{
	struct stack_case *k = arg;
	struct painted p;
	char buf[64];
	paint(&p);
	int r = ur_tls_client(&k->c, k->cctx, "localhost");
	if (r < 0)
		die("client handshake", r);
	if (ur_stream_write_all(&k->c, "ping\n", 5) < 0 ||
	    ur_stream_read_until(&k->c, "\n", 1, buf, sizeof(buf)) < 0)
		die("client exchange", -EIO);
	ur_stream_shutdown(&k->c);
	k->cpeak = peak(&p);
	return 0;
}

static int stack_server(void *arg)
{
	struct stack_case *k = arg;
	struct painted p;
	char buf[64];
	paint(&p);
	int r = ur_tls_server(&k->s, k->sctx);
	if (r < 0)
		die("server handshake", r);
	if (ur_stream_read_until(&k->s, "\n", 1, buf, sizeof(buf)) < 0 ||
	    ur_stream_write_all(&k->s, "pong\n", 5) < 0)
		die("server exchange", -EIO);
	ur_stream_shutdown(&k->s);
	k->speak = peak(&p);
	return 0;
}

static int stack_main(void *arg)
{
	struct stack_case *k = arg;
	int sv[2];
	uint16_t port;
	int lfd = tcp_listen(&port, 4);
	if (task_connect(&k->c, port) < 0)
		die("connect", -errno);
	if ((sv[0] = ur_accept(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0)
		die("accept", sv[0]);
	close(lfd);
	ur_stream_init(&k->s, sv[0], 0);
	struct ur_task *t1, *t2;
	struct ur_task_opts o = {.stack_size = STACK_SIZE};
	ur_spawn(ur_current_loop(), &t1, stack_client, k, &o);
	ur_spawn(ur_current_loop(), &t2, stack_server, k, &o);
	ur_join(t1);
	ur_join(t2);
	ur_stream_close(&k->c);
	ur_stream_close(&k->s);
	return 0;
}

static void bench_stack(void)
{
	struct stack_case k = {0};
	k.cctx = new_ctx(UR_TLS_CLIENT, 0);
	k.sctx = new_ctx(UR_TLS_SERVER, 0);
	/* the first run also loads OpenSSL's providers and tables (a cold process) */
	for (int i = 0; i < 2; i++) {
		if (ur_run(NULL, stack_main, &k, NULL) < 0)
			die("ur_run", -EIO);
		printf("stack: TLS 1.3 handshake + round trip, ECDSA P-256, X25519, %s: client %zu "
		       "bytes, server %zu bytes of a %zu KiB task stack\n",
		       i ? "warm" : "first in the process", k.cpeak, k.speak, STACK_SIZE / 1024);
	}
	ur_tls_ctx_free(k.cctx);
	ur_tls_ctx_free(k.sctx);
}

/* --- handshakes per second: urio vs openssl s_time against one s_server ----------------------- */

static pid_t s_server_pid;
static uint16_t s_server_port;
static pthread_t s_server_drain;
static int s_server_out;

static void *drain(void *arg)
{
	char buf[4096];
	(void)arg;
	while (read(s_server_out, buf, sizeof(buf)) > 0)
		;
	return NULL;
}

/* s_server -www on port 0: the port from its "ACCEPT 127.0.0.1:PORT" line. */
static void start_s_server(void)
{
	int out[2];
	if (pipe2(out, O_CLOEXEC) < 0)
		die("pipe", -errno);
	s_server_pid = fork();
	if (s_server_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(out[1], 1);
		dup2(out[1], 2);
		execlp("openssl", "openssl", "s_server", "-accept", "127.0.0.1:0", "-cert",
		       cert_path, "-key", key_path, "-www", "-tls1_3", (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	s_server_out = out[0];
	char line[256];
	size_t n = 0;
	char c;
	while (n < sizeof(line) - 1 && read(s_server_out, &c, 1) == 1) {
		line[n++] = c;
		line[n] = '\0';
		char *a = strstr(line, "ACCEPT ");
		if (c == '\n' && a) {
			s_server_port = (uint16_t)atoi(strrchr(a, ':') + 1);
			break;
		}
		if (c == '\n')
			n = 0;
	}
	if (!s_server_port)
		die("openssl s_server did not start", -EIO);
	pthread_create(&s_server_drain, NULL, drain, NULL);
}

static void stop_s_server(void)
{
	kill(s_server_pid, SIGTERM);
	waitpid(s_server_pid, NULL, 0);
	pthread_join(s_server_drain, NULL);
	close(s_server_out);
}

/* `openssl s_time` for @secs: connections per second of wall time. */
static double s_time(const char *mode, int secs)
{
	char cmd[512], line[256];
	double rate = 0;
	snprintf(cmd, sizeof(cmd),
	         "openssl s_time -connect 127.0.0.1:%u -CAfile %s -www / %s -time %d 2>&1",
	         s_server_port, ca_path, mode, secs);
	FILE *p = popen(cmd, "r");
	while (p && fgets(line, sizeof(line), p)) {
		long n;
		double t;
		if (sscanf(line, "%ld connections in %lfs", &n, &t) == 2 && t > 0)
			rate = (double)n / t;
	}
	if (p)
		pclose(p);
	return rate;
}

struct hs_case {
	struct ur_tls_ctx *ctx;
	double secs;
	long conns, resumed, failed;
	double rate;
};

static int hs_main(void *arg)
{
	struct hs_case *k = arg;
	static const char req[] = "GET / HTTP/1.0\r\n\r\n";
	char buf[16384];
	double t0 = now_s(), t1;
	do {
		struct ur_stream s;
		int r = task_connect(&s, s_server_port);
		if (r < 0)
			die("connect", r);
		r = ur_tls_client(&s, k->ctx, "localhost");
		if (r == 0 && ur_stream_write_all(&s, req, sizeof(req) - 1) > 0) {
			ssize_t n;
			while ((n = ur_stream_read(&s, buf, sizeof(buf))) > 0)
				;
			k->conns++;
			k->resumed += ur_tls_resumed(&s);
		} else {
			k->failed++;
		}
		ur_stream_close(&s);
		t1 = now_s();
	} while (t1 - t0 < k->secs);
	k->rate = (double)k->conns / (t1 - t0);
	return 0;
}

/* Each figure is the median of 3 runs, urio and s_time alternating, so both see the same load. */
static void bench_handshake(int secs)
{
	start_s_server();
	for (int resume = 0; resume < 2; resume++) {
		double ours[3], theirs[3];
		long conns = 0, resumed = 0, failed = 0;
		struct ur_tls_ctx *ctx =
		    new_ctx(UR_TLS_CLIENT,
		            (resume ? 0 : UR_TLS_NO_RESUME) |
		                (getenv("BENCH_TLS_KEEP_BUFFERS") ? UR_TLS_KEEP_BUFFERS : 0));
		for (int i = 0; i < 3; i++) {
			struct hs_case k = {.ctx = ctx, .secs = secs};
			if (ur_run(NULL, hs_main, &k, NULL) < 0)
				die("ur_run", -EIO);
			ours[i] = k.rate;
			conns += k.conns;
			resumed += k.resumed;
			failed += k.failed;
			theirs[i] = s_time(resume ? "-reuse" : "-new", secs);
		}
		double u = median(ours, 3), o = median(theirs, 3);
		printf("handshake: TLS 1.3, resumption %s: urio %.0f/s (%ld of %ld resumed, %ld "
		       "failed), openssl s_time %.0f/s, ratio %.2fx\n",
		       resume ? "on " : "off", u, resumed, conns, failed, o, o > 0 ? u / o : 0);
		ur_tls_ctx_free(ctx);
	}
	stop_s_server();
}

/* --- memory per idle connection --------------------------------------------------------------- */

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib;
}

struct idle_server {
	int lfd;
	struct ur_tls_ctx *ctx; /* NULL: plain streams, for the baseline */
	long want, established, ended;
};

struct idle_conn {
	struct idle_server *sv;
	int fd;
};

static int idle_conn_task(void *arg)
{
	struct idle_conn *c = arg;
	struct idle_server *sv = c->sv;
	struct ur_stream s;
	char buf[64];
	ur_stream_init(&s, c->fd, 0);
	free(c);
	int r = sv->ctx ? ur_tls_server(&s, sv->ctx) : 0;
	if (r == 0) {
		sv->established++;
		while (ur_stream_read(&s, buf, sizeof(buf)) > 0)
			;
	}
	ur_stream_close(&s);
	sv->ended++;
	return 0;
}

static int idle_accept_task(void *arg)
{
	struct idle_server *sv = arg;
	for (long i = 0; i < sv->want; i++) {
		int fd = ur_accept(sv->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			die("accept", fd);
		struct idle_conn *c = malloc(sizeof(*c));
		c->sv = sv;
		c->fd = fd;
		struct ur_task *t;
		int r = ur_spawn(ur_current_loop(), &t, idle_conn_task, c, NULL);
		if (r < 0)
			die("spawn", r);
		ur_task_detach(t);
	}
	return 0;
}

/* The client side, in the child: @n connections, at most 64 handshakes at a time, then idle. */
struct idle_client {
	uint16_t port;
	bool tls;
	struct ur_tls_ctx *ctx;
	long started, done;
};

static int idle_client_task(void *arg)
{
	struct idle_client *k = arg;
	struct ur_stream s;
	char b;
	if (task_connect(&s, k->port) < 0)
		die("client connect", -errno);
	if (k->tls) {
		int r = ur_tls_client(&s, k->ctx, "localhost");
		if (r < 0)
			die("client handshake", r);
	}
	k->done++;
	ur_stream_read(&s, &b, 1); /* until the parent ends us */
	ur_stream_close(&s);
	return 0;
}

static int idle_client_main(void *arg)
{
	struct idle_client *k = arg;
	long n = k->started;
	k->started = 0;
	while (k->started < n) {
		while (k->started < n && k->started - k->done < 64) {
			struct ur_task *t;
			ur_spawn(ur_current_loop(), &t, idle_client_task, k, NULL);
			ur_task_detach(t);
			k->started++;
		}
		ur_sleep(UR_MSEC);
	}
	for (;;)
		ur_sleep(UR_SEC); /* the parent kills us */
	return 0;
}

static int idle_server_main(void *arg)
{
	struct idle_server *sv = arg;
	struct ur_task *acc;
	ur_spawn(ur_current_loop(), &acc, idle_accept_task, sv, NULL);
	while (sv->established < sv->want)
		ur_sleep(10 * UR_MSEC);
	ur_join(acc);
	return 0;
}

static void bench_idle_one(long n, bool tls)
{
	uint16_t port;
	struct idle_server sv = {.want = n};
	sv.lfd = tcp_listen(&port, 4096);
	sv.ctx = tls ? new_ctx(UR_TLS_SERVER, 0) : NULL;
	struct ur_loop *l;
	if (ur_loop_new(&l, NULL) < 0)
		die("ur_loop_new", -EIO);
	/* warm up: OpenSSL's tables, urio's pools, malloc's arenas, with one connection */
	malloc_trim(0);
	long before = rss_kib();
	pid_t child = fork();
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		struct idle_client k = {.port = port, .tls = tls, .started = n};
		k.ctx = tls ? new_ctx(UR_TLS_CLIENT, UR_TLS_NO_RESUME) : NULL;
		ur_run(NULL, idle_client_main, &k, NULL);
		_exit(0);
	}
	double t0 = now_s();
	if (ur_run(l, idle_server_main, &sv, NULL) < 0)
		die("ur_run", -EIO);
	double t1 = now_s();
	long after = rss_kib();
	malloc_trim(0);
	long trimmed = rss_kib();
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	while (sv.ended < n)
		ur_loop_run(l, UR_RUN_ONCE);
	ur_loop_free(&l);
	close(sv.lfd);
	printf("idle: %ld %s connections held by one urio server: RSS +%.1f MiB, %.1f KiB per "
	       "connection (%.1f KiB after malloc_trim); set up in %.1f s\n",
	       n, tls ? "TLS 1.3" : "plain TCP", (double)(after - before) / 1024,
	       (double)(after - before) / (double)n, (double)(trimmed - before) / (double)n,
	       t1 - t0);
	ur_tls_ctx_free(sv.ctx);
}

static void bench_idle(long n)
{
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if ((rlim_t)n + 64 > rl.rlim_cur) {
		n = (long)rl.rlim_cur - 64;
		printf("idle: descriptor limit %lu: %ld connections\n", (unsigned long)rl.rlim_cur,
		       n);
	}
	bench_idle_one(n, false);
	bench_idle_one(n, true);
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "all";
	signal(SIGPIPE, SIG_IGN);
	make_certs();
	if (!strcmp(what, "stack") || !strcmp(what, "all"))
		bench_stack();
	if (!strcmp(what, "handshake") || !strcmp(what, "all"))
		bench_handshake(argc > 2 ? atoi(argv[2]) : 5);
	if (!strcmp(what, "idle") || !strcmp(what, "all"))
		bench_idle(argc > 2 && strcmp(what, "all") ? atol(argv[2]) : 10000);
	drop_certs();
	return 0;
}
