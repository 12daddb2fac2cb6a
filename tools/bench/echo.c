/* SPDX-License-Identifier: MIT */
/*
 * tools/bench/echo.c - TCP echo: urio's server helper (urecho's handler) against a plain epoll
 * server, a libuv server and a raw-liburing server of the same design, on loopback.
 *
 *	bench_echo [-d SECONDS] [-c CONNS,...] [-s SIZES,...] [-r REPEATS] [servers...]
 *	bench_echo server MODE       (internal: runs one server, prints its port)
 *
 * Each server runs in a child process pinned to CPU 0; the load generator (an epoll client
 * keeping one message in flight per connection) runs here, pinned to CPU 1. On two cores the
 * generator saturates first, so servers are compared by server CPU time per round trip
 * (utime + stime of the server process from /proc/PID/stat, every thread included: io-wq
 * workers are the server's threads) and round trips per second are printed beside it.
 *
 * Designs: every server reads what is there (up to 16 KiB) and writes it back.
 *   epoll  non-blocking sockets, level-triggered epoll, read + write per message
 *   libuv  uv_read_start + uv_try_write (uv_write if it would block)
 *   uring  raw liburing: multishot accept, one recv SQE then one send SQE per message,
 *          every SQE of a batch submitted with the wait for the next completions
 *   urio   ur_server_start (one loop), a task per connection: ur_stream_read + write_all
 *   urio-ring  the same with UR_SERVER_RXRING: one multishot recv per connection into a
 *          per-loop buffer ring instead of a recv per read
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <urio.h>
#include <urio/net.h>
#include <urio/server.h>
#if __has_include(<uv.h>) && defined(HAVE_LIBUV)
#include <uv.h>
#define WITH_LIBUV 1
#else
#define WITH_LIBUV 0
#endif

#define BUF (16 * 1024)

static void pin(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static int listener(uint16_t *port)
{
	struct ur_listen_opts lo = {.backlog = 4096};
	int fd = ur_tcp_listen("127.0.0.1", 0, &lo);
	struct ur_addr a;
	if (fd < 0 || ur_local_addr(fd, &a) < 0) {
		fprintf(stderr, "bench_echo: listen: %s\n", ur_strerror(fd));
		exit(1);
	}
	*port = ur_addr_port(&a);
	return fd;
}

static void nodelay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void announce(uint16_t port)
{
	printf("%u\n", port);
	fflush(stdout);
}

/* --- epoll ------------------------------------------------------------------------------------ */

static _Noreturn int serve_epoll(void)
{
	uint16_t port;
	int lfd = listener(&port), ep = epoll_create1(EPOLL_CLOEXEC);
	static char buf[BUF];
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd}, evs[256];
	fcntl(lfd, F_SETFL, O_NONBLOCK);
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	announce(port);
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == lfd) {
				int c;
				while ((c = accept4(lfd, NULL, NULL,
				                    SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					nodelay(c);
					struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
				}
				continue;
			}
			ssize_t r = read(fd, buf, sizeof(buf));
			if (r <= 0) {
				if (r < 0 && errno == EAGAIN)
					continue;
				close(fd); /* also leaves the epoll set */
				continue;
			}
			for (ssize_t off = 0; off < r;) {
				ssize_t w = write(fd, buf + off, (size_t)(r - off));
				if (w < 0 && errno == EAGAIN) {
					struct pollfd p = {fd, POLLOUT, 0};
					poll(&p, 1, -1); /* rare for ping-pong: the peer reads */
					continue;
				}
				if (w < 0)
					break;
				off += w;
			}
		}
	}
}

/* --- libuv ------------------------------------------------------------------------------------ */

#if WITH_LIBUV
static void uv_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	(void)h, (void)hint;
	static char buf[BUF];
	*b = uv_buf_init(buf, sizeof(buf));
}

struct uv_wr {
	uv_write_t req;
	char data[];
};

static void uv_wrote(uv_write_t *req, int status)
{
	(void)status;
	free(req);
}

static void uv_closed(uv_handle_t *h)
{
	free(h);
}

