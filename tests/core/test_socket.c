/* SPDX-License-Identifier: MIT */
/*
 * tests/core/test_socket.c - sockets: socket, connect, accept (single and multishot), send, recv,
 * msg, shutdown, poll, UDP, Unix, close against a pending recv.
 */
#include "io_fixtures.h"

TestSuite(socket, .timeout = 30);

Test(socket, socket_gives_cloexec_fd)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	need_op(l, IORING_OP_SOCKET, "IORING_OP_SOCKET (5.19)");
	struct op o;
	static const int kinds[][2] = {
	    {AF_INET, SOCK_STREAM},
	    {AF_INET, SOCK_DGRAM},
	    {AF_INET6, SOCK_STREAM},
	    {AF_UNIX, SOCK_SEQPACKET},
	};

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		START(&o, ur_socket_start(l, &o.f, kinds[i][0], kinds[i][1], 0));
		int fd = op_wait(l, &o);
		if (fd == -EAFNOSUPPORT && kinds[i][0] == AF_INET6)
			continue; /* a kernel without IPv6 */
		cr_assert_geq(fd, 0, "socket(%d, %d): %s", kinds[i][0], kinds[i][1],
		              ur_strerror(fd));
		cr_assert_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
		int v = -1;
		socklen_t len = sizeof(v);
		cr_assert_eq(getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len), 0);
		cr_assert_eq(v, kinds[i][0]);
		cr_assert_eq(getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len), 0);
		cr_assert_eq(v, kinds[i][1]);
		close(fd);
	}

	/* Flags in @type are honoured next to the implicit SOCK_CLOEXEC. */
	START(&o, ur_socket_start(l, &o.f, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
	int fd = op_wait(l, &o);
	cr_assert_geq(fd, 0);
	cr_assert_eq(fcntl(fd, F_GETFL) & O_NONBLOCK, O_NONBLOCK);
	cr_assert_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	close(fd);

	START(&o, ur_socket_start(l, &o.f, 4242, SOCK_STREAM, 0));
	ASSERT_RES(op_wait(l, &o), -EAFNOSUPPORT);

	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

Test(socket, connect_and_accept_fill_addresses)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	need_op(l, IORING_OP_SOCKET, "IORING_OP_SOCKET (5.19)");
	uint16_t port;
	int lfd = t_listen_tcp(&port);
	struct sockaddr_in to = t_loopback(port);
	struct op so, co, ao;

	START(&so, ur_socket_start(l, &so.f, AF_INET, SOCK_STREAM, 0));
	int cfd = op_wait(l, &so);
	cr_assert_geq(cfd, 0);

	struct sockaddr_in peer;
	memset(&peer, 0xff, sizeof(peer));
	socklen_t peerlen = sizeof(peer);
	START(&ao, ur_accept_start(l, &ao.f, lfd, (struct sockaddr *)&peer, &peerlen, 0));
	START(&co, ur_connect_start(l, &co.f, cfd, (struct sockaddr *)&to, sizeof(to)));
	ASSERT_RES(op_wait(l, &co), 0);
	int sfd = op_wait(l, &ao);
	cr_assert_geq(sfd, 0, "accept: %s", ur_strerror(sfd));
	cr_assert_eq(fcntl(sfd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	cr_assert_eq(peerlen, sizeof(struct sockaddr_in));
	cr_assert_eq(peer.sin_family, AF_INET);
	cr_assert_eq(peer.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	cr_assert_eq(ntohs(peer.sin_port), local_port(cfd));

	/* accept with no address, and accept4 flags honoured. */
	int c2 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(connect(c2, (struct sockaddr *)&to, sizeof(to)), 0);
	START(&ao, ur_accept_start(l, &ao.f, lfd, NULL, NULL, SOCK_NONBLOCK));
	int s2 = op_wait(l, &ao);
	cr_assert_geq(s2, 0);
	cr_assert_eq(fcntl(s2, F_GETFL) & O_NONBLOCK, O_NONBLOCK);
	cr_assert_eq(fcntl(s2, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);

	/* The connection works both ways. */
	char buf[8];
	cr_assert_eq(write(cfd, "ping", 4), 4);
	memset(buf, 0, sizeof(buf));
	cr_assert_eq(read(sfd, buf, sizeof(buf)), 4);
	cr_assert_str_eq(buf, "ping");

	/* accept on something that is not a listener. */
	START(&ao, ur_accept_start(l, &ao.f, cfd, NULL, NULL, 0));
	ASSERT_RES(op_wait(l, &ao), -EINVAL);

	close(s2);
	close(c2);
	close(sfd);
	close(cfd);
	close(lfd);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

Test(socket, connect_to_closed_port_is_refused)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	/* A socket bound and never listening holds the port: nobody else can take it meanwhile. */
	int holder = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = t_loopback(0);
	cr_assert_eq(bind(holder, (struct sockaddr *)&a, sizeof(a)), 0);
	a = t_loopback(local_port(holder));

	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	struct op o;
	START(&o, ur_connect_start(l, &o.f, fd, (struct sockaddr *)&a, sizeof(a)));
	ASSERT_RES(op_wait(l, &o), -ECONNREFUSED);

	close(fd);
	close(holder);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

Test(socket, send_recv_exact_bytes_and_eof)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	int c, s;
	t_tcp_pair(&c, &s);
	struct op so, ro;
	char buf[64];

	START(&so, ur_send_start(l, &so.f, c, "hello, world!", 13, 0));
	ASSERT_RES(op_wait(l, &so), 13);
	memset(buf, 0, sizeof(buf));
	START(&ro, ur_recv_start(l, &ro.f, s, buf, sizeof(buf), 0));
	ASSERT_RES(op_wait(l, &ro), 13);
	cr_assert_str_eq(buf, "hello, world!");

	/* A recv started before the data arrives waits for it. */
	memset(buf, 0, sizeof(buf));
	START(&ro, ur_recv_start(l, &ro.f, c, buf, sizeof(buf), 0));
	settle(l);
	cr_assert_eq(ro.calls, 0, "recv completed with no data: %d", ro.res);
	START(&so, ur_send_start(l, &so.f, s, "back", 4, 0));
	ASSERT_RES(op_wait(l, &so), 4);
	ASSERT_RES(op_wait(l, &ro), 4);
	cr_assert_str_eq(buf, "back");

	/* MSG_PEEK leaves the data for the next recv. */
	cr_assert_eq(write(c, "peek", 4), 4);
	memset(buf, 0, sizeof(buf));
	START(&ro, ur_recv_start(l, &ro.f, s, buf, sizeof(buf), MSG_PEEK));
	ASSERT_RES(op_wait(l, &ro), 4);
	memset(buf, 0, sizeof(buf));
	START(&ro, ur_recv_start(l, &ro.f, s, buf, 2, 0));
	ASSERT_RES(op_wait(l, &ro), 2);
	cr_assert_str_eq(buf, "pe");
	START(&ro, ur_recv_start(l, &ro.f, s, buf, sizeof(buf), 0));
	ASSERT_RES(op_wait(l, &ro), 2);
	cr_assert_arr_eq(buf, "ek", 2);

	/* recv pending while the peer closes: 0, end of stream. */
	START(&ro, ur_recv_start(l, &ro.f, s, buf, sizeof(buf), 0));
	settle(l);
	cr_assert_eq(ro.calls, 0);
	close(c);
	ASSERT_RES(op_wait(l, &ro), 0);
	START(&ro, ur_recv_start(l, &ro.f, s, buf, sizeof(buf), 0));
	ASSERT_RES(op_wait(l, &ro), 0);

	close(s);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

Test(socket, sendmsg_recvmsg_two_iovecs)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	int c, s;
	t_tcp_pair(&c, &s);
	struct op so, ro;

	struct iovec out[2] = {{(void *)"hello, ", 7}, {(void *)"world", 5}};
	struct msghdr smsg = {.msg_iov = out, .msg_iovlen = 2};
	char a[5], b[20];
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	struct iovec in[2] = {{a, sizeof(a)}, {b, sizeof(b)}};
	struct msghdr rmsg = {.msg_iov = in, .msg_iovlen = 2};

	START(&ro, ur_recvmsg_start(l, &ro.f, s, &rmsg, 0));
	START(&so, ur_sendmsg_start(l, &so.f, c, &smsg, 0));
	ASSERT_RES(op_wait(l, &so), 12);
	ASSERT_RES(op_wait(l, &ro), 12);
	cr_assert_arr_eq(a, "hello", 5);
	cr_assert_str_eq(b, ", world");
	cr_assert_eq(rmsg.msg_flags, 0);

	close(c);
	close(s);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

Test(socket, shutdown_wr_gives_peer_eof)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	need_op(l, IORING_OP_SHUTDOWN, "IORING_OP_SHUTDOWN (5.11)");
	int c, s;
	t_tcp_pair(&c, &s);
	struct op o, ro;
	char buf[8];

	START(&ro, ur_recv_start(l, &ro.f, s, buf, sizeof(buf), 0));
	settle(l);
	cr_assert_eq(ro.calls, 0);
	START(&o, ur_shutdown_start(l, &o.f, c, SHUT_WR));
	ASSERT_RES(op_wait(l, &o), 0);
	ASSERT_RES(op_wait(l, &ro), 0);

	/* Only the write side is shut: c still receives. */
	cr_assert_eq(write(s, "rd", 2), 2);
	memset(buf, 0, sizeof(buf));
	START(&ro, ur_recv_start(l, &ro.f, c, buf, sizeof(buf), 0));
	ASSERT_RES(op_wait(l, &ro), 2);
	cr_assert_str_eq(buf, "rd");
	START(&o, ur_send_start(l, &o.f, c, "x", 1, MSG_NOSIGNAL));
	ASSERT_RES(op_wait(l, &o), -EPIPE);

	/* shutdown of a descriptor that is not a socket. */
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	START(&o, ur_shutdown_start(l, &o.f, p[0], SHUT_RDWR));
	ASSERT_RES(op_wait(l, &o), -ENOTSOCK);
	close(p[0]);
	close(p[1]);

	close(c);
	close(s);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

Test(socket, poll_reports_pollin_after_peer_writes)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	int c, s;
	t_tcp_pair(&c, &s);
	struct op o;

	START(&o, ur_poll_start(l, &o.f, s, POLLIN));
	settle(l);
	cr_assert_eq(o.calls, 0, "POLLIN reported with nothing to read: %#x", o.res);
	cr_assert_eq(write(c, "x", 1), 1);
	ASSERT_RES(op_wait(l, &o), POLLIN);

	/* The data is still there: poll does not consume. */
	char ch = 0;
	cr_assert_eq(recv(s, &ch, 1, MSG_DONTWAIT), 1);
	cr_assert_eq(ch, 'x');

	/* A connected socket is writable at once. */
	START(&o, ur_poll_start(l, &o.f, s, POLLOUT));
	ASSERT_RES(op_wait(l, &o), POLLOUT);

	/* The peer's close wakes a POLLIN waiter with POLLIN (the EOF is readable). */
	START(&o, ur_poll_start(l, &o.f, s, POLLIN));
	settle(l);
	cr_assert_eq(o.calls, 0);
	close(c);
	int r = op_wait(l, &o);
	cr_assert_eq(r & POLLIN, POLLIN, "events %#x", r);

	close(s);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

static int udp_bound(struct sockaddr_in *addr)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	*addr = t_loopback(0);
	cr_assert_eq(bind(fd, (struct sockaddr *)addr, sizeof(*addr)), 0);
	*addr = t_loopback(local_port(fd));
	return fd;
}

Test(socket, udp_send_recv_keeps_datagrams)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	struct sockaddr_in aa, ba;
	int a = udp_bound(&aa), b = udp_bound(&ba);
	struct op so, ro;
	char buf[64];

	/* Unconnected: sendmsg with a destination, recvmsg learns the source. */
	struct iovec out = {(void *)"datagram", 8};
	struct msghdr smsg = {
	    .msg_name = &ba, .msg_namelen = sizeof(ba), .msg_iov = &out, .msg_iovlen = 1};
	struct sockaddr_in from;
	memset(&from, 0, sizeof(from));
	memset(buf, 0, sizeof(buf));
	struct iovec in = {buf, sizeof(buf)};
	struct msghdr rmsg = {
	    .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &in, .msg_iovlen = 1};
	START(&ro, ur_recvmsg_start(l, &ro.f, b, &rmsg, 0));
	START(&so, ur_sendmsg_start(l, &so.f, a, &smsg, 0));
	ASSERT_RES(op_wait(l, &so), 8);
	ASSERT_RES(op_wait(l, &ro), 8);
	cr_assert_str_eq(buf, "datagram");
	cr_assert_eq(rmsg.msg_namelen, sizeof(struct sockaddr_in));
	cr_assert_eq(from.sin_family, AF_INET);
	cr_assert_eq(from.sin_port, aa.sin_port);
	cr_assert_eq(from.sin_addr.s_addr, htonl(INADDR_LOOPBACK));

	/* Connected: send/recv, one datagram per recv, boundaries kept. */
	cr_assert_eq(connect(a, (struct sockaddr *)&ba, sizeof(ba)), 0);
	START(&so, ur_send_start(l, &so.f, a, "one", 3, 0));
	ASSERT_RES(op_wait(l, &so), 3);
	START(&so, ur_send_start(l, &so.f, a, "three", 5, 0));
	ASSERT_RES(op_wait(l, &so), 5);
	memset(buf, 0, sizeof(buf));
	START(&ro, ur_recv_start(l, &ro.f, b, buf, sizeof(buf), 0));
	ASSERT_RES(op_wait(l, &ro), 3);
	cr_assert_str_eq(buf, "one");
	memset(buf, 0, sizeof(buf));
	START(&ro, ur_recv_start(l, &ro.f, b, buf, sizeof(buf), 0));
	ASSERT_RES(op_wait(l, &ro), 5);
	cr_assert_str_eq(buf, "three");

	/* A datagram longer than the buffer is truncated to it; MSG_TRUNC says so. */
	START(&so, ur_send_start(l, &so.f, a, "0123456789", 10, 0));
	ASSERT_RES(op_wait(l, &so), 10);
	memset(buf, 0, sizeof(buf));
	in.iov_len = 4;
	rmsg.msg_namelen = sizeof(from);
	rmsg.msg_flags = 0;
	START(&ro, ur_recvmsg_start(l, &ro.f, b, &rmsg, 0));
	ASSERT_RES(op_wait(l, &ro), 4);
	cr_assert_str_eq(buf, "0123");
	cr_assert_eq(rmsg.msg_flags & MSG_TRUNC, MSG_TRUNC);

	close(a);
	close(b);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

Test(socket, unix_socketpair_send_recv)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	struct op so, ro;
	char buf[32];

	memset(buf, 0, sizeof(buf));
	START(&ro, ur_recv_start(l, &ro.f, sv[1], buf, sizeof(buf), 0));
	START(&so, ur_send_start(l, &so.f, sv[0], "unix stream", 11, 0));
	ASSERT_RES(op_wait(l, &so), 11);
	ASSERT_RES(op_wait(l, &ro), 11);
	cr_assert_str_eq(buf, "unix stream");

	memset(buf, 0, sizeof(buf));
	START(&ro, ur_recv_start(l, &ro.f, sv[0], buf, sizeof(buf), 0));
	START(&so, ur_send_start(l, &so.f, sv[1], "reply", 5, 0));
	ASSERT_RES(op_wait(l, &so), 5);
	ASSERT_RES(op_wait(l, &ro), 5);
	cr_assert_str_eq(buf, "reply");

	close(sv[1]);
	START(&ro, ur_recv_start(l, &ro.f, sv[0], buf, sizeof(buf), 0));
	ASSERT_RES(op_wait(l, &ro), 0);
	close(sv[0]);

	/* Datagram-flavoured pair: boundaries kept. */
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	cr_assert_eq(write(sv[0], "ab", 2), 2);
	cr_assert_eq(write(sv[0], "cde", 3), 3);
	memset(buf, 0, sizeof(buf));
	START(&ro, ur_recv_start(l, &ro.f, sv[1], buf, sizeof(buf), 0));
	ASSERT_RES(op_wait(l, &ro), 2);
	cr_assert_str_eq(buf, "ab");
	close(sv[0]);
	close(sv[1]);

	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

/* ---- multishot accept ---- */

struct accepts {
	struct ur_future f;
	int calls;
	int fds[8];
	int nfds;
	int more_false;
	int final_res;
	int bad_buffer;
};

static void accepts_cb(struct ur_future *f, void *arg)
{
	struct accepts *a = arg;
	a->calls++;
	if (ur_future_buffer(f) != -1)
		a->bad_buffer++;
	if (ur_future_more(f)) {
		if (f->res >= 0 && a->nfds < 8)
			a->fds[a->nfds++] = f->res;
		else
			a->final_res = f->res; /* an error flagged more: recorded to fail below */
		return;
	}
	a->more_false++;
	a->final_res = f->res;
}

Test(socket, accept_multishot_three_clients_then_cancel)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	uint16_t port;
	int lfd = t_listen_tcp(&port);
	struct sockaddr_in to = t_loopback(port);
	struct accepts a;
	memset(&a, 0, sizeof(a));
	a.final_res = 1;
	ur_future_init(&a.f, accepts_cb, &a);

	int r = ur_accept_multishot_start(l, &a.f, lfd, 0);
	if (r == -EOPNOTSUPP || r == -EINVAL) {
		close(lfd);
		t_loop_done(&l);
		cr_skip_test("multishot accept unsupported (5.19): %s", ur_strerror(r));
	}
	ASSERT_RES(r, 0);
	cr_assert_eq(a.calls, 0);
	settle(l);
	cr_assert_eq(a.calls, 0, "accept completed with no client: %d", a.final_res);

	int cl[3];
	uint16_t cports[3];
	for (int i = 0; i < 3; i++) {
		cl[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		cr_assert_eq(connect(cl[i], (struct sockaddr *)&to, sizeof(to)), 0);
		cports[i] = local_port(cl[i]);
	}
	while (a.nfds < 3 && a.calls < 8)
		cr_assert_geq(ur_loop_run(l, UR_RUN_ONCE), 0);
	cr_assert_eq(a.calls, 3, "completions: %d (last res %d)", a.calls, a.final_res);
	cr_assert_eq(a.nfds, 3);
	cr_assert_eq(a.more_false, 0, "multishot ended early: %d", a.final_res);
	cr_assert_eq(a.bad_buffer, 0);
	cr_assert_eq(ur_future_state(&a.f), UR_FUTURE_PENDING);

	bool seen[3] = {false, false, false};
	for (int i = 0; i < 3; i++) {
		for (int j = 0; j < i; j++)
			cr_assert_neq(a.fds[i], a.fds[j], "fd %d delivered twice", a.fds[i]);
		cr_assert_eq(fcntl(a.fds[i], F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
		struct sockaddr_in p;
		socklen_t len = sizeof(p);
		cr_assert_eq(getpeername(a.fds[i], (struct sockaddr *)&p, &len), 0);
		int k = 0;
		while (k < 3 && cports[k] != ntohs(p.sin_port))
			k++;
		cr_assert_lt(k, 3, "accepted a connection from an unknown port");
		cr_assert_not(seen[k]);
		seen[k] = true;
	}

	ASSERT_RES(ur_cancel(&a.f), 0);
	cr_assert_eq(a.calls, 3, "ur_cancel completed the future inline");
	t_run_until(l, &a.f);
	cr_assert_eq(a.calls, 4);
	cr_assert_eq(a.more_false, 1);
	ASSERT_RES(a.final_res, -ECANCELED);
	cr_assert_not(ur_future_more(&a.f));
	settle(l);
	cr_assert_eq(a.calls, 4, "completion after the final one");

	for (int i = 0; i < 3; i++) {
		close(a.fds[i]);
		close(cl[i]);
	}
	close(lfd);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

/* ---- close while a recv is pending, then reuse of the number ---- */

Test(socket, close_cancels_pending_recv_and_fd_number_is_reused_safely)
{
	int fds = t_count_fds();
	struct ur_loop *l = t_loop();
	int c, s;
	t_tcp_pair(&c, &s);
	struct op ro, co;
	char buf[16];
	memset(buf, 'Z', sizeof(buf));

	START(&ro, ur_recv_start(l, &ro.f, s, buf, sizeof(buf), 0));
	settle(l);
	cr_assert_eq(ro.calls, 0);
	START(&co, ur_close_start(l, &co.f, s));
	ASSERT_RES(op_wait(l, &co), 0);
	ASSERT_RES(op_wait(l, &ro), -ECANCELED);
	cr_assert_not(t_fd_is_open(s));
	for (size_t i = 0; i < sizeof(buf); i++)
		cr_assert_eq(buf[i], 'Z', "cancelled recv wrote into its buffer");

	/* Take the lowest free numbers until s comes back (holes below it are filled first). */
	int fill[16], nfill = 0, sv[2] = {-1, -1};
	for (;;) {
		cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		if (sv[0] == s || sv[1] == s)
			break;
		cr_assert_lt(sv[0], s, "fd %d was not released by the close", s);
		cr_assert_lt(nfill + 2, 16);
		fill[nfill++] = sv[0];
		fill[nfill++] = sv[1];
	}
	for (int i = 0; i < nfill; i++)
		close(fill[i]);
	int fresh = s, other = sv[0] == s ? sv[1] : sv[0];

	/* The old peer's bytes go nowhere near the new descriptor. */
	(void)send(c, "stale", 5, MSG_NOSIGNAL);
	START(&ro, ur_poll_start(l, &ro.f, fresh, POLLIN));
	struct op to;
	START(&to, ur_timeout_start(l, &to.f, 20 * UR_MSEC, 0));
	ASSERT_RES(op_wait(l, &to), 0);
	cr_assert_eq(ro.calls, 0, "the reused fd became readable: %#x", ro.res);
	ASSERT_RES(ur_cancel(&ro.f), 0);
	ASSERT_RES(op_wait(l, &ro), -ECANCELED);
	char ch;
	errno = 0;
	cr_assert_eq(recv(fresh, &ch, 1, MSG_DONTWAIT), -1);
	cr_assert_eq(errno, EAGAIN);

	/* And the new descriptor works normally. */
	memset(buf, 0, sizeof(buf));
	START(&ro, ur_recv_start(l, &ro.f, fresh, buf, sizeof(buf), 0));
	cr_assert_eq(write(other, "fresh", 5), 5);
	ASSERT_RES(op_wait(l, &ro), 5);
	cr_assert_str_eq(buf, "fresh");
	START(&co, ur_send_start(l, &co.f, fresh, "back", 4, 0));
	ASSERT_RES(op_wait(l, &co), 4);
	memset(buf, 0, sizeof(buf));
	cr_assert_eq(read(other, buf, sizeof(buf)), 4);
	cr_assert_str_eq(buf, "back");

	close(fresh);
	close(other);
	close(c);
	t_loop_done(&l);
	cr_assert_eq(t_count_fds(), fds);
}

/* ---- ur_send_all: every byte, over short sends ---- */

#define SEND_ALL_LEN (4u << 20) /* far more than a socket buffer holds: sends come back short */

struct send_all {
	int fd;
	uint8_t *buf;
	ssize_t res;
};

static int send_all_task(void *arg)
{
	struct send_all *s = arg;
	s->res = ur_send_all(s->fd, s->buf, SEND_ALL_LEN, MSG_NOSIGNAL);
	return 0;
}

static int read_all_task(void *arg)
{
	struct send_all *s = arg;
	s->res = ur_read_all(s->fd, s->buf, SEND_ALL_LEN, UR_OFF_CURRENT);
	return 0;
}

Test(socket, send_all_sends_every_byte_and_spawn_null_detaches)
{
	struct ur_loop *l = t_loop();
	int c, s;
	t_tcp_pair(&c, &s);
	struct send_all tx = {.fd = s, .buf = malloc(SEND_ALL_LEN)};
	struct send_all rx = {.fd = c, .buf = calloc(1, SEND_ALL_LEN)};
	fill_pattern(tx.buf, SEND_ALL_LEN, 7);
	ASSERT_RES(ur_spawn(l, NULL, send_all_task, &tx, NULL), 0); /* detached: no handle */
	struct ur_task *r;
	ASSERT_RES(ur_spawn(l, &r, read_all_task, &rx, NULL), 0);
	ASSERT_RES(ur_join(r), 0);
	ASSERT_RES(ur_loop_run(l, UR_RUN_DEFAULT),
	           0); /* the detached sender ends and frees itself */
	cr_assert_eq(tx.res, (ssize_t)SEND_ALL_LEN);
	cr_assert_eq(rx.res, (ssize_t)SEND_ALL_LEN);
	cr_assert(memcmp(tx.buf, rx.buf, SEND_ALL_LEN) == 0);
	free(tx.buf);
	free(rx.buf);
	close(c);
	close(s);
	t_loop_done(&l);
}
