/* SPDX-License-Identifier: MIT */
/*
 * tests/proto/test_net.c - connecting (Happy Eyeballs, deadlines, errors, Unix) and the listen
 * helpers, over loopback only.
 *
 * An address that "hangs" is a listener whose accept queue is full: with a backlog of 0 the
 * kernel queues one connection, and drops the SYNs that come after it, so a further connect
 * waits for a SYN-ACK that never comes (the client would retry for minutes).
 */
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/stat.h>

#define T_FAULT_UNSAFE_FILE "enomem,reset"
#define T_FAULT_UNSAFE_WHY                                                                         \
	"each test asserts its connect, write and shutdown succeed or fail with one exact error; " \
	"a refused start or a reset ends them with ENOMEM or ECONNRESET instead"
#include "../helpers.h"

struct hang {
	int lfd, filler;
	struct ur_addr addr;
};

/* A listener on @host whose queue is full; false if @host's family is not available. */
static bool hang_open(struct hang *h, const char *host)
{
	h->lfd = ur_tcp_listen(host, 0, NULL);
	if (h->lfd < 0)
		return false;
	cr_assert_eq(listen(h->lfd, 0), 0); /* a backlog of 0 (the helper's 0 means SOMAXCONN) */
	ASSERT_RES(ur_local_addr(h->lfd, &h->addr), 0);
	h->filler = socket(h->addr.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(h->filler, 0);
	cr_assert_eq(connect(h->filler, (struct sockaddr *)&h->addr.ss, h->addr.len), 0);
	return true;
}

static void hang_close(struct hang *h)
{
	close(h->filler);
	close(h->lfd);
}

/* A listener that accepts (the test accepts after the loop ran: the handshake queues it). */
static int good_listener(const char *host, struct ur_addr *a)
{
	int fd = ur_tcp_listen(host, 0, NULL);
	if (fd >= 0)
		ASSERT_RES(ur_local_addr(fd, a), 0);
	return fd;
}

/* A port on which nothing listens: bound, not listening, so it stays ours and refuses. */
static int refusing(const char *host, struct ur_addr *a)
{
	cr_assert_eq(ur_addr_numeric(host, 0, a), 0);
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a->ss, a->len), 0);
	ASSERT_RES(ur_local_addr(fd, a), 0);
	return fd;
}