static void uv_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	if (n < 0) {
		uv_close((uv_handle_t *)s, uv_closed);
		return;
	}
	if (n == 0)
		return;
	uv_buf_t w = uv_buf_init(b->base, (unsigned)n);
	int r = uv_try_write(s, &w, 1);
	if (r == n)
		return;
	size_t off = r > 0 ? (size_t)r : 0;
	struct uv_wr *req = malloc(sizeof(*req) + (size_t)n - off);
	memcpy(req->data, b->base + off, (size_t)n - off);
	w = uv_buf_init(req->data, (unsigned)((size_t)n - off));
	uv_write(&req->req, s, &w, 1, uv_wrote);
}

static void uv_on_conn(uv_stream_t *srv, int status)
{
	if (status < 0)
		return;
	uv_tcp_t *c = malloc(sizeof(*c));
	uv_tcp_init(srv->loop, c);
	if (uv_accept(srv, (uv_stream_t *)c) == 0) {
		uv_tcp_nodelay(c, 1);
		uv_read_start((uv_stream_t *)c, uv_alloc, uv_on_read);
	} else {
		uv_close((uv_handle_t *)c, uv_closed);
	}
}

static int serve_libuv(void)
{
	uint16_t port;
	int lfd = listener(&port);
	uv_loop_t *loop = uv_default_loop();
	uv_tcp_t srv;
	uv_tcp_init(loop, &srv);
	uv_tcp_open(&srv, lfd);
	uv_listen((uv_stream_t *)&srv, 4096, uv_on_conn);
	announce(port);
	return uv_run(loop, UV_RUN_DEFAULT);
}
#endif

/* --- raw liburing ----------------------------------------------------------------------------- */

enum {
	OP_ACCEPT = 0,
	OP_RECV = 1,
	OP_SEND = 2
};

struct uconn {
	int fd;
	char buf[BUF];
};

static struct io_uring_sqe *get_sqe(struct io_uring *ring)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	while (!sqe) {
		io_uring_submit(ring);
		sqe = io_uring_get_sqe(ring);
	}
	return sqe;
}

static void u_recv(struct io_uring *ring, struct uconn *c)
{
	struct io_uring_sqe *sqe = get_sqe(ring);
	io_uring_prep_recv(sqe, c->fd, c->buf, BUF, 0);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | OP_RECV);
}

static _Noreturn int serve_uring(void)
{
	uint16_t port;
	int lfd = listener(&port);
	struct io_uring ring;
	struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER |
	                                     IORING_SETUP_DEFER_TASKRUN |
	                                     IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
	                            .cq_entries = 8192};
	p.flags |= IORING_SETUP_CQSIZE;
	if (io_uring_queue_init_params(256, &ring, &p) < 0) {
		p.flags = IORING_SETUP_CQSIZE;
		if (io_uring_queue_init_params(256, &ring, &p) < 0)
			exit(1);
	}
	io_uring_register_ring_fd(&ring);
	struct io_uring_sqe *sqe = get_sqe(&ring);
	io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, OP_ACCEPT);
	announce(port);
	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		io_uring_submit_and_wait(&ring, 1);
		io_uring_for_each_cqe(&ring, head, cqe)
		{
			seen++;
			uint64_t ud = cqe->user_data;
			struct uconn *c = (struct uconn *)(uintptr_t)(ud & ~(uint64_t)3);
			int res = cqe->res;
			switch (ud & 3) {
			case OP_ACCEPT:
				if (res >= 0) {
					c = malloc(sizeof(*c));
					c->fd = res;
					nodelay(res);
					u_recv(&ring, c);
				}
				if (!(cqe->flags & IORING_CQE_F_MORE)) {
					sqe = get_sqe(&ring);
					io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL,
					                               SOCK_CLOEXEC);
					io_uring_sqe_set_data64(sqe, OP_ACCEPT);
				}
				break;
			case OP_RECV:
				if (res <= 0) {
					close(c->fd);
					free(c);
					break;
				}
				sqe = get_sqe(&ring);
				io_uring_prep_send(sqe, c->fd, c->buf, (size_t)res, MSG_WAITALL);
				io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | OP_SEND);
				break;
			case OP_SEND:
				if (res < 0) {
					close(c->fd);
					free(c);
					break;
				}
				u_recv(&ring, c);
				break;
			}
		}
		io_uring_cq_advance(&ring, seen);
	}
}

/* --- urio: the server helper with urecho's handler ---------------------------------------------
 */

static int urio_echo(struct ur_stream *s, void *arg)
{
	(void)arg;
	char buf[BUF];
	ssize_t n;
	while ((n = ur_stream_read(s, buf, sizeof(buf))) > 0)
		if (ur_stream_write_all(s, buf, (size_t)n) < 0)
			break;
	return 0;
}

static int serve_urio(uint32_t flags)
{
	struct ur_server *sv;
	struct ur_server_opts o = {.host = "127.0.0.1",
	                           .threads = 1,
	                           .backlog = 4096,
	                           .on_conn = urio_echo,
	                           .flags = flags};
	int r = ur_server_start(&sv, &o);
	if (r < 0) {
		fprintf(stderr, "bench_echo: urio: %s\n", ur_strerror(r));
		return 1;
	}
	announce(ur_server_port(sv));
	pause();
	return 0;
}

/* --- the load generator ----------------------------------------------------------------------- */

struct load {
	double secs, rts_per_s;
	unsigned long long rts;
};

static int load_run(uint16_t port, unsigned conns, size_t size, double secs, struct load *out)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	int *fds = calloc(conns, sizeof(int));
	size_t *got = calloc(conns, sizeof(size_t));
	char *msg = malloc(size), *in = malloc(BUF);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons(port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	memset(msg, 'x', size);
	for (unsigned i = 0; i < conns; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (connect(fds[i], (struct sockaddr *)&a, sizeof(a)) < 0)
			return -errno;
		nodelay(fds[i]);
		fcntl(fds[i], F_SETFL, O_NONBLOCK);
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
		epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
	}
	unsigned long long rts = 0;
	for (unsigned i = 0; i < conns; i++)
		if (write(fds[i], msg, size) != (ssize_t)size)
			return -EIO;
	uint64_t t0 = ur_now_ns(), end = t0 + (uint64_t)(secs * 1e9), now = t0;
	struct epoll_event evs[256];
	while (now < end) {
		int n = epoll_wait(ep, evs, 256, 100);
		for (int k = 0; k < n; k++) {
			unsigned i = evs[k].data.u32;
			ssize_t r = read(fds[i], in, BUF);
			if (r <= 0)
				continue;
			got[i] += (size_t)r;
			if (got[i] >= size) {
				got[i] = 0;
				rts++;
				if (write(fds[i], msg, size) != (ssize_t)size)
					return -EIO;
			}
		}
		now = ur_now_ns();
	}
	out->secs = (double)(now - t0) / 1e9;
	out->rts = rts;
	out->rts_per_s = (double)rts / out->secs;
	for (unsigned i = 0; i < conns; i++)
		close(fds[i]);
	close(ep);
	free(fds);
	free(got);
	free(msg);
	free(in);
	return 0;
}

/* utime + stime of @pid in ns */
static double cpu_ns(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	unsigned long ut = 0, st = 0;
	/* after ") ": state(3) ... utime is field 14, stime 15 */
	sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
	return (double)(ut + st) * 1e9 / (double)sysconf(_SC_CLK_TCK);
}