static bool have_ipv6(void)
{
	struct ur_addr a;
	int fd = good_listener("::1", &a);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

struct conn {
	const char *host;
	uint16_t port;
	struct ur_connect_opts o;
	struct ur_addr peer;
	struct ur_stream s;
	int res;
	uint64_t took;
};

static int do_connect(void *arg)
{
	struct conn *c = arg;
	c->o.peer = &c->peer;
	uint64_t t0 = ur_now_ns();
	c->res = ur_tcp_connect(&c->s, c->host, c->port, &c->o);
	c->took = ur_now_ns() - t0;
	if (c->res == 0) {
		cr_assert_eq(ur_stream_write_all(&c->s, "ping", 4), 4);
		ASSERT_RES(ur_stream_shutdown(&c->s), 0);
	}
	return 0;
}

/* Accepts the one connection on @lfd and checks it says "ping". */
static void expect_ping(int lfd)
{
	char buf[8];
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(recv(fd, buf, sizeof(buf), MSG_WAITALL), 4);
	cr_assert_arr_eq(buf, "ping", 4);
	close(fd);
}

static void run_connect(struct conn *c)
{
	struct ur_loop *l = t_loop();
	ASSERT_RES(ur_run(l, do_connect, c, NULL), 0);
	t_loop_done(&l);
}

Test(net, connect_numeric_and_by_name_with_nodelay)
{
	int fds = t_count_fds();
	struct ur_addr a;
	int lfd = good_listener("127.0.0.1", &a);
	const char *hosts[] = {"127.0.0.1", "localhost"};
	for (int i = 0; i < 2; i++) {
		struct conn c = {.host = hosts[i], .port = ur_addr_port(&a)};
		run_connect(&c);
		ASSERT_RES(c.res, 0);
		cr_assert_eq(c.peer.ss.ss_family, AF_INET);
		cr_assert_eq(ur_addr_port(&c.peer), ur_addr_port(&a));
		int one = 0;
		socklen_t len = sizeof(one);
		cr_assert_eq(getsockopt(c.s.fd, IPPROTO_TCP, TCP_NODELAY, &one, &len), 0);
		cr_assert_eq(one, 1);
		expect_ping(lfd);
		ASSERT_RES(ur_stream_close(&c.s), 0);
	}
	close(lfd);
	cr_assert_eq(t_count_fds(), fds);
}

Test(net, refused_port_reports_connection_refused)
{
	int fds = t_count_fds();
	struct ur_addr a;
	int fd = refusing("127.0.0.1", &a);
	struct conn c = {.host = "127.0.0.1", .port = ur_addr_port(&a)};
	run_connect(&c);
	ASSERT_RES(c.res, -ECONNREFUSED);
	cr_assert_str_eq(ur_strerror(c.res), "Connection refused");
	close(fd);
	cr_assert_eq(t_count_fds(), fds);
}

Test(net, every_address_refused_reports_the_last_error)
{
	int fds = t_count_fds();
	struct ur_addr a[2];
	int f0 = refusing("127.0.0.1", &a[0]);
	int f1 = refusing("127.0.0.1", &a[1]);
	struct conn c = {.o = {.addrs = a, .naddrs = 2}};
	run_connect(&c);
	ASSERT_RES(c.res, -ECONNREFUSED);
	close(f0);
	close(f1);
	cr_assert_eq(t_count_fds(), fds);
}

Test(net, peer_that_never_accepts_hits_the_deadline, .timeout = 30)
{
	int fds = t_count_fds();
	struct hang h;
	cr_assert(hang_open(&h, "127.0.0.1"));
	/* the overall deadline */
	struct conn c = {.o = {.addrs = &h.addr, .naddrs = 1, .timeout_ns = 100 * UR_MSEC}};
	run_connect(&c);
	ASSERT_RES(c.res, -ETIMEDOUT);
	cr_assert_geq(c.took, 100 * UR_MSEC);
	/* the per-attempt deadline */
	struct conn d = {.o = {.addrs = &h.addr, .naddrs = 1, .attempt_timeout_ns = 50 * UR_MSEC}};
	run_connect(&d);
	ASSERT_RES(d.res, -ETIMEDOUT);
	hang_close(&h);
	cr_assert_eq(t_count_fds(), fds);
}

Test(net, happy_eyeballs_second_address_wins_after_the_delay, .timeout = 30)
{
	int fds = t_count_fds();
	struct hang h;
	struct ur_addr list[2];
	/* IPv6 is tried first even when listed second: the hanging one is ::1 where there is one */
	bool v6 = have_ipv6() && hang_open(&h, "::1");
	if (!v6)
		cr_assert(hang_open(&h, "127.0.0.1"));
	int lfd = good_listener("127.0.0.1", &list[v6 ? 0 : 1]);
	list[v6 ? 1 : 0] = h.addr;

	struct conn c = {.o = {.addrs = list, .naddrs = 2, .attempt_delay_ns = 100 * UR_MSEC}};
	run_connect(&c);
	ASSERT_RES(c.res, 0);
	cr_assert_eq(c.peer.ss.ss_family, AF_INET);
	cr_assert_eq(ur_addr_port(&c.peer), ur_addr_port(&list[v6 ? 0 : 1]));
	cr_assert_geq(c.took, 100 * UR_MSEC); /* the second attempt starts only after the delay */
	expect_ping(lfd);
	ASSERT_RES(ur_stream_close(&c.s), 0);
	close(lfd);
	hang_close(&h);
	/* the losing attempt was cancelled and its socket closed */
	cr_assert_eq(t_count_fds(), fds);
}

Test(net, happy_eyeballs_default_delay_is_250ms, .timeout = 30)
{
	struct hang h;
	struct ur_addr list[2];
	cr_assert(hang_open(&h, "127.0.0.1"));
	list[0] = h.addr;
	int lfd = good_listener("127.0.0.1", &list[1]);
	struct conn c = {.o = {.addrs = list, .naddrs = 2}};
	run_connect(&c);
	ASSERT_RES(c.res, 0);
	cr_assert_geq(c.took, UR_CONNECT_ATTEMPT_DELAY);
	expect_ping(lfd);
	ur_stream_close(&c.s);
	close(lfd);
	hang_close(&h);
}

/* A refused first address hands over at once: with a 60 s delay this would time the test out. */
Test(net, failed_attempt_starts_the_next_at_once, .timeout = 20)
{
	int fds = t_count_fds();
	struct ur_addr list[2];
	int rfd = refusing("127.0.0.1", &list[0]);
	int lfd = good_listener("127.0.0.1", &list[1]);
	struct conn c = {.o = {.addrs = list, .naddrs = 2, .attempt_delay_ns = 60 * UR_SEC}};
	run_connect(&c);
	ASSERT_RES(c.res, 0);
	cr_assert_eq(ur_addr_port(&c.peer), ur_addr_port(&list[1]));
	expect_ping(lfd);
	ur_stream_close(&c.s);
	close(lfd);
	close(rfd);
	cr_assert_eq(t_count_fds(), fds);
}

Test(net, overall_deadline_across_several_hanging_addresses, .timeout = 30)
{
	int fds = t_count_fds();
	struct hang h[2];
	struct ur_addr list[2];
	for (int i = 0; i < 2; i++) {
		cr_assert(hang_open(&h[i], "127.0.0.1"));
		list[i] = h[i].addr;
	}
	struct conn c = {.o = {.addrs = list,
	                       .naddrs = 2,
	                       .attempt_delay_ns = 20 * UR_MSEC,
	                       .timeout_ns = 150 * UR_MSEC}};
	run_connect(&c);
	ASSERT_RES(c.res, -ETIMEDOUT);
	cr_assert_geq(c.took, 150 * UR_MSEC);
	for (int i = 0; i < 2; i++)
		hang_close(&h[i]);
	cr_assert_eq(t_count_fds(), fds);
}

static int cancel_connect(void *arg)
{
	struct conn *c = arg;
	struct ur_task *t;
	ASSERT_RES(ur_spawn(ur_current_loop(), &t, do_connect, c, NULL), 0);
	ASSERT_RES(ur_sleep(30 * UR_MSEC), 0);
	ASSERT_RES(ur_task_cancel(t), 0);
	ASSERT_RES(ur_join(t), 0);
	return 0;
}

Test(net, cancelled_connect_closes_every_attempt, .timeout = 30)
{
	int fds = t_count_fds();
	struct hang h[2];
	struct ur_addr list[2];
	for (int i = 0; i < 2; i++) {
		cr_assert(hang_open(&h[i], "127.0.0.1"));
		list[i] = h[i].addr;
	}
	struct conn c = {.o = {.addrs = list, .naddrs = 2, .attempt_delay_ns = 10 * UR_MSEC}};
	struct ur_loop *l = t_loop();
	ASSERT_RES(ur_run(l, cancel_connect, &c, NULL), 0);
	t_loop_done(&l);
	ASSERT_RES(c.res, -ECANCELED);
	for (int i = 0; i < 2; i++)
		hang_close(&h[i]);
	cr_assert_eq(t_count_fds(), fds);
}

Test(net, resolver_errors_come_through)
{
	struct conn c = {.host = "nowhere.invalid", .port = 80};
	run_connect(&c);
	ASSERT_RES(c.res, UR_ENONAME);
	struct ur_stream s;
	ASSERT_RES(ur_tcp_connect(&s, "127.0.0.1", 1, NULL), UR_ENOTASK);
	ASSERT_RES(ur_tcp_connect(&s, NULL, 1, NULL), -EINVAL);
}

struct unix_case {
	char path[64];
	struct ur_stream s;
	int res[3];
};

static int unix_connects(void *arg)
{
	struct unix_case *u = arg;
	u->res[0] = ur_unix_connect(&u->s, u->path, NULL);
	if (u->res[0] == 0) {
		cr_assert_eq(ur_stream_write_all(&u->s, "ping", 4), 4);
		ur_stream_shutdown(&u->s);
	}
	struct ur_stream s2;
	u->res[1] = ur_unix_connect(&s2, "/nonexistent/urio-test.sock", NULL);
	u->res[2] = ur_unix_connect(&s2, "@urio-test-nobody-listens-here", NULL);
	return 0;
}

Test(net, unix_socket_connect_and_errors)
{
	int fds = t_count_fds();
	struct unix_case u = {0};
	snprintf(u.path, sizeof(u.path), "/tmp/urio-test-%d.sock", (int)getpid());
	unlink(u.path);
	int lfd = ur_unix_listen(u.path, NULL);
	cr_assert_geq(lfd, 0, "%s", ur_strerror(lfd));
	struct ur_loop *l = t_loop();
	ASSERT_RES(ur_run(l, unix_connects, &u, NULL), 0);
	t_loop_done(&l);
	ASSERT_RES(u.res[0], 0);
	ASSERT_RES(u.res[1], -ENOENT);
	ASSERT_RES(u.res[2], -ECONNREFUSED);
	expect_ping(lfd);
	ur_stream_close(&u.s);
	/* a file already there is not replaced */
	ASSERT_RES(ur_unix_listen(u.path, NULL), -EADDRINUSE);
	close(lfd);
	unlink(u.path);
	cr_assert_eq(t_count_fds(), fds);
}

Test(net, abstract_unix_socket)
{
	struct unix_case u = {0};
	snprintf(u.path, sizeof(u.path), "@urio-test-%d", (int)getpid());
	int lfd = ur_unix_listen(u.path, NULL);
	cr_assert_geq(lfd, 0);
	struct ur_loop *l = t_loop();
	ASSERT_RES(ur_run(l, unix_connects, &u, NULL), 0);
	t_loop_done(&l);
	ASSERT_RES(u.res[0], 0);
	expect_ping(lfd);
	ur_stream_close(&u.s);
	close(lfd);
}

Test(net, listen_helpers)
{
	struct ur_addr a, b;
	struct ur_listen_opts rp = {.flags = UR_LISTEN_REUSEPORT, .backlog = 16};
	int f1 = ur_tcp_listen("127.0.0.1", 0, &rp);
	cr_assert_geq(f1, 0);
	ASSERT_RES(ur_local_addr(f1, &a), 0);
	/* SO_REUSEPORT: a second socket on the same port */
	int f2 = ur_tcp_listen("127.0.0.1", ur_addr_port(&a), &rp);
	cr_assert_geq(f2, 0, "%s", ur_strerror(f2));
	ASSERT_RES(ur_local_addr(f2, &b), 0);
	cr_assert_eq(ur_addr_port(&a), ur_addr_port(&b));
	/* without it: in use */
	ASSERT_RES(ur_tcp_listen("127.0.0.1", ur_addr_port(&a), NULL), -EADDRINUSE);
	close(f1);
	close(f2);
	ASSERT_RES(ur_tcp_listen("localhost", 0, NULL), -EINVAL);
	/* every address */
	int f3 = ur_tcp_listen(NULL, 0, NULL);
	cr_assert_geq(f3, 0);
	close(f3);
}