static pid_t spawn_server(const char *self, const char *mode, uint16_t *port)
{
	int p[2];
	if (pipe(p) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		pin(0);
		dup2(p[1], 1);
		close(p[0]);
		execl(self, self, "server", mode, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	char line[32] = "";
	ssize_t n = read(p[0], line, sizeof(line) - 1);
	close(p[0]);
	if (n <= 0) {
		waitpid(pid, NULL, 0);
		return -1;
	}
	*port = (uint16_t)atoi(line);
	return pid;
}

struct result {
	double cpu_per_rt, rts_per_s;
};

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median_d(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmpd);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int measure(const char *self, const char *mode, unsigned conns, size_t size, double secs,
                   unsigned repeats, struct result *res)
{
	double cpus[16], rates[16];
	for (unsigned k = 0; k < repeats; k++) {
		uint16_t port;
		pid_t pid = spawn_server(self, mode, &port);
		if (pid < 0)
			return -1;
		struct load l;
		double c0 = cpu_ns(pid);
		int r = load_run(port, conns, size, secs, &l);
		double c1 = cpu_ns(pid);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		if (r < 0) {
			fprintf(stderr, "bench_echo: %s: load: %s\n", mode, ur_strerror(r));
			return -1;
		}
		cpus[k] = (c1 - c0) / (double)l.rts;
		rates[k] = l.rts_per_s;
	}
	res->cpu_per_rt = median_d(cpus, repeats);
	res->rts_per_s = median_d(rates, repeats);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "server") == 0) {
		signal(SIGPIPE, SIG_IGN);
		if (strcmp(argv[2], "epoll") == 0)
			return serve_epoll();
		if (strcmp(argv[2], "uring") == 0)
			return serve_uring();
		if (strcmp(argv[2], "urio") == 0)
			return serve_urio(0);
		if (strcmp(argv[2], "urio-ring") == 0)
			return serve_urio(UR_SERVER_RXRING);
#if WITH_LIBUV
		if (strcmp(argv[2], "libuv") == 0)
			return serve_libuv();
#endif
		return 2;
	}

	double secs = 2;
	unsigned repeats = 3;
	unsigned conns_list[8] = {64, 1000}, nconns = 2;
	size_t sizes[8] = {64, 4096}, nsizes = 2;
	const char *modes[8];
	unsigned nmodes = 0;
	int o;
	while ((o = getopt(argc, argv, "d:c:s:r:")) != -1) {
		char *t, *save;
		switch (o) {
		case 'd':
			secs = atof(optarg);
			break;
		case 'r':
			repeats = (unsigned)atoi(optarg);
			break;
		case 'c':
			nconns = 0;
			for (t = strtok_r(optarg, ",", &save); t && nconns < 8;
			     t = strtok_r(NULL, ",", &save))
				conns_list[nconns++] = (unsigned)atoi(t);
			break;
		case 's':
			nsizes = 0;
			for (t = strtok_r(optarg, ",", &save); t && nsizes < 8;
			     t = strtok_r(NULL, ",", &save))
				sizes[nsizes++] = strtoul(t, NULL, 10);
			break;
		default:
			fprintf(stderr,
			        "usage: bench_echo [-d SECS] [-c CONNS,..] [-s SIZES,..] [-r N] "
			        "[epoll libuv uring urio urio-ring]\n");
			return 2;
		}
	}
	if (repeats < 1 || repeats > 16)
		repeats = 3;
	for (int i = optind; i < argc && nmodes < 8; i++)
		modes[nmodes++] = argv[i];
	if (nmodes == 0) {
		modes[nmodes++] = "epoll";
#if WITH_LIBUV
		modes[nmodes++] = "libuv";
#endif
		modes[nmodes++] = "uring";
		modes[nmodes++] = "urio";
	}
	signal(SIGPIPE, SIG_IGN);
	pin(1);
	printf("TCP echo ping-pong on loopback: server pinned to CPU 0, load on CPU 1; %.1f s per "
	       "run, median of %u\n",
	       secs, repeats);
	printf("%-9s %5s %6s %14s %12s %9s %9s\n", "server", "conns", "bytes", "CPU ns/rt", "rt/s",
	       "vs epoll", "vs uring");
	for (size_t si = 0; si < nsizes; si++)
		for (unsigned ci = 0; ci < nconns; ci++) {
			struct result r[8] = {0}, *ep = NULL, *ur = NULL;
			for (unsigned m = 0; m < nmodes; m++) {
				if (measure(argv[0], modes[m], conns_list[ci], sizes[si], secs,
				            repeats, &r[m]) < 0)
					continue;
				if (strcmp(modes[m], "epoll") == 0)
					ep = &r[m];
				if (strcmp(modes[m], "uring") == 0)
					ur = &r[m];
			}
			for (unsigned m = 0; m < nmodes; m++) {
				if (r[m].rts_per_s == 0)
					continue;
				printf("%-9s %5u %6zu %14.0f %12.0f", modes[m], conns_list[ci],
				       sizes[si], r[m].cpu_per_rt, r[m].rts_per_s);
				if (ep)
					printf(" %8.2fx", r[m].cpu_per_rt / ep->cpu_per_rt);
				else
					printf(" %9s", "-");
				if (ur)
					printf(" %8.2fx", r[m].cpu_per_rt / ur->cpu_per_rt);
				printf("\n");
			}
			fflush(stdout);
		}
	return 0;
}
